"""Delivering one message at most once: claim, guards, the provider, then marks and receipts."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connectors.base import (
    Connector,
    Delivered,
    OutboundMessage,
    Outcome,
    Permanent,
    Reconciler,
    Retry,
)
from connectors.guards import CircuitBreaker, Claim, DeliveryMarks, RateLimiter
from connectors.metrics import ConnectorMetrics
from connectors.records import (
    ReceiptSink,
    bounce_event,
    provider_record,
    read_provider_record,
    receipt_event,
)
from connectors.schedule import RetrySchedule
from orchestrator.contracts.interactions import ProviderInteraction
from orchestrator.control.identity import IdentityIndex
from orchestrator.engine.events import parse_event
from orchestrator.infra.clock import Clock
from orchestrator.infra.outage import Backoff, dependency_of
from orchestrator.timefmt import format_instant

__all__ = ["Delivery", "DeliveryContext", "backoff"]

log = logging.getLogger(__name__)

# A message found claimed by another worker is looked at again just after the claim's lease
# ends (if that worker died, its claim expires and we send it).
_AFTER_LEASE = 0.05


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].

    Full jitter spreads the retries of a burst of messages that failed together, so a
    recovering provider is not hit by all of them at once.
    """
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(0, ceiling)  # noqa: S311 - spreading load, not secrecy


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """The collaborators every channel's deliveries share (one per connector worker)."""

    marks: DeliveryMarks
    limiter: RateLimiter
    breaker: CircuitBreaker
    sink: ReceiptSink
    clock: Clock
    max_attempts: int
    retry_base: float
    retry_cap: float
    metrics: ConnectorMetrics
    # Where replies and status callbacks find their customer and message (None: not kept).
    identity: IdentityIndex | None = None


class Delivery:
    """One channel's delivery of messages from `outbound` or from its retry schedule."""

    def __init__(
        self, connector: Connector, schedule: RetrySchedule, context: DeliveryContext
    ) -> None:
        self.connector = connector
        self.schedule = schedule
        self.context = context

    async def handle(
        self, message: OutboundMessage, attempt: int, scheduled: bool, reserved: bool = False
    ) -> None:
        """Deliver `message` (tried `attempt` times so far) unless it was already, or wait.

        1. Claim it (`SET NX` with a lease): if it is marked done, only make sure its
           receipts went out; if another worker holds it, look again after that lease.
        2. Ask the provider's rate limiter (unless it `reserved` this moment for the
           message: it said wait before, and gave it this slot), then its circuit breaker;
           if either says wait, schedule the message for then (not an attempt; with the
           slot the limiter reserved) and release the claim; a note that an earlier try may
           have reached the provider stays for the next claim.
        3. Send it; the connector classifies the answer (delivered, retry, permanent). If
           an earlier try may have reached the provider and the connector is a
           `Reconciler`, first ask the provider for that try's message: found, it is this
           try's answer (delivered, reconciled) and nothing is sent; the lookup failing is a
           retry that looks again, never a blind send.
        4. Delivered: note the address and provider id in the identity index (replies and
           status callbacks find the message there). Delivered or permanent: mark it done
           first (the duplicate window ends here), tell the breaker, publish the receipt
           event (and `message.bounced` for a bounce) and the interaction record, mark them
           published, drop it from the schedule. Redis or Kafka away during this step is
           waited out here: redoing the delivery would send the message again.
        5. Retry: tell the breaker, publish the interaction record, then schedule the next
           try (backoff with full jitter, never before `Retry-After`) and release the claim;
           after `max_attempts` tries it fails for good instead (step 4, the last record
           `failed` with `retries_exhausted`).
        Raises only if Redis or Kafka fail before the provider's final answer: the caller
        tries the whole thing again, and the claim and marks make that safe.
        """
        context, mid = self.context, message.message_id
        # Step 1
        claim = await context.marks.claim(mid)
        if claim.status == "done":
            await self._republish(mid, claim.mark or {})
            if scheduled:
                await self.schedule.remove(mid)
            return
        if claim.status == "busy":
            await self.schedule.put(
                message.to_dict(), attempt, time.time() + claim.wait + _AFTER_LEASE
            )
            return
        # Step 2
        provider = self.connector.provider(message)
        wait, slot = await self._guards(provider, reserved)
        if wait:
            await self.schedule.put(message.to_dict(), attempt, time.time() + wait, reserved=slot)
            # Nothing was asked of the provider: an earlier try's note must outlive this wait.
            await context.marks.release(mid, claim.token, provider_has_none=False)
            return
        # Step 3
        attempt += 1
        outcome = await self._reconcile_or_deliver(message, claim)
        record = provider_record(message, provider, attempt, outcome, context.clock.now())
        if isinstance(outcome, Retry):
            if outcome.provider_trouble:
                state = await context.breaker.record(provider, ok=False)
                if state == "open":
                    log.warning("%s: circuit open after %s", provider, outcome.reason)
            if attempt < context.max_attempts:
                # Step 5
                await context.sink.send([], [record])
                context.metrics.retries.labels(message.channel).inc()
                delay = backoff(attempt, context.retry_base, context.retry_cap)
                await self.schedule.put(
                    message.to_dict(), attempt, time.time() + max(delay, outcome.after or 0.0)
                )
                await context.marks.release(
                    mid, claim.token, provider_has_none=not outcome.maybe_sent
                )
                return
            final: Delivered | Permanent = Permanent(
                "retries_exhausted", f"{attempt} tries: {outcome.code}: {outcome.reason}"
            )
            # Nothing more will be tried: the last try's record says so (failed,
            # `retries_exhausted`, the provider's answer in `error`), not `retry`.
            record = provider_record(message, provider, attempt, final, context.clock.now())
        else:
            final = outcome
        # Step 4. The provider has answered for good (it may have the message): a Redis or
        # Kafka error from here on must not send it again, so these steps are retried on
        # their own until they succeed, never the whole delivery.
        await self._settle(lambda: self._conclude(message, provider, outcome, final, record))
        if scheduled:
            await self._settle(lambda: self.schedule.remove(mid))

    async def _settle(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` until it succeeds, waiting out Redis or Kafka (errors no wait can
        cure are raised)."""
        backoff = Backoff(cap=1.0)
        while True:
            try:
                return await step()
            except Exception as exc:
                if dependency_of(exc) is None:
                    raise
                log.debug("delivered message's marks wait for %s: %s", dependency_of(exc), exc)
                await asyncio.sleep(backoff.next())

    async def _conclude(
        self,
        message: OutboundMessage,
        provider: str,
        outcome: Outcome,
        final: Delivered | Permanent,
        record: ProviderInteraction,
    ) -> None:
        """Tell the breaker and the identity index about a final answer, then `_finish`."""
        context = self.context
        if not isinstance(outcome, Retry):
            await context.breaker.record(provider, ok=True)
        if isinstance(outcome, Delivered) and context.identity is not None:
            # Before the done mark: a crash in between redelivers and writes it again.
            at = format_instant(context.clock.now())
            await context.identity.remember(message, outcome.provider_id, at)
        await self._finish(message, outcome, final, record)

    async def _guards(self, provider: str, reserved: bool) -> tuple[float, bool]:
        """Seconds to wait for the provider's rate limit (with True: the limiter reserved
        that moment for the message), else for its circuit; 0: go now."""
        context = self.context
        context.metrics.providers.add(provider)
        if not reserved:
            wait = await context.limiter.reserve(provider)
            if wait:
                context.metrics.rate_limit_waits.labels(provider).inc()
                return wait, True
        return await context.breaker.wait_for(provider), False

    async def _finish(
        self,
        message: OutboundMessage,
        outcome: Outcome,
        final: Delivered | Permanent,
        record: ProviderInteraction,
    ) -> None:
        """Step 4: mark done, publish the receipts and the record, mark them published."""
        context, mid = self.context, message.message_id
        now = context.clock.now()
        events = [receipt_event(message, final, now)]
        bounced = None if isinstance(outcome, Delivered) else bounce_event(message, outcome, now)
        mark: dict[str, Any] = {
            "state": "accepted",
            "event": events[0].to_wire(),
            "record": record.to_dict(),
        }
        if bounced is not None:
            events.append(bounced)
            mark["bounced"] = bounced.to_wire()
        await context.marks.finish(mid, mark)
        await context.sink.send(events, [record])
        await context.marks.finish(mid, {"state": "recorded"})
        outcome_label = "delivered" if isinstance(final, Delivered) else "failed"
        context.metrics.deliveries.labels(message.channel, outcome_label).inc()

    async def _reconcile_or_deliver(self, message: OutboundMessage, claim: Claim) -> Outcome:
        """Step 3: the provider's record of an earlier try if there is one, else a send."""
        connector = self.connector
        if not isinstance(connector, Reconciler):
            return await self._deliver(message)
        if claim.in_flight_since is not None:
            try:
                found = await connector.find_sent(message, claim.in_flight_since)
            except Exception as exc:  # a connector bug must not send the message blind
                log.exception("%s lookup raised on %s", connector.channel, message.message_id)
                found = Retry("lookup_error", f"{type(exc).__name__}: {exc}", maybe_sent=True)
            if found is not None:
                return found
        await self.context.marks.sending(message.message_id)
        return await self._deliver(message)

    async def _deliver(self, message: OutboundMessage) -> Outcome:
        try:
            return await self.connector.deliver(message)
        except Exception as exc:  # a connector bug must not stop the channel
            log.exception("%s connector raised on %s", self.connector.channel, message.message_id)
            return Retry("connector_error", f"{type(exc).__name__}: {exc}", provider_trouble=False)

    async def _republish(self, message_id: str, mark: dict[str, Any]) -> None:
        """A message marked done whose receipts may not have gone out (a crash in step 4)."""
        if mark.get("state") != "accepted":
            return
        events = [parse_event(mark[k], internal=True) for k in ("event", "bounced") if k in mark]
        await self.context.sink.send(events, [read_provider_record(mark["record"])])
        await self.context.marks.finish(message_id, {"state": "recorded"})

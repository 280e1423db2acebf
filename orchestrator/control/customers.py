"""Reading one customer's stored state (`{c:<id>}`) for the API, without the runtime's store.

The journey worker owns the state hash; this reads its `state` field only and never writes.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine.state import CustomerState
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.timefmt import format_instant

__all__ = ["journey_view", "read_customer"]


async def read_customer(
    redis: RedisClient, keys: RedisKeys, customer_id: str
) -> CustomerState | None:
    """The customer's state, or None when the engine never stored any."""
    raw = await redis.hget(keys.customer(customer_id), "state")
    if raw is None:
        return None
    return CustomerState.from_stored(raw)


def _instant(epoch: float | None) -> str | None:
    return None if epoch is None else format_instant(epoch)


def journey_view(state: CustomerState) -> list[dict[str, Any]]:
    """The active instances: journey, version, step, what it waits for, its timer's due time."""
    return [
        {
            "journey": instance.journey,
            "version": instance.version,
            "instance_id": instance.instance_id,
            "step": instance.step,
            "waiting_for": instance.waiting,
            "timer_due_at": _instant(instance.wake_at),
            "expires_at": _instant(instance.expires_at),
            "entered_at": format_instant(instance.entered_at),
            "variant": instance.variant,
        }
        for _, instance in sorted(state.instances.items())
    ]

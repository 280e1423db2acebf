"""Every Kafka topic name and Redis key in one place."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RedisKeys", "TopicNames"]


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Topic names under a configurable prefix (see docs/operations.md)."""

    prefix: str

    @property
    def events(self) -> str:
        """Inbound customer events, receipts and timer firings, keyed by customer."""
        return f"{self.prefix}events"

    @property
    def journeys(self) -> str:
        """The compacted deploy log, keyed by journey id."""
        return f"{self.prefix}journeys"

    @property
    def outbound(self) -> str:
        """Messages for connectors, keyed by customer."""
        return f"{self.prefix}outbound"

    @property
    def interactions(self) -> str:
        """The immutable interaction log, keyed by customer."""
        return f"{self.prefix}interactions"

    @property
    def deadletter(self) -> str:
        """Input that could not be used, with the reason."""
        return f"{self.prefix}deadletter"

    def feedback(self, team: str) -> str:
        """Feedback routed to one team (docs/feedback.md), keyed by customer."""
        return f"{self.prefix}feedback.{team}"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Redis keys. Customer keys are hash-tagged so Redis Cluster keeps a customer on one shard."""

    prefix: str

    def customer(self, customer_id: str) -> str:
        """Hash with fields `state`, `revision` (bumped by every save), and `outbox` (JSON)
        with the `fence` of the save that wrote it, both present only mid-commit."""
        return f"{self.prefix}{{c:{customer_id}}}"

    def timers(self, topic: str, partition: int) -> str:
        """Sorted set of timers for one events partition, scored by due time."""
        return f"{self.prefix}{{t:{topic}:{partition}}}"

    def journey_members(self, journey: str) -> str:
        """Set of customers with an active instance of a journey (to end them on archive)."""
        return f"{self.prefix}{{j:{journey}}}:active"

    def journey_stats(self, journey: str) -> str:
        """Hash of live counters for a journey: entered, sent:<channel>, exit:<reason>..."""
        return f"{self.prefix}{{j:{journey}}}:stats"

    def engine_key(self) -> str:
        """The key that signs the engine's own events, when `ORCHESTRATOR_ENGINE_KEY` is unset."""
        return f"{self.prefix}{{engine}}:origin-key"

    def operations_lock(self) -> str:
        """Lock held while an operator action reads and rewrites the deploy log."""
        return f"{self.prefix}{{ops}}:lock"

    def api_keys(self) -> str:
        """Hash of API keys by key id: each a JSON record with the secret's sha256, never it."""
        return f"{self.prefix}{{keys}}:api"

    def unsubscribe_key(self) -> str:
        """The key that signs unsubscribe links, when `ORCHESTRATOR_UNSUBSCRIBE_KEY` is unset."""
        return f"{self.prefix}{{engine}}:unsubscribe-key"

    def survey_key(self) -> str:
        """The key that signs survey answer links (`infra/surveylinks.py`)."""
        return f"{self.prefix}{{engine}}:survey-key"

    def tracking_key(self) -> str:
        """The key that signs tracked links and open pixels, when `ORCHESTRATOR_TRACKING_KEY`
        is unset."""
        return f"{self.prefix}{{engine}}:tracking-key"

    def delivery_mark(self, message_id: str) -> str:
        """A connector's claim on an outbound message, then its delivered (or failed) mark."""
        return f"{self.prefix}{{m:{message_id}}}"

    def bounce_report(self, message_id: str) -> str:
        """Set once `orchestrator bounces` published a DSN's `message.bounced` for a message
        (a DSN delivered twice is published once)."""
        return f"{self.prefix}{{bn:{message_id}}}"

    def delivery_in_flight(self, message_id: str) -> str:
        """Since when a request that may have created the message went to its provider
        (same Redis Cluster slot as `delivery_mark`: one script uses both)."""
        return f"{self.prefix}{{m:{message_id}}}:sending"

    def retry_due(self, channel: str) -> str:
        """Sorted set of a channel's message ids waiting to be tried again, scored by due time."""
        return f"{self.prefix}{{r:{channel}}}:due"

    def retry_messages(self, channel: str) -> str:
        """Hash of those messages (id -> JSON with the attempt count), beside `retry_due`."""
        return f"{self.prefix}{{r:{channel}}}:messages"

    def rate_limit(self, provider: str) -> str:
        """A provider's rate limiter (GCRA: the theoretical arrival time)."""
        return f"{self.prefix}{{rl:{provider}}}"

    def circuit(self, provider: str) -> str:
        """Hash of a provider's circuit breaker: state, failures, open_until, probe_until."""
        return f"{self.prefix}{{cb:{provider}}}"

    def address(self, address: str) -> str:
        """Hash of one normalised address (E.164 phone, lower-cased email): its customer and
        the last message sent to it (message_id, journey, step, channel, at)."""
        return f"{self.prefix}{{a:{address}}}"

    def provider_message(self, provider_id: str) -> str:
        """Hash of the message a provider id (Twilio's MessageSid) stands for, for receipts."""
        return f"{self.prefix}{{pm:{provider_id}}}"

    def inbox(self, customer_id: str) -> str:
        """Hash of a customer's in-app messages by id (JSON each), beside `inbox_order`."""
        return f"{self.prefix}{{ib:{customer_id}}}:messages"

    def inbox_order(self, customer_id: str) -> str:
        """Sorted set of those message ids by arrival time (the oldest are trimmed first)."""
        return f"{self.prefix}{{ib:{customer_id}}}:order"

    def inbox_channel(self, customer_id: str) -> str:
        """Pub/sub channel announcing each new in-app message to the customer's SSE streams."""
        return f"{self.prefix}inbox:{customer_id}"

    def inbound_seen(self, provider_id: str) -> str:
        """Set once an inbound message has been answered, so a redelivery answers nothing."""
        return f"{self.prefix}{{in:{provider_id}}}"

    def inbound_stats(self) -> str:
        """Hash of inbound webhook counters (unknown_address, unknown_message...)."""
        return f"{self.prefix}{{inbound}}:stats"

    def feedback_teams(self) -> str:
        """Hash of the routing rules' teams (team -> JSON: topic, triage), set by the router."""
        return f"{self.prefix}{{fb}}:teams"

    def feedback_counts(self) -> str:
        """Hash of routed feedback counts: <team>, <team>:rerouted."""
        return f"{self.prefix}{{fb}}:counts"

    def feedback_queue(self, team: str) -> str:
        """Capped list of a team's latest feedback records (JSON, newest first)."""
        return f"{self.prefix}{{fb}}:queue:{team}"

    def feedback_themes(self, team: str) -> str:
        """Hash of a team's theme counts per ISO week: `<2026-W18>|<theme>` -> count."""
        return f"{self.prefix}{{fb}}:themes:{team}"

    def feedback_seen(self, item_id: str) -> str:
        """Set (to its team) once a feedback item is in the view, so it counts once."""
        return f"{self.prefix}{{fb}}:seen:{item_id}"

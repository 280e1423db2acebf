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


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Redis keys. Customer keys are hash-tagged so Redis Cluster keeps a customer on one shard."""

    prefix: str

    def customer(self, customer_id: str) -> str:
        """Hash with fields `state` (JSON) and `outbox` (JSON, present only mid-commit)."""
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

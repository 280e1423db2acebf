"""Key changes as operator actions: the store's change plus its `interactions` record.

The CLI (`orchestrator keys`) and the API (`/v1/keys`) both go through here.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from orchestrator.contracts.interactions import KeyAction
from orchestrator.control.keys import ApiKey, KeyStore
from orchestrator.control.records import key_record, send_records
from orchestrator.infra.clock import ScaledClock
from orchestrator.infra.settings import Settings
from orchestrator.timefmt import format_instant

__all__ = ["KeyService"]


class KeyService:
    """Creates and revokes keys, recording each as an operator interaction."""

    def __init__(
        self,
        settings: Settings,
        store: KeyStore,
        operator: str,
        producer: AIOKafkaProducer | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.operator = operator
        self.producer = producer
        self.clock = ScaledClock(settings.clock_speed, settings.clock_origin)

    async def create(self, role: str, name: str, grants: Sequence[str] = ()) -> tuple[ApiKey, str]:
        """A new key and its secret; the record names the key, never the secret."""
        at = format_instant(self.clock.now())
        key, secret = await self.store.create(role, name, at, grants)
        await self._record(KeyAction.CREATE, at, key)
        return key, secret

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key and record it."""
        at = format_instant(self.clock.now())
        key = await self.store.revoke(key_id, at)
        await self._record(KeyAction.REVOKE, at, key)
        return key

    async def _record(self, action: KeyAction, at: str, key: ApiKey) -> None:
        record = key_record(
            action, at, self.operator, key_id=key.key_id, key_name=key.name, role=key.role
        )
        await send_records(self.settings, [record], self.producer)

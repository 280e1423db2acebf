"""The compact stored form of customer state, and states stored before it (plain JSON).

Deployed workers restart onto existing Redis data: a state an older worker wrote as JSON
must load, be advanced, and be written back in the compact form.
"""

from __future__ import annotations

import time

from orchestrator import jsonwire
from orchestrator.control.customers import read_customer
from orchestrator.engine.state import CustomerState, Instance
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from orchestrator.runtime.effects import Outbox
from orchestrator.runtime.store import CustomerStore
from tests.runtime_harness import isolated_settings, redis_client


def _state(customer_id: str) -> CustomerState:
    trigger = {"event_id": "e1", "customer_id": customer_id, "name": "customer.signed_up"}
    return CustomerState(
        customer_id,
        profile={"first_name": "Ada", "email": f"{customer_id}@example.com"},
        consent={"sms": "opted_in"},
        instances={
            "welcome": Instance("welcome:1", "welcome", 1, 1.5, trigger, "wait", "wait", 1, 9.0)
        },
        entries={"welcome": (1, 1.5)},
        applied=[f"{customer_id}:{n}" for n in range(20)],
        clock=1.5,
    )


def test_the_stored_form_reads_back_and_is_smaller_than_json() -> None:
    state = _state("c1")
    stored = state.to_stored()
    assert CustomerState.from_stored(stored) == state
    assert len(stored) < len(jsonwire.dumps(state.to_wire())) * 0.6


def test_a_state_stored_as_json_still_loads() -> None:
    state = _state("c1")
    assert CustomerState.from_stored(jsonwire.dumps(state.to_wire())) == state


async def test_old_json_states_in_redis_load_and_are_rewritten_compact(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    keys = RedisKeys(settings.redis_prefix)
    old = _state("old")
    async with redis_client(settings) as redis:
        # As a worker before the compact form wrote it.
        await redis.hset(
            keys.customer("old"),
            mapping={"state": jsonwire.dumps(old.to_wire()), "revision": "3"},
        )
        store = CustomerStore(redis, keys)
        loaded = await store.load(["old", "new"])
        assert loaded["old"].state == old
        assert loaded["old"].revision == 3
        assert loaded["new"].state == CustomerState("new")
        assert await read_customer(redis, keys, "old") == old
        old.clock = time.time()
        outbox = Outbox(timers=keys.timers("events", 0)).to_wire()
        await store.save([("old", old.to_stored(), outbox, 3)])
        raw = await redis.hget(keys.customer("old"), "state")
        assert raw is not None and raw[:1] != b"{"
        assert (await store.load(["old"]))["old"].state == old
        assert await read_customer(redis, keys, "old") == old

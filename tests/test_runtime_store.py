"""`CustomerStore` on a real Redis node and a real Redis Cluster: batch-wide script calls
keep each customer's guarantees (revision-checked saves, outboxes dropped only by the save
that wrote them), whatever the batch's size and however its keys spread over slots."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from orchestrator.engine.state import CustomerState
from orchestrator.infra.addresses import address_changes, profile_addresses, queue_address_changes
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.slotscripts import KEYS_PER_CALL, call_groups
from orchestrator.runtime.effects import Effects, Outbox
from orchestrator.runtime.store import CustomerStore, StaleStateError
from tests.runtime_harness import isolated_settings

# More customers than one script call takes: batches are split, and must still line up.
MANY = KEYS_PER_CALL + 37


@pytest.fixture(params=["node", "cluster"])
async def store(
    request: pytest.FixtureRequest, infrastructure: Settings
) -> AsyncIterator[CustomerStore]:
    """A store on its own key prefix, on the single Redis node or on the Redis Cluster."""
    if request.param == "cluster":
        url = request.getfixturevalue("redis_cluster_url")
        settings = isolated_settings(infrastructure, redis_url=url, redis_cluster=True)
    else:
        settings = isolated_settings(infrastructure)
    redis = connect_redis(settings)
    try:
        yield CustomerStore(redis, RedisKeys(settings.redis_prefix))
    finally:
        await redis.aclose()


def _state(customer_id: str, tier: str) -> bytes:
    return CustomerState(customer_id, profile={"tier": tier}).to_stored()


def _outbox(store: CustomerStore, note: str) -> bytes:
    outbox = Outbox(timers=store.keys.timers("events", 0), stats=[("j", note)])
    return outbox.to_wire()


async def test_a_batch_loads_and_saves_every_customer_in_order(store: CustomerStore) -> None:
    customers = [f"c{i}" for i in range(MANY)]
    fresh = await store.load(customers)
    assert [fresh[c].state.customer_id for c in customers] == customers
    assert all(fresh[c].revision == 0 and fresh[c].outbox is None for c in customers)

    await store.save([(c, _state(c, c), _outbox(store, c), 0) for c in customers])
    loaded = await store.load(customers)
    assert [loaded[c].state.profile["tier"] for c in customers] == customers
    outboxes = [loaded[c].outbox for c in customers]
    assert [o.stats if o else None for o in outboxes] == [[("j", c)] for c in customers]
    assert {loaded[c].revision for c in customers} == {1}


async def test_only_the_customers_written_since_the_load_are_refused(
    store: CustomerStore,
) -> None:
    customers = [f"c{i}" for i in range(MANY)]
    await store.save([(c, _state(c, "a"), _outbox(store, "a"), 0) for c in customers])
    # Another worker wrote every seventh customer after this one loaded them all.
    taken = customers[::7]
    await store.save([(c, _state(c, "theirs"), _outbox(store, "theirs"), 1) for c in taken])

    with pytest.raises(StaleStateError) as refused:
        await store.save([(c, _state(c, "mine"), _outbox(store, "mine"), 1) for c in customers])
    loaded = await store.load(customers)
    assert sorted(refused.value.customer_ids) == sorted(taken)
    for c in customers:
        tier, revision = ("theirs", 2) if c in taken else ("mine", 2)
        assert (loaded[c].state.profile["tier"], loaded[c].revision) == (tier, revision), c


async def test_a_slow_old_owner_does_not_drop_the_new_owners_outbox(
    store: CustomerStore,
) -> None:
    # The old owner saved c1's outbox, then stalled before settling it.
    old_fence = await store.save([("c1", _state("c1", "a"), _outbox(store, "old"), 0)])
    # The new owner loads the leftover outbox and saves it again with its own events: an
    # outbox with the same bytes as the old one would have been, on purpose.
    leftover = (await store.load(["c1"]))["c1"]
    assert leftover.outbox is not None
    new_fence = await store.save([("c1", _state("c1", "b"), _outbox(store, "old"), 1)])

    await store.settle(Effects(cleared=[("c1", 1)]), old_fence)
    assert (await store.load(["c1"]))["c1"].outbox is not None, "the old owner dropped it"

    await store.settle(Effects(cleared=[("c1", 2)]), new_fence)
    after = (await store.load(["c1"]))["c1"]
    assert after.outbox is None
    assert set(await store.redis.hkeys(store.keys.customer("c1"))) == {b"state", b"revision"}


async def test_an_outbox_a_version_without_fences_rewrote_survives_the_old_owner(
    store: CustomerStore,
) -> None:
    # During a rolling deploy the new owner may run the version before fences: its save
    # leaves the old owner's fence in place, but bumps the revision.
    fence = await store.save([("c1", _state("c1", "a"), _outbox(store, "old"), 0)])
    key = store.keys.customer("c1")
    await store.redis.hset(key, mapping={"outbox": _outbox(store, "new"), "revision": "2"})

    await store.settle(Effects(cleared=[("c1", 1)]), fence)
    outbox = (await store.load(["c1"]))["c1"].outbox
    assert outbox is not None and outbox.stats == [("j", "new")], "the old owner dropped it"


async def test_settle_drops_a_batchs_outboxes_after_applying_its_effects(
    store: CustomerStore,
) -> None:
    customers = [f"c{i}" for i in range(MANY)]
    fence = await store.save([(c, _state(c, "a"), _outbox(store, "a"), 0) for c in customers])
    timers = store.keys.timers("events", 0)
    effects = Effects(
        zadd={timers: {"t1": 10.0, "t2": 20.0}},
        zrem={timers: ["t1"]},
        joined={"j": set(customers)},
        addresses=[(c, f"{c}@example.com", True) for c in customers],
        cleared=[(c, 1) for c in customers],
    )
    await store.settle(effects, fence)

    loaded = await store.load(customers)
    assert all(loaded[c].outbox is None for c in customers)
    assert await store.redis.zrange(timers, 0, -1) == [b"t2"]
    assert await store.redis.scard(store.keys.journey_members("j")) == MANY
    owners = [
        await store.redis.hget(store.keys.address(f"{c}@example.com"), "customer_id")
        for c in customers
    ]
    assert owners == [c.encode() for c in customers]


async def test_address_changes_apply_in_order_and_unlink_only_their_own(
    store: CustomerStore,
) -> None:
    redis: RedisClient = store.redis
    keys = store.keys
    changes = [
        ("c1", "one@example.com", True),
        ("c1", "one@example.com", False),  # linked then unlinked in one batch: gone
        ("c1", "two@example.com", True),
        ("c2", "two@example.com", True),  # moved to c2
        ("c1", "two@example.com", False),  # c1 no longer has it: c2 keeps it
    ]
    async with redis.pipeline(transaction=False) as pipe:
        calls = queue_address_changes(pipe, keys, changes)
        results = await pipe.execute()
    assert sum(int(call.reply(results)) for call in calls) == 1
    assert not await redis.exists(keys.address("one@example.com"))
    assert await redis.hget(keys.address("two@example.com"), "customer_id") == b"c2"


@given(
    st.lists(st.text(min_size=1, max_size=6), max_size=3 * KEYS_PER_CALL),
    st.booleans(),
)
def test_script_calls_cover_every_key_once_in_order_within_one_slot(
    names: list[str], cluster: bool
) -> None:
    keys = [f"p:{{c:{name}}}" for name in names]
    calls = call_groups(keys, cluster=cluster)
    assert sorted(i for group in calls for i in group) == list(range(len(keys)))
    for group in calls:
        assert 0 < len(group) <= KEYS_PER_CALL
        assert group == sorted(group)
        if cluster:
            assert len({key_slot(keys[i].encode()) for i in group}) == 1


_ADDRESS_VALUES = st.one_of(
    st.none(),
    st.integers(0, 3),
    st.sampled_from(["ada@example.com", "Ada@Example.COM", "+1 555 0100", "whatsapp:+15550100"]),
    st.text(max_size=8),
)
_PROFILES = st.dictionaries(
    st.sampled_from(["email", "phone", "push_token", "tier"]), _ADDRESS_VALUES, max_size=4
)


@given(_PROFILES, _PROFILES)
def test_address_changes_equal_the_difference_of_both_profiles_addresses(
    before: dict[str, object], after: dict[str, object]
) -> None:
    old, new = profile_addresses(before), profile_addresses(after)
    expected = [(a, False) for a in sorted(old - new)] + [(a, True) for a in sorted(new - old)]
    assert address_changes(before, after) == expected

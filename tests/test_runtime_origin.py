"""Engine events (`timer.fired`, `journey.archived`) are applied only with the engine's proof
of origin; forgeries from any other producer are dead letters and change nothing."""

from __future__ import annotations

from orchestrator import jsonwire
from orchestrator.contracts.codec import DeadLetter, decode_event
from orchestrator.control.publisher import EventPublisher
from orchestrator.engine.events import JOURNEY_ARCHIVED, TIMER_FIRED, Event
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.origin import ORIGIN_HEADER, EngineOrigin
from orchestrator.infra.settings import Settings
from tests.runtime_harness import (
    isolated_settings,
    prepare,
    read_all,
    reader,
    redis_client,
    running_worker,
    wait_all_consumed,
)
from tests.runtime_scenario import (
    deploy_scenario,
    runtime_outcomes,
    scenario_events,
    simulated_outcomes,
)


def _forgeries(customer: str, at: float) -> list[Event]:
    """What a channel app could send to cut a customer short: fire their wait, end the journey."""
    properties = {"journey": "rt-onboarding", "instance": "rt-onboarding:1", "timer": "1"}
    return [
        Event(f"timer:{customer}:rt-onboarding:1:1", customer, TIMER_FIRED, at, None, properties),
        Event(
            f"forged:{customer}", customer, JOURNEY_ARCHIVED, at, None, {"journey": "rt-onboarding"}
        ),
    ]


async def test_forged_engine_events_are_dead_letters_and_change_nothing(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(24)
    expected = simulated_outcomes(events)
    exits = sum(n for key, n in expected.items() if key[0] == "exit")
    forged_count = 0

    async with running_worker(settings), reader(settings, topics.interactions) as log:
        async with EventPublisher(settings) as publisher:
            for event in events:
                await publisher.publish([event])
                if event.name != "signed_up":
                    continue
                # Right behind the trigger, while the customer waits in `await_use`.
                forged = _forgeries(event.customer_id, event.occurred_at + 0.001)
                await publisher.publish(forged)
                # A header that is there but not the engine's signature.
                timer = jsonwire.dumps(forged[0].to_wire())
                await publisher.publish_raw(
                    timer, event.customer_id.encode(), [(ORIGIN_HEADER, b"v1=" + b"0" * 64)]
                )
                forged_count += 3
        records = await log.until(lambda rs: sum(r.get("type") == "exit" for r in rs) >= exits)
        await wait_all_consumed(settings)
        records = await read_all(log, settings)
        async with reader(settings, topics.deadletter) as deadletter:
            letters = await read_all(deadletter, settings)

    assert runtime_outcomes(records) == expected
    assert not [r for r in records if r.get("reason") == "archived"]
    assert len(letters) == forged_count
    reasons = {letter["reason"].split(" (")[0] for letter in letters}
    assert reasons == {
        f"forged engine event: {TIMER_FIRED!r} is produced only by the engine, and this "
        "record's proof of origin is not valid",
        f"forged engine event: {JOURNEY_ARCHIVED!r} is produced only by the engine, and this "
        "record's proof of origin is not valid",
    }
    assert sum("(no orchestrator-origin header)" in lt["reason"] for lt in letters) == 48
    assert sum("signature does not match the record" in lt["reason"] for lt in letters) == 24


async def test_workers_and_operators_share_one_key_through_redis(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    keys = RedisKeys(settings.redis_prefix)
    event = Event("e1", "c1", TIMER_FIRED, 1_700_000_000.0, None, {"journey": "j"})
    key, value = b"c1", jsonwire.dumps(event.to_wire())
    async with redis_client(settings) as redis:
        signer, checker = EngineOrigin(), EngineOrigin()
        await signer.load(redis, keys)
        await checker.load(redis, keys)
        stored = await redis.get(keys.engine_key())
    assert stored is not None and len(stored) == 32
    headers = signer.sign(key, value)
    assert decode_event(value, key, "events", 0, 1, headers=headers, origin=checker) == event
    other = EngineOrigin.from_secret(b"x" * 32)
    tampered = value.replace(b'"j"', b'"k"')
    for letter in (
        decode_event(value, key, "events", 0, 1, headers=other.sign(key, value), origin=checker),
        decode_event(tampered, key, "events", 0, 1, headers=headers, origin=checker),
        decode_event(value, key, "events", 0, 1, headers=None, origin=checker),
        decode_event(value, key, "events", 0, 1, headers=headers, origin=None),
    ):
        assert isinstance(letter, DeadLetter)
        assert letter.reason.startswith("forged engine event: 'timer.fired'")
    # Channel apps' events need no proof; faust hands headers over as a mapping.
    plain = Event("e2", "c1", "signed_up", 1_700_000_000.0)
    assert decode_event(jsonwire.dumps(plain.to_wire()), key, "events", 0, 2) == plain
    assert decode_event(value, key, "e", 0, 1, headers=dict(headers), origin=checker) == event

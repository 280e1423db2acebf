"""Deploys: hot reload without restarts, versions kept by running instances, operator actions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator.cli import main
from orchestrator.control.operations import JourneyOperations, OperationInProgressError
from orchestrator.errors import JourneyValidationError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from orchestrator.journey.source import JourneySource
from orchestrator.runtime.worker import JourneyWorker
from orchestrator.timefmt import parse_instant
from tests.runtime_harness import (
    TopicReader,
    inbound_seen,
    isolated_settings,
    journey_source,
    load_customers,
    make_event,
    of_type,
    prepare,
    publish,
    read_all,
    reader,
    redis_client,
    running_worker,
    topic_size,
    wait_all_consumed,
    wait_until,
)

JOURNEY = "dp-hot"

JOURNEY_TEXT = """
id: {journey}
name: Deploy test journey
trigger: {{event: dp.start}}
steps:
  - id: hold
    wait_for: {{event: dp.go, timeout: 1h}}
  - id: announce
    send: {{channel: in_app, template: dp_note}}
"""


def version(marker: str, journey: str = JOURNEY) -> JourneySource:
    """The test journey whose one message says `marker`."""
    return journey_source(
        JOURNEY_TEXT.format(journey=journey),
        {"dp_note": f'in_app: {{title: "Note", body: "{marker}"}}'},
        path=f"{journey}.yaml",
    )


async def _catalog_is(worker: JourneyWorker, journey: str, **expected: Any) -> None:
    def check() -> bool:
        deployed = worker.follower.catalog.get(journey)
        return deployed is not None and all(
            getattr(deployed, name) == value for name, value in expected.items()
        )

    await wait_until(check, f"the worker's catalog has {journey} with {expected}", timeout=30)


async def _enter(
    settings: Settings, log: TopicReader, customers: list[str]
) -> list[dict[str, Any]]:
    """Start the journey for customers; returns their `enter` records."""
    await publish(settings, [make_event(c, "dp.start") for c in customers])
    records = await log.until(lambda rs: all(of_type(rs, "enter", c) for c in customers))
    return [of_type(records, "enter", c)[0] for c in customers]


async def _not_entered(settings: Settings, log: TopicReader, customer: str) -> None:
    """Offer the trigger, then a later event of the same customer; assert nothing entered."""
    ping = make_event(customer, "dp.ping")
    await publish(settings, [make_event(customer, "dp.start"), ping])
    # Same customer, same partition: everything the trigger caused is logged before the ping.
    records = await log.until(lambda rs: inbound_seen(rs, ping))
    assert not of_type(records, "enter", customer), f"{customer} entered"


async def _go(settings: Settings, outbound: TopicReader, customers: list[str]) -> dict[str, Any]:
    """Release waiting customers; returns their sends by customer."""
    await publish(settings, [make_event(c, "dp.go") for c in customers])
    messages = await outbound.until(lambda ms: {m["customer_id"] for m in ms} >= set(customers))
    return {m["customer_id"]: m for m in messages if m["customer_id"] in customers}


async def test_hot_deploy_keeps_running_instances_on_their_version(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    ops = JourneyOperations(settings, "test")
    assert [(o.version, o.changed) for o in await ops.deploy([version("v1")])] == [(1, True)]
    old, new = ["dp-a1", "dp-a2", "dp-a3"], ["dp-b1", "dp-b2", "dp-b3"]

    async with (
        running_worker(settings) as worker,
        reader(settings, topics.interactions) as log,
        reader(settings, topics.outbound) as outbound,
    ):
        entered_old = await _enter(settings, log, old)
        assert [(o.version, o.changed) for o in await ops.deploy([version("v2")])] == [(2, True)]
        await _catalog_is(worker, JOURNEY, current=2)
        entered_new = await _enter(settings, log, new)
        sent = await _go(settings, outbound, old + new)

    assert [r["version"] for r in entered_old] == [1, 1, 1]
    assert [r["version"] for r in entered_new] == [2, 2, 2]
    assert {c: (m["version"], m["content"]["body"]) for c, m in sent.items()} == {
        **dict.fromkeys(old, (1, "v1")),
        **dict.fromkeys(new, (2, "v2")),
    }


async def test_deploying_unchanged_content_is_a_no_op(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    ops = JourneyOperations(settings, "test")
    assert [(o.version, o.changed) for o in await ops.deploy([version("v1")])] == [(1, True)]
    logged = (
        await topic_size(settings, topics.journeys),
        await topic_size(settings, topics.interactions),
    )
    again = await ops.deploy([version("v1")])
    assert [(o.journey, o.version, o.changed) for o in again] == [(JOURNEY, 1, False)]
    assert (
        await topic_size(settings, topics.journeys),
        await topic_size(settings, topics.interactions),
    ) == logged
    assert list((await ops.records())[JOURNEY]["versions"]) == ["1"]


async def test_concurrent_operator_actions_lose_no_version(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    await JourneyOperations(settings, "first").deploy([version("v1")])
    operators = [JourneyOperations(settings, f"op{n}") for n in range(4)]

    outcomes = await asyncio.gather(
        *(ops.deploy([version(f"from op{n}")]) for n, ops in enumerate(operators))
    )

    assert sorted(o.version for [o] in outcomes) == [2, 3, 4, 5]
    record = (await operators[0].records())[JOURNEY]
    assert sorted(record["versions"], key=int) == ["1", "2", "3", "4", "5"]
    assert {v["operator"] for k, v in record["versions"].items() if k != "1"} == {
        "op0",
        "op1",
        "op2",
        "op3",
    }
    assert record["current"] == 5


async def test_an_operator_action_waiting_too_long_for_another_is_refused(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    async with redis_client(settings) as redis:
        held = redis.lock(RedisKeys(settings.redis_prefix).operations_lock(), timeout=60)
        assert await held.acquire()
        with pytest.raises(OperationInProgressError, match="run this command again"):
            await JourneyOperations(settings, "late", lock_wait=0.3).deploy([version("v1")])
        await held.release()
    assert await JourneyOperations(settings, "later").records() == {}


async def test_pause_stops_new_entries_while_running_instances_continue(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    ops = JourneyOperations(settings, "test")
    await ops.deploy([version("v1")])

    async with (
        running_worker(settings) as worker,
        reader(settings, topics.interactions) as log,
        reader(settings, topics.outbound) as outbound,
    ):
        await _enter(settings, log, ["dp-running"])
        paused = await ops.set_status(JOURNEY, "paused")
        assert paused["status"] == "paused"
        await _catalog_is(worker, JOURNEY, status="paused")
        await _not_entered(settings, log, "dp-late")
        sent = await _go(settings, outbound, ["dp-running"])
        assert sent["dp-running"]["content"]["body"] == "v1"

        await ops.set_status(JOURNEY, "active")
        await _catalog_is(worker, JOURNEY, status="active")
        await _enter(settings, log, ["dp-late"])
        sent = await _go(settings, outbound, ["dp-late"])
        assert sent["dp-late"]["content"]["body"] == "v1"


async def test_rollback_makes_the_previous_version_current_for_new_entries(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    ops = JourneyOperations(settings, "test")
    await ops.deploy([version("v1")])
    await ops.deploy([version("v2")])

    async with (
        running_worker(settings) as worker,
        reader(settings, topics.interactions) as log,
        reader(settings, topics.outbound) as outbound,
    ):
        (on_v2,) = await _enter(settings, log, ["dp-on-v2"])
        rolled = await ops.rollback(JOURNEY)
        assert rolled["current"] == 1
        await _catalog_is(worker, JOURNEY, current=1)
        (on_v1,) = await _enter(settings, log, ["dp-on-v1"])
        sent = await _go(settings, outbound, ["dp-on-v2", "dp-on-v1"])

    assert (on_v2["version"], on_v1["version"]) == (2, 1)
    assert {c: m["content"]["body"] for c, m in sent.items()} == {
        "dp-on-v2": "v2",
        "dp-on-v1": "v1",
    }
    # Rolling back past the first version is refused with a message saying so.
    with pytest.raises(Exception, match="no version before v1"):
        await ops.rollback(JOURNEY)


async def test_archive_ends_active_instances_and_stops_entries(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    ops = JourneyOperations(settings, "test")
    await ops.deploy([version("v1")])
    active = ["dp-x1", "dp-x2", "dp-x3"]
    members = RedisKeys(settings.redis_prefix).journey_members(JOURNEY)

    async with (
        running_worker(settings) as worker,
        reader(settings, topics.interactions) as log,
        redis_client(settings) as redis,
    ):
        await _enter(settings, log, active)
        await wait_all_consumed(settings)
        joined = cast(set[bytes], await redis.smembers(members))
        assert {m.decode() for m in joined} == set(active)
        archived = await ops.set_status(JOURNEY, "archived")
        assert archived["announced"] == len(active)
        records = await log.until(lambda rs: all(of_type(rs, "exit", c) for c in active))
        await _catalog_is(worker, JOURNEY, status="archived")
        await _not_entered(settings, log, "dp-after")
        await wait_all_consumed(settings)
        remaining = await redis.smembers(members)

    exits = {c: [r["reason"] for r in of_type(records, "exit", c)] for c in active}
    assert exits == {c: ["archived"] for c in active}
    assert not remaining
    stored = await load_customers(settings, active)
    assert all(not entry.state.instances for entry in stored.values())


async def test_operator_actions_are_interaction_records(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    ops = JourneyOperations(settings, "alice")
    first, second = version("v1"), version("v2")
    await ops.deploy([first])
    await ops.deploy([second])
    await ops.set_status(JOURNEY, "paused")
    await ops.set_status(JOURNEY, "active")
    await ops.rollback(JOURNEY)
    await ops.set_status(JOURNEY, "archived")

    async with reader(settings, topics.interactions) as log:
        records = await log.until(lambda rs: len(of_type(rs, "operator")) >= 6)
        keys = {m.key for m in log.raw}
    operator = of_type(records, "operator")
    assert [(r["action"], r["status"]) for r in operator] == [
        ("deploy", "active"),
        ("deploy", "active"),
        ("pause", "paused"),
        ("resume", "active"),
        ("rollback", "active"),
        ("archive", "archived"),
    ]
    assert {r["operator"] for r in operator} == {"alice"}
    assert {r["journey"] for r in operator} == {JOURNEY}
    assert keys == {f"journey:{JOURNEY}".encode()}
    digests = [first.digest(), second.digest()]
    assert [r["digest"] for r in operator] == [digests[i] for i in (0, 1, 1, 1, 0, 0)]
    assert [r.get("version") for r in operator] == [1, 2, 2, 2, 1, 1]
    assert operator[4]["rolled_back_from"] == 2
    assert len({r["record_id"] for r in operator}) == 6
    for record in operator:
        parse_instant(record["at"])


INVALID = JOURNEY_TEXT.format(journey="dp-broken").replace(
    "send: {channel: in_app, template: dp_note}", "send: {channel: in_app, template: missing}"
)


async def test_invalid_journeys_are_refused_and_nothing_is_published(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    ops = JourneyOperations(settings, "test")
    await ops.deploy([version("v1")])
    before = (
        await topic_size(settings, topics.journeys),
        await topic_size(settings, topics.interactions),
    )
    broken = journey_source(INVALID, {"dp_note": 'in_app: {title: "t", body: "b"}'}, "broken.yaml")
    # A valid change deployed together with an invalid journey is not published either.
    with pytest.raises(JourneyValidationError) as refused:
        await ops.deploy([version("v2"), broken])
    assert refused.value.problems
    assert any("missing" in str(p) and p.file == "broken.yaml" for p in refused.value.problems)
    after = (
        await topic_size(settings, topics.journeys),
        await topic_size(settings, topics.interactions),
    )
    assert after == before
    records = await ops.records()
    assert set(records) == {JOURNEY} and records[JOURNEY]["current"] == 1


def _write_journey(
    root: Path, marker: str, journey: str = "dp-cli", text: str | None = None
) -> Path:
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "templates" / "dp_note.yaml").write_text(
        f'in_app: {{title: "Note", body: "{marker}"}}\n', encoding="utf-8"
    )
    path = root / f"{journey}.yaml"
    path.write_text(text or JOURNEY_TEXT.format(journey=journey), encoding="utf-8")
    return path


async def test_cli_deploys_lists_and_refuses_invalid_journeys(
    infrastructure: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    for name, value in settings.as_environment().items():
        monkeypatch.setenv(name, value)
    good = _write_journey(tmp_path / "good", "v1")
    bad = _write_journey(tmp_path / "bad", "v1", "dp-broken", INVALID)

    async def cli(*argv: str) -> tuple[int, str, str]:
        # The CLI runs its own event loop (asyncio.run): give it a thread.
        code = await asyncio.to_thread(main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await cli("deploy", str(good), "--operator", "carol")
    assert code == 0 and "dp-cli" in out and "deployed" in out and "v1" in out
    code, out, _ = await cli("deploy", str(good), "--operator", "carol")
    assert code == 0 and "unchanged" in out

    code, out, _ = await cli("journeys", "list")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("dp-cli")]
    assert "active" in row and "v1" in row and "carol" in row

    code, out, _ = await cli("journeys", "pause", "dp-cli", "--operator", "carol")
    assert code == 0 and "paused" in out
    code, out, _ = await cli("journeys", "show", "dp-cli")
    assert code == 0 and "paused" in out and "carol" in out

    size = await topic_size(settings, topics.journeys)
    code, out, err = await cli("validate", str(bad))
    assert code == 1 and "missing" in out + err
    code, out, err = await cli("deploy", str(bad))
    assert code == 1 and "missing" in err
    assert await topic_size(settings, topics.journeys) == size

    records = await JourneyOperations(settings).records()
    assert set(records) == {"dp-cli"}
    assert (records["dp-cli"]["status"], records["dp-cli"]["operator"]) == ("paused", "carol")
    async with reader(settings, topics.interactions) as log:
        operator = of_type(await read_all(log, settings), "operator")
    assert [(r["action"], r["operator"]) for r in operator] == [
        ("deploy", "carol"),
        ("pause", "carol"),
    ]

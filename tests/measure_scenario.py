"""A run with known outcomes for the measurement tests, and an independent count of it.

`scenario_records()` drives the real engine (`Simulator`, as `orchestrator simulate` does)
over customers of two journeys (one with a three-arm split including a holdout, two
versions, goals, suppressions by consent and missing address), then applies receipts for
their messages (delivered, opened twice, clicked, bounced, failed, replied; some without
journey/step, found by message id), and turns everything into interaction records with the
runtime's builders (`inbound_interaction`, `action_interaction`). `count_figures()` then
counts the figures from those records in plain Python, knowing nothing of the projection,
and `assert_figures_exact()` compares every stored figure with that count.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from orchestrator import jsonwire
from orchestrator.audit.db import connection
from orchestrator.contracts.recording import action_interaction, inbound_interaction
from orchestrator.engine.actions import Action, Sent, TimerCancelled, TimerFired, TimerSet
from orchestrator.engine.catalog import DeployedJourney
from orchestrator.engine.events import Event
from orchestrator.measure import figures
from orchestrator.measure.experiments import Arm, evaluate
from orchestrator.timefmt import parse_instant
from tests.journey_fixtures import DAY, HOUR, MINUTE, REACHABLE, T0, Driver, compile_journey

TRIAL = """\
id: {id}
name: Trial conversion
category: marketing
trigger: {{event: signed_up}}
exit_when:
  - {{event: purchased, goal: true}}
  - {{event: account.closed}}
max_duration: 10d
steps:
  - id: offer_test
    split:
      - {{variant: control, weight: 40, next: welcome}}
      - {{variant: B, weight: 40, next: welcome_sms}}
      - {{variant: holdout, weight: 20, holdout: true}}
  - id: welcome
    send: {{channel: email, template: msg}}
    next: pause
  - id: welcome_sms
    send: {{channel: sms, template: msg, fallback: [email]}}
  - id: pause
    wait: {wait}
  - id: reminder
    send: {{channel: email, template: msg}}
"""

CART = """\
id: {id}
name: Cart reminder
category: transactional
trigger: {{event: cart.abandoned}}
exit_when:
  - {{event: purchased, goal: true}}
steps:
  - id: nudge
    send: {{channel: push, template: msg, fallback: [email]}}
  - id: later
    wait: 2h
  - id: last
    send: {{channel: email, template: msg}}
"""

# Receipts sent for each n-th message, by outcome (some twice: counted once per message).
_RECEIPTS = (
    ("delivered", 2), ("opened", 3), ("clicked", 5), ("bounced", 7), ("replied", 11),
    ("failed", 13),
)  # fmt: skip


@dataclass
class Scenario:
    """The records of a run (as the interactions topic carries them) and the journey ids."""

    trial: str
    cart: str
    records: list[dict[str, Any]] = field(default_factory=list)


def _records(cause: str, event: Event | None, actions: list[Action]) -> list[dict[str, Any]]:
    """The interaction records of applying `event` (None: of firing timers), as JSON data."""
    out: list[dict[str, Any]] = []
    if event is not None:
        at = event.occurred_at
        out.append(jsonwire.loads(inbound_interaction(event, at, at).to_json()))
    for index, action in enumerate(actions):
        if isinstance(action, TimerSet | TimerCancelled | TimerFired):
            continue
        out.append(jsonwire.loads(action_interaction(action, cause, index).to_json()))
    return out


def scenario_records(customers: int = 90, run: str | None = None) -> Scenario:
    """Run the scenario (journey ids end in `run`, random unless given); its records in the
    order the runtime would produce them."""
    run = run or uuid.uuid4().hex[:6]
    scenario = Scenario(trial=f"trial-{run}", cart=f"cart-{run}")
    v1 = compile_journey(TRIAL.format(id=scenario.trial, wait="1d"), version=1)
    v2 = compile_journey(TRIAL.format(id=scenario.trial, wait="12h"), version=2)
    cart = compile_journey(CART.format(id=scenario.cart), version=1)
    driver = Driver(v1, cart)
    timers = 0
    versions_switched: set[str] = set()

    def apply(event: Event) -> None:
        nonlocal timers
        fired = driver.until(event.occurred_at)
        by_customer: dict[str, list[Action]] = defaultdict(list)
        for action in fired:
            by_customer[action.customer_id].append(action)
        for customer_actions in by_customer.values():
            timers += 1
            scenario.records += _records(f"timer-{run}-{timers}", None, customer_actions)
        actions = driver.sim.apply(event, event.occurred_at)
        driver.actions.extend(actions)
        scenario.records += _records(event.event_id, event, actions)

    events = sorted(
        (e for n in range(customers) for e in _customer_events(f"m-{run}-{n}", n)),
        key=lambda e: e.occurred_at,
    )
    halfway = T0 + customers // 2 * HOUR
    for e in events:
        if e.occurred_at >= halfway and scenario.trial not in versions_switched:
            # Half-way, version 2 goes live: later entries run it.
            driver.catalog = {
                **driver.catalog,
                scenario.trial: DeployedJourney({1: v1, 2: v2}, current=2),
            }
            versions_switched.add(scenario.trial)
        apply(e)
    end = T0 + customers * HOUR + 2 * DAY
    for receipt in _receipts(driver.sends(), end):
        apply(receipt)
    return scenario


def _customer_events(cid: str, n: int) -> list[Event]:
    """Customer `n`'s events; customers start an hour apart."""
    t = T0 + n * HOUR
    profile = {**REACHABLE}
    if n % 6 == 5:
        del profile["email"]  # no address: email is suppressed
    timeline: list[tuple[float, str, dict[str, Any]]] = [
        (0.0, "profile.updated", profile),
        (2.0, "signed_up", {}),
    ]
    if n % 4 == 0:
        timeline.append((1.0, "consent.updated", {"channel": "sms", "status": "opted_in"}))
    if n % 3 == 0:
        timeline.append((3.0, "cart.abandoned", {}))
    if n % 5 in (0, 1):
        timeline.append((2 * HOUR + n * 7 * MINUTE, "purchased", {}))  # a goal, after a while
    if n % 17 == 3:
        timeline.append((6 * HOUR, "account.closed", {}))
    return [
        Event(f"{cid}:{k}:{name}", cid, name, t + offset, "web", props)
        for k, (offset, name, props) in enumerate(timeline)
    ]


def _receipts(sends: list[Sent], at: float) -> list[Event]:
    """Receipts for some messages: the n-th send gets `outcome` when n % k == 0."""
    receipts: list[Event] = []
    for n, sent in enumerate(sends):
        for outcome, k in _RECEIPTS:
            if n % k:
                continue
            properties: dict[str, Any] = {"message_id": sent.message_id, "channel": sent.channel}
            if n % 4:  # the rest name only the message: found by its id
                properties.update(journey=sent.journey, step=sent.step)
            copies = 2 if outcome == "opened" else 1  # opened twice: counted once
            for copy in range(copies):
                t = at + len(receipts) * 0.001
                eid = f"r:{sent.message_id}:{outcome}:{copy}"
                receipts.append(
                    Event(eid, sent.customer_id, f"message.{outcome}", t, sent.channel, properties)
                )
    return receipts


RECEIPT_OUTCOMES = ("delivered", "failed", "bounced", "opened", "clicked", "replied")


def percentile(values: list[float], q: float) -> float | None:
    """PostgreSQL's percentile_cont: linear between the two nearest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _seconds(record: dict[str, Any]) -> float:
    return parse_instant(record["at"])


def count_figures(
    records: list[dict[str, Any]], journey: str, version: int | None
) -> dict[str, Any]:
    """The journey's figures counted straight from the records (the API's shape)."""
    enters = {_key(r): r for r in records if r["type"] == "enter" and r["journey"] == journey}
    instances = {i: r for i, r in enters.items() if version is None or r["version"] == version}
    steps: dict[tuple[str, str], list[str]] = {i: [] for i in instances}
    exits: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        if _key(r) in instances:
            if r["type"] == "step":
                steps[_key(r)].append(r["step"])
            elif r["type"] == "exit":
                exits[_key(r)] = r
    entered = Counter(step for path in steps.values() for step in path)
    passed: Counter[str] = Counter()
    edges: Counter[tuple[str, str]] = Counter()
    for path in steps.values():
        for a, b in itertools.pairwise(path):
            passed[a] += 1
            edges[(a, b)] += 1
    waiting = Counter(steps[i][-1] for i in instances if i not in exits and steps[i])
    exited = Counter(steps[i][-1] for i in exits if steps[i])
    to_goal = [
        _seconds(exits[i]) - _seconds(instances[i]) for i in exits if exits[i]["reason"] == "goal"
    ]
    goals = len(to_goal)
    sends = [
        r for r in records
        if r["type"] == "send" and r["journey"] == journey and version in (None, r["version"])
    ]  # fmt: skip
    sent_by_id = {r["message_id"]: r for r in records if r["type"] == "send"}
    suppressions = [
        r for r in records
        if r["type"] == "suppress" and r["journey"] == journey
        and (version is None or enters[_key(r)]["version"] == version)
    ]  # fmt: skip
    receipts: set[tuple[str, str]] = set()
    for r in records:
        event = r.get("event") or {}
        outcome = str(event.get("name", "")).removeprefix("message.")
        message = sent_by_id.get((event.get("properties") or {}).get("message_id"))
        if (
            r["type"] == "inbound" and outcome in RECEIPT_OUTCOMES and message is not None
            and message["journey"] == journey and version in (None, message["version"])
        ):  # fmt: skip
            receipts.add((message["message_id"], outcome))
    return {
        "journey": journey,
        "version": version,
        "entered": len(instances),
        "active": len(instances) - len(exits),
        "goals": goals,
        "conversion_rate": goals / len(instances) if instances else None,
        "time_to_goal": {
            "count": goals,
            "median_seconds": percentile(to_goal, 0.5),
            "p90_seconds": percentile(to_goal, 0.9),
        },
        "exits": dict(sorted(Counter(e["reason"] for e in exits.values()).items())),
        "steps": {
            step: {
                "entered": n,
                "waiting": waiting[step],
                "passed": passed[step],
                "exited": exited[step],
            }
            for step, n in entered.items()
        },
        "edges": dict(edges),
        "sends": dict(sorted(Counter(r["channel"] for r in sends).items())),
        "suppressions": dict(sorted(Counter(r["reason"] for r in suppressions).items())),
        "receipts": {o: sum(1 for _, out in receipts if out == o) for o in RECEIPT_OUTCOMES},
        "arms": _arms(records, instances, exits),
    }


def _key(record: dict[str, Any]) -> tuple[str, str]:
    """An instance's identity: its id is the customer's own."""
    return record.get("customer_id", ""), record.get("instance_id", "")


def _arms(
    records: list[dict[str, Any]],
    instances: dict[tuple[str, str], Any],
    exits: dict[tuple[str, str], Any],
) -> dict[tuple[str, str], tuple[bool, int, int]]:
    """(split step, variant) -> (holdout, entries, goal conversions)."""
    arms: dict[tuple[str, str], tuple[bool, int, int]] = {}
    seen: set[tuple[tuple[str, str], str]] = set()
    for r in records:
        if r["type"] == "step" and r.get("variant") and _key(r) in instances:
            if (_key(r), r["step"]) in seen:
                continue
            seen.add((_key(r), r["step"]))
            key = (r["step"], r["variant"])
            holdout, entries, conversions = arms.get(key, (False, 0, 0))
            goal = exits.get(_key(r), {}).get("reason") == "goal"
            arms[key] = (holdout or bool(r.get("holdout")), entries + 1, conversions + goal)
    return arms


def _as_counted(found: figures.JourneyFigures) -> dict[str, Any]:
    """The stored figures in `count_figures`' shape (steps and edges as dicts, no order)."""
    shaped: dict[str, Any] = {k: v for k, v in found.items() if k not in ("messages",)}
    shaped["steps"] = {
        s["step"]: {k: s[k] for k in ("entered", "waiting", "passed", "exited")}
        for s in found["steps"]
    }
    shaped["edges"] = {(e["from"], e["to"]): e["count"] for e in found["edges"]}
    return shaped


async def assert_figures_exact(url: str, scenario: Scenario) -> None:
    """Every figure of both journeys, all versions and each, equals the independent count."""
    async with connection(url) as conn:
        for journey, versions in ((scenario.trial, (None, 1, 2)), (scenario.cart, (None, 1))):
            for version in versions:
                expected = count_figures(scenario.records, journey, version)
                arms = expected.pop("arms")
                found = await figures.journey_figures(conn, journey, version)
                assert _as_counted(found) == expected, (journey, version)
                # The per-step message rows add up to the totals.
                assert sum(m["count"] for m in found["messages"]) == (
                    sum(expected["sends"].values())
                    + sum(expected["suppressions"].values())
                    + sum(expected["receipts"].values())
                )
                funnel = await figures.funnel(conn, journey, version)
                assert {s["step"]: s["entered"] for s in funnel["steps"]} == {
                    step: counts["entered"] for step, counts in expected["steps"].items()
                }
                experiments = await figures.experiments(conn, journey, version)
                counted = [
                    Arm(variant, holdout, entries, conversions)
                    for (_, variant), (holdout, entries, conversions) in sorted(arms.items())
                ]
                assert experiments == ([evaluate("offer_test", counted)] if counted else [])
        summaries = {s["journey"]: s for s in await figures.journeys(conn)}
    trial = count_figures(scenario.records, scenario.trial, None)
    assert summaries[scenario.trial] == {
        "journey": scenario.trial,
        "versions": [1, 2],
        "entered": trial["entered"],
        "active": trial["active"],
        "goals": trial["goals"],
        "conversion_rate": trial["conversion_rate"],
    }

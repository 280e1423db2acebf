"""Hypothesis properties of the engine: idempotence, determinism, and split shares."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from orchestrator import jsonwire
from orchestrator.engine.actions import Action, Sent
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import Catalog, catalog_of
from orchestrator.engine.events import Event
from orchestrator.engine.rules import choose_variant, split_bucket
from orchestrator.engine.state import CustomerState
from orchestrator.simulate import Simulator
from tests.journey_fixtures import DAY, MINUTE, REACHABLE, T0, compile_journey

# Waits, a wait_for with a condition and both exits, a branch, a split looping back through
# the wait_for, update_profile, quiet hours, a frequency cap and an expiry.
MAIN = compile_journey(
    """\
    id: main
    name: Main
    trigger: {event: start, when: event.properties.n != 3}
    reentry: always
    exit_when:
      - {event: buy, goal: true}
      - {event: quit, when: event.properties.n > 2}
    max_duration: 4d
    send_window: {start: "08:00", end: "20:00"}
    frequency_cap: {max: 2, per: 1d}
    steps:
      - id: pause
        wait: 2h
      - id: hello
        send: {channel: email, template: msg, fallback: [sms, push]}
      - id: listen
        wait_for: {event: click, when: event.properties.n > 1, timeout: 1d, on_event: hot}
      - id: route
        branch:
          - when: profile.tier == "gold"
            next: gold
          - default: ab
      - id: ab
        split:
          - {variant: A, weight: 30, next: nudge}
          - {variant: B, weight: 70, next: remember}
      - id: nudge
        send: {channel: push, template: msg}
        next: listen
      - id: remember
        update_profile: {seen: "{{ event.name }}", visits: 1}
        next: gold
      - id: hot
        send: {channel: in_app, template: msg}
        next: done
      - id: gold
        send: {channel: email, template: msg}
      - id: done
        exit: {}
    """
)
# A transactional journey started by the main one's wait_for event.
SECOND = compile_journey(
    """\
    id: second
    name: Second
    category: transactional
    trigger: {event: click}
    reentry: {after: 6h}
    steps:
      - id: hold
        wait_for: {event: buy, timeout: 3h}
      - id: text
        send: {channel: sms, template: msg}
    """
)
# A split with a holdout arm, exited by a goal or its expiry: gus is held out, ann is not.
THIRD = compile_journey(
    """\
    id: third
    name: Third
    trigger: {event: start}
    reentry: always
    exit_when:
      - {event: buy, goal: true}
    max_duration: 2d
    steps:
      - id: ab
        split:
          - {variant: in, weight: 80, next: hello}
          - {variant: out, weight: 20, holdout: true}
      - id: hello
        send: {channel: email, template: msg}
    """
)
CATALOG = catalog_of([MAIN, SECOND, THIRD])

# Split buckets at `main`/`ab`: ann gets B, gus gets A (so both arms are exercised).
CUSTOMERS = ("ann", "gus")
assert sorted(
    choose_variant(split_bucket(c, "main", "ab"), MAIN.steps["ab"].arms)[0] for c in CUSTOMERS
) == ["A", "B"]
assert [
    choose_variant(split_bucket(c, "third", "ab"), THIRD.steps["ab"].arms)[0] for c in CUSTOMERS
] == ["in", "out"]
PROFILE_FIELDS = {
    "email": st.just("x@example.com"),
    "phone": st.just("+100"),
    "push_token": st.just("tok"),
    "tier": st.sampled_from(["gold", "silver"]),
    "timezone": st.sampled_from(["UTC", "America/New_York", "Asia/Tokyo", "Nowhere/Else"]),
    "locale": st.sampled_from(["en", "fr"]),
}


@st.composite
def event_lists(draw: st.DrawFn) -> list[Event]:
    """Events for two customers over a few days, with ties, in random file order."""
    count = draw(st.integers(1, 25))
    at = T0 + draw(st.integers(0, 24 * 60)) * MINUTE
    events: list[Event] = []
    if draw(st.booleans()):  # often, customers start reachable on every channel
        events.extend(
            Event(f"p-{c}", c, "profile.updated", at, None, dict(REACHABLE)) for c in CUSTOMERS
        )
    for n in range(count):
        at += draw(st.sampled_from([0, 0, 1, 30, 90, 600, 1500])) * MINUTE
        name = draw(
            st.sampled_from(
                ["start", "start", "click", "buy", "quit", "profile.updated", "consent.updated"]
            )
        )
        properties: dict[str, Any]
        if name == "profile.updated":
            properties = draw(st.fixed_dictionaries({}, optional=PROFILE_FIELDS))
        elif name == "consent.updated":
            properties = {
                "channel": draw(st.sampled_from(["sms", "email", "push"])),
                "status": draw(st.sampled_from(["opted_in", "opted_out"])),
            }
        else:
            properties = {"n": draw(st.integers(0, 4))}
        events.append(
            Event(
                event_id=f"ev{n}",
                customer_id=draw(st.sampled_from(CUSTOMERS)),
                name=name,
                occurred_at=at,
                channel=draw(st.sampled_from([None, "app", "web"])),
                properties=properties,
            )
        )
    return draw(st.permutations(events))


def simulate(events: list[Event], catalog: Catalog = CATALOG) -> tuple[list[Action], Simulator]:
    simulator = Simulator(catalog)
    return list(simulator.run(events, until=None)), simulator


def wire(simulator: Simulator) -> dict[str, Any]:
    return {cid: state.to_wire() for cid, state in sorted(simulator.states.items())}


class ReplayingSimulator(Simulator):
    """Applies every event (timers included) a second time at once and checks it is a no-op."""

    def apply(self, event: Event, now: float) -> list[Action]:
        actions = super().apply(event, now)
        state = self.states[event.customer_id]
        before = jsonwire.dumps(state.to_wire())
        again, repeated = advance(state, event, self.catalog, now)
        assert repeated == [], (event, repeated)
        assert jsonwire.dumps(again.to_wire()) == before
        return actions


@settings(max_examples=120, deadline=None)
@given(events=event_lists())
def test_replaying_an_event_adds_no_actions_and_leaves_the_state_equal(
    events: list[Event],
) -> None:
    replaying = ReplayingSimulator(CATALOG)
    actions = list(replaying.run(events, until=None))
    plain, simulator = simulate(events)
    assert actions == plain
    # Replayed later, after everything else, any input event is still a no-op.
    for event in events:
        state = simulator.states[event.customer_id]
        again, repeated = advance(state, event, CATALOG, event.occurred_at + DAY)
        assert repeated == []
        assert again.to_wire() == state.to_wire()


@settings(max_examples=60, deadline=None)
@given(events=event_lists(), data=st.data())
def test_duplicated_events_in_the_input_change_nothing(
    events: list[Event], data: st.DataObject
) -> None:
    # Appended, a duplicate sorts after its original (same time, later in the file).
    duplicates = data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=5))
    plain, simulator = simulate(events)
    with_duplicates, other = simulate([*events, *duplicates])
    assert with_duplicates == plain
    assert wire(other) == wire(simulator)


@settings(max_examples=60, deadline=None)
@given(events=event_lists())
def test_the_same_input_gives_the_same_output(events: list[Event]) -> None:
    first, one = simulate(events)
    second, two = simulate(list(reversed(events)))  # file order of ties aside, same input
    third, three = simulate(events, catalog_of([THIRD, SECOND, MAIN]))
    assert first == third
    assert wire(one) == wire(three)
    # Reversing the file changes only the order of events that share a time.
    if len({e.occurred_at for e in events}) == len(events):
        assert first == second
        assert wire(one) == wire(two)


@st.composite
def weights(draw: st.DrawFn) -> list[int]:
    """2-4 split weights (0 allowed) summing to 100."""
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=1, max_size=3)))
    bounds = [0, *cuts, 100]
    return [high - low for low, high in itertools.pairwise(bounds)]


def split_catalog(arm_weights: list[int]) -> Catalog:
    arms = "".join(
        f"      - {{variant: V{i}, weight: {w}, next: hello}}\n" for i, w in enumerate(arm_weights)
    )
    journey = compile_journey(
        "id: shares\nname: Shares\ntrigger: {event: start}\nsteps:\n"
        "  - id: pick\n    split:\n" + arms + "  - id: hello\n"
        "    send: {channel: in_app, template: msg}\n"
    )
    return catalog_of([journey])


CUSTOMERS_FOR_SHARES = 20_000


# No shrinking: each example runs 20k customers, and a failure names its weights as found.
@settings(max_examples=5, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(arm_weights=weights(), prefix=st.text(min_size=1, max_size=6))
def test_split_shares_follow_the_weights(arm_weights: list[int], prefix: str) -> None:
    catalog = split_catalog(arm_weights)
    counts: Counter[str | None] = Counter()
    for n in range(CUSTOMERS_FOR_SHARES):
        customer = f"{prefix}-{n}"
        start = Event(f"s{n}", customer, "start", T0)
        _, actions = advance(CustomerState(customer), start, catalog, T0)
        counts.update(a.variant for a in actions if isinstance(a, Sent))
    assert sum(counts.values()) == CUSTOMERS_FOR_SHARES
    for i, weight in enumerate(arm_weights):
        p = weight / 100
        expected = CUSTOMERS_FOR_SHARES * p
        sigma = math.sqrt(CUSTOMERS_FOR_SHARES * p * (1 - p))
        assert abs(counts[f"V{i}"] - expected) <= 5 * sigma + 1, (arm_weights, counts)


@settings(max_examples=40, deadline=None)
@given(
    customer=st.text(min_size=1, max_size=30),
    arm_weights=weights(),
    offsets=st.lists(st.integers(0, 400), min_size=2, max_size=4),
    noise=st.lists(st.sampled_from(["profile.updated", "click", "other"]), max_size=3),
)
def test_a_customer_always_gets_the_same_variant(
    customer: str, arm_weights: list[int], offsets: list[int], noise: list[str]
) -> None:
    catalog = split_catalog(arm_weights)
    variants: set[str | None] = set()
    for k, offset in enumerate(offsets):
        state = CustomerState(customer)
        at = T0 + offset * DAY
        for j, name in enumerate(noise):  # unrelated history before the entry
            before = Event(f"n{k}-{j}", customer, name, at, None, {"j": j})
            state, _ = advance(state, before, catalog, at)
        _, actions = advance(state, Event(f"s{k}", customer, "start", at), catalog, at)
        variants.update(a.variant for a in actions if isinstance(a, Sent))
    assert len(variants) == 1
    [variant] = variants
    assert arm_weights[int(str(variant)[1:])] > 0

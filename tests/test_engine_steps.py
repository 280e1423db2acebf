"""Step records, holdout arms, and what a send records about consent and surveys."""

from __future__ import annotations

import textwrap

import pytest

from orchestrator.engine.actions import (
    Exited,
    Sent,
    StepEntered,
    TimerCancelled,
    TimerSet,
)
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.state import CustomerState
from orchestrator.journey.plan import CompiledJourney
from tests.journey_fixtures import (
    DAY,
    HOUR,
    REACHABLE,
    T0,
    Driver,
    compile_journey,
    consent,
    event,
    profile,
)


def build(steps: str, head: str = "", category: str = "marketing") -> CompiledJourney:
    """A journey `test` triggered by `start`, with `head` (top-level fields) and `steps`."""
    text = (
        f"id: test\nname: Test\ncategory: {category}\ntrigger: {{event: start}}\n"
        + textwrap.dedent(head)
        + "steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )
    return compile_journey(text)


def step_records(driver: Driver, customer: str = "c1") -> list[tuple[str, str | None, bool | None]]:
    """(step, variant, holdout) of each step record of `customer`, in order."""
    return [
        (a.step, a.variant, a.holdout)
        for a in driver.actions
        if isinstance(a, StepEntered) and a.customer_id == customer
    ]


LOOP = """
- id: hello
  send: {channel: email, template: msg}
- id: tier
  branch:
    - when: profile.tier == "gold"
      next: tag
    - default: pause
- id: tag
  update_profile: {tagged: "yes"}
- id: pause
  wait: 1h
- id: again
  wait_for: {event: clicked, timeout: 2h, on_event: done, on_timeout: hello}
- id: done
  exit: {}
"""


def test_every_step_entered_leaves_a_record_in_order_loops_included() -> None:
    driver = Driver(build(LOOP, "max_duration: 1d\n"))
    driver.apply(profile(T0, **REACHABLE, tier="gold"), event("start", T0))
    driver.apply(event("clicked", T0 + 4 * HOUR + 1))
    names = ["hello", "tier", "tag", "pause", "again"]
    assert step_records(driver) == [(s, None, None) for s in [*names, *names, "done"]]
    steps = [a for a in driver.actions if isinstance(a, StepEntered)]
    assert [a.at for a in steps[:5]] == [T0] * 4 + [T0 + HOUR]
    assert {(a.journey, a.version, a.instance_id) for a in steps} == {("test", 1, "test:1")}
    # Each record comes before what its step did (the send after the first step record).
    first_sent = next(i for i, a in enumerate(driver.actions) if isinstance(a, Sent))
    first_step = next(i for i, a in enumerate(driver.actions) if isinstance(a, StepEntered))
    assert first_step < first_sent


def test_a_send_deferred_to_its_window_is_one_step_entry() -> None:
    journey = build(
        "- id: hello\n  send: {channel: email, template: msg}\n",
        "send_window: {start: '09:00', end: '10:00'}\n",
    )
    driver = Driver(journey)
    driver.apply(profile(T0, **REACHABLE), event("start", T0))
    driver.until(None)
    assert len(driver.sends()) == 1
    assert step_records(driver) == [("hello", None, None)]


HOLDOUT_SPLIT = """
- id: ab
  split:
    - {variant: control, weight: 45, next: hello}
    - {variant: treat, weight: 45, next: hello}
    - {variant: holdout, weight: 10, holdout: true}
- id: hello
  send: {channel: email, template: msg}
"""
HOLDOUT_HEAD = "exit_when:\n  - {event: order.completed, goal: true}\nmax_duration: 7d\n"


def holdout_driver(customers: int = 200) -> Driver:
    driver = Driver(build(HOLDOUT_SPLIT, HOLDOUT_HEAD))
    for n in range(customers):
        driver.apply(profile(T0, f"h{n}", **REACHABLE), event("start", T0, f"h{n}"))
    return driver


def held_out(driver: Driver) -> list[str]:
    return [
        a.customer_id for a in driver.actions if isinstance(a, StepEntered) and a.holdout is True
    ]


def test_a_holdout_arm_sends_nothing_and_waits_for_the_goal() -> None:
    driver = holdout_driver()
    held = held_out(driver)
    assert held, "no customer fell in the 10% holdout among 200"
    sent_to = {s.customer_id for s in driver.sends()}
    assert sent_to.isdisjoint(held)
    assert len(sent_to) + len(held) == 200
    # Held out: no timer set (nothing to fire), the instance still active, waiting.
    customer = held[0]
    assert step_records(driver, customer) == [("ab", "holdout", True)]
    assert not any(
        isinstance(a, TimerSet) and a.customer_id == customer and a.timer != "expire"
        for a in driver.actions
    )
    ended = [a for a in driver.actions if isinstance(a, Exited) and a.customer_id == customer]
    assert ended == []
    driver.apply(event("order.completed", T0 + DAY, customer))
    ended = [a for a in driver.actions if isinstance(a, Exited) and a.customer_id == customer]
    assert [(x.reason, x.at) for x in ended] == [("goal", T0 + DAY)]
    # Its exit cancels the expiry only: a holdout has no step timer to cancel.
    cancelled = [
        a.timer
        for a in driver.actions
        if isinstance(a, TimerCancelled) and a.customer_id == customer
    ]
    assert cancelled == ["expire"]


def test_a_holdout_that_never_converts_expires_at_max_duration() -> None:
    driver = holdout_driver()
    customer = held_out(driver)[0]
    driver.until(None)
    ended = [a for a in driver.actions if isinstance(a, Exited) and a.customer_id == customer]
    assert [(x.reason, x.at) for x in ended] == [("expired", T0 + 7 * DAY)]


def test_the_other_arms_record_their_variant_without_holdout() -> None:
    driver = holdout_driver()
    arms = {
        (a.variant, a.holdout)
        for a in driver.actions
        if isinstance(a, StepEntered) and a.step == "ab"
    }
    assert arms == {("control", None), ("treat", None), ("holdout", True)}


def test_a_holdout_instance_survives_serialisation_and_ignores_other_events() -> None:
    journey = build(HOLDOUT_SPLIT, HOLDOUT_HEAD)
    catalog = catalog_of([journey])
    customer = held_out(holdout_driver())[0]
    state, _ = advance(CustomerState(customer), event("start", T0, customer), catalog, T0)
    state = CustomerState.from_wire(state.to_wire())
    state, actions = advance(state, event("page.viewed", T0 + HOUR, customer), catalog, T0 + HOUR)
    assert actions == []
    assert state.instances["test"].waiting == "holdout"
    _, actions = advance(
        state, event("order.completed", T0 + 2 * HOUR, customer), catalog, T0 + 2 * HOUR
    )
    assert [a.reason for a in actions if isinstance(a, Exited)] == ["goal"]


# --- what a send records ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "category", "status", "recorded"),
    [
        ("email", "marketing", None, "not_set"),
        ("email", "marketing", "opted_in", "opted_in"),
        ("sms", "marketing", "opted_in", "opted_in"),
        ("sms", "transactional", None, "not_set"),
    ],
)
def test_a_send_records_the_category_and_the_consent_of_its_channel(
    channel: str, category: str, status: str | None, recorded: str
) -> None:
    journey = build(f"- id: hello\n  send: {{channel: {channel}, template: msg}}\n", "", category)
    driver = Driver(journey)
    given = [consent(T0, channel, status)] if status else []
    driver.apply(profile(T0, **REACHABLE), *given, event("start", T0))
    assert [(s.channel, s.category, s.consent) for s in driver.sends()] == [
        (channel, category, recorded)
    ]


def test_a_fallback_send_records_the_consent_of_the_channel_actually_used() -> None:
    journey = build("- id: hello\n  send: {channel: email, template: msg, fallback: [push]}\n")
    driver = Driver(journey)
    driver.apply(
        profile(T0, **REACHABLE),
        consent(T0, "email", "opted_out"),
        consent(T0, "push", "opted_in"),
        event("start", T0),
    )
    assert [(s.channel, s.consent) for s in driver.sends()] == [("push", "opted_in")]


@pytest.mark.parametrize("survey", ["nps", "csat", None])
def test_a_survey_send_carries_its_survey(survey: str | None) -> None:
    spec = f", survey: {survey}" if survey else ""
    driver = Driver(build(f"- id: ask\n  send: {{channel: email, template: msg{spec}}}\n"))
    driver.apply(profile(T0, **REACHABLE), event("start", T0))
    assert [s.survey for s in driver.sends()] == [survey]
    assert "survey" not in driver.sends()[0].to_record()  # simulate's output is unchanged

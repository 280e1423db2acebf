"""The pure engine, step by step and rule by rule, against the semantics of issue 2."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from orchestrator import jsonwire
from orchestrator.engine.actions import Entered, Exited, ProfileChanged, Sent, TimerSet
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import DeployedJourney, catalog_of
from orchestrator.engine.events import timer_event
from orchestrator.engine.state import CustomerState
from orchestrator.journey.plan import CompiledJourney
from orchestrator.timefmt import parse_instant
from tests.journey_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    REACHABLE,
    T0,
    TEMPLATES,
    Driver,
    compile_journey,
    consent,
    deployed,
    event,
    iso,
    profile,
)


def build(
    steps: str,
    head: str = "",
    *,
    category: str = "marketing",
    templates: dict[str, str] | None = None,
    journey_id: str = "test",
    version: int = 1,
) -> CompiledJourney:
    """A journey triggered by `start`, with `head` (top-level fields) and `steps` as YAML."""
    text = (
        f"id: {journey_id}\nname: Test\ncategory: {category}\ntrigger: {{event: start}}\n"
        + textwrap.dedent(head)
        + "steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )
    return compile_journey(text, templates, version)


def started(journey: CompiledJourney, at: float = T0, **props: Any) -> Driver:
    """A driver where c1 (reachable on every channel) has just started `journey`."""
    driver = Driver(journey)
    driver.apply(profile(at - MINUTE, **REACHABLE), event("start", at, **props))
    return driver


def steps_sent(driver: Driver) -> list[str]:
    return [sent.step for sent in driver.sends()]


# --- steps -----------------------------------------------------------------------------------


def test_wait_resumes_after_its_duration() -> None:
    journey = build(
        """
        - id: pause
          wait: 2h
        - id: hello
          send: {channel: email, template: msg}
        """
    )
    driver = started(journey)
    assert [e.at for e in driver.entries()] == [T0]
    assert driver.until(T0 + 2 * HOUR - 1) == []
    driver.until(T0 + 2 * HOUR)
    assert [(s.step, s.at) for s in driver.sends()] == [("hello", T0 + 2 * HOUR)]
    assert [(x.reason, x.at) for x in driver.exits()] == [("completed", T0 + 2 * HOUR)]


WAIT_FOR = """
- id: listen
  wait_for:
    event: cart.viewed
    when: event.channel == "app"
    timeout: 1d
    on_event: got
    on_timeout: missed
- id: missed
  send: {channel: email, template: other}
  next: end
- id: got
  send: {channel: email, template: msg}
- id: end
  exit: {}
"""


def test_wait_for_resumes_on_the_first_matching_event() -> None:
    driver = started(build(WAIT_FOR))
    driver.apply(event("cart.viewed", T0 + HOUR, channel="web"))  # `when` does not hold
    assert driver.sends() == []
    driver.apply(event("cart.viewed", T0 + 2 * HOUR, channel="app"))
    assert [(s.step, s.at) for s in driver.sends()] == [("got", T0 + 2 * HOUR)]
    assert [x.reason for x in driver.exits()] == ["completed"]
    driver.until(None)  # the timeout was cancelled: nothing more happens
    assert steps_sent(driver) == ["got"]


def test_wait_for_goes_to_on_timeout_when_nothing_matches() -> None:
    driver = started(build(WAIT_FOR))
    driver.apply(event("cart.viewed", T0 + HOUR, channel="web"))
    assert driver.until(T0 + DAY - 1) == []
    driver.until(T0 + DAY)
    assert [(s.step, s.template, s.at) for s in driver.sends()] == [("missed", "other", T0 + DAY)]
    # A matching event after the timeout is too late.
    driver.apply(event("cart.viewed", T0 + DAY + HOUR, channel="app"))
    assert steps_sent(driver) == ["missed"]


@pytest.mark.parametrize("clicked", [True, False])
def test_wait_for_defaults_to_the_next_step(clicked: bool) -> None:
    journey = build(
        """
        - id: listen
          wait_for: {event: clicked, timeout: 1h}
        - id: after
          send: {channel: email, template: msg}
        """
    )
    driver = started(journey)
    if clicked:
        driver.apply(event("clicked", T0 + 10 * MINUTE))
    driver.until(None)
    expected_at = T0 + 10 * MINUTE if clicked else T0 + HOUR
    assert [(s.step, s.at) for s in driver.sends()] == [("after", expected_at)]


SEND_EVERY_CHANNEL: list[tuple[str, dict[str, Any], str | None]] = [
    ("email", {"subject": "Hi Ada", "body": "Your cart holds 80 EUR ()"}, "ada@example.com"),
    ("sms", {"body": "SMS for Ada at start"}, "+33600000000"),
    ("whatsapp", {"body": "WhatsApp ADA"}, "+33600000000"),
    ("push", {"title": "Still thinking?", "body": "3 items wait"}, "tok-1"),
    ("in_app", {"title": "In app", "body": "Hello Ada"}, None),
    (
        "webhook",
        {
            "url": "https://hooks.example.com/Ada",
            "payload": {"customer": "Ada", "count": 3, "tags": ["a", "start"]},
        },
        None,
    ),
]


@pytest.mark.parametrize(("channel", "content", "to"), SEND_EVERY_CHANNEL)
def test_send_renders_the_channels_fields(
    channel: str, content: dict[str, Any], to: str | None
) -> None:
    journey = build(
        f"""
        - id: hello
          send: {{channel: {channel}, template: msg}}
        """,
        category="transactional",
    )
    driver = started(journey, total=80, items=[1, 2, 3])
    [sent] = driver.sends()
    assert (sent.channel, sent.template, sent.content, sent.to) == (channel, "msg", content, to)
    assert sent.to_record() == {
        "type": "send",
        "at": iso(T0),
        "customer_id": "c1",
        "journey": "test",
        "step": "hello",
        "channel": channel,
        "template": "msg",
        "content": content,
    }


@pytest.mark.parametrize(
    ("locale", "channel", "content"),
    [
        # The fr override replaces the subject only; the body falls back to `en`.
        ("fr", "email", {"subject": "Bonjour Ada", "body": "Your cart holds 80 EUR ()"}),
        ("de", "email", {"subject": "Hi Ada", "body": "Your cart holds 80 EUR ()"}),
        ("fr", "push", {"title": "Still thinking?", "body": "1 items wait"}),
        (None, "email", {"subject": "Hi Ada", "body": "Your cart holds 80 EUR ()"}),
    ],
)
def test_send_uses_the_profile_locale_with_fallback_to_en(
    locale: str | None, channel: str, content: dict[str, str]
) -> None:
    journey = build(f"- id: hello\n  send: {{channel: {channel}, template: msg}}\n")
    driver = Driver(journey)
    driver.apply(
        profile(T0 - MINUTE, locale=locale, **REACHABLE), event("start", T0, total=80, items=[1])
    )
    assert [s.content for s in driver.sends()] == [content]


BRANCH = """
- id: route
  branch:
    - when: profile.tier == "gold"
      next: gold
    - when: profile.spend > 100
      next: big
    - default: std
- id: std
  send: {channel: email, template: other}
  next: end
- id: big
  send: {channel: email, template: other}
  next: end
- id: gold
  send: {channel: email, template: other}
- id: end
  exit: {}
"""


@pytest.mark.parametrize(
    ("tier", "spend", "step"),
    [("gold", 500, "gold"), ("silver", 500, "big"), ("silver", 5, "std"), ("gold", 5, "gold")],
)
def test_branch_takes_the_first_matching_case_else_default(
    tier: str, spend: int, step: str
) -> None:
    driver = Driver(build(BRANCH))
    driver.apply(profile(T0, tier=tier, spend=spend, **REACHABLE), event("start", T0))
    assert steps_sent(driver) == [step]
    assert driver.failures() == []


def test_branch_without_default_falls_through_to_the_next_step() -> None:
    journey = build(
        """
        - id: route
          branch:
            - when: profile.tier == "gold"
              next: gold
        - id: std
          send: {channel: email, template: other}
          next: end
        - id: gold
          send: {channel: email, template: other}
        - id: end
          exit: {}
        """
    )
    driver = Driver(journey)
    driver.apply(profile(T0, tier="silver", **REACHABLE), event("start", T0))
    assert steps_sent(driver) == ["std"]
    assert [x.reason for x in driver.exits()] == ["completed"]


def split_journey(weight_a: int = 50, reentry: str = "never") -> CompiledJourney:
    return build(
        f"""
        - id: ab
          split:
            - {{variant: A, weight: {weight_a}, next: a}}
            - {{variant: B, weight: {100 - weight_a}, next: b}}
        - id: a
          send: {{channel: email, template: msg}}
          next: end
        - id: b
          send: {{channel: email, template: msg}}
        - id: end
          exit: {{}}
        """,
        f"reentry: {reentry}\n",
    )


def test_split_records_the_variant_and_follows_its_arm() -> None:
    driver = Driver(split_journey())
    for n in range(40):
        customer = f"cust-{n}"
        driver.apply(profile(T0, customer, **REACHABLE), event("start", T0, customer, total=9))
    sends = driver.sends()
    assert len(sends) == 40
    for sent in sends:
        assert sent.step == sent.variant.lower()  # type: ignore[union-attr]
        assert sent.to_record()["variant"] == sent.variant
        # `journey.variant` is visible to templates.
        assert sent.content["body"] == f"Your cart holds 9 EUR ({sent.variant})"
    assert {s.variant for s in sends} == {"A", "B"}


@pytest.mark.parametrize(("weight_a", "variant"), [(100, "A"), (0, "B")])
def test_split_never_picks_a_zero_weight_arm(weight_a: int, variant: str) -> None:
    driver = Driver(split_journey(weight_a))
    for n in range(50):
        driver.apply(profile(T0, f"k{n}", **REACHABLE), event("start", T0, f"k{n}"))
    assert {s.variant for s in driver.sends()} == {variant}


def test_split_is_stable_for_a_customer_across_entries_and_runs() -> None:
    for n in range(10):
        customer = f"stable-{n}"
        variants: list[str | None] = []
        for start_at in (T0, T0 + 3 * DAY):
            driver = Driver(split_journey(reentry="always"))
            driver.apply(profile(start_at, customer, **REACHABLE))
            for k in range(3):
                driver.apply(event("start", start_at + k * HOUR, customer))
            assert len(driver.entries()) == 3
            variants.extend(s.variant for s in driver.sends())
        assert len(set(variants)) == 1, variants


def test_update_profile_merges_rendered_values_seen_by_later_steps() -> None:
    journey = build(
        """
        - id: remember
          update_profile:
            last_nudge: "{{ event.occurred_at }}"
            greeting: "Hi {{ profile.first_name }}"
            tier: gold
            nudges: 3
        - id: route
          branch:
            - when: profile.tier == "gold" && profile.nudges == 3
              next: gold
        - id: plain
          send: {channel: email, template: other}
          next: end
        - id: gold
          send: {channel: email, template: greet}
        - id: end
          exit: {}
        """,
        templates={
            **TEMPLATES,
            "greet": 'email: {subject: "{{ profile.greeting }}", body: "{{ profile.last_nudge }}"}',
        },
    )
    state = CustomerState("c1", profile=dict(REACHABLE))
    state, actions = advance(state, event("start", T0), catalog_of([journey]), T0)
    changes = {"last_nudge": iso(T0), "greeting": "Hi Ada", "tier": "gold", "nudges": 3}
    assert [a.changes for a in actions if isinstance(a, ProfileChanged)] == [changes]
    assert state.profile == {**REACHABLE, **changes}
    [sent] = [a for a in actions if isinstance(a, Sent)]
    assert (sent.step, sent.content) == ("gold", {"subject": "Hi Ada", "body": iso(T0)})


def test_exit_step_completes_the_instance_and_runs_nothing_after_it() -> None:
    journey = build(
        """
        - id: route
          branch:
            - when: profile.vip == true
              next: later
            - default: done
        - id: done
          exit: {}
        - id: later
          send: {channel: email, template: msg}
        """
    )
    driver = Driver(journey)
    driver.apply(profile(T0, vip=False, **REACHABLE), event("start", T0))
    driver.until(None)
    assert driver.sends() == []
    assert [(x.reason, x.at) for x in driver.exits()] == [("completed", T0)]


# --- entry -----------------------------------------------------------------------------------

LONG_WAIT = """
- id: pause
  wait: 1h
- id: hello
  send: {channel: email, template: msg}
"""


def test_trigger_when_decides_entry() -> None:
    journey = compile_journey(
        """\
        id: cart
        name: Cart
        trigger:
          event: cart.updated
          when: event.properties.total >= 50.0
        steps:
          - id: pause
            wait: 1h
        """
    )
    driver = Driver(journey)
    assert driver.apply(event("cart.updated", T0, total=20)) == []
    driver.apply(event("start", T0 + 1, total=80))  # not the trigger event
    driver.apply(event("cart.updated", T0 + 2, total=80))
    assert [e.to_record() for e in driver.entries()] == [
        {"type": "enter", "at": iso(T0 + 2), "customer_id": "c1", "journey": "cart", "version": 1}
    ]


def test_one_active_instance_per_journey_and_customer() -> None:
    driver = Driver(build(LONG_WAIT, "reentry: always\n"))
    driver.apply(event("start", T0), event("start", T0 + MINUTE), event("start", T0 + 2 * MINUTE))
    driver.apply(event("start", T0, "c2"))
    assert [(e.customer_id, e.at) for e in driver.entries()] == [("c1", T0), ("c2", T0)]


@pytest.mark.parametrize(
    ("reentry", "second_entries"),
    [
        ("never", [False, False, False]),
        ("always", [True, True, True]),
        # {after: 7d}, measured from the last entry: +6d no, +7d yes, +8d no (within 7d of +7d).
        ("{after: 7d}", [False, True, False]),
    ],
)
def test_reentry(reentry: str, second_entries: list[bool]) -> None:
    driver = Driver(build(LONG_WAIT, f"reentry: {reentry}\n"))
    driver.apply(event("start", T0))
    driver.until(T0 + 2 * HOUR)  # the first instance completes
    assert [x.reason for x in driver.exits()] == ["completed"]
    entered = []
    for days in (6, 7, 8):
        before = len(driver.entries())
        driver.apply(event("start", T0 + days * DAY))
        entered.append(len(driver.entries()) > before)
        driver.until(T0 + days * DAY + 2 * HOUR)
    assert entered == second_entries


@pytest.mark.parametrize("goal", [True, False])
def test_the_event_that_starts_an_instance_does_not_end_it(goal: bool) -> None:
    driver = Driver(
        build(LONG_WAIT, f"exit_when:\n  - {{event: start, goal: {str(goal).lower()}}}\n")
    )
    driver.apply(event("start", T0))
    assert len(driver.entries()) == 1
    assert driver.exits() == []
    driver.apply(event("start", T0 + MINUTE))  # a second one does end it
    assert [(x.reason, x.at) for x in driver.exits()] == [
        ("goal" if goal else "exit_event", T0 + MINUTE)
    ]
    assert len(driver.entries()) == 1  # reentry: never


# --- exits -----------------------------------------------------------------------------------

EXITS = """\
exit_when:
  - {event: order.completed, goal: true}
  - {event: account.closed}
  - {event: cart.updated, when: event.properties.total == 0}
"""

EXIT_STEPS = """
- id: listen
  wait_for: {event: order.completed, timeout: 1d, on_event: thanks}
- id: nudge
  send: {channel: email, template: other}
  next: end
- id: thanks
  send: {channel: email, template: msg}
- id: end
  exit: {}
"""


@pytest.mark.parametrize(
    ("name", "props", "reason"),
    [
        ("order.completed", {}, "goal"),  # also the wait_for's event: the exit wins
        ("account.closed", {}, "exit_event"),
        ("cart.updated", {"total": 0}, "exit_event"),
    ],
)
def test_exit_when_ends_the_instance_at_once(name: str, props: dict[str, Any], reason: str) -> None:
    driver = started(build(EXIT_STEPS, EXITS))
    driver.apply(event(name, T0 + HOUR, **props))
    assert [x.to_record() for x in driver.exits()] == [
        {
            "type": "exit",
            "at": iso(T0 + HOUR),
            "customer_id": "c1",
            "journey": "test",
            "reason": reason,
        }
    ]
    driver.until(None)
    assert driver.sends() == []
    assert len(driver.exits()) == 1


def test_exit_when_condition_that_does_not_hold_changes_nothing() -> None:
    driver = started(build(EXIT_STEPS, EXITS))
    driver.apply(event("cart.updated", T0 + HOUR, total=5))
    assert driver.exits() == []
    driver.until(None)
    assert steps_sent(driver) == ["nudge"]
    assert [x.reason for x in driver.exits()] == ["completed"]


def test_max_duration_expires_the_instance() -> None:
    journey = build(
        "- id: pause\n  wait: 5d\n- id: hello\n  send: {channel: email, template: msg}\n",
        "max_duration: 2d\n",
    )
    driver = started(journey)
    driver.until(None)
    assert driver.sends() == []
    assert [(x.reason, x.at) for x in driver.exits()] == [("expired", T0 + 2 * DAY)]


def test_max_duration_expires_at_its_due_time_before_a_later_event_even_before_its_timer() -> None:
    journey = build("- id: pause\n  wait: 5d\n", "max_duration: 2d\n")
    catalog = catalog_of([journey])
    state, _ = advance(CustomerState("c1"), event("start", T0), catalog, T0)
    later = T0 + 3 * DAY
    _, actions = advance(state, event("page.viewed", later), catalog, later)
    # Event time: the expiry fired first, at its due time, as if its timer had come first.
    assert [(a.reason, a.at) for a in actions if isinstance(a, Exited)] == [
        ("expired", T0 + 2 * DAY)
    ]


def test_after_the_last_step_the_instance_completes() -> None:
    driver = started(build("- id: hello\n  send: {channel: email, template: msg}\n"))
    assert [r["type"] for r in driver.records()] == ["enter", "send", "exit"]
    assert driver.exits()[0].reason == "completed"


# --- consent, addresses, fallback, frequency cap ---------------------------------------------


def one_send(channel: str, fallback: str = "[]", category: str = "marketing") -> CompiledJourney:
    return build(
        f"""
        - id: hello
          send: {{channel: {channel}, template: msg, fallback: {fallback}}}
        - id: after
          send: {{channel: in_app, template: msg}}
        """,
        category=category,
    )


def outcome(driver: Driver) -> list[tuple[str, str, str]]:
    """(type, channel, reason or step) for each send/suppress record, in order."""
    return [
        (r["type"], r["channel"], r.get("reason", r["step"]))
        for r in driver.records()
        if r["type"] in ("send", "suppress")
    ]


def test_opted_out_channel_is_suppressed_and_the_fallback_sends() -> None:
    driver = Driver(one_send("email", "[push]"))
    driver.apply(profile(T0, **REACHABLE), consent(T0, "email", "opted_out"), event("start", T0))
    assert outcome(driver) == [
        ("suppress", "email", "opted_out"),
        ("send", "push", "hello"),
        ("send", "in_app", "after"),
    ]


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_marketing_sms_and_whatsapp_need_opt_in(channel: str) -> None:
    driver = Driver(one_send(channel, "[]"))
    driver.apply(profile(T0, **REACHABLE), event("start", T0))
    assert outcome(driver)[0] == ("suppress", channel, "no_consent")
    driver2 = Driver(one_send(channel, "[]"))
    driver2.apply(profile(T0, **REACHABLE), consent(T0, channel, "opted_in"), event("start", T0))
    assert outcome(driver2)[0] == ("send", channel, "hello")


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_transactional_sms_needs_no_opt_in_but_respects_opt_out(channel: str) -> None:
    driver = Driver(one_send(channel, category="transactional"))
    driver.apply(profile(T0, **REACHABLE), event("start", T0))
    assert outcome(driver)[0] == ("send", channel, "hello")
    driver = Driver(one_send(channel, category="transactional"))
    driver.apply(profile(T0, **REACHABLE), consent(T0, channel, "opted_out"), event("start", T0))
    assert outcome(driver)[0] == ("suppress", channel, "opted_out")


@pytest.mark.parametrize(
    ("channel", "address"),
    [("email", "email"), ("sms", "phone"), ("whatsapp", "phone"), ("push", "push_token")],
)
def test_no_address_for_the_channel_is_suppressed(channel: str, address: str) -> None:
    driver = Driver(one_send(channel, category="transactional"))
    reachable_but = {k: v for k, v in REACHABLE.items() if k != address}
    driver.apply(profile(T0, **reachable_but), event("start", T0))
    assert outcome(driver)[0] == ("suppress", channel, "no_address")


@pytest.mark.parametrize("channel", ["in_app", "webhook"])
def test_in_app_and_webhook_need_no_address(channel: str) -> None:
    driver = Driver(one_send(channel))
    driver.apply(event("start", T0))
    assert outcome(driver)[0] == ("send", channel, "hello")


def test_fallback_channels_are_tried_in_order() -> None:
    driver = Driver(one_send("sms", "[push, email, whatsapp]"))
    driver.apply(profile(T0, email="ada@example.com"), event("start", T0))
    assert outcome(driver) == [
        ("suppress", "sms", "no_consent"),
        ("suppress", "push", "no_address"),
        ("send", "email", "hello"),
        ("send", "in_app", "after"),
    ]


def test_when_no_channel_can_send_the_step_still_moves_on() -> None:
    driver = Driver(one_send("email", "[push, sms]"))
    driver.apply(event("start", T0))
    assert outcome(driver) == [
        ("suppress", "email", "no_address"),
        ("suppress", "push", "no_address"),
        ("suppress", "sms", "no_consent"),
        ("send", "in_app", "after"),
    ]
    assert [x.reason for x in driver.exits()] == ["completed"]


def test_frequency_cap_suppresses_and_the_journey_moves_on_then_the_window_slides() -> None:
    journey = build(
        """
        - id: s1
          send: {channel: email, template: msg}
        - id: w1
          wait: 6h
        - id: s2
          send: {channel: email, template: msg}
        - id: w2
          wait: 6h
        - id: s3
          send: {channel: email, template: msg, fallback: [push]}
        - id: w3
          wait: 13h
        - id: s4
          send: {channel: email, template: msg}
        """,
        "frequency_cap: {max: 2, per: 1d}\n",
    )
    driver = started(journey)
    driver.until(None)
    assert [(r["type"], r["step"], r.get("reason"), r["at"]) for r in driver.records()[1:-1]] == [
        ("send", "s1", None, iso(T0)),
        ("send", "s2", None, iso(T0 + 6 * HOUR)),
        ("suppress", "s3", "frequency_cap", iso(T0 + 12 * HOUR)),
        # 25h after s1: only s2 is within the last day.
        ("send", "s4", None, iso(T0 + 25 * HOUR)),
    ]
    assert driver.suppressions()[0].channel == "email"
    assert [x.reason for x in driver.exits()] == ["completed"]


def test_frequency_cap_counts_sends_across_instances_of_the_journey() -> None:
    journey = build(
        "- id: hello\n  send: {channel: email, template: msg}\n",
        "reentry: always\nfrequency_cap: {max: 2, per: 1d}\n",
    )
    driver = Driver(journey)
    driver.apply(profile(T0, **REACHABLE))
    for hours in (0, 1, 2, 25):
        driver.apply(event("start", T0 + hours * HOUR))
    assert outcome(driver) == [
        ("send", "email", "hello"),
        ("send", "email", "hello"),
        ("suppress", "email", "frequency_cap"),
        ("send", "email", "hello"),
    ]


# --- quiet hours -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "timezone", "start", "sent"),
    [
        # 22:00 EDT on 3 May: the 08:00-21:00 window opens at 08:00 EDT = 12:00Z.
        ("08:00-21:00", "America/New_York", "2026-05-04T02:00:00Z", "2026-05-04T12:00:00Z"),
        # Winter (EST, UTC-5): 21:30 local opens at 08:00 EST = 13:00Z the next day.
        ("08:00-21:00", "America/New_York", "2026-01-15T02:30:00Z", "2026-01-15T13:00:00Z"),
        # 05:00 EDT: opens later the same local day.
        ("08:00-21:00", "America/New_York", "2026-05-04T09:00:00Z", "2026-05-04T12:00:00Z"),
        # Inside the window: sent at once.
        ("08:00-21:00", "America/New_York", "2026-05-04T14:00:00Z", "2026-05-04T14:00:00Z"),
        # No timezone: UTC.
        ("08:00-21:00", None, "2026-05-04T22:00:00Z", "2026-05-05T08:00:00Z"),
        ("08:00-21:00", None, "2026-05-04T21:00:00Z", "2026-05-05T08:00:00Z"),
        ("08:00-21:00", None, "2026-05-04T08:00:00Z", "2026-05-04T08:00:00Z"),
        # Overnight window 22:00-06:00.
        ("22:00-06:00", None, "2026-05-04T12:00:00Z", "2026-05-04T22:00:00Z"),
        ("22:00-06:00", None, "2026-05-04T23:30:00Z", "2026-05-04T23:30:00Z"),
        ("22:00-06:00", None, "2026-05-04T05:59:00Z", "2026-05-04T05:59:00Z"),
        ("22:00-06:00", None, "2026-05-04T06:00:00Z", "2026-05-04T22:00:00Z"),
        # Overnight in Paris (UTC+2 in May): 12:00 local waits for 22:00 local = 20:00Z.
        ("22:00-06:00", "Europe/Paris", "2026-05-04T10:00:00Z", "2026-05-04T20:00:00Z"),
        ("22:00-06:00", "America/New_York", "2026-05-04T09:00:00Z", "2026-05-04T09:00:00Z"),
    ],
)
def test_send_outside_the_window_waits_until_it_opens_in_local_time(
    window: str, timezone: str | None, start: str, sent: str
) -> None:
    opens, closes = window.split("-")
    journey = build(
        "- id: hello\n  send: {channel: email, template: msg}\n",
        f'send_window: {{start: "{opens}", end: "{closes}"}}\n',
    )
    at = parse_instant(start)
    driver = Driver(journey)
    driver.apply(profile(at - HOUR, timezone=timezone, **REACHABLE), event("start", at))
    assert [e.at for e in driver.entries()] == [at]
    driver.until(None)
    assert [r["at"] for r in driver.records() if r["type"] == "send"] == [sent]
    assert [x.to_record()["at"] for x in driver.exits()] == [sent]


def test_an_exit_event_during_quiet_hours_cancels_the_deferred_send() -> None:
    journey = build(
        "- id: hello\n  send: {channel: email, template: msg}\n",
        'send_window: {start: "08:00", end: "21:00"}\nexit_when: [{event: buy, goal: true}]\n',
    )
    at = parse_instant("2026-05-04T22:00:00Z")
    driver = started(journey, at)
    driver.apply(event("buy", at + HOUR))
    driver.until(None)
    assert driver.sends() == []
    assert [x.reason for x in driver.exits()] == ["goal"]


# --- duplicates, purity, runtime errors ------------------------------------------------------


def test_the_same_event_id_twice_changes_nothing() -> None:
    journey = build(LONG_WAIT, "reentry: always\n")
    catalog = catalog_of([journey])
    start = event("start", T0)
    state, actions = advance(CustomerState("c1", profile=dict(REACHABLE)), start, catalog, T0)
    assert any(isinstance(a, Entered) for a in actions)
    again, repeated = advance(state, start, catalog, T0 + MINUTE)
    assert repeated == []
    assert again.to_wire() == state.to_wire()
    # A timer firing twice (same deterministic id) is a no-op the second time.
    [wait] = [a for a in actions if isinstance(a, TimerSet)]
    assert wait.due == T0 + HOUR
    timer = timer_event(wait.customer_id, wait.journey, wait.instance_id, wait.timer, wait.due)
    fired, actions = advance(state, timer, catalog, T0 + HOUR)
    assert any(isinstance(a, Sent) for a in actions)
    refired, repeated = advance(fired, timer, catalog, T0 + HOUR)
    assert repeated == []
    assert refired.to_wire() == fired.to_wire()


def test_advance_does_not_modify_its_input_state() -> None:
    journey = build(EXIT_STEPS, EXITS)
    state = CustomerState("c1", profile=dict(REACHABLE))
    before = jsonwire.dumps(state.to_wire())
    new, _ = advance(state, event("start", T0), catalog_of([journey]), T0)
    assert jsonwire.dumps(state.to_wire()) == before
    assert new.instances and not state.instances


def test_state_survives_serialisation_between_events() -> None:
    """What the runtime does: store the state as JSON between events and timers."""
    catalog = catalog_of([build(EXIT_STEPS, EXITS)])
    events = [profile(T0 - 1, **REACHABLE), event("start", T0), event("other", T0 + HOUR)]

    def run(roundtrip: bool) -> list[Any]:
        state, records, pending = CustomerState("c1"), [], list(events)
        while pending:
            item = pending.pop(0)
            if roundtrip:
                state = CustomerState.from_wire(jsonwire.loads(jsonwire.dumps(state.to_wire())))
            state, actions = advance(state, item, catalog, item.occurred_at)
            records.extend(actions)
            pending.extend(
                timer_event(a.customer_id, a.journey, a.instance_id, a.timer, a.due)
                for a in actions
                if isinstance(a, TimerSet)
            )
            pending.sort(key=lambda e: e.occurred_at)
        return records

    plain = run(roundtrip=False)
    assert plain == run(roundtrip=True)
    assert [a.step for a in plain if isinstance(a, Sent)] == ["nudge"]
    assert [a.reason for a in plain if isinstance(a, Exited)] == ["completed"]


def test_cel_runtime_errors_count_as_false_and_are_reported() -> None:
    journey = compile_journey(
        """\
        id: cel
        name: CEL errors
        trigger:
          event: start
          when: event.properties.total >= 50.0
        exit_when:
          - {event: quit, when: event.properties.reason.startsWith("x")}
        steps:
          - id: route
            branch:
              - when: profile.tier == "gold"
                next: gold
              - default: std
          - id: std
            wait_for: {event: click, when: event.properties.n, timeout: 1h}
          - id: gold
            send: {channel: email, template: msg}
        """
    )
    driver = Driver(journey)
    driver.apply(event("start", T0, total="lots"))  # string >= double: no such overload
    assert driver.entries() == []
    [trigger_failure] = driver.failures()
    assert (trigger_failure.journey, trigger_failure.step) == ("cel", None)
    assert trigger_failure.expression == "event.properties.total >= 50.0"
    assert trigger_failure.error

    driver.apply(event("start", T0 + 1, total=80))  # profile.tier is missing: KeyError
    assert len(driver.entries()) == 1
    assert [(f.step, f.expression) for f in driver.failures()[1:]] == [
        ("route", 'profile.tier == "gold"')
    ]
    driver.apply(event("quit", T0 + 2))  # no `reason`: the exit rule does not hold
    driver.apply(event("click", T0 + 3, n=5))  # an int, not a bool: false, reported
    assert driver.exits() == []
    assert [f.step for f in driver.failures()[2:]] == [None, "std"]
    assert "not true or false" in driver.failures()[-1].error
    driver.until(None)
    assert [x.reason for x in driver.exits()] == ["completed"]
    assert driver.sends() == []


# --- versions and journey status -------------------------------------------------------------


def versioned(version: int) -> CompiledJourney:
    return build(
        f"- id: pause\n  wait: 1d\n"
        f"- id: v{version}_send\n  send: {{channel: email, template: msg}}\n",
        journey_id="vers",
        version=version,
    )


def test_running_instances_keep_their_version_while_new_entries_take_the_current() -> None:
    v1, v2 = versioned(1), versioned(2)
    driver = Driver(catalog={"vers": deployed(v1)})
    driver.apply(profile(T0, "c1", **REACHABLE), event("start", T0, "c1"))
    driver.catalog = {"vers": DeployedJourney(versions={1: v1, 2: v2}, current=2)}
    driver.apply(profile(T0, "c2", **REACHABLE), event("start", T0 + HOUR, "c2"))
    driver.until(None)
    assert [(e.customer_id, e.version) for e in driver.entries()] == [("c1", 1), ("c2", 2)]
    assert [(s.customer_id, s.step, s.version) for s in driver.sends()] == [
        ("c1", "v1_send", 1),
        ("c2", "v2_send", 2),
    ]


def test_paused_journey_takes_no_new_entries_but_instances_continue() -> None:
    v1 = versioned(1)
    driver = Driver(catalog={"vers": deployed(v1)})
    driver.apply(profile(T0, "c1", **REACHABLE), event("start", T0, "c1"))
    driver.catalog = {"vers": deployed(v1, status="paused")}
    driver.apply(profile(T0, "c2", **REACHABLE), event("start", T0 + HOUR, "c2"))
    driver.until(None)
    assert [e.customer_id for e in driver.entries()] == ["c1"]
    assert [(s.customer_id, s.step) for s in driver.sends()] == [("c1", "v1_send")]
    assert [(x.customer_id, x.reason) for x in driver.exits()] == [("c1", "completed")]


@pytest.mark.parametrize("next_event", [True, False])
def test_archived_journey_ends_instances_on_their_next_event(next_event: bool) -> None:
    v1 = versioned(1)
    driver = Driver(catalog={"vers": deployed(v1)})
    driver.apply(profile(T0, "c1", **REACHABLE), event("start", T0, "c1"))
    driver.catalog = {"vers": deployed(v1, status="archived")}
    driver.apply(event("start", T0 + MINUTE, "c2"))
    assert [e.customer_id for e in driver.entries()] == ["c1"]
    if next_event:
        driver.apply(event("page.viewed", T0 + HOUR, "c1"))
    driver.until(None)
    ended_at = T0 + HOUR if next_event else T0 + DAY  # else the wait's timer is the next event
    assert [(x.customer_id, x.reason, x.at) for x in driver.exits()] == [
        ("c1", "archived", ended_at)
    ]
    assert driver.sends() == []


def test_message_ids_are_deterministic_and_distinct_per_send() -> None:
    journey = build(
        """
        - id: one
          send: {channel: email, template: msg}
        - id: pause
          wait: 1h
        - id: two
          send: {channel: email, template: msg}
        """
    )

    def ids() -> list[str]:
        driver = started(journey)
        driver.until(None)
        return [s.message_id for s in driver.sends()]

    first = ids()
    assert len(set(first)) == 2
    assert ids() == first

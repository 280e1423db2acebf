"""Fallback after a permanent failure (`message.failed`), the suppression list and global caps."""

from __future__ import annotations

from typing import Any

from orchestrator.engine.actions import Sent
from orchestrator.engine.config import EngineConfig, global_caps
from orchestrator.engine.events import Event
from orchestrator.engine.state import SENT_MEMORY
from tests.journey_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    REACHABLE,
    T0,
    Driver,
    compile_journey,
    consent,
    event,
    profile,
)


def journey(channel: str = "sms", fallback: str = "[email]", journey_id: str = "j") -> Any:
    text = (
        f"id: {journey_id}\nname: J\ncategory: transactional\ntrigger: {{event: start}}\n"
        "reentry: always\n"
        "steps:\n"
        f"  - id: hello\n    send: {{channel: {channel}, template: msg, fallback: {fallback}}}\n"
        "  - id: later\n    wait: 1h\n"
        "  - id: bye\n    send: {channel: in_app, template: msg}\n"
    )
    return compile_journey(text, None, 1)


def failed(sent: Sent, at: float, code: str = "30003") -> Event:
    """The receipt a connector publishes for a message the provider refused for good."""
    return event(
        "message.failed",
        at,
        sent.customer_id,
        channel=sent.channel,
        event_id=f"message.failed:{sent.message_id}",
        message_id=sent.message_id,
        journey=sent.journey,
        step=sent.step,
        instance_id=sent.instance_id,
        error_code=code,
        reason="refused",
    )


def outcome(driver: Driver) -> list[tuple[str, str, str]]:
    return [
        (r["type"], r["channel"], r.get("reason", r["step"]))
        for r in driver.records()
        if r["type"] in ("send", "suppress")
    ]


def started(*journeys: Any, config: EngineConfig | None = None) -> Driver:
    driver = Driver(*journeys, config=config or EngineConfig())
    driver.apply(profile(T0 - MINUTE, **REACHABLE), event("start", T0))
    return driver


def test_a_failed_message_falls_back_to_the_next_channel_without_moving_the_instance() -> None:
    driver = started(journey())
    [sms] = driver.sends()
    driver.apply(failed(sms, T0 + MINUTE))
    email = driver.sends()[-1]
    assert (email.channel, email.step, email.instance_id) == ("email", "hello", sms.instance_id)
    assert email.message_id != sms.message_id
    assert outcome(driver) == [
        ("send", "sms", "hello"),
        ("suppress", "sms", "failed"),
        ("send", "email", "hello"),
    ]
    # The instance still waits where it was, then goes on as before.
    driver.until(T0 + HOUR)
    assert outcome(driver)[-1] == ("send", "in_app", "bye")
    assert [x.reason for x in driver.exits()] == ["completed"]


def test_the_fallback_message_id_is_deterministic() -> None:
    ids = []
    for _ in range(2):
        driver = started(journey())
        driver.apply(failed(driver.sends()[0], T0 + MINUTE))
        ids.append([s.message_id for s in driver.sends()])
    assert ids[0] == ids[1]


def test_fallback_after_the_instance_ended_still_sends() -> None:
    driver = started(journey())
    [sms] = driver.sends()
    driver.until(T0 + HOUR)
    assert [x.reason for x in driver.exits()] == ["completed"]
    driver.apply(failed(sms, T0 + 2 * HOUR))
    assert outcome(driver)[-2:] == [("suppress", "sms", "failed"), ("send", "email", "hello")]
    assert len(driver.entries()) == 1  # nothing re-entered or rewound


def test_no_fallback_left_records_the_failure_only() -> None:
    driver = started(journey(fallback="[]"))
    driver.apply(failed(driver.sends()[0], T0 + MINUTE))
    assert outcome(driver)[-1] == ("suppress", "sms", "failed")
    assert len(driver.sends()) == 1


def test_a_failed_fallback_goes_on_to_the_next_one_and_rechecks_consent() -> None:
    driver = started(journey(fallback="[whatsapp, email, push]"))
    driver.apply(consent(T0 + MINUTE, "whatsapp", "opted_out"))
    driver.apply(failed(driver.sends()[0], T0 + 2 * MINUTE))
    email = driver.sends()[-1]
    driver.apply(failed(email, T0 + 3 * MINUTE))
    assert outcome(driver) == [
        ("send", "sms", "hello"),
        ("suppress", "sms", "failed"),
        ("suppress", "whatsapp", "opted_out"),
        ("send", "email", "hello"),
        ("suppress", "email", "failed"),
        ("send", "push", "hello"),
    ]


def test_a_repeated_or_unknown_failure_changes_nothing() -> None:
    driver = started(journey())
    [sms] = driver.sends()
    driver.apply(failed(sms, T0 + MINUTE))
    before = len(driver.actions)
    # The same receipt again (a new event id, as a replayed publish could carry) is ignored.
    again = failed(sms, T0 + 2 * MINUTE)
    driver.apply(
        Event(
            "other-id",
            again.customer_id,
            again.name,
            again.occurred_at,
            again.channel,
            again.properties,
        )
    )
    driver.apply(event("message.failed", T0 + 3 * MINUTE, message_id="nope"))
    assert len(driver.actions) == before


def test_the_customer_remembers_a_bounded_number_of_messages() -> None:
    driver = Driver(journey(fallback="[]"), config=EngineConfig())
    driver.apply(profile(T0 - MINUTE, **REACHABLE))
    for turn in range(SENT_MEMORY + 5):
        driver.apply(event("start", T0 + turn * DAY))
    state = driver.sim.states["c1"]
    assert len(state.messages) == SENT_MEMORY


# --- the suppression list ----------------------------------------------------------------------


def test_an_address_failure_suppresses_the_address_in_every_journey() -> None:
    first, second = journey(journey_id="a", fallback="[]"), journey(journey_id="b")
    driver = Driver(first, config=EngineConfig())
    driver.apply(profile(T0 - MINUTE, **REACHABLE), event("start", T0))
    driver.apply(failed(driver.sends()[0], T0 + MINUTE, code="21211"))
    assert driver.sim.states["c1"].suppressed == ["sms:+33600000000"]
    driver.catalog = {**driver.catalog, **Driver(second).catalog}
    driver.apply(event("start", T0 + 2 * MINUTE))
    assert outcome(driver)[-2:] == [
        ("suppress", "sms", "suppressed_address"),
        ("send", "email", "hello"),
    ]


def test_a_new_address_is_not_suppressed() -> None:
    driver = started(journey(fallback="[]"))
    driver.apply(failed(driver.sends()[0], T0 + MINUTE, code="21610"))
    driver.until(T0 + HOUR)
    driver.apply(profile(T0 + 2 * HOUR, phone="+33611111111"), event("start", T0 + 2 * HOUR))
    assert outcome(driver)[-1] == ("send", "sms", "hello")


def test_a_failure_about_the_message_does_not_suppress_the_address() -> None:
    driver = started(journey(fallback="[]"))
    driver.apply(failed(driver.sends()[0], T0 + MINUTE, code="30007"))
    assert driver.sim.states["c1"].suppressed == []


# --- global caps -----------------------------------------------------------------------------


def test_the_global_cap_counts_sends_of_every_journey_per_channel() -> None:
    config = EngineConfig(global_cap=global_caps({"sms": [2, "1d"]}))
    journeys = [journey(journey_id=name, fallback="[email]") for name in ("a", "b", "c")]
    driver = started(*journeys, config=config)
    assert outcome(driver) == [
        ("send", "sms", "hello"),
        ("send", "sms", "hello"),
        ("suppress", "sms", "global_cap"),
        ("send", "email", "hello"),
    ]
    # A day later the window has slid: sms goes out again.
    driver.until(T0 + HOUR)
    driver.apply(event("start", T0 + DAY + MINUTE))
    assert [s.channel for s in driver.sends()][-3:] == ["sms", "sms", "email"]


def test_a_fallback_after_a_failure_respects_the_global_cap() -> None:
    config = EngineConfig(global_cap=global_caps({"email": [1, "1d"]}))
    driver = started(journey(channel="email", fallback="[]", journey_id="a"), config=config)
    driver.catalog = {**driver.catalog, **Driver(journey(journey_id="b")).catalog}
    driver.apply(event("start", T0 + MINUTE))
    sms = driver.sends()[-1]
    driver.apply(failed(sms, T0 + 2 * MINUTE))
    assert outcome(driver)[-2:] == [
        ("suppress", "sms", "failed"),
        ("suppress", "email", "global_cap"),
    ]


def test_global_caps_are_read_as_max_and_duration() -> None:
    assert global_caps({"sms": [3, "1d"], "push": (1, "1h")}) == {
        "sms": (3, 86400.0),
        "push": (1, 3600.0),
    }
    for bad in ({"sms": [0, "1d"]}, {"sms": ["3", "1d"]}, {"sms": [3]}, {"sms": [3, "soon"]}):
        try:
            global_caps(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")

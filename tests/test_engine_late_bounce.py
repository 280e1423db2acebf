"""A late hard bounce (`message.bounced`, `late: true`, from a DSN): the address is suppressed
once, and the message falls back only while its journey still waits on it."""

from __future__ import annotations

from typing import Any

from orchestrator.engine.actions import Sent
from orchestrator.engine.events import Event
from tests.journey_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    REACHABLE,
    T0,
    Driver,
    compile_journey,
    event,
    profile,
)


def journey(journey_id: str = "j", trigger: str = "start") -> Any:
    """Email (falling back to sms), then wait a day for a click, then an in-app message."""
    text = (
        f"id: {journey_id}\nname: J\ncategory: transactional\ntrigger: {{event: {trigger}}}\n"
        "reentry: always\n"
        "steps:\n"
        "  - id: hello\n    send: {channel: email, template: msg, fallback: [sms]}\n"
        "  - id: await_click\n"
        "    wait_for: {event: message.clicked, timeout: 1d}\n"
        "  - id: bye\n    send: {channel: in_app, template: msg}\n"
    )
    return compile_journey(text, None, 1)


def bounced(sent: Sent, at: float, bounce: str = "hard", *, late: bool = True) -> Event:
    """The receipt `orchestrator bounces` publishes for a DSN about `sent`."""
    return event(
        "message.bounced",
        at,
        sent.customer_id,
        channel=sent.channel,
        event_id=f"message.bounced:{sent.message_id}",
        message_id=sent.message_id,
        journey=sent.journey,
        step=sent.step,
        instance_id=sent.instance_id,
        bounce=bounce,
        late=late,
        error_code="550",
        status="5.1.1" if bounce == "hard" else "4.2.2",
        error="550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown",
    )


def outcome(driver: Driver) -> list[tuple[str, str, str, str]]:
    return [
        (r["type"], r["journey"], r["channel"], r.get("reason", r["step"]))
        for r in driver.records()
        if r["type"] in ("send", "suppress")
    ]


def started(*journeys: Any) -> Driver:
    driver = Driver(*journeys)
    driver.apply(profile(T0 - MINUTE, **REACHABLE), event("start", T0))
    return driver


def test_a_late_hard_bounce_while_the_journey_waits_suppresses_and_falls_back() -> None:
    driver = started(journey())
    [email] = driver.sends()
    driver.apply(bounced(email, T0 + 2 * HOUR))
    sms = driver.sends()[-1]
    assert (sms.channel, sms.step, sms.instance_id) == ("sms", "hello", email.instance_id)
    assert outcome(driver) == [
        ("send", "j", "email", "hello"),
        ("suppress", "j", "email", "bounced"),
        ("send", "j", "sms", "hello"),
    ]
    # The instance still waits for its click, then goes on as before.
    driver.until(T0 + DAY + MINUTE)
    assert [s.step for s in driver.sends()] == ["hello", "hello", "bye"]


def test_a_late_hard_bounce_after_the_journey_went_on_only_suppresses() -> None:
    driver = started(journey(), journey("k", "again"))
    [email] = driver.sends()
    driver.until(T0 + DAY + MINUTE)  # the wait timed out: the instance sent `bye` and ended
    driver.apply(bounced(email, T0 + 2 * DAY))
    assert [s.channel for s in driver.sends()] == ["email", "in_app"]
    assert outcome(driver)[-1] == ("suppress", "j", "email", "bounced")
    # The address is suppressed for every later email, from any journey.
    driver.apply(event("again", T0 + 3 * DAY))
    assert outcome(driver)[-2:] == [
        ("suppress", "k", "email", "suppressed_address"),
        ("send", "k", "sms", "hello"),
    ]


def test_a_late_bounce_acts_once_even_under_another_event_id() -> None:
    driver = started(journey())
    [email] = driver.sends()
    first = bounced(email, T0 + HOUR)
    again = Event(
        event_id="message.bounced:other-id",
        customer_id=first.customer_id,
        name=first.name,
        occurred_at=T0 + 2 * HOUR,
        channel=first.channel,
        properties=first.properties,
    )
    driver.apply(first, first, again)
    assert [r[3] for r in outcome(driver)] == ["hello", "bounced", "hello"]


def test_soft_and_send_time_bounces_change_nothing() -> None:
    driver = started(journey())
    [email] = driver.sends()
    driver.apply(bounced(email, T0 + HOUR, "soft"))
    # A bounce at send time (no `late`) comes with `message.failed`, which acts on it.
    driver.apply(bounced(email, T0 + 2 * HOUR, late=False))
    assert outcome(driver) == [("send", "j", "email", "hello")]
    assert driver.sim.states["c1"].suppressed == []

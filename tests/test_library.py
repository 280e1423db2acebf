"""The journey library in `journeys/`: each journey simulated on its sample events.

Every expectation below is derived from the journey language spec (issue 2), not copied from the
simulator's output: entry and reentry rules, exit rules (checked before `wait_for`), quiet hours
(`send_window` in the customer's timezone), frequency caps, consent and address suppression with
fallbacks, stable A/B splits, per-locale templates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.engine.actions import ConditionFailed
from orchestrator.engine.catalog import catalog_of
from orchestrator.journey.library import load_journeys
from orchestrator.simulate import Simulator, read_events

JOURNEYS = Path(__file__).resolve().parent.parent / "journeys"
SAMPLES = JOURNEYS / "samples"
KEPT = {"enter", "send", "suppress", "exit"}

LIBRARY = (
    "welcome-series",
    "onboarding-activation",
    "failed-payment-recovery",
    "order-updates",
    "order-delay-apology",
    "support-csat",
    "win-back",
    "post-purchase-cross-sell",
    "nps-survey",
)


class Run:
    """One journey simulated on its sample file."""

    def __init__(self, journey_id: str, library: Path = JOURNEYS) -> None:
        journeys = load_journeys([library / f"{journey_id}.yaml"])
        assert [j.id for j in journeys] == [journey_id]
        samples = library / "samples" / f"{journey_id}.jsonl"
        lines = samples.read_text(encoding="utf-8").splitlines()
        events, bad = read_events(lines)
        assert bad == []
        self.simulator = Simulator(catalog_of(journeys))
        actions = list(self.simulator.run(events))
        # Library conditions are written defensively: no sample may trip an evaluation error.
        assert [a.to_record() for a in actions if isinstance(a, ConditionFailed)] == []
        self.records = [a.to_record() for a in actions if a.to_record()["type"] in KEPT]
        assert {r["journey"] for r in self.records} <= {journey_id}

    def entered(self) -> list[str]:
        """Customers in order of entry (repeated when they enter again)."""
        return [r["customer_id"] for r in self.records if r["type"] == "enter"]

    def trail(self, customer: str) -> list[tuple[str, ...]]:
        """What happened to one customer, compactly, in order."""
        out: list[tuple[str, ...]] = []
        for r in self.records:
            if r["customer_id"] != customer:
                continue
            if r["type"] == "enter":
                out.append(("enter", r["at"]))
            elif r["type"] == "send":
                out.append(("send", r["at"], r["step"], r["channel"]))
            elif r["type"] == "suppress":
                out.append(("suppress", r["at"], r["step"], r["channel"], r["reason"]))
            else:
                out.append(("exit", r["at"], r["reason"]))
        return out

    def sends(self, customer: str, step: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records
            if r["type"] == "send"
            and r["customer_id"] == customer
            and (step is None or r["step"] == step)
        ]

    def content(self, customer: str, step: str) -> dict[str, Any]:
        (send,) = self.sends(customer, step)
        content: dict[str, Any] = send["content"]
        return content

    def profile(self, customer: str) -> dict[str, Any]:
        return self.simulator.states[customer].profile


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    return {journey_id: Run(journey_id) for journey_id in LIBRARY}


# --- the library as a whole


def test_validate_accepts_the_whole_library(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(JOURNEYS.parent)
    assert main(["validate", "journeys"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "9 journeys valid" in captured.err


def test_every_journey_file_has_samples_a_test_and_a_readme_row() -> None:
    files = sorted(p.stem for p in JOURNEYS.glob("*.yaml"))
    assert files == sorted(LIBRARY)
    assert sorted(p.stem for p in SAMPLES.glob("*.jsonl")) == sorted(LIBRARY)
    readme = (JOURNEYS / "README.md").read_text(encoding="utf-8")
    for journey_id in LIBRARY:
        assert f"`{journey_id}`" in readme


def test_library_uses_every_language_feature() -> None:
    journeys = load_journeys([JOURNEYS])
    kinds = {step.kind for j in journeys for step in j.steps.values()}
    assert kinds == {"wait", "wait_for", "send", "branch", "split", "update_profile", "exit"}
    channels = {c for j in journeys for step in j.steps.values() for c in step.channels}
    assert channels == {"email", "sms", "push", "whatsapp", "webhook", "in_app"}
    reentry = {j.reentry if isinstance(j.reentry, str) else "after" for j in journeys}
    assert reentry == {"never", "always", "after"}
    assert {j.category for j in journeys} == {"marketing", "transactional"}
    assert any(j.window for j in journeys)
    assert any(j.cap for j in journeys)
    assert any(j.max_duration for j in journeys)
    assert any(e.goal for j in journeys for e in j.exits)
    assert any(not e.goal for j in journeys for e in j.exits)
    assert any(j.trigger_when for j in journeys)
    assert any("fr" in t.content for j in journeys for t in j.templates.values())


def test_all_exit_and_suppression_reasons_occur(runs: dict[str, Run]) -> None:
    records = [r for run in runs.values() for r in run.records]
    assert {r["reason"] for r in records if r["type"] == "exit"} == {
        "goal",
        "exit_event",
        "completed",
        "expired",
    }
    assert {r["reason"] for r in records if r["type"] == "suppress"} == {
        "opted_out",
        "no_consent",
        "no_address",
        "frequency_cap",
    }


# --- welcome-series


def test_welcome_series(runs: dict[str, Run]) -> None:
    run = runs["welcome-series"]
    # Ben's duplicate sign-up event changes nothing; his second sign-up is refused (reentry: never).
    assert run.entered() == ["cus_ada", "cus_ben", "cus_dora", "cus_eve", "cus_camille", "cus_finn"]

    # The full series: welcome, tips for her interest two days later, push nudge three days later.
    assert run.trail("cus_ada") == [
        ("enter", "2026-06-01T09:01:00Z"),
        ("send", "2026-06-01T09:01:00Z", "welcome", "email"),
        ("send", "2026-06-03T09:01:00Z", "tips_kitchen", "email"),
        ("send", "2026-06-06T09:01:00Z", "first_order_nudge", "push"),
        ("exit", "2026-06-06T09:01:00Z", "completed"),
    ]
    assert run.content("cus_ada", "welcome")["subject"] == "Welcome to Northwind, Ada!"
    assert run.content("cus_ada", "first_order_nudge")["body"].startswith("Ada, WELCOME10")

    # Signs up at 22:30 in Paris: the welcome waits for 08:00 Paris (06:00Z); the waits count
    # from the actual send. French content; no push token, so the nudge falls back to in-app.
    assert run.trail("cus_camille") == [
        ("enter", "2026-06-01T20:30:00Z"),
        ("send", "2026-06-02T06:00:00Z", "welcome", "email"),
        ("send", "2026-06-04T06:00:00Z", "tips_outdoor", "email"),
        ("suppress", "2026-06-07T06:00:00Z", "first_order_nudge", "push", "no_address"),
        ("send", "2026-06-07T06:00:00Z", "first_order_nudge", "in_app"),
        ("exit", "2026-06-07T06:00:00Z", "completed"),
    ]
    assert run.content("cus_camille", "welcome")["subject"] == "Bienvenue chez Northwind, Camille !"
    assert run.content("cus_camille", "tips_outdoor")["subject"].startswith("Prêt pour")
    assert run.content("cus_camille", "first_order_nudge")["title"] == "Vos 10 % vous attendent"

    # First order the next day: goal, nothing more is sent.
    assert run.trail("cus_ben") == [
        ("enter", "2026-06-01T12:00:00Z"),
        ("send", "2026-06-01T12:00:00Z", "welcome", "email"),
        ("exit", "2026-06-02T15:00:00Z", "goal"),
    ]

    # No email at sign-up: in-app welcome. The email arrives later, so the tips go by email
    # (the default branch: no interest), addressed without a name.
    assert run.trail("cus_dora") == [
        ("enter", "2026-06-01T14:00:00Z"),
        ("suppress", "2026-06-01T14:00:00Z", "welcome", "email", "no_address"),
        ("send", "2026-06-01T14:00:00Z", "welcome", "in_app"),
        ("send", "2026-06-03T14:00:00Z", "tips_general", "email"),
        ("suppress", "2026-06-06T14:00:00Z", "first_order_nudge", "push", "no_address"),
        ("send", "2026-06-06T14:00:00Z", "first_order_nudge", "in_app"),
        ("exit", "2026-06-06T14:00:00Z", "completed"),
    ]
    assert run.content("cus_dora", "welcome")["title"] == "Welcome, friend!"
    assert run.content("cus_dora", "tips_general")["body"].startswith("Hi there,")

    # Account closed during the 3-day wait: a plain exit event, not a conversion.
    assert run.trail("cus_eve") == [
        ("enter", "2026-06-01T16:00:00Z"),
        ("send", "2026-06-01T16:00:00Z", "welcome", "email"),
        ("send", "2026-06-03T16:00:00Z", "tips_kitchen", "email"),
        ("exit", "2026-06-05T10:00:00Z", "exit_event"),
    ]

    # Signs up at 23:00 UTC and orders before the window opens: the deferred welcome never goes.
    assert run.trail("cus_finn") == [
        ("enter", "2026-06-01T23:00:00Z"),
        ("exit", "2026-06-01T23:20:00Z", "goal"),
    ]


# --- onboarding-activation


def test_onboarding_activation(runs: dict[str, Run]) -> None:
    run = runs["onboarding-activation"]
    assert run.entered() == ["cus_ana", "cus_bo", "cus_cy"]

    # Creates a plan within the day: no nudge, the "next steps" email, then activation (goal).
    assert run.trail("cus_ana") == [
        ("enter", "2026-06-01T08:05:00Z"),
        ("send", "2026-06-01T13:00:00Z", "next_steps", "email"),
        ("exit", "2026-06-02T10:00:00Z", "goal"),
    ]
    content = run.content("cus_ana", "next_steps")
    assert content["subject"] == "Nice plan, Ana! Here's what's next"
    assert "Your room plan Living room." in content["body"]
    assert "https://app.northwind.example/planner/pl_77" in content["body"]
    assert run.profile("cus_ana")["first_room_plan_at"] == "2026-06-01T13:00:00Z"
    assert run.profile("cus_ana")["first_room_plan_id"] == "pl_77"

    # Never creates a plan in time: push nudge (no app, so email), a non-matching feature.used is
    # ignored, second nudge two days later, a plan made during the attribution wait changes
    # nothing, and the run completes after the 7-day window.
    assert run.trail("cus_bo") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("suppress", "2026-06-02T10:00:00Z", "first_nudge", "push", "no_address"),
        ("send", "2026-06-02T10:00:00Z", "first_nudge", "email"),
        ("send", "2026-06-04T10:00:00Z", "second_nudge", "email"),
        ("exit", "2026-06-11T10:00:00Z", "completed"),
    ]
    assert "first_room_plan_id" not in run.profile("cus_bo")

    # Nudged by push, then creates a plan: next_steps, then activation.
    assert run.trail("cus_cy") == [
        ("enter", "2026-06-01T11:00:00Z"),
        ("send", "2026-06-02T11:00:00Z", "first_nudge", "push"),
        ("send", "2026-06-03T09:00:00Z", "next_steps", "email"),
        ("exit", "2026-06-03T18:00:00Z", "goal"),
    ]
    assert run.content("cus_cy", "first_nudge")["body"].endswith("in 2 minutes, Cy.")


# --- failed-payment-recovery


def test_failed_payment_recovery(runs: dict[str, Run]) -> None:
    run = runs["failed-payment-recovery"]
    # Paul enters twice (reentry: always, after his first run ended); his retry's
    # payment.failed while the second run is active does not start another.
    assert run.entered() == [
        *("cus_paul", "cus_rita", "cus_sam", "cus_uma", "cus_tom", "cus_vera"),
        "cus_paul",
    ]

    assert run.trail("cus_paul") == [
        ("enter", "2026-06-01T06:00:00Z"),
        ("send", "2026-06-01T06:00:00Z", "notify", "email"),
        ("exit", "2026-06-01T14:00:00Z", "goal"),
        ("enter", "2026-07-01T06:00:00Z"),
        ("send", "2026-07-01T06:00:00Z", "notify", "email"),
        ("send", "2026-07-02T06:00:00Z", "reminder", "sms"),
        ("exit", "2026-07-02T09:00:00Z", "goal"),
    ]
    first, second = run.sends("cus_paul", "notify")
    assert "9.99 EUR" in first["content"]["body"]
    assert "(insufficient funds)" in first["content"]["body"]
    assert "(card expired)" in second["content"]["body"]
    # The reminder renders the trigger's amount (the current event is the timer).
    assert run.content("cus_paul", "reminder")["body"].startswith("Northwind: 9.99 EUR is still")

    # No email address: SMS without opt-in (transactional). Updates her card in time, so she gets
    # the confirmation, not the reminder; the retry fails silently, final notice on day 5,
    # and the run ends at max_duration (7d) during the last wait.
    assert run.trail("cus_rita") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("suppress", "2026-06-01T09:00:00Z", "notify", "email", "no_address"),
        ("send", "2026-06-01T09:00:00Z", "notify", "sms"),
        ("suppress", "2026-06-01T20:00:00Z", "card_updated", "email", "no_address"),
        ("send", "2026-06-01T20:00:00Z", "card_updated", "sms"),
        ("suppress", "2026-06-05T20:00:00Z", "final_notice", "email", "no_address"),
        ("send", "2026-06-05T20:00:00Z", "final_notice", "sms"),
        ("exit", "2026-06-08T09:00:00Z", "expired"),
    ]
    assert "14.50 EUR" in run.content("cus_rita", "notify")["body"]

    # Opted out of SMS: even a transactional SMS is suppressed, the email fallback goes.
    assert run.trail("cus_sam") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("send", "2026-06-01T10:00:00Z", "notify", "email"),
        ("suppress", "2026-06-02T10:00:00Z", "reminder", "sms", "opted_out"),
        ("send", "2026-06-02T10:00:00Z", "reminder", "email"),
        ("send", "2026-06-06T10:00:00Z", "final_notice", "email"),
        ("exit", "2026-06-08T10:00:00Z", "expired"),
    ]

    # No email and SMS opted out: nothing can go until the final notice's WhatsApp fallback.
    assert run.trail("cus_uma") == [
        ("enter", "2026-06-01T11:00:00Z"),
        ("suppress", "2026-06-01T11:00:00Z", "notify", "email", "no_address"),
        ("suppress", "2026-06-01T11:00:00Z", "notify", "sms", "opted_out"),
        ("suppress", "2026-06-02T11:00:00Z", "reminder", "sms", "opted_out"),
        ("suppress", "2026-06-02T11:00:00Z", "reminder", "email", "no_address"),
        ("suppress", "2026-06-06T11:00:00Z", "final_notice", "email", "no_address"),
        ("suppress", "2026-06-06T11:00:00Z", "final_notice", "sms", "opted_out"),
        ("send", "2026-06-06T11:00:00Z", "final_notice", "whatsapp"),
        ("exit", "2026-06-08T11:00:00Z", "expired"),
    ]
    assert "19.99 GBP" in run.content("cus_uma", "final_notice")["body"]

    assert run.trail("cus_tom") == [
        ("enter", "2026-06-01T12:00:00Z"),
        ("send", "2026-06-01T12:00:00Z", "notify", "email"),
        ("exit", "2026-06-01T16:00:00Z", "exit_event"),
    ]
    assert "(declined by your bank)" in run.content("cus_tom", "notify")["body"]

    # Paid exactly at the 24h timeout: the timer due at that instant fires first.
    assert run.trail("cus_vera") == [
        ("enter", "2026-06-01T13:00:00Z"),
        ("send", "2026-06-01T13:00:00Z", "notify", "email"),
        ("send", "2026-06-02T13:00:00Z", "reminder", "sms"),
        ("exit", "2026-06-02T13:00:00Z", "goal"),
    ]


# --- order-updates


def test_order_updates(runs: dict[str, Run]) -> None:
    run = runs["order-updates"]
    # Quin's second shipment arrives while the first is tracked: no second instance.
    assert run.entered() == ["cus_olga", "cus_pia", "cus_quin", "cus_rui"]

    assert run.trail("cus_olga") == [
        ("enter", "2026-06-01T08:00:00Z"),
        ("send", "2026-06-01T08:00:00Z", "shipped", "email"),
        ("exit", "2026-06-03T12:00:00Z", "goal"),
    ]
    content = run.content("cus_olga", "shipped")
    assert content["subject"] == "Your order NW-1001 is on its way"
    assert "DHL" in content["body"]
    assert "Expected delivery: Thu 4 June." in content["body"]
    assert "Track it: https://track.example/DHL/JD0141" in content["body"]

    # Delay of this order: push with the new date; delivered during the 5-day wait (goal).
    assert run.trail("cus_pia") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("send", "2026-06-01T09:00:00Z", "shipped", "email"),
        ("send", "2026-06-02T07:00:00Z", "delay_notice", "push"),
        ("exit", "2026-06-06T10:00:00Z", "goal"),
    ]
    assert run.content("cus_pia", "delay_notice") == {
        "title": "Order NW-2001 is running late",
        "body": "New delivery date: Mon 8 June. Sorry for the wait!",
    }

    # Delay and delivery of another order match neither the wait_for nor the goal: after 5 days
    # the arrival check for the tracked order goes out and the run completes.
    assert run.trail("cus_quin") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("send", "2026-06-01T10:00:00Z", "shipped", "email"),
        ("send", "2026-06-06T10:00:00Z", "arrival_check", "email"),
        ("exit", "2026-06-06T10:00:00Z", "completed"),
    ]
    check = run.content("cus_quin", "arrival_check")
    assert check["subject"] == "Has order NW-3001 arrived?"
    assert "Expected delivery: within 3 working days." in run.content("cus_quin", "shipped")["body"]

    # Phone only: transactional SMS fallback; the order is cancelled (exit event).
    assert run.trail("cus_rui") == [
        ("enter", "2026-06-01T11:00:00Z"),
        ("suppress", "2026-06-01T11:00:00Z", "shipped", "email", "no_address"),
        ("send", "2026-06-01T11:00:00Z", "shipped", "sms"),
        ("exit", "2026-06-02T09:00:00Z", "exit_event"),
    ]
    assert run.content("cus_rui", "shipped")["body"] == (
        "Northwind: order NW-4001 has shipped. Track it: https://track.example/CTT/77"
    )


def test_order_delay_apology(runs: dict[str, Run]) -> None:
    run = runs["order-delay-apology"]
    # Quin's 1-day delay and Vic's delay without delay_days do not qualify.
    assert run.entered() == ["cus_pia", "cus_vic", "cus_pia", "cus_pia"]

    # reentry: always; the cap (2 sends per 7d) swallows the second apology two days later,
    # and lets the third through 8 days after the first.
    assert run.trail("cus_pia") == [
        ("enter", "2026-06-02T07:00:00Z"),
        ("send", "2026-06-02T07:00:00Z", "credit", "webhook"),
        ("send", "2026-06-02T07:00:00Z", "apology", "email"),
        ("exit", "2026-06-02T07:00:00Z", "completed"),
        ("enter", "2026-06-04T07:00:00Z"),
        ("suppress", "2026-06-04T07:00:00Z", "credit", "webhook", "frequency_cap"),
        ("suppress", "2026-06-04T07:00:00Z", "apology", "email", "frequency_cap"),
        ("exit", "2026-06-04T07:00:00Z", "completed"),
        ("enter", "2026-06-10T08:00:00Z"),
        ("send", "2026-06-10T08:00:00Z", "credit", "webhook"),
        ("send", "2026-06-10T08:00:00Z", "apology", "email"),
        ("exit", "2026-06-10T08:00:00Z", "completed"),
    ]
    first, third = run.sends("cus_pia", "credit")
    assert first["content"] == {
        "url": "https://loyalty.internal.northwind.example/v1/credits",
        "payload": {
            "order_id": "NW-2001",
            "amount": "5.00",
            "currency": "EUR",
            "reason": "delivery delayed 5 days",
            "idempotency_key": "delay-credit-NW-2001",
        },
    }
    assert third["content"]["payload"]["order_id"] == "NW-2003"

    # Webhooks need no address; the apology has nowhere to go.
    assert run.trail("cus_vic") == [
        ("enter", "2026-06-03T09:00:00Z"),
        ("send", "2026-06-03T09:00:00Z", "credit", "webhook"),
        ("suppress", "2026-06-03T09:00:00Z", "apology", "email", "no_address"),
        ("suppress", "2026-06-03T09:00:00Z", "apology", "push", "no_address"),
        ("exit", "2026-06-03T09:00:00Z", "completed"),
    ]


# --- support-csat


def test_support_csat(runs: dict[str, Run]) -> None:
    run = runs["support-csat"]
    # Léa's second close of T-505 is within 7 days of her last entry; the third close is not.
    assert run.entered() == ["cus_sue", "cus_ian", "cus_wen", "cus_kai", "cus_lea", "cus_lea"]

    # Happy answer: recorded on the profile, no escalation.
    assert run.trail("cus_sue") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("send", "2026-06-01T10:00:00Z", "survey", "email"),
        ("exit", "2026-06-01T12:00:00Z", "completed"),
    ]
    survey = run.content("cus_sue", "survey")
    assert survey["subject"] == "How did we do? (ticket #T-501)"
    assert 'Marco just closed your request\n"Damaged lamp shade".' in survey["body"]
    assert run.profile("cus_sue")["last_csat_score"] == "5"
    assert run.profile("cus_sue")["last_csat_ticket"] == "T-501"

    # An answer about an older ticket is ignored; the score 1 for this ticket is escalated.
    assert run.trail("cus_ian") == [
        ("enter", "2026-06-01T09:30:00Z"),
        ("send", "2026-06-01T10:30:00Z", "survey", "email"),
        ("send", "2026-06-01T15:00:00Z", "escalate", "webhook"),
        ("exit", "2026-06-01T15:00:00Z", "completed"),
    ]
    assert run.content("cus_ian", "escalate") == {
        "url": "https://helpdesk.northwind.example/api/v2/escalations",
        "payload": {
            "ticket_id": "T-502",
            "score": "1",
            "comment": "Still no refund after two weeks",
            "agent": "Jonas",
            "customer_email": "ian@example.com",
            "priority": "high",
            "queue": "support-leads",
        },
    }
    assert run.profile("cus_ian")["last_csat_score"] == "1"

    # Phone only with WhatsApp opt-in: survey and reminder by WhatsApp, no answer, done.
    assert run.trail("cus_wen") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("suppress", "2026-06-01T11:00:00Z", "survey", "email", "no_address"),
        ("send", "2026-06-01T11:00:00Z", "survey", "whatsapp"),
        ("suppress", "2026-06-04T11:00:00Z", "reminder", "email", "no_address"),
        ("send", "2026-06-04T11:00:00Z", "reminder", "whatsapp"),
        ("exit", "2026-06-06T11:00:00Z", "completed"),
    ]
    assert "ticket #T-503" in run.content("cus_wen", "survey")["body"]
    assert "last_csat_score" not in run.profile("cus_wen")

    # Phone only, no opt-in (surveys are marketing): nothing can be sent, the journey moves on;
    # the answer (from the help centre) during the second wait is still recorded.
    assert run.trail("cus_kai") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("suppress", "2026-06-01T11:00:00Z", "survey", "email", "no_address"),
        ("suppress", "2026-06-01T11:00:00Z", "survey", "whatsapp", "no_consent"),
        ("suppress", "2026-06-01T11:00:00Z", "survey", "sms", "no_consent"),
        ("suppress", "2026-06-04T11:00:00Z", "reminder", "email", "no_address"),
        ("suppress", "2026-06-04T11:00:00Z", "reminder", "whatsapp", "no_consent"),
        ("suppress", "2026-06-04T11:00:00Z", "reminder", "sms", "no_consent"),
        ("exit", "2026-06-05T09:00:00Z", "completed"),
    ]
    assert run.profile("cus_kai")["last_csat_score"] == "4"

    # Closed at 21:30 London: after the 1h cool-down it is 22:30, so the survey waits for 08:00
    # London (07:00Z). Reopening the ticket cancels the run. A week later, a new ticket.
    assert run.trail("cus_lea") == [
        ("enter", "2026-06-01T20:30:00Z"),
        ("send", "2026-06-02T07:00:00Z", "survey", "email"),
        ("exit", "2026-06-02T09:00:00Z", "exit_event"),
        ("enter", "2026-06-09T09:00:00Z"),
        ("send", "2026-06-09T10:00:00Z", "survey", "email"),
        ("send", "2026-06-09T11:00:00Z", "escalate", "webhook"),
        ("exit", "2026-06-09T11:00:00Z", "completed"),
    ]
    first, second = run.sends("cus_lea", "survey")
    assert first["content"]["body"].startswith("Hi Léa,")
    assert "#T-506" in second["content"]["subject"]
    payload = run.content("cus_lea", "escalate")["payload"]
    assert (payload["ticket_id"], payload["score"], payload["comment"]) == ("T-506", "2", "")


# --- win-back


def test_win_back(runs: dict[str, Run]) -> None:
    run = runs["win-back"]
    # Wanda's lapse 44 days after her entry is refused; 92 days after, she enters again.
    assert run.entered() == ["cus_wes", "cus_wanda", "cus_walt", "cus_wyn", "cus_wanda"]

    # The analytics job runs at 03:00Z; every send waits for 09:00 local time.
    # Wes (Paris, gold, French): variant A at 09:00 Paris (07:00Z); the offer a week later;
    # the SMS last call would be his third message within 10 days: frequency cap.
    assert run.trail("cus_wes") == [
        ("enter", "2026-06-01T03:00:00Z"),
        ("send", "2026-06-01T07:00:00Z", "miss_you_a", "email"),
        ("send", "2026-06-08T07:00:00Z", "offer", "email"),
        ("suppress", "2026-06-10T07:00:00Z", "last_call", "sms", "frequency_cap"),
        ("exit", "2026-06-10T07:00:00Z", "completed"),
    ]
    assert [s["variant"] for s in run.sends("cus_wes")] == ["A", "A"]
    assert run.content("cus_wes", "miss_you_a")["subject"] == "Vous nous manquez, Wes"
    assert run.content("cus_wes", "offer")["subject"] == ("20 % de réduction, rien que pour vous")

    # Wanda (UTC): variant B at 09:00Z, orders two days later (goal). Same variant next time.
    assert run.trail("cus_wanda") == [
        ("enter", "2026-06-01T03:00:00Z"),
        ("send", "2026-06-01T09:00:00Z", "miss_you_b", "email"),
        ("exit", "2026-06-03T18:00:00Z", "goal"),
        ("enter", "2026-09-01T03:00:00Z"),
        ("send", "2026-09-01T09:00:00Z", "miss_you_b", "email"),
        ("exit", "2026-09-02T12:00:00Z", "goal"),
    ]
    first, again = run.sends("cus_wanda")
    assert first["variant"] == again["variant"] == "B"
    assert first["content"]["subject"] == "Wanda, 120 new arrivals since your last visit"
    assert first["template"] == "winback_miss_you_b"

    # Walt (New York, silver): no email and no app, so only the in-app offer reaches him; with
    # a single message in 10 days, the SMS last call (opted in) is allowed. 09:00 EDT = 13:00Z.
    assert run.trail("cus_walt") == [
        ("enter", "2026-06-01T03:00:00Z"),
        ("suppress", "2026-06-01T13:00:00Z", "miss_you_b", "email", "no_address"),
        ("suppress", "2026-06-01T13:00:00Z", "miss_you_b", "push", "no_address"),
        ("suppress", "2026-06-08T13:00:00Z", "offer", "email", "no_address"),
        ("suppress", "2026-06-08T13:00:00Z", "offer", "push", "no_address"),
        ("send", "2026-06-08T13:00:00Z", "offer", "in_app"),
        ("send", "2026-06-10T13:00:00Z", "last_call", "sms"),
        ("exit", "2026-06-10T13:00:00Z", "completed"),
    ]
    assert run.content("cus_walt", "offer")["body"].startswith("15% off")
    assert "15% off with code COMEBACK" in run.content("cus_walt", "last_call")["body"]

    # Wyn unsubscribed from email and never opted in to SMS, but did to WhatsApp.
    assert run.trail("cus_wyn") == [
        ("enter", "2026-06-01T03:00:00Z"),
        ("suppress", "2026-06-01T09:00:00Z", "miss_you_a", "email", "opted_out"),
        ("suppress", "2026-06-01T09:00:00Z", "miss_you_a", "push", "no_address"),
        ("suppress", "2026-06-08T09:00:00Z", "offer", "email", "opted_out"),
        ("suppress", "2026-06-08T09:00:00Z", "offer", "push", "no_address"),
        ("send", "2026-06-08T09:00:00Z", "offer", "in_app"),
        ("suppress", "2026-06-10T09:00:00Z", "last_call", "sms", "no_consent"),
        ("send", "2026-06-10T09:00:00Z", "last_call", "whatsapp"),
        ("exit", "2026-06-10T09:00:00Z", "completed"),
    ]
    assert {s["variant"] for s in run.sends("cus_wyn")} == {"A"}


# --- post-purchase-cross-sell


def test_post_purchase_cross_sell(runs: dict[str, Run]) -> None:
    run = runs["post-purchase-cross-sell"]
    # Noah's order (19.90) is under 30. Lou's second order ends her run (goal) but cannot start
    # a new one (reentry after 14d); her third order, 19 days after the first, does.
    assert run.entered() == ["cus_mia", "cus_lou", "cus_kim", "cus_lou"]

    # The order that starts the run does not end it.
    assert run.trail("cus_mia") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("send", "2026-06-04T10:00:00Z", "recommend", "email"),
        ("exit", "2026-06-08T10:00:00Z", "completed"),
    ]
    content = run.content("cus_mia", "recommend")
    assert content["subject"] == "Goes well with your Oak dining table"
    # Liquid loop over the trigger's recommendations, limited to three.
    assert (
        "- Oak dining chair, 89.00 EUR: https://shop.northwind.example/p/CHR-OAK\n"
        "- Linen table runner, 24.00 EUR: https://shop.northwind.example/p/RUN-LIN\n"
        "- Wood care oil, 12.50 EUR: https://shop.northwind.example/p/OIL-CARE\n"
    ) in content["body"]
    assert "Brass pendant lamp" not in content["body"]

    assert run.trail("cus_lou") == [
        ("enter", "2026-06-01T17:00:00Z"),
        ("send", "2026-06-04T17:00:00Z", "recommend", "email"),
        ("exit", "2026-06-06T12:00:00Z", "goal"),
        ("enter", "2026-06-20T12:00:00Z"),
        ("send", "2026-06-23T12:00:00Z", "bestsellers", "email"),
        ("exit", "2026-06-27T12:00:00Z", "completed"),
    ]
    french = run.content("cus_lou", "recommend")
    assert french["subject"] == "Parfait avec votre plaid en laine"
    assert (
        "- Coussin en velours, 29.00 EUR : https://shop.northwind.example/fr/p/CUS-VEL"
        in (french["body"])
    )

    # No email: in-app card. Ordered at 22:00 UTC, so the 3-day wait ends at 22:00, outside
    # 09:00-21:00 UTC: the card waits for 09:00 the next morning.
    assert run.trail("cus_kim") == [
        ("enter", "2026-06-01T22:00:00Z"),
        ("suppress", "2026-06-05T09:00:00Z", "recommend", "email", "no_address"),
        ("send", "2026-06-05T09:00:00Z", "recommend", "in_app"),
        ("exit", "2026-06-09T09:00:00Z", "completed"),
    ]
    assert run.content("cus_kim", "recommend") == {
        "title": "Picked for you",
        "body": "Bath mat, Waffle bathrobe",
    }


# --- nps-survey


def test_nps_survey(runs: dict[str, Run]) -> None:
    run = runs["nps-survey"]
    # Rose's second delivery is within 90 days of her entry.
    assert run.entered() == ["cus_nina", "cus_omar", "cus_pat", "cus_rose", "cus_sid"]

    # Promoter: review request, segment recorded.
    assert run.trail("cus_nina") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("send", "2026-06-08T10:00:00Z", "ask", "email"),
        ("send", "2026-06-08T12:00:00Z", "promoter", "email"),
        ("exit", "2026-06-08T12:00:00Z", "completed"),
    ]
    assert "order NW-5001 arrived a week ago" in run.content("cus_nina", "ask")["body"]
    assert "A 10 out of 10, thank you!" in run.content("cus_nina", "promoter")["body"]
    assert run.profile("cus_nina")["nps_segment"] == "promoter"
    assert run.profile("cus_nina")["last_nps_score"] == "10"

    # Detractor: a CX case through the webhook.
    assert run.trail("cus_omar") == [
        ("enter", "2026-06-01T11:00:00Z"),
        ("send", "2026-06-08T11:00:00Z", "ask", "email"),
        ("send", "2026-06-08T15:00:00Z", "detractor", "webhook"),
        ("exit", "2026-06-08T15:00:00Z", "completed"),
    ]
    assert run.content("cus_omar", "detractor") == {
        "url": "https://cx.northwind.example/api/cases",
        "payload": {
            "type": "nps_detractor",
            "score": "3",
            "comment": "Arrived late and the box was crushed",
            "order_id": "NW-5002",
            "customer_email": "omar@example.com",
            "customer_name": "Omar Haddad",
            "follow_up_within_hours": 48,
        },
    }
    assert run.profile("cus_omar")["nps_segment"] == "detractor"

    # Passive: only the profile update. A CSAT answer in between is not the NPS answer.
    assert run.trail("cus_pat") == [
        ("enter", "2026-06-01T12:00:00Z"),
        ("send", "2026-06-08T12:00:00Z", "ask", "email"),
        ("exit", "2026-06-09T08:00:00Z", "completed"),
    ]
    assert run.profile("cus_pat")["nps_segment"] == "passive"
    assert run.profile("cus_pat")["last_nps_score"] == "7"
    assert run.profile("cus_pat")["last_nps_at"] == "2026-06-09T08:00:00Z"

    # Delivered at 21:00 Paris: seven days later it is 21:00, after the 20:00 close, so the
    # French survey waits for 09:00 Paris (07:00Z). No answer within 5 days: done.
    assert run.trail("cus_rose") == [
        ("enter", "2026-06-01T19:00:00Z"),
        ("send", "2026-06-09T07:00:00Z", "ask", "email"),
        ("exit", "2026-06-14T07:00:00Z", "completed"),
    ]
    assert run.content("cus_rose", "ask")["subject"] == "Recommanderiez-vous Northwind ?"
    assert "nps_segment" not in run.profile("cus_rose")

    # SMS (opted in) when there is no email; promoter's review request falls back to in-app.
    assert run.trail("cus_sid") == [
        ("enter", "2026-06-02T09:30:00Z"),
        ("suppress", "2026-06-09T09:30:00Z", "ask", "email", "no_address"),
        ("send", "2026-06-09T09:30:00Z", "ask", "sms"),
        ("suppress", "2026-06-09T10:00:00Z", "promoter", "email", "no_address"),
        ("send", "2026-06-09T10:00:00Z", "promoter", "in_app"),
        ("exit", "2026-06-09T10:00:00Z", "completed"),
    ]
    # By SMS the question is answered by replying with the score (read as `survey.answered`).
    assert "Reply with your score" in run.content("cus_sid", "ask")["body"]
    assert run.content("cus_sid", "promoter")["title"] == "Thanks for the 9/10!"

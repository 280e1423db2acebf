"""The staff journey library in `journeys/staff/`: each journey simulated on its sample events.

The same engine serves employees: candidates, new starters, colleagues with a problem, people
changing roles or leaving. Expectations follow from each journey's definition (issue 18).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.journey.library import load_journeys
from tests.test_library import Run

STAFF = Path(__file__).resolve().parent.parent / "journeys" / "staff"
LIBRARY = (
    "staff-application-acknowledgement",
    "staff-onboarding",
    "staff-i-have-a-problem",
    "staff-role-change",
    "staff-leaving",
)


def _surveys(journey_id: str) -> dict[str, str]:
    """The send steps that ask a survey question, and which."""
    [journey] = load_journeys([STAFF / f"{journey_id}.yaml"])
    return {s.id: s.survey for s in journey.steps.values() if s.survey is not None}


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    return {journey_id: Run(journey_id, STAFF) for journey_id in LIBRARY}


def test_validate_accepts_the_staff_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(STAFF)]) == 0
    assert "5 journeys valid" in capsys.readouterr().err


def test_every_staff_journey_has_samples_and_a_readme_row() -> None:
    assert sorted(p.stem for p in STAFF.glob("*.yaml")) == sorted(LIBRARY)
    assert sorted(p.stem for p in (STAFF / "samples").glob("*.jsonl")) == sorted(LIBRARY)
    readme = (STAFF.parent / "README.md").read_text(encoding="utf-8")
    for journey_id in LIBRARY:
        assert f"`{journey_id}`" in readme
    # Staff journeys share the customer library's namespace of ids: none may collide.
    customer = {j.id for j in load_journeys([STAFF.parent])}
    assert customer.isdisjoint(LIBRARY)


def test_application_acknowledgement_is_the_same_on_every_channel(runs: dict[str, Run]) -> None:
    run = runs["staff-application-acknowledgement"]
    assert run.entered() == ["cand_amy", "cand_bo", "cand_cy"]
    # Each candidate hears back on the channel they applied through.
    assert run.trail("cand_amy") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("send", "2026-06-01T09:00:00Z", "ack_sms", "sms"),
        ("send", "2026-06-11T09:00:00Z", "update_sms", "sms"),
        ("exit", "2026-06-11T09:00:00Z", "completed"),
    ]
    # A status change within 10 days: no "still in review" message.
    assert run.trail("cand_bo") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("send", "2026-06-01T10:00:00Z", "ack_email", "email"),
        ("exit", "2026-06-04T10:00:00Z", "completed"),
    ]
    assert run.trail("cand_cy") == [
        ("enter", "2026-06-01T11:00:00Z"),
        ("send", "2026-06-01T11:00:00Z", "ack_whatsapp", "whatsapp"),
        ("send", "2026-06-11T11:00:00Z", "update_whatsapp", "whatsapp"),
        ("exit", "2026-06-11T11:00:00Z", "completed"),
    ]
    # One wording whatever the channel: the SMS, the WhatsApp message and the email say the same.
    sms = run.content("cand_amy", "ack_sms")["body"]
    whatsapp = run.content("cand_cy", "ack_whatsapp")["body"]
    email = " ".join(run.content("cand_bo", "ack_email")["body"].split())
    promise = (
        "A recruiter reads every application; you will hear from us within 10 days either way."
    )
    assert promise in sms and promise in whatsapp and promise in email
    assert sms == (
        "Northwind Careers: thank you for applying for Store manager. Ref A-100. " + promise
    )
    assert whatsapp.replace("Driver", "Store manager").replace("A-102", "A-100") == sms
    assert run.content("cand_bo", "ack_email")["subject"] == (
        "We received your application: Store manager (ref A-101)"
    )


def test_onboarding_alerts_the_manager_when_it_stalls(runs: dict[str, Run]) -> None:
    run = runs["staff-onboarding"]
    assert run.trail("emp_dan") == [
        ("enter", "2026-06-01T10:00:00Z"),
        ("send", "2026-06-01T10:00:00Z", "welcome", "email"),
        ("send", "2026-06-15T08:30:00Z", "checklist", "in_app"),
        ("exit", "2026-06-19T16:00:00Z", "goal"),
    ]
    # Hired at 21:00 London time: the welcome waits for 08:00; no checklist done in 14 days.
    assert run.trail("emp_eve") == [
        ("enter", "2026-06-01T20:00:00Z"),
        ("send", "2026-06-02T07:00:00Z", "welcome", "email"),
        ("send", "2026-06-08T08:30:00Z", "checklist", "in_app"),
        ("send", "2026-06-22T08:30:00Z", "alert_manager", "webhook"),
        ("exit", "2026-06-22T08:30:00Z", "completed"),
    ]
    assert run.content("emp_eve", "alert_manager")["payload"] == {
        "employee_id": "emp_eve",
        "manager": "Tom",
        "start_date": "2026-06-08",
        "reason": "onboarding checklist not completed 14 days after starting",
    }
    assert "Tom will\nmeet you at reception" in run.content("emp_eve", "welcome")["body"]


def test_i_have_a_problem_escalates_and_follows_up(runs: dict[str, Run]) -> None:
    run = runs["staff-i-have-a-problem"]
    # Resolved the same day: a survey an hour later; a 5 ends it quietly.
    assert run.trail("emp_fay") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("send", "2026-06-01T09:00:00Z", "acknowledge", "in_app"),
        ("send", "2026-06-01T16:00:00Z", "survey", "email"),
        ("exit", "2026-06-01T18:00:00Z", "completed"),
    ]
    # Not resolved in 2 days: escalated; resolved later, then a 2 goes to the team's lead.
    assert run.trail("emp_gus") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("send", "2026-06-01T09:00:00Z", "acknowledge", "in_app"),
        ("send", "2026-06-03T09:00:00Z", "escalate", "webhook"),
        ("send", "2026-06-05T10:00:00Z", "survey", "email"),
        ("send", "2026-06-05T12:00:00Z", "unhappy", "webhook"),
        ("exit", "2026-06-05T12:00:00Z", "completed"),
    ]
    assert run.content("emp_gus", "unhappy")["payload"] == {
        "ticket_id": "HR-3",
        "team": "hr",
        "score": "2",
        "comment": "Took a week and three emails",
    }
    assert run.content("emp_gus", "acknowledge")["title"] == "We have your problem report (HR-3)"
    # The follow-up asks a CSAT question: a reply such as "4" is read as its score.
    assert _surveys("staff-i-have-a-problem") == {"survey": "csat"}


def test_role_change_chases_missing_access(runs: dict[str, Run]) -> None:
    run = runs["staff-role-change"]
    assert run.trail("emp_hal") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("send", "2026-06-01T09:00:00Z", "congratulate", "email"),
        ("send", "2026-06-09T09:00:00Z", "check_in", "in_app"),
        ("exit", "2026-06-09T09:00:00Z", "completed"),
    ]
    # Access for another role does not count: IT is asked after 3 days.
    assert run.trail("emp_ida") == [
        ("enter", "2026-06-01T09:30:00Z"),
        ("send", "2026-06-01T09:30:00Z", "congratulate", "email"),
        ("send", "2026-06-04T09:30:00Z", "ask_it", "webhook"),
        ("send", "2026-06-11T09:30:00Z", "check_in", "in_app"),
        ("exit", "2026-06-11T09:30:00Z", "completed"),
    ]
    assert run.content("emp_ida", "ask_it")["payload"]["role"] == "Store manager"


def test_leaving_sends_the_exit_survey_on_the_last_day(runs: dict[str, Run]) -> None:
    run = runs["staff-leaving"]
    # Answered the day after: the goal.
    assert run.trail("emp_jo") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("send", "2026-06-01T09:00:00Z", "confirm", "email"),
        ("send", "2026-06-30T09:00:00Z", "exit_survey", "email"),
        ("exit", "2026-07-01T19:00:00Z", "goal"),
    ]
    # No answer: one reminder three days later, then the journey ends.
    assert run.trail("emp_kim") == [
        ("enter", "2026-06-01T09:00:00Z"),
        ("send", "2026-06-01T09:00:00Z", "confirm", "email"),
        ("send", "2026-06-12T09:00:00Z", "exit_survey", "email"),
        ("send", "2026-06-15T09:00:00Z", "reminder", "email"),
        ("exit", "2026-06-22T09:00:00Z", "completed"),
    ]
    assert run.content("emp_jo", "confirm")["subject"] == "Your last day: 2026-06-30"
    assert _surveys("staff-leaving") == {"exit_survey": "nps"}

"""Delivery status notifications for the tests: recorded shapes on disk, and a builder.

`tests/fixtures/dsn/` holds DSNs as Postfix, Exim and Gmail write them (plus a qmail
plain-text bounce and a vacation auto-reply, which carry no delivery-status part).
`postfix_dsn` builds one with Python's `email` package in Postfix's shape (a notification,
a `message/delivery-status` part with the per-message and per-recipient blocks, the original
message's headers), for any bounce address, recipient and status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from tests.journey_fixtures import T0

__all__ = ["SAMPLES", "SAMPLE_ADDRESS", "postfix_dsn", "sample"]

SAMPLES = Path(__file__).parent / "fixtures" / "dsn"
# The bounce address written in the samples (its MAC is a placeholder: not one we signed).
SAMPLE_ADDRESS = "b+9f1c0e7d2a6b4c8e9f1c0e7d2a6b4c8e.abcdefghijklmnopqrst@bounces.northwind.example"


def sample(name: str) -> bytes:
    """A recorded DSN from `tests/fixtures/dsn/`, e.g. `postfix_user_unknown.eml`."""
    return (SAMPLES / name).read_bytes()


def _block(**fields: str) -> Message:
    block = Message()
    for name, value in fields.items():
        block[name.replace("_", "-")] = value
    return block


def postfix_dsn(
    bounce_address: str,
    recipient: str,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "",
    original_message_id: str = "<original@northwind.example>",
) -> bytes:
    """A DSN as Postfix mails it to `bounce_address` about `recipient`."""
    diagnostic = diagnostic or (
        f"smtp; 550 {status} <{recipient}>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    dsn = MIMEMultipart("report", boundary="4C9F21A0B3.1764569529/relay.northwind.example")
    dsn.set_param("report-type", "delivery-status")
    dsn["Date"] = format_datetime(_when())
    dsn["From"] = "MAILER-DAEMON@relay.northwind.example (Mail Delivery System)"
    dsn["Subject"] = "Undelivered Mail Returned to Sender"
    dsn["To"] = bounce_address
    dsn["Auto-Submitted"] = "auto-replied"
    notice = MIMEText(
        "This is the mail system at host relay.northwind.example.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        f"<{recipient}>: host mx.example.com[203.0.113.25] said: "
        f"{diagnostic.partition('; ')[2] or diagnostic}\n"
    )
    notice["Content-Description"] = "Notification"
    report = Message()
    report["Content-Description"] = "Delivery report"
    report["Content-Type"] = "message/delivery-status"
    report.set_payload(
        [
            _block(
                Reporting_MTA="dns; relay.northwind.example",
                X_Postfix_Queue_ID="4C9F21A0B3",
                X_Postfix_Sender=f"rfc822; {bounce_address}",
                Arrival_Date=format_datetime(_when()),
            ),
            _block(
                Final_Recipient=f"rfc822; {recipient}",
                Original_Recipient=f"rfc822;{recipient}",
                Action=action,
                Status=status,
                Remote_MTA="dns; mx.example.com",
                Diagnostic_Code=diagnostic,
            ),
        ]
    )
    headers = MIMEText(
        f"Return-Path: <{bounce_address}>\nFrom: Northwind <hello@northwind.example>\n"
        f"To: {recipient}\nSubject: Your order has shipped\n"
        f"Message-ID: {original_message_id}\n",
        "rfc822-headers",
    )
    headers["Content-Description"] = "Undelivered Message Headers"
    for part in (notice, report, headers):
        dsn.attach(part)
    return dsn.as_bytes(policy=SMTP)


def _when() -> datetime:
    return datetime.fromtimestamp(T0, UTC)

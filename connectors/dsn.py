"""Reading a delivery status notification (RFC 3464) with Python's `email` package.

A DSN is `multipart/report; report-type=delivery-status`: a human-readable part, a
`message/delivery-status` part (one block of per-message fields, then one block per
recipient: `Final-Recipient`, `Action`, `Status`, `Diagnostic-Code`...), and the original
message or its headers. Postfix, Exim, Sendmail, Microsoft 365 and Gmail all send this shape.

What a recipient block means (`read_report`):

| `Action` | `Status` | verdict |
|---|---|---|
| `failed` | `5.x.x` | `hard`: the address will not work (no such user, domain gone, refused) |
| `failed` | `4.x.x` | `soft`: the server gave up after its retries (mailbox full, timed out) |
| `delayed` | any | `delayed`: still being tried; the final DSN, if any, comes later |
| `delivered`, `relayed`, `expanded` | any | `delivered`: nothing went wrong |

A mail without a `message/delivery-status` part is `None`, not guessed at: the envelope
sender also receives vacation auto-replies and challenge-responses (RFC 3834 sends them to
it), which read like bounces to any heuristic, and suppressing a customer's address on a
guess is worse than missing a rare non-standard bounce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from typing import Literal

__all__ = ["DeliveryReport", "Verdict", "read_report"]

Verdict = Literal["hard", "soft", "delayed", "delivered"]

# "5.1.1", also with a comment after it ("5.1.1 (bad destination mailbox address)").
_STATUS = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# "smtp; 550 5.1.1 <x>: Recipient address rejected": the reply code after the type.
_REPLY = re.compile(r"^\s*[\w-]+\s*;\s*([245]\d\d)\b")
_ACTIONS: dict[str, Verdict] = {
    "delayed": "delayed",
    "delivered": "delivered",
    "relayed": "delivered",
    "expanded": "delivered",
}
# The diagnostic is the remote server's text: kept whole up to this, then cut (an event
# must stay small, whatever a server writes).
_MAX_DIAGNOSTIC = 1000
# Headers are folded at 78 columns; the text is one line once unfolded.
_FOLD = re.compile(r"\r?\n[ \t]+")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """One recipient's outcome in a DSN: the verdict, the status (`5.1.1`), the SMTP reply
    code of the diagnostic when it gives one (`550`), the diagnostic text, the recipient."""

    verdict: Verdict
    status: str
    reply_code: str
    diagnostic: str
    recipient: str


def read_report(raw: bytes) -> DeliveryReport | None:
    """The outcome a DSN reports (the first failed recipient's, else the first recipient's);
    None when `raw` carries no delivery-status part or no recipient block with an `Action`."""
    mail = message_from_bytes(raw, policy=policy.compat32)
    blocks = _recipient_blocks(mail)
    reports = [report for report in map(_report_of, blocks) if report is not None]
    failed = [report for report in reports if report.verdict in ("hard", "soft")]
    chosen = failed or reports
    return chosen[0] if chosen else None


def _recipient_blocks(mail: Message) -> list[Message]:
    """The per-recipient field blocks of the first delivery-status part, if any (the email
    package parses the part into one header block per paragraph)."""
    for part in mail.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            blocks = payload if isinstance(payload, list) else []
            # The first block holds the per-message fields (Reporting-MTA, Arrival-Date).
            return [b for b in blocks if isinstance(b, Message) and b.get("Action") is not None]
    return []


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return _FOLD.sub(" ", str(value)).strip() if value is not None else ""


def _report_of(block: Message) -> DeliveryReport | None:
    action = _field(block, "Action").lower()
    diagnostic = _field(block, "Diagnostic-Code")
    status_match = _STATUS.match(_field(block, "Status"))
    reply_match = _REPLY.match(diagnostic)
    reply_code = reply_match.group(1) if reply_match else ""
    if status_match is not None:
        status = ".".join(status_match.groups())
    elif reply_code:
        # `Status` is required, yet some servers leave it out: the reply code's class says it.
        status = f"{reply_code[0]}.0.0"
    else:
        return None
    recipient = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
    recipient = recipient.partition(";")[2].strip() or recipient
    if action == "failed":
        if status[0] == "2":
            return None
        verdict: Verdict = "hard" if status[0] == "5" else "soft"
    elif action in _ACTIONS:
        verdict = _ACTIONS[action]
    else:
        return None
    text = diagnostic.partition(";")[2].strip() if ";" in diagnostic else diagnostic
    return DeliveryReport(verdict, status, reply_code, text[:_MAX_DIAGNOSTIC], recipient)

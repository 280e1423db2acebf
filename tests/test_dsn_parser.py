"""Reading DSNs (connectors/dsn.py) as real servers write them, and VERP bounce addresses
(connectors/verp.py): made, read back, and refused when forged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.dsn import DeliveryReport, read_report
from connectors.verp import BadBounceAddressError, BounceAddresses
from tests.dsn_samples import postfix_dsn, sample


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "postfix_user_unknown.eml",
            DeliveryReport(
                "hard",
                "5.1.1",
                "550",
                "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown "
                "in virtual mailbox table",
                "gone@example.com",
            ),
        ),
        (
            "exim_mailbox_full.eml",
            DeliveryReport(
                "soft",
                "4.2.2",
                "452",
                "452 4.2.2 The email account that you tried to reach is over quota",
                "full@example.org",
            ),
        ),
        (
            "postfix_delayed.eml",
            DeliveryReport(
                "delayed",
                "4.4.1",
                "",
                "connect to mx.example.net[192.0.2.80]:25: Connection timed out",
                "slow@example.net",
            ),
        ),
    ],
)
def test_recorded_dsns_read_as_their_servers_meant(name: str, expected: DeliveryReport) -> None:
    assert read_report(sample(name)) == expected


def test_gmail_s_folded_multi_line_diagnostic_is_one_line() -> None:
    report = read_report(sample("gmail_no_such_user.eml"))
    assert report is not None
    assert (report.verdict, report.status, report.reply_code) == ("hard", "5.1.1", "550")
    assert report.recipient == "nobody.here@gmail.com"
    assert "\n" not in report.diagnostic
    assert report.diagnostic.startswith("550-5.1.1 The email account that you tried to reach")
    assert report.diagnostic.endswith("gsmtp")


@pytest.mark.parametrize("name", ["qmail_plaintext.eml", "vacation_autoreply.eml"])
def test_mail_without_a_delivery_status_part_is_not_guessed_at(name: str) -> None:
    assert read_report(sample(name)) is None


def _lines(raw: bytes) -> str:
    return raw.decode().replace("\r\n", "\n")


def test_the_failed_recipient_wins_over_a_delivered_one() -> None:
    raw = _lines(
        postfix_dsn("b+x.y@bounces.example", "ok@example.com", action="delivered", status="2.0.0")
    )
    block = "Final-Recipient: rfc822; gone@example.com\nAction: failed\nStatus: 5.1.2\n\n"
    marker = "Final-Recipient: rfc822; ok@example.com"
    assert marker in raw
    report = read_report(raw.replace(marker, block + marker, 1).encode())
    assert report is not None
    assert (report.verdict, report.status, report.recipient) == (
        "hard",
        "5.1.2",
        "gone@example.com",
    )


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected"),
    [
        # Sendmail and Exchange add the status's meaning as a comment.
        ("5.1.1 (bad destination mailbox address)", "", ("hard", "5.1.1", "550")),
        # `Status` is required, yet some servers leave it out: the reply code's class says it.
        (
            "",
            "smtp; 554 delivery error: dd This user doesn't have an account",
            ("hard", "5.0.0", "554"),
        ),
        ("", "X-Postfix; mail for example.com loops back to myself", None),
    ],
)
def test_a_status_with_a_comment_or_none_at_all(
    status: str, diagnostic: str, expected: tuple[str, str, str] | None
) -> None:
    raw = postfix_dsn(
        "b+x.y@bounces.example", "gone@example.com", status=status, diagnostic=diagnostic
    )
    report = read_report(raw)
    found = None if report is None else (report.verdict, report.status, report.reply_code)
    assert found == expected


_ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}


@given(
    action=st.sampled_from(sorted(_ACTIONS)),
    klass=st.sampled_from(["2", "4", "5"]),
    subject=st.integers(0, 999),
    detail=st.integers(0, 999),
    mixed_case=st.booleans(),
)
def test_every_action_and_status_gets_the_documented_verdict(
    action: str, klass: str, subject: int, detail: int, mixed_case: bool
) -> None:
    status = f"{klass}.{subject}.{detail}"
    written = action.upper() if mixed_case else action
    report = read_report(
        postfix_dsn("b+x.y@bounces.example", "ada@example.com", action=written, status=status)
    )
    if action == "failed":
        expected = {"5": "hard", "4": "soft", "2": None}[klass]
    else:
        expected = "delayed" if action == "delayed" else "delivered"
    assert (report.verdict if report else None) == expected
    if report is not None:
        assert report.status == status


def _addresses(key: str = "k" * 32) -> BounceAddresses:
    return BounceAddresses("Bounces.Northwind.Example", SecretStr(key))


_IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40)


@given(message_id=_IDS, shout=st.booleans())
def test_a_bounce_address_names_its_message_and_fits_an_smtp_local_part(
    message_id: str, shout: bool
) -> None:
    addresses = _addresses()
    address = addresses.address(message_id)
    assert address is not None
    local, _, domain = address.rpartition("@")
    assert len(local) <= 64
    assert domain == "bounces.northwind.example"
    # Servers may change the case of what they answer to: it still reads.
    written = address.upper() if shout else f"<{address}>"
    assert addresses.is_ours(written)
    assert addresses.message_of(written) == message_id


@given(message_id=_IDS, other=_IDS)
def test_a_bounce_address_for_another_message_or_key_is_forged(message_id: str, other: str) -> None:
    address = _addresses().address(message_id)
    assert address is not None
    with pytest.raises(BadBounceAddressError) as caught:
        _addresses("another key").message_of(address)
    assert caught.value.forged
    if other != message_id:
        tampered = address.replace(f"b+{message_id}.", f"b+{other}.", 1)
        with pytest.raises(BadBounceAddressError) as caught:
            _addresses().message_of(tampered)
        assert caught.value.forged


@pytest.mark.parametrize(
    "address",
    [
        "b+abc@bounces.northwind.example",
        "b+abc.tooshort@bounces.northwind.example",
        "hello@bounces.northwind.example",
        "b+abc.abcdefghijklmnopqrst@elsewhere.example",
    ],
)
def test_malformed_bounce_addresses_are_refused_as_such(address: str) -> None:
    with pytest.raises(BadBounceAddressError) as caught:
        _addresses().message_of(address)
    assert not caught.value.forged


def test_message_ids_that_cannot_be_a_local_part_keep_the_plain_sender() -> None:
    addresses = _addresses()
    assert addresses.address("Upper-Case") is None
    assert addresses.address("a" * 41) is None
    assert addresses.address("with space") is None


def test_a_huge_diagnostic_is_cut_so_the_event_stays_small() -> None:
    diagnostic = "smtp; 550 5.1.1 " + "no such user " * 500
    report = read_report(
        postfix_dsn("b+x.y@bounces.example", "gone@example.com", diagnostic=diagnostic)
    )
    assert report is not None
    assert len(report.diagnostic) == 1000
    assert report.diagnostic.startswith("550 5.1.1 no such user")

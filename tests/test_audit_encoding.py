"""The sink's fast paths write what the slow, obvious ones would: hashes, times, COPY text."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from orchestrator import jsonwire
from orchestrator.audit.chain import GENESIS, ChainRow, format_at, row_hash
from orchestrator.audit.db import connection
from orchestrator.audit.export import export_header, export_lines
from orchestrator.audit.personal import PersonalFields, new_key
from orchestrator.audit.query import AuditFilter, StoredRecord, query_page
from orchestrator.audit.store import SourceRecord, commit_batch, decode_batch
from orchestrator.audit.verify import verify
from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.interactions import InboundInteraction
from orchestrator.infra.settings import Settings
from tests.audit_harness import fresh_database


def _canonical_hash(prev: bytes, row: ChainRow) -> bytes:
    """The hash as docs/compliance.md defines it, spelled out the slow way."""
    header = jsonwire.dumps_canonical(
        {
            "chain_id": row.chain_id, "seq": row.seq, "record_id": row.record_id,
            "at": row.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "kind": row.kind, "customer_id": row.customer_id, "direction": row.direction,
            "channel": row.channel, "journey": row.journey,
        }
    )  # fmt: skip
    return hashlib.sha256(prev + header + b"\n" + row.body.encode()).digest()


def test_row_hash_is_the_canonical_hash() -> None:
    instants = [
        datetime(2026, 6, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 6, 1, 10, 0, 0, 120, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=9))),
    ]
    for n, at in enumerate(instants):
        assert format_at(at) == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        row = ChainRow(
            f"c{n}", n + 1, f"r{n}", at, "send", f"c{n}" if n else None, "outbound",
            None if n else "sms", "j1", '{"a":"\\u00e9\\\\"}',
        )  # fmt: skip
        assert row_hash(GENESIS, row) == _canonical_hash(GENESIS, row)


async def test_awkward_text_is_stored_exactly_and_verifies(infrastructure: Settings) -> None:
    # Tabs, newlines, backslashes and quotes in ids and bodies: COPY's escaping must hold.
    customer = 'c\t1\\x\n"2"\r'
    event = EventRecord(
        event_id="e\\1\t", customer_id=customer, name="order.placed",
        occurred_at="2026-06-01T10:00:00Z", channel="we\\b\n",
        properties={"note": "tab\there \\ \"quoted\" \u2028 é", "email": "a\\b@example.com"},
    )  # fmt: skip
    at = "2026-06-01T10:00:00Z"
    record = InboundInteraction(
        record_id="in:\\t\t1", at=at, received_at=at, customer_id=customer, event=event
    )
    personal = PersonalFields.from_setting(Settings().audit_personal_fields)
    async with fresh_database(Settings()) as url, connection(url) as conn:
        batch = await decode_batch([SourceRecord(0, 0, record.to_json())])
        result = await commit_batch(conn, "interactions", batch, personal, {})
        assert result.stored == 1
        page = await query_page(conn, AuditFilter(customer=customer), personal)
        [stored] = page.records
        assert stored.record_id == record.record_id and stored.channel == "we\\b\n"
        assert stored.record == jsonwire.loads(record.to_json())
        report = await verify(conn)
        assert report.broken is None and report.records == 1


async def test_a_record_is_stored_as_its_contract_writes_it(infrastructure: Settings) -> None:
    # Written by another producer: spaced, keys in another order, no schema_version, and a
    # field the contract does not know. Stored as the contract writes the record.
    at = "2026-06-01T10:00:00Z"
    event = EventRecord(event_id="e1", customer_id="c1", name="n", occurred_at=at)
    record = InboundInteraction(
        record_id="in:e1", at=at, received_at=at, customer_id="c1", event=event
    )
    written = jsonwire.loads(record.to_json())
    del written["schema_version"]
    foreign = jsonwire.dumps_pretty({**written, "unknown": 1}).encode()
    personal = PersonalFields.from_setting(Settings().audit_personal_fields)
    async with fresh_database(infrastructure) as url, connection(url) as conn:
        batch = await decode_batch(
            [SourceRecord(0, 0, foreign), SourceRecord(0, 1, _other(record).to_json())]
        )
        await commit_batch(conn, "interactions", batch, personal, {})
        page = await query_page(conn, AuditFilter(customer="c1"), personal)
        assert [r.record for r in page.records] == [
            jsonwire.loads(record.to_json()), jsonwire.loads(_other(record).to_json()),
        ]  # fmt: skip


def _other(record: InboundInteraction) -> InboundInteraction:
    """The same record under another id, written by our own producer."""
    return InboundInteraction(
        record_id="in:e2", at=record.at, received_at=record.received_at,
        customer_id=record.customer_id, event=record.event,
    )  # fmt: skip


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["email", "phone", "to", "a", "b"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(record=st.dictionaries(st.sampled_from(["email", "content", "x", "to"]), _JSON))
def test_opening_in_place_gives_what_opening_a_copy_gives(record: dict[str, Any]) -> None:
    """Exports open each record where it lies: the same values as the copying `open`, which
    the sink's tests and erasure rely on, for any nesting of maps and lists."""
    personal = PersonalFields(frozenset({"email", "phone", "to"}))
    key = new_key()
    sealed = personal.seal(record, key, "r-1")
    expected = personal.open(jsonwire.loads(jsonwire.dumps(sealed)), key, "r-1")
    parsed = jsonwire.loads(jsonwire.dumps(sealed))
    personal.open_in_place(parsed, key, "r-1")
    assert parsed == expected == jsonwire.loads(jsonwire.dumps(record))
    erased = jsonwire.loads(jsonwire.dumps(sealed))
    personal.open_in_place(erased, None, "r-1")
    assert erased == personal.open(sealed, None, "r-1")


def test_csv_written_straight_from_records_equals_the_general_path() -> None:
    """The CSV fast path (no body replaced) writes exactly what the general one does."""
    at = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    records = [
        StoredRecord(at, "c-1", 1, "r-1", "send", "c-1", "outbound", "email", "j", {"a": '"x",\n'}),
        StoredRecord(at, "journey:j", 1, "r-2", "operator", None, None, None, "j", {"b": 1}),
    ]
    fast = export_lines("csv", records)
    general = export_lines("csv", records, shown=[r.record for r in records])
    assert fast == general
    assert fast.startswith("2026-05-01T09:30:00.000000Z,r-1,send,c-1,outbound,email,j,")


@given(
    fields=st.tuples(*[st.text(max_size=12) for _ in range(5)]),
    body=st.dictionaries(st.text(max_size=6), st.text(max_size=12), max_size=3),
)
def test_csv_lines_are_what_the_csv_module_writes(
    fields: tuple[str, str, str, str, str], body: dict[str, str]
) -> None:
    """Any text in any column (quotes, commas, line breaks) comes out as `csv.writer` writes it."""
    record_id, kind, customer, channel, journey = fields
    at = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    record = StoredRecord(at, "c", 1, record_id, kind, customer, None, channel, journey, body)
    expected = io.StringIO()
    writer = csv.writer(expected)
    writer.writerow(
        ["at", "record_id", "kind", "customer_id", "direction", "channel", "journey", "record"]
    )
    writer.writerow(
        [format_at(at), record_id, kind, customer, "", channel, journey, jsonwire.dumps_line(body)]
    )
    assert export_header("csv") + export_lines("csv", [record]) == expected.getvalue()

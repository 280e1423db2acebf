"""How exported records are written, JSONL or CSV: shared by `audit export` and the API.

Records are written a chunk at a time (one string per chunk):
per-record work is what bounds an export's rate, so none is spent that a chunk can share.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any, Literal, TypeVar

from orchestrator import jsonwire
from orchestrator.audit.chain import format_at
from orchestrator.audit.query import StoredRecord

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_CHUNK",
    "ExportFormat",
    "chunked",
    "export_header",
    "export_lines",
]

ExportFormat = Literal["jsonl", "csv"]

CSV_COLUMNS = ("at", "record_id", "kind", "customer_id", "direction", "channel", "journey")
"""CSV columns; a last column `record` holds the whole record as JSON."""

EXPORT_CHUNK = 1000
"""Records per chunk an export writes (and, through the API, records the reads of)."""

T = TypeVar("T")


def export_header(fmt: ExportFormat) -> str:
    """What comes before the first record (CSV's header line; nothing for JSONL)."""
    return _csv_lines([(*CSV_COLUMNS, "record")]) if fmt == "csv" else ""


def export_lines(
    fmt: ExportFormat,
    records: Sequence[StoredRecord],
    shown: Sequence[dict[str, Any]] | None = None,
) -> str:
    """Records as lines, newlines included; `shown[i]` replaces record i's body (redacted)."""
    if fmt == "csv" and shown is None:
        # Straight from the records: no dict per record only to pick its columns again.
        return _csv_lines(
            [
                (
                    format_at(r.at),
                    r.record_id,
                    r.kind,
                    r.customer_id or "",
                    r.direction or "",
                    r.channel or "",
                    r.journey or "",
                    jsonwire.dumps_line(r.record),
                )
                for r in records
            ]
        )
    rows = [r.to_dict() for r in records]
    if shown is not None:
        for values, body in zip(rows, shown, strict=True):
            values["record"] = body
    if fmt == "jsonl":
        return "".join([jsonwire.dumps_line(values) + "\n" for values in rows])
    return _csv_lines(
        [
            (*(values[c] or "" for c in CSV_COLUMNS), jsonwire.dumps_line(values["record"]))
            for values in rows
        ]
    )


async def chunked(items: AsyncIterable[T], size: int = EXPORT_CHUNK) -> AsyncIterator[list[T]]:
    """`items` in lists of up to `size` (the last one shorter, never empty)."""
    chunk: list[T] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _csv_lines(rows: list[tuple[str, ...]]) -> str:
    """Rows as the csv module writes them (QUOTE_MINIMAL, \r\n), built with str methods:
    a third of the csv writer's cost for records whose JSON is full of quotes (a test holds
    the two equal)."""
    return "".join([",".join([_csv_field(value) for value in row]) + "\r\n" for row in rows])


def _csv_field(value: str) -> str:
    if '"' in value or "," in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value

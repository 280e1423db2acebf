"""How exported records are written, JSONL or CSV: shared by `audit export` and the API."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from orchestrator import jsonwire
from orchestrator.audit.query import StoredRecord

__all__ = ["CSV_COLUMNS", "ExportFormat", "export_header", "export_line"]

ExportFormat = Literal["jsonl", "csv"]

CSV_COLUMNS = ("at", "record_id", "kind", "customer_id", "direction", "channel", "journey")
"""CSV columns; a last column `record` holds the whole record as JSON."""


def export_header(fmt: ExportFormat) -> str:
    """What comes before the first record (CSV's header line; nothing for JSONL)."""
    return _csv_line((*CSV_COLUMNS, "record")) if fmt == "csv" else ""


def export_line(
    fmt: ExportFormat, record: StoredRecord, shown: dict[str, Any] | None = None
) -> str:
    """One record as a line, newline included; `shown` replaces its body (e.g. redacted)."""
    values = record.to_dict()
    if shown is not None:
        values["record"] = shown
    if fmt == "jsonl":
        return jsonwire.dumps_line(values) + "\n"
    return _csv_line(
        (*(values[c] or "" for c in CSV_COLUMNS), jsonwire.dumps_line(values["record"]))
    )


def _csv_line(fields: tuple[Any, ...]) -> str:
    out = io.StringIO()
    # CSV's own quoting and line ending (\r\n), as the csv module writes to a file.
    csv.writer(out).writerow(fields)
    return out.getvalue()

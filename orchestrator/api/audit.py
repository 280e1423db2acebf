"""The audit store over HTTP: records, a customer's timeline, export, verify, erasure, retention.

Thin over `orchestrator.audit` (the CLI's functions): the routes parse, redact by role and
record who read whose data. Every read of customer records is recorded as a `data_access`
interaction before it is answered (a read that cannot be recorded is not served); an export
records each chunk's customers before it streams that chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Security
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.audit.erasure import erase_customer
from orchestrator.audit.export import ExportFormat, chunked, export_header, export_lines
from orchestrator.audit.query import (
    TIMELINE_KINDS,
    AuditFilter,
    StoredRecord,
    query_page,
    stream_records,
)
from orchestrator.audit.retention import Retention, apply_retention
from orchestrator.audit.verify import verify
from orchestrator.control.keys import ApiKey
from orchestrator.control.records import (
    ApiRecord,
    data_access_record,
    erasure_record,
    send_records,
)
from orchestrator.timefmt import format_instant, parse_duration

__all__ = ["router"]

router = APIRouter(
    tags=["audit"],
    dependencies=[Security(authorize)],
    responses=error_responses({400: "The cursor is not one this store gave out"}),
)


class AuditRecordOut(BaseModel):
    """One stored record; personal fields masked (`***`) unless the caller may see them."""

    at: str
    record_id: str
    kind: str
    customer_id: str | None
    direction: str | None
    channel: str | None
    journey: str | None
    chain_id: str
    seq: int
    record: dict[str, Any]


class AuditPage(BaseModel):
    """A page of records; pass `next_cursor` as `cursor` for the next (null: the last)."""

    records: list[AuditRecordOut]
    next_cursor: str | None


class VerifyRequest(BaseModel):
    """What to verify: the whole store by default, or one customer, or `[from, until)`."""

    customer: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class BrokenOut(BaseModel):
    """The first problem found."""

    chain_id: str
    record_id: str | None
    problem: str


class CheckpointOut(BaseModel):
    """The newest checkpoint of the chain heads."""

    checkpoint_id: int
    taken_at: str
    chains: int
    digest: str


class RetentionOut(BaseModel):
    """One retention run (`retention_id` null: a dry run, nothing dropped)."""

    retention_id: int | None
    ran_at: str
    operator: str
    cutoff: str
    partitions: list[str]
    records: int
    chains: int


class RetentionRequest(BaseModel):
    """Drop the monthly partitions wholly older than `older_than` (e.g. `365d`)."""

    older_than: str
    dry_run: bool = False


class VerifyResult(BaseModel):
    """`intact`, what was read, the first broken record if not intact, retention runs."""

    intact: bool
    chains: int
    records: int
    checkpoint: CheckpointOut | None
    broken: BrokenOut | None
    retentions: list[RetentionOut]


def _retention_out(run: Retention) -> RetentionOut:
    return RetentionOut(
        retention_id=run.retention_id,
        ran_at=run.ran_at.isoformat(),
        operator=run.operator,
        cutoff=run.cutoff.isoformat(),
        partitions=list(run.partitions),
        records=run.records,
        chains=run.chains,
    )


class ErasureOut(BaseModel):
    """What an erasure did: `records` stored records now unreadable in personal fields."""

    customer_id: str
    erased_at: str
    known: bool
    records: int
    redis_keys: int


Order = Literal["oldest", "newest"]


def _zoned(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiError(
            422,
            "invalid_request",
            f"{name}: {value.isoformat()} has no time zone: give e.g. 2026-05-01T00:00:00Z",
        )
    return value


def _filter(
    *,
    customer: str | None,
    since: datetime | None,
    until: datetime | None,
    channel: str | None,
    journey: str | None,
    kind: list[str] | None,
    direction: list[str] | None,
) -> AuditFilter:
    # Checked here, not by PostgreSQL: an export fails mid-stream, after its 200 is sent.
    texts = [customer, channel, journey, *(kind or ()), *(direction or ())]
    if any(text is not None and "\x00" in text for text in texts):
        raise ApiError(422, "invalid_request", "a filter holds a NUL character: remove it")
    return AuditFilter(
        customer=customer,
        since=_zoned(since, "from"),
        until=_zoned(until, "until"),
        channel=channel,
        journey=journey,
        kinds=tuple(kind or ()),
        directions=tuple(direction or ()),
    )


async def _record_reads(
    state: AppState, caller: ApiKey, customers: Iterable[str | None], what: str
) -> None:
    """One `data_access` interaction per customer whose records the caller is shown."""
    at = format_instant(state.clock.now())
    reader = state.operator_name(caller.name, caller.key_id)
    records: list[ApiRecord] = [
        data_access_record(c, at, reader, [what]) for c in sorted({c for c in customers if c})
    ]
    if not records:
        return
    async with state.call():
        publisher = await state.publisher()
        await send_records(state.settings, records, publisher.producer)


async def _page(
    state: AppState,
    *, caller: ApiKey, flt: AuditFilter, limit: int, cursor: str | None,
    order: Order, what: str,
) -> AuditPage:  # fmt: skip
    async with state.database.connection() as conn:
        page = await query_page(
            conn, flt, state.personal, limit=limit, cursor=cursor, newest_first=order == "newest"
        )
    await _record_reads(state, caller, (r.customer_id for r in page.records), what)
    return AuditPage(
        records=[_shown(state, caller, r) for r in page.records], next_cursor=page.next_cursor
    )


def _shown(state: AppState, caller: ApiKey, record: StoredRecord) -> AuditRecordOut:
    values = record.to_dict()
    values["record"] = state.redactor.for_caller(caller, record.record)
    return AuditRecordOut(**values)


Limit = Annotated[int, Query(ge=1, le=1000, description="records per page")]


@router.get("/v1/audit/records", name="audit_records", response_model=AuditPage)
async def audit_records(
    *,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
    customer: str | None = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: datetime | None = None,
    channel: str | None = None,
    journey: str | None = None,
    kind: Annotated[list[str] | None, Query()] = None,
    direction: Annotated[list[str] | None, Query()] = None,
    cursor: str | None = None,
    limit: Limit = 100,
    order: Order = "oldest",
) -> AuditPage:
    """Stored records matching every filter given (`kind`, `direction`: repeatable, any of)."""
    flt = _filter(
        customer=customer, since=since, until=until, channel=channel, journey=journey,
        kind=kind, direction=direction,
    )  # fmt: skip
    return await _page(
        state, caller=caller, flt=flt, limit=limit, cursor=cursor, order=order,
        what="audit.records",
    )  # fmt: skip


@router.get("/v1/customers/{customer_id}/timeline", name="customer_timeline",
            response_model=AuditPage)  # fmt: skip
async def customer_timeline(
    *,
    customer_id: str,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
    cursor: str | None = None,
    limit: Limit = 100,
    order: Order = "oldest",
) -> AuditPage:
    """Every inbound and outbound interaction of the customer, across channels, in order."""
    flt = AuditFilter(customer=customer_id, kinds=TIMELINE_KINDS)
    return await _page(
        state, caller=caller, flt=flt, limit=limit, cursor=cursor, order=order,
        what="audit.timeline",
    )  # fmt: skip


@router.get(
    "/v1/audit/export",
    name="audit_export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
async def audit_export(
    *,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
    format: ExportFormat = "jsonl",
    customer: str | None = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: datetime | None = None,
    channel: str | None = None,
    journey: str | None = None,
    kind: Annotated[list[str] | None, Query()] = None,
    direction: Annotated[list[str] | None, Query()] = None,
    order: Order = "oldest",
) -> StreamingResponse:
    """Every matching record, streamed from a server-side cursor (memory stays flat)."""
    flt = _filter(
        customer=customer, since=since, until=until, channel=channel, journey=journey,
        kind=kind, direction=direction,
    )  # fmt: skip
    # Fail with a status (503) while one can still be sent: before the first byte.
    async with state.database.connection() as conn:
        await conn.execute("SELECT 1")

    async def body() -> AsyncIterator[str]:
        yield export_header(format)
        async with state.database.connection() as conn:
            stream = stream_records(conn, flt, state.personal, newest_first=order == "newest")
            async for chunk in chunked(stream):
                yield await _export_chunk(state, caller, format, chunk)

    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        body(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit-export.{format}"'},
    )


async def _export_chunk(
    state: AppState, caller: ApiKey, fmt: ExportFormat, chunk: list[StoredRecord]
) -> str:
    await _record_reads(state, caller, (r.customer_id for r in chunk), "audit.export")
    return export_lines(fmt, chunk, [state.redactor.for_caller(caller, r.record) for r in chunk])


@router.post("/v1/audit/verify", name="audit_verify", response_model=VerifyResult)
async def audit_verify(
    state: Annotated[AppState, Depends(app_state)], request: VerifyRequest | None = None
) -> VerifyResult:
    """Check the hash chains and checkpoints; `broken` names the first altered record."""
    ask = request or VerifyRequest()
    since, until = _zoned(ask.since, "since"), _zoned(ask.until, "until")
    async with state.database.connection() as conn:
        report = await verify(conn, ask.customer, since, until)
    checkpoint = report.checkpoint
    return VerifyResult(
        intact=report.broken is None,
        chains=report.chains,
        records=report.records,
        checkpoint=CheckpointOut(
            checkpoint_id=checkpoint.checkpoint_id,
            taken_at=checkpoint.taken_at.isoformat(),
            chains=checkpoint.chains,
            digest=checkpoint.digest.hex(),
        )
        if checkpoint is not None
        else None,
        broken=BrokenOut(
            chain_id=report.broken.chain_id,
            record_id=report.broken.record_id,
            problem=report.broken.problem,
        )
        if report.broken is not None
        else None,
        retentions=[_retention_out(run) for run in report.retentions],
    )


@router.post("/v1/audit/retention", name="audit_retention", response_model=RetentionOut)
async def audit_retention(
    request: RetentionRequest,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> RetentionOut:
    """Drop the monthly partitions of records wholly older than `older_than`, leaving each
    chain they cut a marker that `verify` starts from (admin)."""
    try:
        age = parse_duration(request.older_than)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"older_than: {exc}") from exc
    cutoff = datetime.fromtimestamp(state.clock.now() - age, UTC)
    operator = state.operator_name(caller.name, caller.key_id)
    async with state.database.connection() as conn:
        run = await apply_retention(conn, cutoff, operator, dry_run=request.dry_run)
    return _retention_out(run)


@router.post("/v1/customers/{customer_id}/erase", name="erase_customer", response_model=ErasureOut)
async def erase(
    customer_id: str,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> ErasureOut:
    """Crypto-shred the customer's personal fields, delete their live state and record the
    erasure as an `erasure` interaction (admin)."""
    operator = state.operator_name(caller.name, caller.key_id)
    async with state.database.connection() as conn, state.call():
        done = await erase_customer(conn, state.redis, state.keys, customer_id, operator)
    # After the erasure (never a record of one that did not happen); a 503 here leaves the
    # erasure done but unrecorded, and the route is idempotent: calling it again records it.
    record = erasure_record(done.customer_id, format_instant(state.clock.now()), operator)
    async with state.call():
        publisher = await state.publisher()
        await send_records(state.settings, [record], publisher.producer)
    return ErasureOut(
        customer_id=done.customer_id,
        erased_at=done.erased_at.isoformat(),
        known=done.known,
        records=done.records,
        redis_keys=done.redis_keys,
    )

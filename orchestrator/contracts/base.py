"""What every topic record shares: its schema version, its JSON encoding, validated decoding.

Records are frozen slotted dataclasses: building one costs about what building a dict does,
which matters on the worker's hot path (see docs/operations.md §3, "Record contracts").
pydantic validates them when they are read and derives their JSON Schemas.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar, cast

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from orchestrator import jsonwire
from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "SCHEMA_VERSION",
    "ContractError",
    "SchemaVersion",
    "WireRecord",
    "describe",
    "encode",
    "validate",
]

# The version every record is written with. Bump it when a record's shape changes in a way
# old readers cannot take; readers accept every version up to it (and records without the
# field, written before records had one, as version 1).
SCHEMA_VERSION = 1

T = TypeVar("T")


class ContractError(OrchestratorError):
    """A topic record does not match its contract."""


def _known_version(value: int) -> int:
    if value > SCHEMA_VERSION:
        raise ValueError(
            f"schema_version {value} is newer than this program reads (up to "
            f"{SCHEMA_VERSION}): upgrade it before it reads records written by newer ones"
        )
    return value


SchemaVersion = Annotated[
    int,
    Field(ge=1, description="Version of the record's shape; absent in records written before 1"),
    AfterValidator(_known_version),
]


class WireRecord:
    """Base of every record dataclass: how it is written as JSON.

    Fields named in `_omit_if_none` are left out when None rather than written as null,
    because that is how those records looked before they had types.
    """

    __slots__ = ()
    _omit_if_none: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """The record's fields (nested records stay records: `encode` writes them)."""
        omit = self._omit_if_none
        names = _field_names(type(self))
        if not omit:
            return {name: getattr(self, name) for name in names}
        return {
            name: value
            for name in names
            if (value := getattr(self, name)) is not None or name not in omit
        }

    def to_json(self) -> bytes:
        """The record as compact JSON bytes, ready for Kafka."""
        return encode(self)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in fields(cast("type[DataclassInstance]", cls)))
        _FIELD_NAMES[cls] = names
    return names


def _as_dict(value: Any) -> Any:
    if isinstance(value, WireRecord):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def encode(value: Any) -> bytes:
    """JSON bytes of a record, or of any JSON value holding records."""
    return jsonwire.dumps_records(value, _as_dict)


def validate(adapter: TypeAdapter[T], data: Any, what: str) -> T:
    """`data` (decoded JSON) as the record `adapter` reads; `ContractError` saying what is off."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise ContractError(f"not a valid {what}: {describe(exc)}") from exc


def describe(exc: ValidationError) -> str:
    """pydantic's errors as `field.path: problem; ...` (the form dead-letter reasons use)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'record'}: "
        f"{str(err['msg']).removeprefix('Value error, ')}"
        for err in exc.errors()
    )

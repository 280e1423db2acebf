"""What every topic record shares: its schema version, its JSON encoding, validated decoding.

Records are slotted dataclasses, not pydantic models: the worker builds ~3 per event, and
building and encoding a dataclass costs a fraction of validating a model (measured in
`bench/contracts.py`, see docs/operations.md §3 "Record contracts"). They are not frozen
either: a frozen dataclass's `__init__` costs about four times as much. pydantic validates
them where they are read and derives their JSON Schemas.
"""

from __future__ import annotations

from collections.abc import Callable
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
        cls = type(self)
        to_dict = _TO_DICT.get(cls) or _compile_to_dict(cls)
        return to_dict(self)

    def to_json(self) -> bytes:
        """The record as compact JSON bytes, ready for Kafka."""
        return encode(self)


_TO_DICT: dict[type, Callable[[Any], dict[str, Any]]] = {}


def _compile_to_dict(cls: type[WireRecord]) -> Callable[[Any], dict[str, Any]]:
    """A function building the dict of a record of `cls`, made from its fields' names.

    Generated (as `dataclasses` generates `__init__`) because it runs ~3 times per event
    on the worker's hot path: it takes a third of the time of a loop over the fields.
    """
    names = [f.name for f in fields(cast("type[DataclassInstance]", cls))]
    items = ", ".join(f"{name!r}: record.{name}" for name in names)
    drops = "".join(
        f"    if record.{name} is None:\n        del values[{name!r}]\n"
        for name in names
        if name in cls._omit_if_none
    )
    source = f"def to_dict(record):\n    values = {{{items}}}\n{drops}    return values\n"
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - the source holds only the class's field names
    to_dict: Callable[[Any], dict[str, Any]] = namespace["to_dict"]
    _TO_DICT[cls] = to_dict
    return to_dict


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

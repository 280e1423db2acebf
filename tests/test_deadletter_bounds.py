"""Dead letters are bounded whatever the input, and still identify the original."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import jsonwire
from orchestrator.contracts.codec import (
    DEADLETTER_EXCERPT_BYTES,
    DEADLETTER_MAX_BYTES,
    DeadLetter,
    deadletter_key,
    deadletter_value,
)

# Large inputs built from a repeated chunk: cheap to generate, and they reach the sizes that
# matter (control characters escape to 6 bytes each, so 16 KiB of them would be 96 KiB).
_big = st.tuples(st.binary(min_size=1, max_size=8), st.integers(0, 300_000)).map(
    lambda t: (t[0] * t[1])[: 2 * 1024 * 1024]
)
_control = st.integers(0, 2_000_000).map(lambda n: b'\x01\x1f\n"\\' * (n // 5))
_text = st.text(max_size=2000).map(str.encode)
_values = st.one_of(st.none(), st.binary(max_size=2000), _text, _big, _control)


@settings(max_examples=150, deadline=None)
@given(
    value=_values,
    key=st.one_of(st.none(), st.binary(max_size=64), _big),
    reason=st.one_of(st.text(max_size=100), _big.map(lambda b: b.decode("latin-1"))),
    topic=st.text(max_size=300),
    partition=st.one_of(st.none(), st.integers(0, 2**31)),
    offset=st.one_of(st.none(), st.integers(0, 2**63)),
)
def test_any_dead_letter_is_bounded_and_identifies_its_original(
    value: bytes | None,
    key: bytes | None,
    reason: str,
    topic: str,
    partition: int | None,
    offset: int | None,
) -> None:
    letter = DeadLetter(reason, topic, partition, offset, key, value)
    encoded = deadletter_value(letter)
    record_key = deadletter_key(letter)
    assert len(encoded) + len(record_key or b"") <= DEADLETTER_MAX_BYTES
    body = jsonwire.loads(encoded)
    assert body["source"]["partition"] == partition
    assert body["source"]["offset"] == offset
    assert reason.startswith(body["reason"])
    assert record_key == (None if key is None else key[: len(record_key or b"")])
    if value is None:
        assert body["value"] is None and body["original_length"] is None
        return
    assert body["original_length"] == len(value)
    assert body["sha256"] == hashlib.sha256(value).hexdigest()
    kept = base64.b64decode(body["value_b64"]) if "value_b64" in body else body["value"].encode()
    assert value.startswith(kept), "the excerpt is the start of the original"
    assert len(kept) <= DEADLETTER_EXCERPT_BYTES
    assert body["truncated"] == (len(kept) < len(value))


def test_small_records_are_kept_whole() -> None:
    for value in (b'{"a": 1}', b"\x00\x01 control", "ünïcödé".encode(), b"\xff\xfe"):
        body = jsonwire.loads(deadletter_value(DeadLetter("r", "t", 1, 2, b"k", value)))
        kept = base64.b64decode(body["value_b64"]) if "value_b64" in body else body["value"]
        assert kept == (value if "value_b64" in body else value.decode())
        assert body["truncated"] is False


def test_control_characters_are_cut_by_their_encoded_size() -> None:
    # 200 KB of control characters became a >1 MB dead letter before the bound.
    value = b"\x01" * 200_000
    encoded = deadletter_value(DeadLetter("r", "t", 0, 0, None, value))
    body = jsonwire.loads(encoded)
    assert len(jsonwire.dumps(body["value"])) <= DEADLETTER_EXCERPT_BYTES + 2
    assert body["value"] == "\x01" * len(body["value"]) and body["truncated"] is True
    assert body["original_length"] == 200_000


def test_a_multibyte_character_cut_by_the_excerpt_stays_text() -> None:
    value = ("é" * DEADLETTER_EXCERPT_BYTES).encode()
    body = jsonwire.loads(deadletter_value(DeadLetter("r", "t", 0, 0, None, value)))
    assert "value" in body and set(body["value"]) == {"é"}
    assert len(body["value"].encode()) in {DEADLETTER_EXCERPT_BYTES, DEADLETTER_EXCERPT_BYTES - 1}

"""Signed URL tokens (orchestrator/infra/signedtoken.py): a token opens only as it was made."""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.infra.signedtoken import BadTokenError, open_token, seal

KEY, CONTEXT = b"k" * 32, b"test v1\x00"
ALPHABET = string.ascii_letters + string.digits + "-_"


@settings(max_examples=25)
@given(st.binary(max_size=40))
def test_a_token_opens_to_its_payload_and_no_other_spelling_opens(payload: bytes) -> None:
    token = seal(KEY, CONTEXT, payload)
    assert open_token(KEY, CONTEXT, token) == payload
    # Every one-character change, including those in the last character's spare bits that a
    # base64 decoder ignores (the same bytes, another string), is refused.
    for at, old in enumerate(token):
        for new in ALPHABET + ".=é\udcff":
            if new != old:
                with pytest.raises(BadTokenError):
                    open_token(KEY, CONTEXT, token[:at] + new + token[at + 1 :])


def test_the_spare_bits_of_the_last_character_do_not_make_a_second_token() -> None:
    token = seal(KEY, CONTEXT, b"survey")
    # A 32-byte MAC is 43 characters: the last carries 4 bits and 2 spare ones.
    spare = ALPHABET[ALPHABET.index(token[-1]) ^ 1]
    with pytest.raises(BadTokenError) as caught:
        open_token(KEY, CONTEXT, token[:-1] + spare)
    assert caught.value.forged


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace(".", ""),
        lambda t: t + "A",
        lambda t: t[:-1],
        lambda t: "!" + t,
        lambda t: t[:2] + "\n" + t[2:],
    ],
    ids=["no dot", "longer MAC", "shorter MAC", "junk", "newline"],
)
def test_a_token_of_the_wrong_shape_is_malformed_not_forged(mangle: Callable[[str], str]) -> None:
    with pytest.raises(BadTokenError) as caught:
        open_token(KEY, CONTEXT, mangle(seal(KEY, CONTEXT, b"payload!")))
    assert not caught.value.forged


def test_another_key_or_context_is_a_forgery() -> None:
    token = seal(KEY, CONTEXT, b"payload")
    for key, context in ((b"x" * 32, CONTEXT), (KEY, b"other v1\x00")):
        with pytest.raises(BadTokenError) as caught:
            open_token(key, context, token)
        assert caught.value.forged

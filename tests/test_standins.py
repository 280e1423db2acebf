"""The stand-ins sign as the providers do: the Twilio stand-in's `X-Twilio-Signature`
equals the official `twilio` library's `RequestValidator` for any form and URL."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from orchestrator.dev.standins.twilio import twilio_request_signature

TOKEN = "f" * 32
_names = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x24F), min_size=1)


@given(
    form=st.dictionaries(_names, st.text(max_size=40), max_size=8),
    query=st.sampled_from(["", "?a=1", "?b=%20x&a=2"]),
)
def test_the_twilio_signature_is_the_official_librarys(form: dict[str, str], query: str) -> None:
    url = "https://orchestrator.example/v1/webhooks/twilio/inbound" + query
    validator = RequestValidator(TOKEN)
    expected = validator.compute_signature(url, form)
    assert twilio_request_signature(TOKEN, url, form) == expected
    assert validator.validate(url, form, twilio_request_signature(TOKEN, url, form))

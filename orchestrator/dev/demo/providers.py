"""The demo's providers: a real SMTP server and stand-ins speaking Twilio's and FCM's APIs.

They run in the demo's own process, on free local ports, and count what they accepted: the
summary's "at provider" column is counted here, on the providers' side of the wire.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from orchestrator.dev.standins.fcm import FcmStandIn, write_service_account
from orchestrator.dev.standins.smtp import MailSink, smtp_server
from orchestrator.dev.standins.twilio import TwilioStandIn

__all__ = ["DELIVERED_CHANNELS", "TWILIO_NUMBER", "DemoProviders", "demo_providers"]

_ACCOUNT_SID = "AC" + "d3e0" * 8
_AUTH_TOKEN = "demo" + "0" * 28
TWILIO_NUMBER = "+15550100001"
_WHATSAPP_NUMBER = "+15550100002"
_FCM_PROJECT = "northwind-app"
# The channels the demo's connector workers deliver. `webhook` is left out: the library's
# webhook templates point at the company's own systems (cx.northwind.example...), which the
# demo cannot stand in for without rewriting the journeys.
DELIVERED_CHANNELS = ("email", "sms", "whatsapp", "push", "in_app")


@dataclass(slots=True)
class DemoProviders:
    """The running providers and how to point connector workers and the API at them."""

    mail: MailSink
    smtp_port: int
    twilio: TwilioStandIn
    fcm: FcmStandIn
    service_account: Path

    def settings(self, public_url: str) -> dict[str, Any]:
        """Settings for the connectors and the API: every channel aimed at these providers."""
        return {
            "public_url": public_url,
            "smtp_host": "127.0.0.1",
            "smtp_port": self.smtp_port,
            "smtp_from": "Northwind <hello@northwind.example>",
            "twilio_api_base": self.twilio.base_url,
            "twilio_account_sid": _ACCOUNT_SID,
            "twilio_auth_token": SecretStr(_AUTH_TOKEN),
            "twilio_from": TWILIO_NUMBER,
            "twilio_whatsapp_from": _WHATSAPP_NUMBER,
            "fcm_project": _FCM_PROJECT,
            "fcm_api_base": self.fcm.base_url,
            "fcm_token_url": self.fcm.token_url,
            "fcm_service_account": str(self.service_account),
            # Local providers take far more than a real account's limits; the demo's bursts
            # (a whole virtual morning in a second) should not queue behind them.
            "connector_rate_limits": {"smtp": 2000.0, "twilio": 2000.0, "fcm": 2000.0},
            "connector_poll_ms": 100,
            # The stand-ins answer at once, unless a busy machine starves this process: a
            # request timing out would be retried and reach the stand-in twice (the window
            # docs/channels.md describes), which the demo's counts would show.
            "connector_timeout_s": 30.0,
            "connector_retry_base_s": 0.2,
            "connector_retry_cap_s": 2.0,
        }

    def delivered(self) -> Counter[str]:
        """Messages each provider accepted, by channel (in_app has no provider: our inbox)."""
        counts: Counter[str] = Counter(
            "whatsapp" if form["To"].startswith("whatsapp:") else "sms"
            for form in self.twilio.accepted
        )
        counts["email"] = len(self.mail.messages)
        counts["push"] = len(self.fcm.accepted)
        return counts


def _new_service_account(path: Path, token_url: str) -> rsa.RSAPrivateKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_service_account(path, token_url)


@contextlib.asynccontextmanager
async def demo_providers(directory: Path, unreachable: set[str]) -> AsyncIterator[DemoProviders]:
    """Start the SMTP server and the Twilio and FCM stand-ins; stop them on leaving.

    Twilio takes messages to the `unreachable` numbers, then reports them `undelivered`.
    """
    account = directory / "fcm-service-account.json"
    twilio = TwilioStandIn(
        _ACCOUNT_SID,
        _AUTH_TOKEN,
        status_callbacks=True,
        callback_delay=2.0,
        unreachable=unreachable,
    )
    fcm = FcmStandIn(_FCM_PROJECT)
    with smtp_server() as (mail, smtp_port):
        await twilio.start()
        await fcm.start()
        try:
            fcm.public_key = _new_service_account(account, fcm.token_url).public_key()
            yield DemoProviders(mail, smtp_port, twilio, fcm, account)
        finally:
            await fcm.stop()
            await twilio.stop()

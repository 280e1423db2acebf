"""The channels' settings: connector workers and the bounce receiver (docs/channels.md).

Declared apart from the rest of `Settings` (which inherits them) to keep each module to one
subject; every field is read from `ORCHESTRATOR_<NAME>` like any other setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SETTINGS_CONFIG", "ChannelSettings"]

# `populate_by_name`: fields with a list of environment names still take their field name as
# a keyword, as every other field does.
SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix="ORCHESTRATOR_", frozen=True, extra="ignore", populate_by_name=True
)


class ChannelSettings(BaseSettings):
    """Connector workers' (`orchestrator connectors`) and the bounce receiver's settings."""

    model_config = SETTINGS_CONFIG

    public_url: str = Field(
        "http://127.0.0.1:8080",
        description="the API's public base URL (behind any proxy): unsubscribe links and "
        "provider callbacks point under it",
    )
    connector_group: str = Field(
        "orchestrator-connectors",
        description="connector workers' consumer groups: <this>.<channel>",
    )
    connector_timeout_s: float = Field(10.0, gt=0, description="longest wait for a provider")
    connector_concurrency: int = Field(
        16, ge=1, description="messages one channel of one connector worker sends at once"
    )
    connector_poll_ms: int = Field(
        200, ge=10, description="how often the durable retry schedule is checked"
    )
    connector_retry_base_s: float = Field(
        2.0, gt=0, description="first retry's backoff ceiling (doubling, full jitter)"
    )
    connector_retry_cap_s: float = Field(600.0, gt=0, description="longest backoff between tries")
    connector_max_attempts: int = Field(
        10, ge=1, description="tries before a transient failure becomes `message.failed`"
    )
    connector_breaker_failures: int = Field(
        5, ge=1, description="consecutive provider failures that open its circuit"
    )
    connector_breaker_open_s: float = Field(
        30.0, gt=0, description="how long an open circuit waits before one probe"
    )
    connector_metrics_port: int = Field(
        9465,
        ge=0,
        le=65535,
        description="port of a connector worker's /health and /metrics (on "
        "ORCHESTRATOR_METRICS_HOST); 0: off",
    )
    connector_rate_limits: dict[str, float] = Field(
        default_factory=lambda: {
            "smtp": 50.0,
            "twilio": 20.0,
            "webhook": 50.0,
            "fcm": 100.0,
        },
        description="sends per second per provider, shared by all workers "
        '(JSON, e.g. {"twilio": 5})',
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 TLS)")
    smtp_from: str | None = Field(None, description="sender address of every email")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "none", description="none, starttls (upgrade after connecting) or tls (implicit)"
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user; unset: no AUTH")
    smtp_password: SecretStr | None = Field(None, description="SMTP AUTH password")
    smtp_unsubscribe_mailbox: str | None = Field(
        None, description="the List-Unsubscribe mailto address; unset: the sender address"
    )
    smtp_connections: int | None = Field(
        None,
        ge=1,
        description="SMTP sessions one connector worker keeps open and reuses; unset: "
        "ORCHESTRATOR_CONNECTOR_CONCURRENCY (fewer caps email throughput: docs/channels.md)",
    )
    smtp_idle_s: float = Field(
        30.0, gt=0, description="an SMTP session unused this long is closed (QUIT)"
    )
    bounce_domain: str | None = Field(
        None,
        description="VERP bounce domain: each email's envelope sender becomes "
        "b+<message id>.<mac>@DOMAIN and `orchestrator bounces` reads the DSNs sent there; "
        "unset: the plain sender",
    )
    bounce_smtp_host: str = Field(
        "127.0.0.1", description="address `orchestrator bounces` accepts DSNs on (SMTP)"
    )
    bounce_smtp_port: int = Field(
        2525, ge=1, le=65535, description="port `orchestrator bounces` accepts DSNs on (SMTP)"
    )
    bounce_metrics_port: int = Field(
        9466,
        ge=0,
        le=65535,
        description="port of `orchestrator bounces`'s /health and /metrics (on "
        "ORCHESTRATOR_METRICS_HOST); 0: off",
    )
    twilio_api_base: str = Field("https://api.twilio.com", description="Twilio REST base URL")
    twilio_account_sid: str | None = Field(None, description="Twilio account (AC...)")
    twilio_auth_token: SecretStr | None = Field(None, description="Twilio auth token")
    twilio_from: str | None = Field(None, description="SMS sender number (+E.164)")
    twilio_whatsapp_from: str | None = Field(None, description="WhatsApp sender number (+E.164)")
    fcm_project: str | None = Field(None, description="Firebase project id of the push channel")
    fcm_api_base: str = Field(
        "https://fcm.googleapis.com", description="FCM HTTP v1 base URL (tests: a stand-in)"
    )
    fcm_token_url: str | None = Field(
        None,
        description="OAuth2 token endpoint for the service account's JWT; unset: the "
        "service account's token_uri",
    )
    fcm_service_account: str | None = Field(
        None, description="path to the Firebase service account JSON file (push channel)"
    )
    inbox_max_messages: int = Field(
        100, ge=1, description="messages kept per customer inbox (in_app); the oldest go first"
    )
    inbox_keepalive_s: float = Field(
        15.0, gt=0, description="seconds between keep-alive comments on an inbox SSE stream"
    )
    sms_help_text: str = Field(
        "Reply STOP to unsubscribe, START to subscribe again.",
        description="answer to an inbound HELP (SMS and WhatsApp)",
    )
    sms_stop_text: str = Field(
        "You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
        description="the one confirmation of an inbound STOP",
    )
    sms_start_text: str = Field(
        "You are subscribed again. Reply STOP to unsubscribe.",
        description="the confirmation of an inbound START",
    )
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="hosts the webhook channel may post to (JSON list; `*.example.com` for "
        "subdomains); empty: any host whose addresses are all public",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Standard Webhooks signing secret, whsec_<base64>"
    )
    email_tracking: bool = Field(
        True,
        description="rewrite email links to tracked redirects and add an open pixel "
        "(message.clicked, message.opened)",
    )
    sms_link_tracking: bool = Field(
        False, description="rewrite links in SMS and WhatsApp bodies to tracked redirects"
    )
    tracking_key: SecretStr | None = Field(
        None,
        description="signs tracked links and open pixels; the same for connectors and the API; "
        "unset: a random key shared through Redis",
    )
    unsubscribe_key: SecretStr | None = Field(
        None,
        description="signs one-click unsubscribe links; the same for connectors and the API; "
        "unset: a random key shared through Redis",
    )

"""Runtime configuration, read once from `ORCHESTRATOR_*` environment variables."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from orchestrator import jsonwire
from orchestrator.engine.config import EngineConfig, global_caps
from orchestrator.errors import ConfigurationError
from orchestrator.infra.shard import checked_shard
from orchestrator.timefmt import parse_duration

__all__ = ["Settings", "load_settings", "redacted_url"]

_REDIS_SCHEMES = ("redis", "rediss", "unix")
# Settings holding URLs that may carry a password, shown redacted in errors.
_URL_SETTINGS = ("ORCHESTRATOR_REDIS_URL", "ORCHESTRATOR_DATABASE_URL")


class Settings(BaseSettings):
    """Every runtime setting; each field is read from `ORCHESTRATOR_<NAME>`."""

    # `populate_by_name`: fields with a list of environment names (below) still take their
    # field name as a keyword, as every other field does.
    model_config = SettingsConfigDict(
        env_prefix="ORCHESTRATOR_", frozen=True, extra="ignore", populate_by_name=True
    )

    kafka_bootstrap: str = Field(
        "127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated"
    )
    redis_url: str = Field("redis://127.0.0.1:16379/0", description="Redis URL")
    redis_cluster: bool = Field(
        False, description="treat the Redis URL as one node of a Redis Cluster"
    )
    topic_prefix: str = Field("orchestrator.", description="prefix of every topic name")
    redis_prefix: str = Field("o:", description="prefix of every Redis key")
    partitions: int = Field(8, ge=1, description="partitions of events/outbound/interactions")
    replication_factor: int = Field(1, ge=1, description="replication of created topics")
    group_id: str = Field("orchestrator-journeys", description="journey workers' consumer group")
    batch_max: int = Field(2000, ge=1, description="most events one batch applies")
    batch_wait_ms: int = Field(50, ge=0, description="longest wait to fill a batch")
    timer_poll_ms: int = Field(200, ge=10, description="how often due timers are checked")
    clock_speed: float = Field(
        1.0, gt=0, description="virtual seconds per real second (demo fast-forward); 1 in prod"
    )
    clock_origin: float = Field(
        0.0, ge=0, description="real epoch where a sped-up clock starts; shared by processes"
    )
    session_timeout_ms: int = Field(
        10000, ge=1000, description="how soon a dead worker's partitions move to another"
    )
    feed: Literal["faust", "aiokafka"] = Field(
        "aiokafka",
        description="what feeds journey workers: a bare consumer (the default, ~3x faster, "
        "see bench/RESULTS.md) or a faust agent",
    )
    operator: str = Field("cli", description="who deploys: recorded in the interaction log")
    engine_key: SecretStr | None = Field(
        None,
        description="signs the engine's own events (timer firings, archive announcements); "
        "the same for every worker and operator; unset: a random key shared through Redis",
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        # aiokafka only parses the list when it connects, and then fails with a traceback.
        for server in value.split(","):
            host, colon, port = server.strip().rpartition(":")
            if (
                not colon
                or not host
                or not (port.isascii() and port.isdigit())
                or not 0 < int(port) < 65536
            ):
                raise ValueError(
                    f"{server.strip()!r} is not HOST:PORT; "
                    "give comma-separated HOST:PORT pairs, e.g. 127.0.0.1:19092"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        # redis-py accepts some malformed URLs silently (a non-numeric database is ignored).
        example = "e.g. redis://127.0.0.1:16379/0"
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a Redis URL ({exc}); {example}") from None
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError(
                f"not a Redis URL: it must start with redis://, rediss:// or unix://; {example}"
            )
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError(
                    "a unix:// Redis URL needs a socket path, e.g. unix:///run/redis.sock"
                )
            return value
        if not parts.hostname:
            raise ValueError(f"the Redis URL has no host; {example}")
        database = parts.path.lstrip("/")
        if database and not database.isdigit():
            raise ValueError(f"the Redis database {database!r} is not a number; {example}")
        del port  # parsed only to reject a non-numeric port
        return value

    startup_timeout_s: float = Field(
        120.0, gt=0, description="how long a starting worker waits for Kafka and Redis"
    )
    shutdown_timeout_s: float = Field(
        20.0, gt=0, description="longest a stopping worker waits for its clients to close"
    )
    # Read as ORCHESTRATOR_METRICS_*, or by their earlier names ORCHESTRATOR_HEALTH_* (the
    # first name wins when both are set). Full names: an alias does not get the prefix.
    health_host: str = Field(
        "127.0.0.1",
        description="address of the worker's /health and /metrics server",
        validation_alias=AliasChoices("ORCHESTRATOR_METRICS_HOST", "ORCHESTRATOR_HEALTH_HOST"),
    )
    health_port: int = Field(
        9464,
        ge=0,
        le=65535,
        description="port of the worker's /health and /metrics; 0: off",
        validation_alias=AliasChoices("ORCHESTRATOR_METRICS_PORT", "ORCHESTRATOR_HEALTH_PORT"),
    )

    api_host: str = Field("127.0.0.1", description="address `orchestrator api` listens on")
    api_port: int = Field(8080, ge=0, le=65535, description="port `orchestrator api` listens on")
    api_max_body_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="largest request body the API reads (else 413)"
    )
    api_max_inflight_ingest: int = Field(
        256,
        ge=0,
        description="ingest requests one API process serves at once; more get 429; 0: no limit",
    )
    api_publish_timeout_s: float = Field(
        5.0, gt=0, description="longest the API waits for Kafka to acknowledge events (else 503)"
    )
    api_event_names: str | None = Field(
        None,
        description="JSON file mapping Segment track names to event names, "
        'e.g. {"Order Completed": "order.completed"}',
    )

    # --- Feedback routing (`orchestrator feedback`, docs/feedback.md) ---
    feedback_rules: str = Field(
        "journeys/routing/northwind.yaml", description="the routing rules file the router uses"
    )
    feedback_group: str = Field(
        "orchestrator-feedback", description="the feedback router's consumer group"
    )
    feedback_instance: str = Field(
        "0",
        description="this router's name within its group: its Kafka transactional id is "
        "<feedback_group>.<this>; give each running router its own, keep it across restarts",
    )
    feedback_metrics_port: int = Field(
        9465, ge=0, le=65535, description="port of the router's /health and /metrics; 0: off"
    )
    feedback_queue_max: int = Field(
        500, ge=1, description="latest items kept per team for GET /v1/feedback/teams/{team}"
    )

    # --- Connector workers (`orchestrator connectors`, docs/channels.md) ---
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

    backtest_window: str = Field(
        "7d",
        description="the window of real events `deploy --dry-run` and the API's backtest "
        "replay by default (a duration, e.g. 7d)",
    )
    global_cap: dict[str, tuple[int, str]] = Field(
        default_factory=dict,
        description='per-customer cap per channel across all journeys, JSON {"sms": [3, "1d"]}',
    )
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:15432/orchestrator",
        description="PostgreSQL URL of the audit store (libpq form)",
    )
    audit_batch_max: int = Field(
        5000, ge=1, description="most interaction records the audit sink writes per transaction"
    )
    audit_checkpoint_s: float = Field(
        60.0, gt=0, description="how often the audit sink checkpoints every chain head"
    )
    audit_sink_shard: str = Field(
        "0/1",
        description="which partitions of `interactions` this audit sink stores: I/N owns "
        "those with partition % N == I (run one sink per I from 0 to N-1)",
    )
    audit_personal_fields: str = Field(
        "to,content,properties,traits,changes,email,phone",
        description="comma-separated field names whose values the audit store encrypts per "
        "customer (at any depth of a record), so erasing a customer makes them unreadable",
    )
    tasks_dir: str = Field(
        "journeys/tasks",
        description="directory of the task files (`*.yaml`) whose customer-perceived cycle "
        "times `GET /v1/measure/tasks` and `orchestrator report` show",
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        # libpq would only fail at connect time, with a less helpful message.
        if urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError(
                "not a PostgreSQL URL: it must start with postgresql://, "
                "e.g. postgresql://postgres@127.0.0.1:15432/orchestrator"
            )
        return value

    @field_validator("audit_sink_shard")
    @classmethod
    def _check_audit_sink_shard(cls, value: str) -> str:
        return checked_shard(value)  # raises ValueError saying what to write

    @field_validator("backtest_window")
    @classmethod
    def _check_backtest_window(cls, value: str) -> str:
        parse_duration(value)  # raises ValueError saying what is wrong
        return value

    @field_validator("global_cap")
    @classmethod
    def _check_global_cap(cls, value: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
        global_caps(value)  # raises ValueError saying what is wrong
        return value

    def engine_config(self) -> EngineConfig:
        """The guards the engine applies across journeys (the runtime and `simulate` alike)."""
        return EngineConfig(global_cap=global_caps(self.global_cap))

    def as_environment(self) -> dict[str, str]:
        """These settings as `ORCHESTRATOR_*` variables, for a worker process to read back."""
        return {
            _environment_name(name): _environment_value(value)
            for name, value in self
            if value is not None  # unset stays unset (not the string "None")
        }


def _environment_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):  # pydantic-settings reads complex values as JSON
        return jsonwire.dumps(value).decode()
    return str(value)


def _environment_name(field: str) -> str:
    """The variable a field is read from first: its alias if it has some, else by prefix."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])  # every alias here is a plain variable name
    return f"ORCHESTRATOR_{field.upper()}"


def redacted_url(url: str) -> str:
    """`url` without its password, fit for an error message or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value raises `ConfigurationError` naming it."""
    try:
        return Settings(**overrides)
    except SettingsError as exc:
        # A JSON-valued setting (e.g. ORCHESTRATOR_GLOBAL_CAP) that is not JSON at all.
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "a setting"
        raise ConfigurationError(
            f"ORCHESTRATOR_{field.upper()} is not valid JSON: write it as JSON "
            "(see docs/operations.md §2) or unset it for the default"
        ) from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field, *path = (str(part) for part in error["loc"])
            # An aliased field is located by its full variable name already.
            name = (
                field.upper()
                if field.startswith("ORCHESTRATOR_")
                else f"ORCHESTRATOR_{field.upper()}"
            )
            if path:  # inside a JSON-valued setting: say where
                name = f"{name} (at {'.'.join(path)})"
            shown = error.get("input")
            if name in _URL_SETTINGS and isinstance(shown, str):
                shown = redacted_url(shown)
            message = str(error["msg"]).removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
            problems.append(f"{name}={shown}: {message}")
        raise ConfigurationError(
            "; ".join(problems) + " (fix the environment variable or unset it for the default)"
        ) from None

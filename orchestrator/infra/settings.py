"""Runtime configuration, read once from `ORCHESTRATOR_*` environment variables."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import SettingsError

from orchestrator import jsonwire
from orchestrator.engine.config import EngineConfig, global_caps
from orchestrator.errors import ConfigurationError
from orchestrator.infra.channel_settings import SETTINGS_CONFIG, ChannelSettings
from orchestrator.infra.shard import checked_shard
from orchestrator.timefmt import parse_duration

__all__ = ["Settings", "load_settings", "redacted_url"]

_REDIS_SCHEMES = ("redis", "rediss", "unix")
# Settings holding URLs that may carry a password, shown redacted in errors.
_URL_SETTINGS = ("ORCHESTRATOR_REDIS_URL", "ORCHESTRATOR_DATABASE_URL")


class Settings(ChannelSettings):
    """Every runtime setting; each field is read from `ORCHESTRATOR_<NAME>`. The channels'
    (connector workers', the bounce receiver's) are declared in `ChannelSettings`."""

    model_config = SETTINGS_CONFIG

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

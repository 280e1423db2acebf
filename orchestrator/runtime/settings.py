"""Runtime configuration, read once from `ORCHESTRATOR_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Every runtime setting; each field is read from `ORCHESTRATOR_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="ORCHESTRATOR_", frozen=True, extra="ignore")

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
        "faust", description="what feeds journey workers: a faust agent or a bare consumer"
    )
    operator: str = Field("cli", description="who deploys: recorded in the interaction log")
    startup_timeout_s: float = Field(
        120.0, gt=0, description="how long a starting worker waits for Kafka and Redis"
    )
    shutdown_timeout_s: float = Field(
        20.0, gt=0, description="longest a stopping worker waits for its clients to close"
    )
    health_host: str = Field("127.0.0.1", description="address of the worker's /health server")
    health_port: int = Field(
        9464, ge=0, le=65535, description="port of the worker's /health and /metrics; 0: off"
    )

    def as_environment(self) -> dict[str, str]:
        """These settings as `ORCHESTRATOR_*` variables, for a worker process to read back."""
        return {f"ORCHESTRATOR_{name.upper()}": str(value) for name, value in self}

"""A running `orchestrator connectors` process serves `/health` and `/metrics`.

Against aiosmtpd (email, rate-limited to 1/s so some emails wait) and an SMS provider that is
not there (its circuit opens, its messages wait in the retry schedule); and a second process
whose Kafka never answers, which is 503 while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.dev.standins.smtp import smtp_server
from orchestrator.infra.settings import Settings
from tests.connector_harness import (
    ConnectorProcess,
    connector_settings,
    outbound,
    publish_outbound,
)
from tests.runtime_harness import prepare, wait_until


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _get(url: str) -> httpx.Response | None:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return await client.get(url)
    except httpx.TransportError:
        return None


async def _samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value of every sample `/metrics` answers."""
    answer = await _get(f"{base}/metrics")
    if answer is None or answer.status_code != 200:
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


@contextlib.asynccontextmanager
async def _silent_broker() -> AsyncIterator[str]:
    """A TCP port that accepts connections and never answers: a Kafka that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_health_and_metrics_of_a_running_connector_process(
    infrastructure: Settings, tmp_path: Path
) -> None:
    with smtp_server() as (mails, smtp_port):
        metrics_port = _free_port()
        settings = connector_settings(
            infrastructure,
            smtp_port=smtp_port,
            connector_metrics_port=metrics_port,
            connector_rate_limits={"smtp": 1.0, "twilio": 100.0},
            connector_breaker_open_s=60.0,
        )
        await prepare(settings)
        base = f"http://127.0.0.1:{metrics_port}"
        process = ConnectorProcess(settings, "email,sms", tmp_path / "connectors.log")
        try:

            async def healthy() -> bool:
                answer = await _get(f"{base}/health")
                return answer is not None and answer.status_code == 200

            await wait_until(healthy, "the connector process is healthy")
            answer = await _get(f"{base}/health")
            assert answer is not None and answer.json()["state"] == "healthy"

            emails = [
                outbound(f"hm-{n}", "email", f"hm{n}@example.com", {"subject": "s", "body": "b"})
                for n in range(3)
            ]
            texts = [outbound(f"hs-{n}", "sms", f"+1555777000{n}", {"body": "b"}) for n in range(4)]
            await publish_outbound(settings, emails + texts)

            def value(name: str, **labels: str) -> float:
                return figures.get((name, tuple(sorted(labels.items()))), 0.0)

            figures: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

            async def settled() -> bool:
                figures.update(await _samples(base))
                return (
                    value(
                        "orchestrator_connector_deliveries_total",
                        channel="email",
                        outcome="delivered",
                    )
                    == 3
                    and value(
                        "orchestrator_connector_circuit_state", provider="twilio", state="open"
                    )
                    == 1
                    and value("orchestrator_connector_retry_schedule_depth", channel="sms") == 4
                    # A rate-limited email leaves the schedule just after it is counted.
                    and value("orchestrator_connector_retry_schedule_depth", channel="email") == 0
                )

            await wait_until(settled, "emails delivered, the SMS circuit open", timeout=60)
            assert len(mails.messages) == 3
            # The rate limit (1/s, a burst of one) made the two later emails wait, each once:
            # it reserved each a slot, so none was turned away again at its slot.
            assert value("orchestrator_connector_rate_limit_waits_total", provider="smtp") == 2
            # Three failures (connector_breaker_failures) opened the circuit; each was retried.
            assert value("orchestrator_connector_retries_total", channel="sms") >= 3
            assert (
                value("orchestrator_connector_circuit_state", provider="smtp", state="closed") == 1
            )
            assert (
                value("orchestrator_connector_deliveries_total", channel="sms", outcome="failed")
                == 0
            )
        finally:
            assert process.terminate() == 0, process.log()


async def test_health_is_503_while_kafka_does_not_answer(
    infrastructure: Settings, tmp_path: Path
) -> None:
    async with _silent_broker() as broker:
        metrics_port = _free_port()
        settings = connector_settings(
            infrastructure, connector_metrics_port=metrics_port, kafka_bootstrap=broker
        )
        process = ConnectorProcess(settings, "in_app", tmp_path / "connectors.log")
        try:
            answers: list[httpx.Response] = []

            async def answered() -> bool:
                answer = await _get(f"http://127.0.0.1:{metrics_port}/health")
                if answer is not None:
                    answers.append(answer)
                return answer is not None

            await wait_until(answered, "the connector process serves /health")
            assert answers[-1].status_code == 503
            assert answers[-1].json()["state"] == "starting"
        finally:
            process.kill()

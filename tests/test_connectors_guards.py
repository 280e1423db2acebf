"""The Redis guards of delivery: circuit breaker states, the shared rate limit, claims."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectors.guards import CircuitBreaker, DeliveryMarks, RateLimiter
from connectors.worker import ConnectorWorker
from orchestrator.errors import ConfigurationError, DependencyUnavailableError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.connector_harness import connector_settings
from tests.runtime_harness import isolated_settings, redis_client


async def test_the_circuit_opens_then_lets_one_probe_through(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    async with redis_client(settings) as redis:
        keys = RedisKeys(settings.redis_prefix)
        breaker = CircuitBreaker(redis, keys, failures=2, open_for=0.3, probe=5.0)
        assert await breaker.wait_for("p") == 0
        assert await breaker.record("p", ok=False) == "closed"
        assert await breaker.record("p", ok=False) == "open"
        assert 0 < await breaker.wait_for("p") <= 0.3
        await asyncio.sleep(0.35)  # the open period itself is what is under test
        assert await breaker.wait_for("p") == 0  # the probe
        assert await breaker.wait_for("p") > 0  # everyone else waits for its outcome
        assert await breaker.record("p", ok=False) == "open"  # a failed probe reopens
        await asyncio.sleep(0.35)
        assert await breaker.wait_for("p") == 0
        assert await breaker.record("p", ok=True) == "closed"
        assert await breaker.wait_for("p") == 0
        assert await breaker.wait_for("other") == 0  # per provider


async def test_the_rate_limit_is_shared_by_every_client(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    keys = RedisKeys(settings.redis_prefix)
    async with redis_client(settings) as one, redis_client(settings) as two:
        first = RateLimiter(one, keys, {"p": 5.0})
        second = RateLimiter(two, keys, {"p": 5.0})
        calls: list[tuple[float, float, float]] = []  # (sent, answered, wait)
        for n in range(8):
            sent = time.monotonic()
            wait = await (first if n % 2 else second).reserve("p")
            calls.append((sent, time.monotonic(), wait))
        waits = [wait for _, _, wait in calls]
        assert waits[:5] == [0.0] * 5  # a burst of one second's worth
        assert 0 < waits[5] <= 0.2  # then one every 1/5 s, whoever asks
        # Each caller told to wait gets a slot of its own, 1/5 s after the one before: the
        # slot is (Redis's now + wait), Redis's now lies between sending and answering.
        for later, earlier in ((calls[6], calls[5]), (calls[7], calls[6])):
            shortest = later[0] + later[2] - (earlier[1] + earlier[2])
            longest = later[1] + later[2] - (earlier[0] + earlier[2])
            assert shortest - 0.002 <= 0.2 <= longest + 0.002  # Redis's clock has ms
        assert await first.reserve("unlimited") == 0


async def test_a_claim_is_exclusive_until_released_or_done(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    async with redis_client(settings) as redis:
        marks = DeliveryMarks(redis, RedisKeys(settings.redis_prefix), lease=30, keep=60)
        claim = await marks.claim("m1")
        assert claim.status == "claimed"
        busy = await marks.claim("m1")
        assert busy.status == "busy" and 29 < busy.wait <= 30
        await marks.release("m1", "claim:not-mine", provider_has_none=True)
        assert (await marks.claim("m1")).status == "busy"
        await marks.release("m1", claim.token, provider_has_none=True)
        again = await marks.claim("m1")
        assert again.status == "claimed"
        await marks.finish("m1", {"state": "recorded"})
        done = await marks.claim("m1")
        assert done.status == "done" and done.mark == {"state": "recorded"}


def test_a_channel_without_its_settings_names_them(infrastructure: Settings) -> None:
    with pytest.raises(ConfigurationError, match="ORCHESTRATOR_TWILIO_ACCOUNT_SID"):
        ConnectorWorker(isolated_settings(infrastructure), ["sms"])
    with pytest.raises(ConfigurationError, match="ORCHESTRATOR_SMTP_FROM"):
        ConnectorWorker(isolated_settings(infrastructure), ["email"])


async def test_a_connector_worker_waits_for_redis_at_start_then_names_it(
    infrastructure: Settings,
) -> None:
    # Its links' signing keys are shared through Redis: started while Redis is away, it
    # waits (as every process does) and then says what to fix, one line, no traceback.
    settings = connector_settings(
        infrastructure,
        redis_url="redis://127.0.0.1:9/0",
        startup_timeout_s=1.0,
        connector_metrics_port=0,
    )
    with pytest.raises(DependencyUnavailableError, match="fix ORCHESTRATOR_REDIS_URL"):
        async with ConnectorWorker(settings, ["email"]):
            pass

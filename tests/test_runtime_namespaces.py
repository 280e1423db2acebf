"""Dropping a namespace removes its topics and keys and nothing else."""

from __future__ import annotations

from orchestrator.dev.namespaces import delete_keys, delete_topics
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import kafka_admin, topic_specs
from tests.runtime_harness import isolated_settings, prepare, wait_until


async def test_dropping_a_namespace_keeps_the_others(infrastructure: Settings) -> None:
    doomed = isolated_settings(infrastructure)
    kept = isolated_settings(infrastructure)
    await prepare(doomed)
    await prepare(kept)
    doomed_topics = {spec.name for spec in topic_specs(doomed)}
    kept_topics = {spec.name for spec in topic_specs(kept)}
    redis = connect_redis(infrastructure)
    try:
        for settings in (doomed, kept):
            await redis.set(f"{settings.redis_prefix}a", "1")
            await redis.set(f"{settings.redis_prefix}{{c:x}}", "1")

        dropped = await delete_topics(
            infrastructure.kafka_bootstrap, lambda name: name.startswith(doomed.topic_prefix)
        )
        removed = await delete_keys(redis, f"{doomed.redis_prefix}*")

        assert set(dropped) == doomed_topics
        assert removed == 2
        assert await redis.exists(f"{kept.redis_prefix}a", f"{kept.redis_prefix}{{c:x}}") == 2
    finally:
        await redis.aclose()
    # Deletion is committed before the call returns; brokers' metadata catches up after.
    await wait_until(
        lambda: _gone(infrastructure, doomed_topics), "the dropped topics leave the metadata"
    )
    assert kept_topics <= await _listed(infrastructure)


async def _listed(settings: Settings) -> set[str]:
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        return set(await admin.list_topics())


async def _gone(settings: Settings, topics: set[str]) -> bool:
    return not topics & await _listed(settings)

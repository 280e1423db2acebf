"""Scale-out on the real distributed engines, on loopback (issue 20, item 3).

    .venv/bin/python bench/scaleout.py                  # curve for 1, 2, 4 workers + failover
    .venv/bin/python bench/scaleout.py --customers 500 --workers 1 2

Starts (idempotently) a three-broker Kafka cluster (deploy/local/kafka-cluster.sh: KRaft,
replication factor 3, min.insync.replicas=2) and a Redis Cluster of three masters with a
replica each (deploy/local/redis-cluster.sh with REDIS_CLUSTER_REPLICAS=1), then:

1. the throughput curve: N `orchestrator worker` processes in one group apply the demo
   population's backlog on the journey library; events per second from the first publish
   until every event is committed, for each N;
2. the failover drill: under a steady load of customers each owed one SMS (tests'
   drill journey), kill -9 one Kafka broker, then fail a Redis master over to its replica
   (CLUSTER FAILOVER on the replica); every expected message must be on `outbound` exactly
   once, counted by message_id.

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator import jsonwire  # noqa: E402
from orchestrator.control.operations import JourneyOperations  # noqa: E402
from orchestrator.control.publisher import EventPublisher  # noqa: E402
from orchestrator.dev.demo.population import Population  # noqa: E402
from orchestrator.infra.names import RedisKeys, TopicNames  # noqa: E402
from orchestrator.infra.redisclient import connect_redis  # noqa: E402
from orchestrator.infra.settings import Settings  # noqa: E402
from orchestrator.infra.topics import ensure_topics  # noqa: E402
from orchestrator.journey.library import read_sources  # noqa: E402
from tests.drill_rig import DRILL_JOURNEYS, Owed, drill_customers, publish_steadily  # noqa: E402
from tests.runtime_harness import (  # noqa: E402
    WorkerProcess,
    group_state,
    read_all,
    reader,
    topic_size,
    wait_all_consumed,
    wait_until,
)

LOCAL = ROOT / "deploy" / "local"
KAFKA_BASE = 19101
REDIS_BASE = 17101
STATE = Path(os.environ.get("ORCHESTRATOR_LOCAL_DIR", Path.home() / ".cache/orchestrator-local"))
CLUSTER_ENV = {
    "KAFKA_CLUSTER_BASE_PORT": str(KAFKA_BASE),
    "REDIS_CLUSTER_BASE_PORT": str(REDIS_BASE),
    "REDIS_CLUSTER_REPLICAS": "1",
}
RUN = uuid.uuid4().hex[:8]


def cluster(script: str, command: str = "start") -> None:
    """Run one of the cluster scripts (they wait until healthy)."""
    subprocess.run([LOCAL / script, command], env={**os.environ, **CLUSTER_ENV}, check=True)


def cluster_settings(name: str) -> Settings:
    """Default settings on the clusters, in a namespace of this run."""
    brokers = ",".join(f"127.0.0.1:{KAFKA_BASE + n}" for n in range(3))
    return Settings().model_copy(
        update={
            "kafka_bootstrap": brokers,
            "replication_factor": 3,
            "redis_url": f"redis://127.0.0.1:{REDIS_BASE}/0",
            "redis_cluster": True,
            "topic_prefix": f"scale.{RUN}.{name}.",
            "redis_prefix": f"scale:{RUN}:{name}:",
            "group_id": f"scale-{RUN}-{name}",
            "health_port": 0,
        }
    )


async def start_workers(settings: Settings, count: int, logs: Path) -> list[WorkerProcess]:
    """`count` worker processes, once they form a stable group."""
    workers = [WorkerProcess(settings, logs / f"{settings.group_id}-{n}.log") for n in range(count)]

    async def joined() -> bool:
        return await group_state(settings) == ("Stable", count)

    await wait_until(joined, f"{count} workers joined", timeout=180, interval=0.5)
    return workers


@dataclass(frozen=True)
class CurvePoint:
    """What `count` workers did with the population's backlog, and what it left behind."""

    workers: int
    events: int
    events_per_s: int
    # What a worker does with one core to itself, whatever else shares this machine.
    events_per_cpu_s: int
    active_instances: int
    redis_bytes_per_instance: int  # customer keys only
    redis_bytes_per_customer: int  # every key of the namespace
    redis_keys_bytes_by_kind: dict[str, tuple[int, int]]
    log_bytes_per_event: dict[str, int]  # one replica's .log segments, by topic
    records_per_event: dict[str, float]  # records on `outbound` and `interactions`


async def throughput(customers: int, count: int, logs: Path) -> CurvePoint:
    """Events per second for `count` workers applying the population's backlog."""
    settings = cluster_settings(f"curve{count}")
    await ensure_topics(settings)
    sources, _ = read_sources([ROOT / "journeys"])
    await JourneyOperations(settings, "bench").deploy(sources)
    now = time.time()
    events = [
        e
        for e in Population(customers, now - 3600, spread_days=0.04).events()
        if e.occurred_at <= now
    ]
    workers = await start_workers(settings, count, logs)
    try:
        cpu_before = sum(cpu_seconds(w.process.pid) for w in workers)
        started = time.perf_counter()
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
        await wait_all_consumed(settings, timeout=900)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(w.process.pid) for w in workers) - cpu_before
    finally:
        for worker in workers:
            worker.terminate()
    kinds = await redis_by_kind(settings)
    instances = await active_instances(settings)
    customer_count = kinds.get("c", (0, 0))[0]
    names = TopicNames(settings.topic_prefix)
    disk = {
        topic: round(log_bytes(getattr(names, topic)) / len(events))
        for topic in ("events", "outbound", "interactions")
    }
    return CurvePoint(
        workers=count,
        events=len(events),
        events_per_s=round(len(events) / elapsed),
        events_per_cpu_s=round(len(events) / cpu),
        active_instances=instances,
        redis_bytes_per_instance=round(kinds.get("c", (0, 0))[1] / max(instances, 1)),
        redis_bytes_per_customer=round(
            sum(size for _, size in kinds.values()) / max(customer_count, 1)
        ),
        redis_keys_bytes_by_kind=kinds,
        log_bytes_per_event=disk,
        records_per_event={
            topic: round(await topic_size(settings, getattr(names, topic)) / len(events), 3)
            for topic in ("outbound", "interactions")
        },
    )


def log_bytes(topic: str) -> int:
    """Bytes of `topic`'s segments on one broker (each broker holds a replica of it all;
    index files are preallocated, so only the .log files count)."""
    data = STATE / f"kafka-cluster-{KAFKA_BASE}" / "node-1" / "data"
    return sum(f.stat().st_size for d in data.glob(f"{topic}-*") for f in d.glob("*.log"))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def redis_by_kind(settings: Settings) -> dict[str, tuple[int, int]]:
    """Redis keys of the namespace by kind ("c" customers, "a" addresses, "t" timers, "j"
    journeys...: the key's hash tag up to its first colon): (keys, bytes of MEMORY USAGE)."""
    redis = connect_redis(settings)
    kinds: dict[str, tuple[int, int]] = {}
    try:
        async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
            kind = key.decode()[len(settings.redis_prefix) :].strip("{").split(":")[0]
            count, size = kinds.get(kind, (0, 0))
            kinds[kind] = (count + 1, size + int(await redis.memory_usage(key, samples=0) or 0))
    finally:
        await redis.aclose()
    return kinds


async def active_instances(settings: Settings) -> int:
    """Members of every journey's member set: one per active journey instance."""
    keys = RedisKeys(settings.redis_prefix)
    redis = connect_redis(settings)
    try:
        return sum(
            [
                int(await redis.scard(members))
                async for members in redis.scan_iter(match=keys.journey_members("*"))
            ]
        )
    finally:
        await redis.aclose()


def kill_broker(node: int) -> None:
    """kill -9 one node of the Kafka cluster."""
    pidfile = STATE / f"kafka-cluster-{KAFKA_BASE}" / f"node-{node}" / "kafka.pid"
    os.kill(int(pidfile.read_text()), signal.SIGKILL)


def fail_over_redis() -> str:
    """CLUSTER FAILOVER on the replica of one master; the promoted replica's address."""
    nodes = [
        line.split()
        for line in subprocess.run(
            ["redis-cli", "-p", str(REDIS_BASE), "cluster", "nodes"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    ]
    masters = {fields[0] for fields in nodes if "master" in fields[2].split(",")}
    replica = next(fields[1] for fields in nodes if fields[3] in masters)
    address = replica.split("@")[0]
    port = address.rsplit(":", 1)[1]
    subprocess.run(["redis-cli", "-p", port, "cluster", "failover"], check=True)
    return address


async def failover(customers: int, rate: float, logs: Path) -> dict[str, object]:
    """Steady load on 2 workers; kill a broker, fail a Redis master over; count `outbound`."""
    settings = cluster_settings("failover")
    await ensure_topics(settings)
    sources, _ = read_sources([DRILL_JOURNEYS])
    await JourneyOperations(settings, "bench").deploy(sources)
    load_events = drill_customers("failover", customers)
    owed = {s.message_id for s in Owed.of([e for c in load_events for e in c]).sends.values()}
    workers = await start_workers(settings, 2, logs)
    try:
        load = asyncio.create_task(publish_steadily(settings, load_events, rate))
        await asyncio.sleep(customers / rate / 4)  # a quarter into the load: pacing
        kill_broker(2)
        await asyncio.sleep(customers / rate / 4)  # and half-way: pacing
        promoted = await asyncio.to_thread(fail_over_redis)
        await load
        await wait_all_consumed(settings, timeout=300)
        async with reader(settings, TopicNames(settings.topic_prefix).outbound) as outbound:
            messages = await read_all(outbound, settings)
        exited = [w.log_path.name for w in workers if w.process.poll() is not None]
    finally:
        for worker in workers:
            worker.terminate()
        await asyncio.to_thread(cluster, "kafka-cluster.sh")  # brings node 2 back
    counts = Counter(m["message_id"] for m in messages)
    return {
        "expected": len(owed),
        "delivered_once": sum(counts[m] == 1 for m in owed),
        "duplicated": sum(counts[m] - 1 for m in owed if counts[m] > 1),
        "lost": sum(m not in counts for m in owed),
        "unexpected": sum(m not in owed for m in counts),
        "redis_promoted": promoted,
        "workers_exited": exited,
    }


async def main(
    customers: int, counts: list[int], drill_size: int
) -> tuple[list[CurvePoint], dict[str, object]]:
    """The curve, then the failover drill."""
    await asyncio.to_thread(cluster, "kafka-cluster.sh")
    await asyncio.to_thread(cluster, "redis-cluster.sh")
    curve = []
    with tempfile.TemporaryDirectory(prefix="orchestrator-scaleout-") as logs:
        for count in counts:
            point = await throughput(customers, count, Path(logs))
            print(f"  {asdict(point)}", file=sys.stderr, flush=True)
            curve.append(point)
        drill = await failover(drill_size, 20.0, Path(logs))
    return curve, drill


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000, help="population of the curve")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--drill-customers", type=int, default=600, help="at 20 a second")
    args = parser.parse_args()
    curve, drill = asyncio.run(main(args.customers, args.workers, args.drill_customers))
    print(f"{'workers':>8} {'events':>8} {'events/s':>9} {'events/cpu-s':>13} {'bytes/inst':>11}")
    for p in curve:
        print(
            f"{p.workers:>8} {p.events:>8} {p.events_per_s:>9} {p.events_per_cpu_s:>13}"
            f" {p.redis_bytes_per_instance:>11}"
        )
    print(f"failover: {drill}")
    print(jsonwire.dumps({"curve": [asdict(p) for p in curve], "failover": drill}).decode())

"""`orchestrator demo`: the engine's main job, end to end, on local Kafka and Redis.

Starts the local infrastructure if needed, deploys the journey library (and the demo's own
delivery-feedback journey), starts journey workers, connector workers and the API, with a
local SMTP server and Twilio and FCM stand-ins as the providers; plays a few thousand
synthetic customers' lives on a fast-forwarded clock while some of them answer their SMS;
and reports progress and a closing summary from the interaction log and the receipts.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import aiohttp

from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.dev.demo.catchup import let_workers_catch_up
from orchestrator.dev.demo.closing import Stores, write_closing
from orchestrator.dev.demo.database import DemoDatabase, drop_idle_databases
from orchestrator.dev.demo.population import Population, phone_number
from orchestrator.dev.demo.processes import DemoProcesses
from orchestrator.dev.demo.providers import DELIVERED_CHANNELS, DemoProviders, demo_providers
from orchestrator.dev.demo.replies import Repliers
from orchestrator.dev.demo.report import ChannelCounts, Tally, channel_table
from orchestrator.dev.demo.tail import Tail
from orchestrator.dev.demo.teams import demo_rules
from orchestrator.dev.localinfra import ensure_local_infrastructure
from orchestrator.dev.namespaces import delete_keys, delete_topics, drop_namespaces
from orchestrator.dev.standins.local import free_port
from orchestrator.engine.events import Event
from orchestrator.errors import ConfigurationError
from orchestrator.infra.clock import ScaledClock
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics
from orchestrator.journey.library import read_sources

__all__ = ["DemoOptions", "run_demo"]

_DAY = 86400.0
# Workers need a few seconds to join the group; the virtual clock starts after that.
_WARM_UP_SECONDS = 6.0
_EARLIER_RUN_TOPIC = re.compile(r"(demo\d+)\.")
_LOCAL_DIR = Path.home() / ".cache" / "orchestrator-local"
# The demo's own journeys (the SMS conversation), deployed beside the library.
_DEMO_JOURNEYS = Path(__file__).parent / "journeys"
# After the last event the demo waits for every delivery while they progress; this long
# without any progress means something is stuck.
_STALL_SECONDS = 30.0
_UNREACHABLE_EVERY = 40
_API_START_SECONDS = 60.0


class DemoOptions:
    """What to play: how many customers, how fast, for how long, on how many workers."""

    def __init__(
        self, customers: int, speed: float, days: float, workers: int, journeys: Path
    ) -> None:
        self.customers = customers
        self.speed = speed
        self.days = days
        self.workers = workers
        self.journeys = journeys


async def run_demo(options: DemoOptions, out: TextIO) -> int:
    """Run the demo; returns the process exit code."""
    base = Settings()
    ensure_local_infrastructure(base, out)
    await _drop_earlier_runs(base, out)
    run = f"demo{int(time.time())}"
    # The run's own audit store, held open while it runs (so no other demo drops it).
    database = DemoDatabase(base.database_url, run)
    await database.create()
    try:
        return await _prepare(run, database, options, base, out)
    finally:
        await database.close()


async def _prepare(
    run: str, database: DemoDatabase, options: DemoOptions, base: Settings, out: TextIO
) -> int:
    log_dir = _LOCAL_DIR / run
    rules_file, rules = demo_rules(Path(base.feedback_rules), log_dir)
    origin = time.time() + _WARM_UP_SECONDS
    api_port = free_port()
    settings = base.model_copy(
        update={
            "topic_prefix": f"{run}.",
            "redis_prefix": f"{run}:",
            "group_id": f"{run}-journeys",
            "connector_group": f"{run}-connectors",
            "clock_speed": options.speed,
            "clock_origin": origin,
            "operator": "demo",
            "api_host": "127.0.0.1",
            "api_port": api_port,
            # Several processes on one host cannot share the default /health ports.
            "health_port": 0,
            "connector_metrics_port": 0,
            "feedback_metrics_port": 0,
            "database_url": database.url,
            "feedback_rules": str(rules_file),
            "feedback_group": f"{run}-feedback",
            # The view's queues then keep every item: the summary counts them by source.
            "feedback_queue_max": 1_000_000,
        }
    )
    clock = ScaledClock(options.speed, origin)
    await ensure_topics(settings)
    sources, problems = read_sources([options.journeys, _DEMO_JOURNEYS])
    if problems:
        raise ConfigurationError("; ".join(map(str, problems)))
    for outcome in await JourneyOperations(settings).deploy(sources):
        out.write(f"deployed {outcome.journey} v{outcome.version}\n")
    # Every 40th customer's phone is switched off: Twilio takes the SMS, then reports it
    # undelivered, and the API turns that callback into `message.failed`.
    unreachable = {
        phone_number(n)
        for n in range(_UNREACHABLE_EVERY - 1, options.customers, _UNREACHABLE_EVERY)
    }
    async with demo_providers(log_dir, unreachable) as providers:
        api_url = f"http://127.0.0.1:{api_port}"
        settings = settings.model_copy(update=providers.settings(api_url))
        processes = DemoProcesses(settings, log_dir)
        try:
            ready = processes.run("db", "upgrade")
            if ready.returncode != 0:
                raise ConfigurationError(f"the demo's audit store: {ready.stderr}")
            stores = Stores(database, rules)
            return await _run(
                options,
                settings,
                clock=clock,
                processes=processes,
                providers=providers,
                stores=stores,
                out=out,
            )
        finally:
            processes.stop_all()


async def _run(
    options: DemoOptions,
    settings: Settings,
    *,
    clock: ScaledClock,
    processes: DemoProcesses,
    providers: DemoProviders,
    stores: Stores,
    out: TextIO,
) -> int:
    processes.spawn("audit-sink", "audit-sink", "--log-level", "warning")
    processes.spawn("feedback", "feedback", "--log-level", "warning")
    workers = [f"worker-{n}" for n in range(options.workers)]
    for name in workers:
        processes.spawn(name, "worker")
    # Email, the busiest channel, gets a connector worker of its own (and so its own core).
    processes.spawn("connectors-email", "connectors", "--channels", "email")
    others = ",".join(c for c in DELIVERED_CHANNELS if c != "email")
    processes.spawn("connectors", "connectors", "--channels", others)
    processes.spawn("api", "api", "--log-level", "warning")
    await _wait_for_api(settings.public_url, processes)
    providers.twilio.inbound_url = f"{settings.public_url}/v1/webhooks/twilio/inbound"
    events = Population(
        options.customers, clock.origin, run=settings.topic_prefix.rstrip(".")
    ).events()
    end = clock.origin + options.days * _DAY
    out.write(
        f"{options.workers} journey workers, connector workers ({', '.join(DELIVERED_CHANNELS)}) "
        f"and the API ({settings.public_url}) started (logs in {processes.log_dir});\n"
        f"providers: SMTP 127.0.0.1:{providers.smtp_port}, Twilio stand-in "
        f"{providers.twilio.base_url}, FCM stand-in {providers.fcm.base_url}; playing "
        f"{len(events)} events of {options.customers} customers over {options.days:g} days at "
        f"{options.speed:g}x "
        f"({options.days * _DAY / options.speed:.0f} s)\n"
    )
    out.flush()
    tally = Tally()
    topics = TopicNames(settings.topic_prefix)
    tails = [
        Tail(settings, topics.interactions, tally.add),
        Tail(settings, topics.events, tally.add_event),
    ]
    tasks = [asyncio.create_task(tail.run()) for tail in tails]
    repliers = Repliers(providers.twilio, _locales(events))
    try:
        await _play(settings, clock, events, end=end, tally=tally, out=out, tick=repliers.poll)
        caught_up = await let_workers_catch_up(
            settings, tally, providers, repliers, out=out, stall=_STALL_SECONDS
        )
        # Workers stop first, so `outbound` is final; then the deliveries are waited for.
        # In a thread: the stand-ins share this event loop and must keep answering meanwhile.
        await asyncio.to_thread(processes.stop, workers)
        settled = await _settle(tails, tally, providers, out)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    tally.write_summary(out)
    counts = ChannelCounts(
        providers.delivered(), len(providers.twilio.confirmations), DELIVERED_CHANNELS
    )
    out.write(
        "\nPer channel: produced to outbound, taken by the provider (counted there), "
        "receipts back\n"
    )
    for line in channel_table(tally, counts):
        out.write(f"  {line}\n")
    out.write(
        f"Demo customers answered the feedback SMS: {_kinds(repliers.sent)}; Twilio "
        f"sent {len(providers.twilio.confirmations)} STOP confirmations.\n"
        f"The API's inbound webhooks counted: {_kinds(await _inbound_stats(settings))}.\n"
        f"The Twilio stand-in made status callbacks: {_kinds(providers.twilio.callbacks)}.\n"
    )
    for error in providers.twilio.callback_errors[:5]:
        out.write(f"  a webhook call failed: {error}\n")
    problems = await write_closing(
        stores, settings, processes, out, records=tally.records, replies=repliers.replies
    )
    out.write(
        f"\nTopics (prefix {settings.topic_prefix}), Redis keys and the database "
        f"{stores.database.name} are kept until the next demo; Kafka, Redis and PostgreSQL keep "
        "running (deploy/local/down.sh stops them).\n"
    )
    if not caught_up:
        problems.append(
            f"the journey workers stopped applying events for {_STALL_SECONDS:.0f} s: see "
            f"their logs in {processes.log_dir}"
        )
    for problem in problems:
        out.write(f"PROBLEM: {problem}\n")
    if not settled:
        out.write(
            f"Deliveries stopped progressing for {_STALL_SECONDS:.0f} s before every message "
            f"reached its provider: see the connectors' logs in {processes.log_dir}.\n"
        )
        return 1
    return 1 if problems else 0


def _locales(events: list[Event]) -> dict[str, str]:
    """Each demo customer's locale, by phone number (from their profiles)."""
    return {
        str(e.properties["phone"]): str(e.properties.get("locale", "en"))
        for e in events
        if e.name == "profile.updated" and "phone" in e.properties
    }


def _kinds(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"


async def _inbound_stats(settings: Settings) -> Counter[str]:
    """What the API counted at its Twilio webhooks (keywords, replies, unknown senders)."""
    redis = connect_redis(settings)
    try:
        stats = await redis.hgetall(RedisKeys(settings.redis_prefix).inbound_stats())
    finally:
        await redis.aclose()
    return Counter(
        {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in stats.items()}
    )


async def _wait_for_api(url: str, processes: DemoProcesses) -> None:
    """Until the API answers `/healthz`; a typed error if it exits or never answers."""
    deadline = time.monotonic() + _API_START_SECONDS
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
        while time.monotonic() < deadline:
            if processes.exited():
                break
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with client.get(f"{url}/healthz") as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise ConfigurationError(
        f"the demo's API did not start on {url}: see {processes.log_dir / 'api.log'}"
    )


def _waiting(tally: Tally, providers: DemoProviders) -> dict[str, int]:
    """Per channel, outbound messages without a receipt yet; plus status callbacks to make."""
    sent = tally.totals()[1]
    waiting = {}
    for channel in DELIVERED_CHANNELS:
        receipts = tally.receipts[channel]
        missing = sent[channel] - receipts["sent"] - receipts["failed"]
        if missing > 0:
            waiting[channel] = missing
    if providers.twilio.callbacks_pending:
        waiting["status callbacks"] = providers.twilio.callbacks_pending
    return waiting


async def _settle(tails: list[Tail], tally: Tally, providers: DemoProviders, out: TextIO) -> bool:
    """Wait for every delivery while they progress, reporting every 2 s; False if stuck."""
    await tails[0].catch_up(_STALL_SECONDS)  # every send the workers recorded is counted
    last: dict[str, int] = {}
    moved = next_report = time.monotonic()
    while waiting := _waiting(tally, providers):
        now = time.monotonic()
        if waiting != last:
            last, moved = waiting, now
        elif now - moved > _STALL_SECONDS:
            return False
        if now >= next_report:
            next_report = now + 2.0
            left = " ".join(f"{what}={n}" for what, n in waiting.items())
            out.write(f"delivering the rest | waiting: {left}\n")
            out.flush()
        await asyncio.sleep(0.2)
    # The API answers a callback once its event is in Kafka: read up to here.
    await tails[1].catch_up(10.0)
    return True


async def _drop_earlier_runs(settings: Settings, out: TextIO) -> None:
    """Delete the databases, topics, keys and worker logs earlier demo runs left behind;
    keep those of a demo still running (connected to its database)."""
    dropped, in_use = await drop_idle_databases(settings.database_url)
    for run in in_use:
        out.write(f"demo {run} is running (its database is in use): its data is kept\n")

    def idle(topic: str) -> bool:
        match = _EARLIER_RUN_TOPIC.match(topic)
        return match is not None and match.group(1) not in in_use

    if not in_use:
        await drop_namespaces(settings, idle, "demo[0-9]*")
    else:
        # Key globs cannot leave a run out: each idle run's keys go by their own prefix.
        runs = {t.split(".")[0] for t in await delete_topics(settings.kafka_bootstrap, idle)}
        runs |= {d.name for d in _LOCAL_DIR.glob("demo[0-9]*")} | set(dropped)
        redis = connect_redis(settings)
        try:
            for run in sorted(runs - set(in_use)):
                await delete_keys(redis, f"{run}:*")
        finally:
            await redis.aclose()
    for log_dir in _LOCAL_DIR.glob("demo[0-9]*"):
        if log_dir.name not in in_use:
            shutil.rmtree(log_dir, ignore_errors=True)


async def _play(
    settings: Settings,
    clock: ScaledClock,
    events: list[Event],
    *,
    end: float,
    tally: Tally,
    out: TextIO,
    tick: Callable[[], None],
) -> None:
    """Publish each event when the virtual clock reaches it, `tick` each round; report every
    2 s."""
    published = 0
    next_report = time.monotonic()
    async with EventPublisher(settings) as publisher:
        while clock.now() < end:
            now = clock.now()
            first = published
            while published < len(events) and events[published].occurred_at <= now:
                published += 1
            if published > first:
                await publisher.publish(events[first:published])
            if time.monotonic() >= next_report:
                next_report += 2.0
                day = max(0.0, (now - clock.origin) / _DAY)
                out.write(tally.progress_line(day, published) + "\n")
                out.flush()
            tick()
            await asyncio.sleep(0.05)
        await publisher.flush()

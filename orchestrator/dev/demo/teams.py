"""The feedback router in the demo: its rules, and where the customers' words should land.

The router runs with the library's rules (journeys/routing/), less the teams' webhook and
email targets: those are Northwind's own addresses, which the demo cannot stand in for (the
same reason the demo delivers no `webhook` channel). Every free-text reply a demo customer
sends is routed here with the same rules, so the summary can set what the router put on the
team topics beside what it should have.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import yaml

from orchestrator.control.feedbackview import FeedbackView
from orchestrator.dev.demo.population import customer_id
from orchestrator.dev.demo.replies import Reply
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.journey.routing import FeedbackText, RoutingTable, read_routing

__all__ = ["demo_rules", "expected_teams", "routed_teams"]

# The journey the demo's question belongs to (journeys/delivery-feedback.yaml).
_ASKING_JOURNEY = "delivery-feedback"


def demo_rules(library: Path, directory: Path) -> tuple[Path, RoutingTable]:
    """Write the library's rules without the teams' webhook and email targets; compile them."""
    rules = yaml.safe_load(library.read_text(encoding="utf-8"))
    rules["teams"] = {team: {} for team in rules["teams"]}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "feedback-rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, read_routing(path)


def expected_teams(table: RoutingTable, run: str, replies: list[Reply]) -> Counter[str]:
    """Per team, how many of these replies the router should route there.

    STOP and bare scores are not feedback (docs/feedback.md); a score with words is.
    """
    teams: Counter[str] = Counter()
    for reply in replies:
        if reply.kind == "stop" or reply.text.strip().isdigit():
            continue
        item = FeedbackText(
            text=reply.text,
            source="message.replied",
            customer_id=customer_id(run, reply.number),
            channel="sms",
            locale=reply.locale,
            journey=_ASKING_JOURNEY,
        )
        teams[table.route(item).team] += 1
    return teams


async def routed_teams(
    settings: Settings, expected: int, within: float
) -> tuple[Counter[str], Counter[str]]:
    """Per team, the replies (`message.replied`) and the other items (survey comments) the
    router routed, read from its view (whose queues keep every item: the demo raises
    `feedback_queue_max`); waits up to `within` seconds for `expected` replies in all."""
    redis = connect_redis(settings)
    view = FeedbackView(redis, RedisKeys(settings.redis_prefix), TopicNames(settings.topic_prefix))
    deadline = time.monotonic() + within
    try:
        while True:
            replies: Counter[str] = Counter()
            others: Counter[str] = Counter()
            for team in await view.teams():
                queue = await view.team(team.team, settings.feedback_queue_max)
                replies[team.team] += 0  # every team shows, routed to or not
                for item in queue.items if queue else []:
                    counted = replies if item["source"] == "message.replied" else others
                    counted[team.team] += 1
            if replies.total() >= expected or time.monotonic() > deadline:
                return replies, others
            await asyncio.sleep(0.2)  # polling: the view has no notification to await
    finally:
        await redis.aclose()

"""The per-team feedback view in Redis: counts, each team's latest items, theme trends.

The feedback router writes it (`record`, once per item whatever the redeliveries: a `seen`
mark with the item id makes it idempotent); the API reads it (`teams`, `team`). Every key
shares the `{fb}` hash tag, so one script updates them together on Redis Cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator import jsonwire
from orchestrator.contracts.feedback import FeedbackRecord
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.redisclient import RedisClient
from orchestrator.timefmt import parse_instant

__all__ = ["FeedbackView", "TeamCount", "TeamQueue", "iso_week"]

# How long an item's `seen` mark stays: redeliveries and reroutes come within days; the
# marks of half a year of feedback cost little.
SEEN_SECONDS = 180 * 24 * 3600

# KEYS: seen, counts, queue, themes, the original item's seen mark. ARGV: team, record
# JSON, week|theme, queue max, seen seconds, rerouted (1/0), the team a rerouted item moves
# from ('' if none). Returns 1 when recorded, 0 when the item was already.
_RECORD = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[5]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
if ARGV[6] == '1' then redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':rerouted', 1) end
if ARGV[7] ~= '' then
  redis.call('HINCRBY', KEYS[2], ARGV[7], -1)
  redis.call('SET', KEYS[5], ARGV[1], 'KEEPTTL')
end
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
return 1
"""


def iso_week(instant: str) -> str:
    """`2026-05-01T09:30:00Z` -> `2026-W18` (the ISO week the instant falls in, UTC)."""
    year, week, _ = datetime.fromtimestamp(parse_instant(instant), UTC).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class TeamCount:
    """One team's totals: items routed to it (of which `rerouted` by a replay)."""

    team: str
    topic: str
    triage: bool
    items: int
    rerouted: int


@dataclass(frozen=True, slots=True)
class TeamQueue:
    """One team's latest items (newest first) and theme counts per ISO week."""

    team: str
    topic: str
    triage: bool
    items: list[dict[str, Any]]
    trend: dict[str, dict[str, int]]


class FeedbackView:
    """Reads and writes the view's keys under one deployment's prefixes."""

    def __init__(self, redis: RedisClient, keys: RedisKeys, topics: TopicNames) -> None:
        self.redis = redis
        self.keys = keys
        self.topics = topics
        self._record = redis.register_script(_RECORD)

    async def register_teams(self, teams: list[str], triage: str) -> None:
        """Announce the rules' teams (the router does at start), so empty queues show too."""
        mapping = {
            team: jsonwire.dumps({"topic": self.topics.feedback(team), "triage": team == triage})
            for team in teams
        }
        await self.redis.hset(self.keys.feedback_teams(), mapping=mapping)  # type: ignore[arg-type]

    async def record(
        self, record: FeedbackRecord, queue_max: int, moved_from: str | None = None
    ) -> bool:
        """Count and queue one routed item, once: False when it was already recorded.

        A rerouted item `moved_from` a team counts there no more (its queue keeps it, as
        history) and the original item's mark names its new team.
        """
        keys = self.keys
        done = await self._record(
            keys=[
                keys.feedback_seen(record.item_id),
                keys.feedback_counts(),
                keys.feedback_queue(record.team),
                keys.feedback_themes(record.team),
                keys.feedback_seen(record.original_item_id or record.item_id),
            ],
            args=[
                record.team,
                record.to_json(),
                f"{iso_week(record.at)}|{record.theme}",
                queue_max,
                SEEN_SECONDS,
                "1" if record.rerouted else "0",
                moved_from or "",
            ],
        )
        return bool(done)

    async def team_of(self, item_id: str) -> str | None:
        """The team an item is routed to now (after any reroute), if the view has it."""
        team = await self.redis.get(self.keys.feedback_seen(item_id))
        return None if team is None else _text(team)

    async def teams(self) -> list[TeamCount]:
        """Every announced team with its counts (items it holds now), by name."""
        teams = await self.redis.hgetall(self.keys.feedback_teams())
        counts = {
            _text(name): int(count)
            for name, count in (await self.redis.hgetall(self.keys.feedback_counts())).items()
        }
        found: list[TeamCount] = []
        for raw_team in sorted(teams):
            team = _text(raw_team)
            meta = jsonwire.loads(teams[raw_team])
            found.append(
                TeamCount(
                    team,
                    str(meta["topic"]),
                    bool(meta["triage"]),
                    counts.get(team, 0),
                    counts.get(f"{team}:rerouted", 0),
                )
            )
        return found

    async def team(self, team: str, limit: int) -> TeamQueue | None:
        """A team's queue and trend; None when the rules have no such team."""
        meta_raw = await self.redis.hget(self.keys.feedback_teams(), team)
        if meta_raw is None:
            return None
        meta = jsonwire.loads(meta_raw)
        raw_items = await self.redis.lrange(self.keys.feedback_queue(team), 0, limit - 1)
        themes = await self.redis.hgetall(self.keys.feedback_themes(team))
        trend: dict[str, dict[str, int]] = {}
        for field_raw, count in themes.items():
            week, _, theme = _text(field_raw).partition("|")
            trend.setdefault(week, {})[theme] = int(count)
        return TeamQueue(
            team,
            str(meta["topic"]),
            bool(meta["triage"]),
            [jsonwire.loads(item) for item in raw_items],
            {week: dict(sorted(trend[week].items())) for week in sorted(trend)},
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

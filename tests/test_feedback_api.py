"""`/v1/feedback/teams`: counts and the routed share, a team's queue and its themes' trend."""

from __future__ import annotations

from orchestrator.contracts.events import EventRecord
from orchestrator.control.feedbackview import FeedbackView, iso_week
from orchestrator.feedback.items import feedback_of, routed_record
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.journey.routing import compile_routing
from tests.api_harness import api_client, bearer, role_keys
from tests.runtime_harness import isolated_settings, prepare, redis_client

RULES = """\
routing: api
triage: triage
teams: {billing: {}, delivery: {}, triage: {}}
rules:
  - id: refunds
    team: billing
    keywords: {en: [refund, "charged twice"]}
  - id: parcels
    team: delivery
    keywords: {en: [parcel]}
"""

COMMENTS = [
    ("2026-04-28T10:00:00Z", "refund please"),  # ISO week 18
    ("2026-04-29T10:00:00Z", "I was charged twice"),
    ("2026-05-05T10:00:00Z", "refund, again"),  # week 19
    ("2026-05-05T11:00:00Z", "where is my parcel"),
    ("2026-05-06T11:00:00Z", "thanks"),
]


def test_iso_weeks() -> None:
    assert iso_week("2026-05-01T09:30:00Z") == "2026-W18"
    assert iso_week("2027-01-01T00:00:00Z") == "2026-W53"


async def test_team_counts_queue_and_trend(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    keys = await role_keys(settings)
    table = compile_routing("rules.yaml", RULES)
    async with redis_client(settings) as redis:
        view = FeedbackView(
            redis, RedisKeys(settings.redis_prefix), TopicNames(settings.topic_prefix)
        )
        await view.register_teams(list(table.teams), table.triage)
        for i, (at, text) in enumerate(COMMENTS):
            event = EventRecord(
                event_id=f"e-{i}",
                customer_id=f"c-{i}",
                name="survey.answered",
                occurred_at=at,
                properties={"comment": text},
            )
            item = feedback_of(event)
            assert item is not None
            record = routed_record(event, item, table.route(item), table, "https://api.example")
            assert await view.record(record, queue_max=2)
            # Recording an item again (a redelivery) changes nothing.
            assert not await view.record(record, queue_max=2)
    operator = bearer(keys["operator"])
    async with api_client(settings) as client:
        teams = (await client.get("/v1/feedback/teams", headers=operator)).json()
        billing = (await client.get("/v1/feedback/teams/billing", headers=operator)).json()
        missing = await client.get("/v1/feedback/teams/nobody", headers=operator)
        refused = await client.get("/v1/feedback/teams", headers=bearer(keys["publisher"]))
    prefix = settings.topic_prefix
    assert teams == {
        "teams": [
            {
                "team": "billing",
                "topic": f"{prefix}feedback.billing",
                "triage": False,
                "items": 3,
                "rerouted": 0,
            },
            {
                "team": "delivery",
                "topic": f"{prefix}feedback.delivery",
                "triage": False,
                "items": 1,
                "rerouted": 0,
            },
            {
                "team": "triage",
                "topic": f"{prefix}feedback.triage",
                "triage": True,
                "items": 1,
                "rerouted": 0,
            },
        ],
        "total": 5,
        "routed": 4,
        "in_triage": 1,
        "routed_share": 0.8,
    }
    # The queue keeps the latest `queue_max` items, newest first; the trend counts them all.
    assert [(i["text"], i["customer_id"], i["theme"]) for i in billing["items"]] == [
        ("refund, again", "c-2", "refunds:refund"),
        ("I was charged twice", "c-1", "refunds:charged twice"),
    ]
    assert (
        billing["items"][0]["timeline_url"]
        == "https://api.example/v1/audit/records?customer=c-2&order=newest"
    )
    assert billing["trend"] == [
        {"week": "2026-W18", "themes": {"refunds:charged twice": 1, "refunds:refund": 1}},
        {"week": "2026-W19", "themes": {"refunds:refund": 1}},
    ]
    assert missing.status_code == 404 and missing.json()["code"] == "team_not_found"
    assert refused.status_code == 403


async def test_the_view_works_on_redis_cluster(
    infrastructure: Settings, redis_cluster_url: str
) -> None:
    settings = isolated_settings(infrastructure, redis_url=redis_cluster_url, redis_cluster=True)
    table = compile_routing("rules.yaml", RULES)
    event = EventRecord(
        event_id="e-1",
        customer_id="c-1",
        name="app.review",
        occurred_at="2026-05-01T09:30:00Z",
        properties={"text": "where is my parcel", "rating": 2},
    )
    item = feedback_of(event)
    assert item is not None
    record = routed_record(event, item, table.route(item), table, "https://api.example")
    async with redis_client(settings) as redis:
        view = FeedbackView(
            redis, RedisKeys(settings.redis_prefix), TopicNames(settings.topic_prefix)
        )
        await view.register_teams(list(table.teams), table.triage)
        assert await view.record(record, queue_max=10)
        assert not await view.record(record, queue_max=10)
        queue = await view.team("delivery", 10)
        counts = {team.team: team.items for team in await view.teams()}
    assert queue is not None and [i["item_id"] for i in queue.items] == [record.item_id]
    assert queue.trend == {"2026-W18": {"parcels:parcel": 1}}
    assert counts == {"billing": 0, "delivery": 1, "triage": 0}

"""Synthetic customers whose events walk the whole lifecycle the journey library covers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.engine.events import Event

__all__ = ["Population", "customer_id", "phone_number"]

_HOUR = 3600.0
_DAY = 24 * _HOUR
_FIRST_NAMES = (
    "Ada",
    "Bruno",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Keiko",
    "Liam",
    "Maya",
    "Noor",
    "Oscar",
    "Priya",
    "Quinn",
    "Rosa",
)
_ZONES = (
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "UTC",
)
_PRODUCTS = (
    ("TBL-OAK-6", "Oak dining table", 420.0),
    ("CHR-OAK", "Oak dining chair", 89.0),
    ("LMP-BRS", "Brass floor lamp", 129.0),
    ("RUG-WOL", "Wool rug", 210.0),
    ("CND-3", "Candle set", 19.9),
    ("PAN-CST", "Cast-iron pan", 45.0),
)


def customer_id(run: str, n: int) -> str:
    """Customer `n`'s id in demo run `run`."""
    return f"{run}-{n:05d}"


def phone_number(n: int) -> str:
    """Customer `n`'s phone number (its last five digits are `n`)."""
    return f"+4477009{n:05d}"


@dataclass(slots=True)
class _Life:
    customer_id: str
    rng: random.Random
    start: float
    events: list[Event] = field(default_factory=list)

    def add(self, at: float, name: str, props: dict[str, Any], channel: str | None = None) -> None:
        self.events.append(
            Event(
                f"{self.customer_id}:{len(self.events)}", self.customer_id, name, at, channel, props
            )
        )

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def later(self, at: float, low_hours: float, high_hours: float) -> float:
        return at + self.rng.uniform(low_hours, high_hours) * _HOUR


class Population:
    """Generates, deterministically from `seed`, the events of `size` customers.

    Sign-ups spread over the first `spread_days`; each life then unfolds over about ten days.
    """

    def __init__(
        self, size: int, start: float, seed: int = 7, spread_days: float = 2.0, run: str = "demo"
    ) -> None:
        self.size = size
        self.start = start
        self.seed = seed
        self.spread = spread_days * _DAY
        self.run = run

    def events(self) -> list[Event]:
        """Every customer's events, sorted by time."""
        found = [e for n in range(self.size) for e in self._life(n)]
        found.sort(key=lambda e: e.occurred_at)
        return found

    def _life(self, n: int) -> Iterator[Event]:
        rng = random.Random(self.seed * 1_000_003 + n)  # noqa: S311 - synthetic data only
        life = _Life(customer_id(self.run, n), rng, self.start + rng.uniform(0, self.spread))
        at = life.start
        self._sign_up(life, n, at)
        if life.chance(0.6):
            self._activation(life, at)
        if life.chance(0.55):
            self._purchase(life, life.later(at, 12, 96))
        elif life.chance(0.35):
            life.add(
                life.later(at, 80, 120),
                "customer.lapsing",
                {
                    "days_since_last_order": rng.randint(60, 200),
                    "churn_score": round(rng.uniform(0.5, 0.95), 2),
                },
            )
        if life.chance(0.12):
            self._payment_trouble(life, life.later(at, 24, 150))
        if life.chance(0.2):
            self._support(life, life.later(at, 20, 160))
        return iter(life.events)

    def _sign_up(self, life: _Life, n: int, at: float) -> None:
        rng = life.rng
        profile: dict[str, Any] = {
            "first_name": rng.choice(_FIRST_NAMES),
            "locale": "fr" if life.chance(0.2) else "en",
            "timezone": rng.choice(_ZONES),
            "interest": rng.choice(("kitchen", "outdoor", "living")),
            "tier": "gold" if life.chance(0.1) else "standard",
        }
        if life.chance(0.95):
            profile["email"] = f"customer{n}@example.com"
        if life.chance(0.7):
            profile["phone"] = phone_number(n)
        if life.chance(0.5):
            profile["push_token"] = f"dev-{n:05d}"  # a token the FCM stand-in knows
        life.add(at - 60, "profile.updated", profile)
        if "phone" in profile and life.chance(0.5):
            life.add(at - 30, "consent.updated", {"channel": "sms", "status": "opted_in"})
        if life.chance(0.04):
            life.add(at - 20, "consent.updated", {"channel": "email", "status": "opted_out"})
        life.add(
            at, "customer.signed_up", {"source": rng.choice(("web", "app", "referral"))}, "web"
        )
        life.add(at + 300, "account.created", {"plan": rng.choice(("free", "pro"))}, "app")

    def _activation(self, life: _Life, at: float) -> None:
        used = life.later(at, 2, 60)
        life.add(
            used,
            "feature.used",
            {"feature": "room_plan_created", "plan_name": "Living room"},
            "app",
        )
        if life.chance(0.6):
            life.add(life.later(used, 4, 48), "account.activated", {}, "app")

    def _purchase(self, life: _Life, at: float) -> None:
        rng = life.rng
        order_id = f"NW-{rng.randint(10000, 99999)}"
        picked = rng.sample(_PRODUCTS, k=rng.randint(1, 3))
        total = round(sum(price for _, _, price in picked), 2)
        recommendations = [
            {
                "sku": sku,
                "name": name,
                "price": f"{price:.2f}",
                "url": f"https://shop.example/p/{sku}",
            }
            for sku, name, price in _PRODUCTS
            if (sku, name, price) not in picked
        ][:2]
        life.add(
            at,
            "order.completed",
            {
                "order_id": order_id,
                "total": total,
                "items": [{"sku": s, "name": nm, "price": f"{p:.2f}"} for s, nm, p in picked],
                "recommendations": recommendations,
            },
            "web",
        )
        shipped = life.later(at, 10, 30)
        life.add(
            shipped,
            "order.shipped",
            {
                "order_id": order_id,
                "carrier": "DHL",
                "tracking_url": f"https://track.example/{order_id}",
                "eta": "in 3 days",
            },
        )
        delivered = life.later(shipped, 48, 80)
        if life.chance(0.15):
            life.add(
                life.later(shipped, 12, 30),
                "order.delayed",
                {"order_id": order_id, "delay_days": rng.randint(1, 5), "new_eta": "next week"},
            )
            delivered += 3 * _DAY
        life.add(delivered, "order.delivered", {"order_id": order_id})
        if life.chance(0.4):
            life.add(
                life.later(delivered, 7 * 24 + 12, 8 * 24 + 20),
                "survey.answered",
                {"survey": "nps", "order_id": order_id, "score": rng.randint(0, 10)},
                "email",
            )

    def _payment_trouble(self, life: _Life, at: float) -> None:
        invoice = f"inv_{life.rng.randint(1000, 9999)}"
        life.add(
            at,
            "payment.failed",
            {"invoice_id": invoice, "amount": "9.99", "currency": "EUR", "reason": "card expired"},
        )
        if life.chance(0.6):
            life.add(
                life.later(at, 2, 40),
                "payment.succeeded",
                {"invoice_id": invoice, "amount": "9.99"},
            )

    def _support(self, life: _Life, at: float) -> None:
        ticket = f"T-{life.rng.randint(100, 999)}"
        life.add(
            at,
            "ticket.closed",
            {"ticket_id": ticket, "agent_name": "Marco", "subject": "Delivery question"},
        )
        if life.chance(0.5):
            life.add(
                life.later(at, 2, 30),
                "survey.answered",
                {"survey": "csat", "ticket_id": ticket, "score": life.rng.randint(1, 5)},
                "email",
            )

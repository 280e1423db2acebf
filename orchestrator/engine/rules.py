"""Small pure rules the engine applies at a send: consent, addresses, quiet hours, caps, splits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ADDRESS_FIELDS",
    "blocked_reason",
    "choose_variant",
    "next_window_opening",
    "split_bucket",
]

# Where a channel's address lives in the profile; channels not listed need none.
ADDRESS_FIELDS: Mapping[str, str] = {
    "email": "email",
    "sms": "phone",
    "whatsapp": "phone",
    "push": "push_token",
}
_OPT_IN_CHANNELS = frozenset({"sms", "whatsapp"})


def blocked_reason(
    channel: str, category: str, consent: Mapping[str, str], profile: Mapping[str, Any]
) -> str | None:
    """Why a send on `channel` may not go out (`opted_out`, `no_consent`, `no_address`), or None."""
    status = consent.get(channel)
    if status == "opted_out":
        return "opted_out"
    if category == "marketing" and channel in _OPT_IN_CHANNELS and status != "opted_in":
        return "no_consent"
    address_field = ADDRESS_FIELDS.get(channel)
    if address_field is not None and not profile.get(address_field):
        return "no_address"
    return None


def split_bucket(customer_id: str, journey: str, step: str) -> float:
    """A stable number in [0, 100) for this customer at this split step."""
    digest = hashlib.sha256(f"{customer_id}\0{journey}\0{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def choose_variant(
    bucket: float, arms: tuple[tuple[str, int, str | None], ...]
) -> tuple[str, str | None]:
    """(variant, next step) for a bucket: arms own consecutive slices sized by weight.

    The next step is None for the holdout arm.
    """
    upper = 0
    for variant, weight, target in arms:
        upper += weight
        if bucket < upper:
            return variant, target
    variant, _, target = arms[-1]
    return variant, target


@lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def next_window_opening(now: float, window: tuple[int, int], timezone: str | None) -> float | None:
    """None when `now` is inside the local-time window; else when it next opens (epoch s)."""
    zone = _zone(timezone or "UTC")
    local = datetime.fromtimestamp(now, zone)
    minute = local.hour * 60 + local.minute
    start, end = window
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if inside:
        return None
    opening = datetime(local.year, local.month, local.day, start // 60, start % 60, tzinfo=zone)
    if opening.timestamp() <= now:
        tomorrow = local.date() + timedelta(days=1)
        opening = datetime(
            tomorrow.year, tomorrow.month, tomorrow.day, start // 60, start % 60, tzinfo=zone
        )
    return opening.timestamp()

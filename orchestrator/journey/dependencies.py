"""A journey's touch-point dependencies, read from its definition: what each send relies on.

Every send step depends on a channel, the provider that carries it, a template, and the hosts
its message links to (a shortener, a video host, a help centre) or posts to (a webhook
receiver). When one of them fails, the customer's journey breaks at that step unless another
channel can carry the message. A send step is a **single point of failure** when all its
channels go through one provider: one channel and no fallback, or fallbacks that share the
provider (SMS and WhatsApp both go through Twilio).

Pure: the live view (circuits open now, customers held at each step) is
`orchestrator.control.dependencies`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from liquid.exceptions import LiquidError

from orchestrator.journey.plan import CompiledJourney, StepPlan
from orchestrator.journey.templates import MessageTemplate

__all__ = [
    "DYNAMIC_HOST",
    "SURVEY_PAGE",
    "JourneyDependencies",
    "SendDependency",
    "journey_dependencies",
    "provider_of",
]

# The provider each channel's connector delivers through; rate limits and circuit breakers are
# kept per provider. Webhooks are per receiving host (`webhook:<host>`).
_CHANNEL_PROVIDERS: dict[str, str] = {
    "email": "smtp",
    "sms": "twilio",
    "whatsapp": "twilio",
    "push": "fcm",
    "in_app": "inbox",
}

_URL = re.compile(r"https?://[^\s\"'<>()\[\]]+", re.IGNORECASE)

# What a host is called when a template builds it from data (`https://{{ host }}/...`).
DYNAMIC_HOST = "(computed per message)"
# The `{survey_url}` placeholder the email connector replaces with a signed link to our own
# survey page (served by `orchestrator api`): the API is then a dependency of the message.
SURVEY_PAGE = "(our survey page)"


def provider_of(channel: str, content: Mapping[str, Any]) -> str:
    """The provider a message on `channel` goes through (`webhook:<host>` for webhooks)."""
    if channel == "webhook":
        return f"webhook:{urlsplit(str(content.get('url', ''))).hostname or '-'}"
    return _CHANNEL_PROVIDERS.get(channel, channel)


@dataclass(frozen=True, slots=True)
class SendDependency:
    """What one send step relies on, and whether a single failure stops its message."""

    step: str
    channels: tuple[str, ...]
    providers: tuple[str, ...]  # the provider of each channel, in the same order
    template: str
    link_hosts: tuple[str, ...]
    single_point: str | None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the API and `orchestrator validate --risks --json`."""
        return {
            "step": self.step,
            "channels": list(self.channels),
            "providers": list(self.providers),
            "template": self.template,
            "link_hosts": list(self.link_hosts),
            "single_point": self.single_point,
        }


@dataclass(frozen=True, slots=True)
class JourneyDependencies:
    """Every touch-point a journey's sends depend on, step by step."""

    journey: str
    version: int
    sends: tuple[SendDependency, ...]

    @property
    def channels(self) -> tuple[str, ...]:
        return _union(send.channels for send in self.sends)

    @property
    def providers(self) -> tuple[str, ...]:
        return _union(send.providers for send in self.sends)

    @property
    def templates(self) -> tuple[str, ...]:
        return _union((send.template,) for send in self.sends)

    @property
    def link_hosts(self) -> tuple[str, ...]:
        return _union(send.link_hosts for send in self.sends)

    @property
    def single_points(self) -> tuple[SendDependency, ...]:
        return tuple(send for send in self.sends if send.single_point)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the API."""
        return {
            "journey": self.journey,
            "version": self.version,
            "channels": list(self.channels),
            "providers": list(self.providers),
            "templates": list(self.templates),
            "link_hosts": list(self.link_hosts),
            "sends": [send.to_json() for send in self.sends],
            "single_points": [send.step for send in self.single_points],
        }


def journey_dependencies(journey: CompiledJourney) -> JourneyDependencies:
    """The dependency map of a compiled journey, its send steps in definition order."""
    sends = tuple(
        _send_dependency(step, journey.templates[step.template])
        for step in journey.steps.values()
        if step.kind == "send" and step.template is not None
    )
    return JourneyDependencies(journey=journey.id, version=journey.version, sends=sends)


def _send_dependency(step: StepPlan, template: MessageTemplate) -> SendDependency:
    providers: list[str] = []
    hosts: set[str] = set()
    for channel in step.channels:
        rendered = [_skeleton(template, channel, locale) for locale in template.content]
        for content in rendered:
            # A webhook's own URL is its provider; hosts inside its payload are dependencies.
            hosts.update(_hosts(content.get("payload") if channel == "webhook" else content))
        provider = provider_of(channel, rendered[0] if rendered else {})
        providers.append(f"webhook:{DYNAMIC_HOST}" if provider == "webhook:-" else provider)
    distinct = set(providers)
    single = None
    if len(distinct) == 1:
        single = (
            f"only {step.channels[0]} ({providers[0]}), no fallback channel"
            if len(step.channels) == 1
            else f"{' and '.join(step.channels)} all go through {providers[0]}"
        )
    return SendDependency(
        step=step.id,
        channels=step.channels,
        providers=tuple(providers),
        template=template.name,
        link_hosts=tuple(sorted(hosts)),
        single_point=single,
    )


def _skeleton(template: MessageTemplate, channel: str, locale: str) -> dict[str, Any]:
    """One locale's content rendered with no data: the fixed text, where URLs' hosts live.

    A field that cannot render without data (a filter on a missing value) is left out; a host
    built from data renders empty and shows as computed per message.
    """
    fields = template.content[locale].get(channel, {})
    out: dict[str, Any] = {}
    for name, compiled in fields.items():
        try:
            out[name] = _render(compiled)
        except LiquidError:
            continue
    return out


def _render(compiled: Any) -> Any:
    if isinstance(compiled, dict):
        return {key: _render(value) for key, value in compiled.items()}
    if isinstance(compiled, list):
        return [_render(value) for value in compiled]
    if hasattr(compiled, "render"):
        return compiled.render()
    return compiled


def _hosts(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {host for item in value.values() for host in _hosts(item)}
    if isinstance(value, list):
        return {host for item in value for host in _hosts(item)}
    if not isinstance(value, str):
        return set()
    hosts = {urlsplit(url).hostname or DYNAMIC_HOST for url in _URL.findall(value)}
    return hosts | {SURVEY_PAGE} if "{survey_url}" in value else hosts


def _union(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item)
    return tuple(seen)

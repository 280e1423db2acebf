"""Message templates: per-channel, per-locale Liquid content stored beside the journeys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from liquid import BoundTemplate, Environment
from liquid.exceptions import LiquidError

from orchestrator.journey.liquid_subset import SubsetTemplate, subset_of
from orchestrator.journey.yamlpos import Located

__all__ = [
    "BASE_CONTENT",
    "CHANNEL_FIELDS",
    "DEFAULT_LOCALE",
    "MessageTemplate",
    "TemplateError",
    "compile_template",
    "liquid_message",
    "parse_liquid",
]

DEFAULT_LOCALE = "en"
BASE_CONTENT = ""

# (required fields, optional fields) per channel.
CHANNEL_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "email": (frozenset({"subject", "body"}), frozenset({"html"})),
    "sms": (frozenset({"body"}), frozenset()),
    "whatsapp": (frozenset({"body"}), frozenset()),
    "push": (frozenset({"title", "body"}), frozenset()),
    "in_app": (frozenset({"title", "body"}), frozenset()),
    "webhook": (frozenset({"url", "payload"}), frozenset()),
}

_ENVIRONMENT = Environment()


class TemplateError(ValueError):
    """A template is malformed; `path` locates the offending value in its file."""

    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


def liquid_message(exc: LiquidError) -> str:
    """A Liquid error's message on one line (its `str` spans several, with a source excerpt)."""
    return str(exc.message if exc.message is not None else type(exc).__name__)


def parse_liquid(source: str) -> BoundTemplate | SubsetTemplate:
    """Compile Liquid text, also rejecting unknown filters (Liquid finds those only at render).

    Text in the subset `liquid_subset` renders fast comes back as a `SubsetTemplate` (which
    renders exactly as python-liquid does). Raises `TemplateError` (with an empty path)
    saying what to fix.
    """
    try:
        template = _ENVIRONMENT.from_string(source)
        unknown = sorted(set(template.filter_names()) - set(_ENVIRONMENT.filters))
    except LiquidError as exc:
        raise TemplateError(
            f"Liquid error: {liquid_message(exc)}; fix the {{{{ }}}} or {{% %}} markup", ()
        ) from exc
    if unknown:
        raise TemplateError(
            f"unknown Liquid filter {', '.join(map(repr, unknown))}: use a standard filter "
            "such as default, upcase, size, date",
            (),
        )
    return subset_of(source, template) or template


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """Compiled content: locale -> channel -> field -> compiled Liquid (or nested payload).

    The key `BASE_CONTENT` ("") holds the top-level content every locale falls back to.
    """

    name: str
    content: Mapping[str, Mapping[str, Mapping[str, Any]]]

    def channels(self) -> frozenset[str]:
        """Channels the base content covers."""
        return frozenset(self.content.get(BASE_CONTENT, {}))

    def locale_for(self, locale: str | None) -> str:
        """The override used for a customer's locale: exact (`fr-CA`), language (`fr`), `en`."""
        wanted = (locale or DEFAULT_LOCALE).replace("_", "-")
        for candidate in (wanted, wanted.split("-", 1)[0], DEFAULT_LOCALE):
            if candidate in self.content:
                return candidate
        return BASE_CONTENT

    def render(self, channel: str, locale: str | None, scope: Mapping[str, Any]) -> dict[str, Any]:
        """Render one channel's fields for a locale, field by field over the base content.

        Raises `LiquidError` when rendering fails; the caller decides how to report it.
        """
        base = self.content.get(BASE_CONTENT, {}).get(channel, {})
        override = self.content.get(self.locale_for(locale), {}).get(channel, {})
        return {
            name: _render_value(override.get(name, compiled), scope)
            for name, compiled in base.items()
        }


def _render_value(compiled: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(compiled, dict):
        return {key: _render_value(value, scope) for key, value in compiled.items()}
    if isinstance(compiled, list):
        return [_render_value(value, scope) for value in compiled]
    if hasattr(compiled, "render"):
        return compiled.render(**scope)
    return compiled


def compile_template(name: str, located: Located) -> MessageTemplate:
    """Check and compile a template file's data; raises `TemplateError` with a path."""
    data = located.data
    if not isinstance(data, dict):
        raise TemplateError(
            "a template file is a mapping of channel -> fields (plus optional `locales`)", ()
        )
    content: dict[str, dict[str, dict[str, Any]]] = {
        BASE_CONTENT: _compile_channels(
            {k: v for k, v in data.items() if k != "locales"}, (), partial=False
        )
    }
    locales = data.get("locales", {})
    if not isinstance(locales, dict):
        raise TemplateError(
            "`locales` maps a locale code (fr, de-CH) to channel content", ("locales",)
        )
    for locale, channels in locales.items():
        if not isinstance(channels, dict):
            raise TemplateError(
                f"locale {locale!r} maps channel -> fields", ("locales", str(locale))
            )
        content[str(locale)] = _compile_channels(channels, ("locales", str(locale)), partial=True)
    return MessageTemplate(name=name, content=content)


def _compile_channels(
    channels: Mapping[str, Any], path: tuple[str | int, ...], *, partial: bool
) -> dict[str, dict[str, Any]]:
    compiled: dict[str, dict[str, Any]] = {}
    for channel, fields in channels.items():
        where = (*path, channel)
        if channel not in CHANNEL_FIELDS:
            raise TemplateError(
                f"unknown channel {channel!r}: use one of {', '.join(CHANNEL_FIELDS)}", where
            )
        if not isinstance(fields, dict):
            raise TemplateError(f"{channel} content is a mapping of field -> text", where)
        required, optional = CHANNEL_FIELDS[channel]
        unknown = set(fields) - required - optional
        if unknown:
            raise TemplateError(
                f"{channel} has no field {', '.join(sorted(unknown))}: "
                f"its fields are {', '.join(sorted(required | optional))}",
                where,
            )
        missing = required - set(fields)
        if missing and not partial:
            raise TemplateError(f"{channel} content needs {', '.join(sorted(missing))}", where)
        compiled[channel] = {
            name: _compile_value(value, (*where, name)) for name, value in fields.items()
        }
    return compiled


def _compile_value(value: Any, path: tuple[str | int, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _compile_value(v, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile_value(v, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            # Text without Liquid markup renders as itself: keep it as text, so every
            # message does not pay Liquid's per-render context for it.
            return value
        try:
            return parse_liquid(value)
        except TemplateError as exc:
            raise TemplateError(str(exc), path) from exc
    return value

"""Tracked links and the open pixel, written into a message as the connector builds it.

`LinkTracker` is one message's: each distinct http(s) URL gets an index (0, 1, ... in order
of first appearance, the same index in the text and HTML parts), and is replaced by a tracked
link whose signed token carries the index and the URL (`orchestrator/infra/tracking.py`).
Everything else (mailto:, tel:, relative and anchor links) is left alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from connectors.base import OutboundMessage
from orchestrator.infra.tracking import Tracked, TrackingTokens

__all__ = ["LinkTracker", "replace_urls"]

# An http(s) URL in an `href` attribute, quoted either way.
_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(https?://[^"'<>\s]+)\2""", re.IGNORECASE)
# An http(s) URL in text, up to whitespace or a delimiter commonly around a URL.
_BARE = re.compile(r"""https?://[^\s<>"'()\[\]]+""", re.IGNORECASE)
# Punctuation that ends a sentence rather than the URL ("see https://x.example.").
_TRAILING = ".,;:!?"
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def replace_urls(text: str, replace: Callable[[str], str]) -> str:
    """`text` with each http(s) URL in it replaced by `replace(url)`."""

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        url = found.rstrip(_TRAILING)
        return replace(url) + found[len(url) :]

    return _BARE.sub(one, text)


class LinkTracker:
    """Rewrites one message's links; `tokens` must be loaded."""

    def __init__(self, tokens: TrackingTokens, message: OutboundMessage) -> None:
        self.tokens = tokens
        self.message = message
        self.indexes: dict[str, int] = {}

    def _tracked(self, url: str | None = None) -> Tracked:
        message = self.message
        link = None if url is None else self.indexes.setdefault(url, len(self.indexes))
        return Tracked(
            message_id=message.message_id,
            customer_id=message.customer_id,
            journey=message.journey,
            step=message.step,
            channel=message.channel,
            instance_id=message.instance_id,
            link=link,
            url=url,
        )

    def text(self, text: str) -> str:
        """`text` with each http(s) URL replaced by its tracked link."""

        return replace_urls(text, lambda url: self.tokens.click_url(self._tracked(url)))

    def html(self, markup: str) -> str:
        """`markup` with each http(s) `href` replaced by its tracked link."""

        def replace(match: re.Match[str]) -> str:
            prefix, quote, url = match.groups()
            # The attribute holds the URL HTML-escaped (`&amp;`): sign what a browser follows.
            tracked = self.tokens.click_url(self._tracked(html.unescape(url)))
            return f"{prefix}{quote}{tracked}{quote}"

        return _HREF.sub(replace, markup)

    def pixel(self, markup: str) -> str:
        """`markup` with a 1x1 open pixel before `</body>` (or at the end)."""
        url = self.tokens.open_url(self._tracked())
        image = (
            f'<img src="{url}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0">'
        )
        ends = list(_BODY_END.finditer(markup))
        if not ends:
            return markup + image
        at = ends[-1].start()
        return markup[:at] + image + markup[at:]

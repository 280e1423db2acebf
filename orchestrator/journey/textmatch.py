"""Whole-word and whole-phrase matching that ignores case and accents ("Rembourse" finds
"remboursé"), for the keyword lists of feedback routing rules."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["Phrase", "contains", "language_of", "phrase_of", "words_of"]

Phrase = tuple[str, ...]

_WORD = re.compile(r"\w+")


def words_of(text: str) -> Phrase:
    """The words of `text`, case-folded and without accents: "Chargé deux fois" ->
    ("charge", "deux", "fois")."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return tuple(_WORD.findall(bare.casefold()))


def phrase_of(keyword: str) -> Phrase:
    """A keyword or phrase as the words it must match in a row (empty if it has none)."""
    return words_of(keyword)


def contains(words: Phrase, phrase: Phrase) -> bool:
    """True when `phrase` occurs in `words` as consecutive whole words."""
    size = len(phrase)
    if size == 0 or size > len(words):
        return False
    first = phrase[0]
    return any(
        words[i] == first and words[i : i + size] == phrase for i in range(len(words) - size + 1)
    )


def language_of(locale: str | None) -> str | None:
    """The language part of a locale: "fr-CA" and "fr_CA" -> "fr"; None stays None."""
    if not locale:
        return None
    return re.split(r"[-_]", locale.strip(), maxsplit=1)[0].lower() or None

"""The feedback routing language: ordered rules sending each piece of free text to one team.

A rules file (`journeys/routing/*.yaml`) names its teams (each with an optional webhook URL
and email address), the `triage` team that gets what no rule matches, and ordered `rules`,
each a CEL condition (`when`, over `item` and `profile`) and/or keyword lists per language,
naming the owning team. The first matching rule wins. Validation reports every problem as
FILE:LINE:COL, like journeys (docs/feedback.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import JourneyValidationError, Problem
from orchestrator.journey.conditions import CelSyntaxError, Condition, compile_condition
from orchestrator.journey.problems import ProblemList
from orchestrator.journey.textmatch import Phrase, contains, language_of, phrase_of, words_of
from orchestrator.journey.yamlpos import Located, YamlSyntaxError, load_located

__all__ = [
    "ANY_LANGUAGE",
    "FeedbackText",
    "Route",
    "RoutingRule",
    "RoutingTable",
    "TeamTarget",
    "compile_routing",
    "is_routing_file",
    "read_routing",
    "validate_routing_files",
]

ROUTING_DIR_NAME = "routing"
# A keyword list under this key applies whatever the item's language.
ANY_LANGUAGE = "any"
_VARIABLES = ("item", "profile")
_EXAMPLE = 'e.g. item.source == "app.review" && item.properties.rating <= 2, profile.tier'
_TEAM_PATTERN = r"^[a-z][a-z0-9_-]*$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_Team = Annotated[str, Field(pattern=_TEAM_PATTERN, max_length=64, description="a team name")]
_Language = Annotated[str, Field(pattern=r"^([a-z]{2,3}|any)$")]


class _TeamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhook: str | None = Field(None, description="http(s) URL each item is POSTed to")
    email: str | None = Field(None, description="address each item is emailed to")


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    team: _Team
    when: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="CEL over `item` and `profile`"
    )
    keywords: dict[_Language, Annotated[list[str], Field(min_length=1)]] | None = Field(
        None, description="language -> words or phrases; any one matches (whole words, any case)"
    )


class _RoutingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routing: Annotated[str, Field(min_length=1, description="the rule set's name")]
    triage: _Team
    teams: dict[_Team, _TeamSpec | None]
    rules: Annotated[list[_RuleSpec], Field(min_length=1)]


@dataclass(frozen=True, slots=True)
class TeamTarget:
    """Where a team's items go besides its topic: a webhook URL, an email address."""

    webhook: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackText:
    """One piece of feedback as rules see it (`item` in CEL, less `profile`)."""

    text: str
    source: str
    customer_id: str
    channel: str | None = None
    locale: str | None = None
    journey: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)

    def scope(self) -> dict[str, Any]:
        """The CEL variables: `item` (text, source, channel, locale, journey, customer_id,
        properties) and `profile`. Absent values are empty strings, so `item.locale ==
        "fr"` is false rather than an error."""
        item = {
            "text": self.text,
            "source": self.source,
            "customer_id": self.customer_id,
            "channel": self.channel or "",
            "locale": self.locale or "",
            "journey": self.journey or "",
            "properties": self.properties,
        }
        return {"item": item, "profile": self.profile}


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """One compiled rule: its keyword phrases by language and/or its condition."""

    id: str
    team: str
    when: Condition | None
    keywords: dict[str, tuple[tuple[str, Phrase], ...]]


@dataclass(frozen=True, slots=True)
class Route:
    """Where an item goes: the team, and the rule and keyword that sent it (None in triage)."""

    team: str
    rule: str | None = None
    keyword: str | None = None

    @property
    def theme(self) -> str:
        """What the item is about, for trends: `rule` or `rule:keyword` (`triage` if none)."""
        if self.rule is None:
            return "triage"
        return self.rule if self.keyword is None else f"{self.rule}:{self.keyword}"


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """A compiled rules file; `digest` (sha256 of its text) marks records it routed."""

    name: str
    path: str
    triage: str
    teams: dict[str, TeamTarget]
    rules: tuple[RoutingRule, ...]
    digest: str

    def route(self, item: FeedbackText) -> Route:
        """The first rule that matches `item`, else the triage team."""
        words = words_of(item.text)
        language = language_of(item.locale)
        scope = item.scope()
        for rule in self.rules:
            keyword = None
            if rule.keywords:
                keyword = _first_keyword(rule, words, language)
                if keyword is None:
                    continue
            if rule.when is not None and not rule.when.evaluate(scope)[0]:
                continue
            return Route(rule.team, rule.id, keyword)
        return Route(self.triage)


def _first_keyword(rule: RoutingRule, words: Phrase, language: str | None) -> str | None:
    # Unknown language: every list may apply. Known: its own list and the `any` list.
    languages = rule.keywords if language is None else (language, ANY_LANGUAGE)
    for lang in languages:
        for keyword, phrase in rule.keywords.get(lang, ()):
            if contains(words, phrase):
                return keyword
    return None


def is_routing_file(path: Path) -> bool:
    """Rules files live in a directory named `routing` (how `orchestrator validate` tells
    them from journeys)."""
    return path.parent.name == ROUTING_DIR_NAME


def read_routing(path: Path) -> RoutingTable:
    """Read and compile a rules file; raises `JourneyValidationError` listing every problem."""
    return compile_routing(str(path), path.read_text(encoding="utf-8"))


def compile_routing(path: str, text: str) -> RoutingTable:
    """Validate and compile a rules file's text (`path` names it in problems)."""
    try:
        located = load_located(text)
    except YamlSyntaxError as exc:
        raise JourneyValidationError([Problem(path, exc.line, exc.col, str(exc))]) from exc
    problems = ProblemList(path, text, located)
    if not isinstance(located.data, dict):
        what = "empty" if located.data is None else f"a {type(located.data).__name__}"
        problems.add(
            (),
            f"the file is {what}, not routing rules: write a YAML mapping with routing, "
            "triage, teams and rules",
        )
        raise JourneyValidationError(problems.items)
    try:
        spec = _RoutingSpec.model_validate(located.data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            if loc[-1:] == ("[key]",):  # a team name or a language code
                problems.add(loc[:-1], _bad_key(loc[:-1]))
            else:
                problems.add_pydantic(error)
        raise JourneyValidationError(problems.sorted()) from exc
    table = _compile(spec, problems, located, path, text)
    if problems.items:
        raise JourneyValidationError(problems.sorted())
    return table


def _bad_key(loc: tuple[str | int, ...]) -> str:
    if loc[:1] == ("teams",):
        return (
            f"team name {loc[-1]!r}: use lower-case letters, digits, - and _ (it names the "
            "team's topic), starting with a letter"
        )
    return (
        f"rules.{loc[1]}.keywords: {loc[-1]!r} is not a language: use a two- or three-letter "
        "code (en, fr, de) or `any`"
    )


def _compile(
    spec: _RoutingSpec, problems: ProblemList, located: Located, path: str, text: str
) -> RoutingTable:
    teams = {name: _target(name, team, problems) for name, team in spec.teams.items()}
    known = ", ".join(teams)
    if spec.triage not in teams:
        problems.add(("triage",), f"triage team {spec.triage!r} is not in `teams`: add it there")
    rules: list[RoutingRule] = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(spec.rules):
        at = ("rules", i)
        if rule.id in seen:
            problems.add(
                (*at, "id"),
                f"duplicate rule id {rule.id!r} (first used by rule #{seen[rule.id] + 1}): "
                "give each rule its own id",
            )
        seen.setdefault(rule.id, i)
        if rule.team not in teams:
            problems.add(
                (*at, "team"), f"rule {rule.id!r}: unknown team {rule.team!r}: use one of {known}"
            )
        if rule.when is None and not rule.keywords:
            problems.add(
                at,
                f"rule {rule.id!r} has neither `when` nor `keywords`: it would match "
                "everything; give it one (unmatched items already go to triage)",
            )
        rules.append(
            RoutingRule(
                rule.id,
                rule.team,
                _condition(rule.when, (*at, "when"), rule.id, problems),
                _keywords(rule, at, problems),
            )
        )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return RoutingTable(spec.routing, path, spec.triage, teams, tuple(rules), digest)


def _target(name: str, team: _TeamSpec | None, problems: ProblemList) -> TeamTarget:
    if team is None:
        return TeamTarget()
    if team.webhook is not None and not re.match(r"^https?://[^\s/]+", team.webhook):
        problems.add(
            ("teams", name, "webhook"),
            f"team {name!r}: webhook {team.webhook!r} is not an http(s) URL: write "
            "https://host/path",
        )
    if team.email is not None and not _EMAIL.match(team.email):
        problems.add(
            ("teams", name, "email"),
            f"team {name!r}: email {team.email!r} is not an address: write name@domain",
        )
    return TeamTarget(team.webhook, team.email)


def _condition(
    source: str | None, at: tuple[str | int, ...], rule: str, problems: ProblemList
) -> Condition | None:
    if source is None:
        return None
    try:
        return compile_condition(source, _VARIABLES, _EXAMPLE)
    except CelSyntaxError as exc:
        line, col = problems.position_in_value(at, source, exc.line, exc.col)
        problems.add_at(line, col, f"rule {rule!r}: when: {exc}")
        return None


def _keywords(
    rule: _RuleSpec, at: tuple[str | int, ...], problems: ProblemList
) -> dict[str, tuple[tuple[str, Phrase], ...]]:
    compiled: dict[str, tuple[tuple[str, Phrase], ...]] = {}
    for language, keywords in (rule.keywords or {}).items():
        phrases: list[tuple[str, Phrase]] = []
        for j, keyword in enumerate(keywords):
            phrase = phrase_of(keyword)
            if not phrase:
                problems.add(
                    (*at, "keywords", language, j),
                    f"rule {rule.id!r}: keyword {keyword!r} has no letters or digits: it "
                    "could never match; remove it",
                )
                continue
            phrases.append((keyword.strip(), phrase))
        compiled[language] = tuple(phrases)
    return compiled


def validate_routing_files(paths: list[Path]) -> tuple[list[RoutingTable], list[Problem]]:
    """Compile each rules file, collecting every problem (unreadable files included)."""
    tables: list[RoutingTable] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            tables.append(read_routing(path))
        except JourneyValidationError as exc:
            problems.extend(exc.problems)
        except OSError as exc:
            problems.append(Problem(str(path), 1, 1, f"cannot read the file: {exc.strerror}"))
        except UnicodeDecodeError:
            problems.append(Problem(str(path), 1, 1, "not UTF-8 text: save the file as UTF-8"))
    return tables, problems

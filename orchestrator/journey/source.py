"""Finding journey files and their templates on disk, as text bundles that can be shipped."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["JourneySource", "TemplateSource", "discover_journey_files", "read_source"]

TEMPLATE_DIR_NAME = "templates"
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class TemplateSource:
    """A template file's text and where it came from."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class JourneySource:
    """A journey file's text with the templates it may use: the unit we validate and deploy."""

    path: str
    text: str
    templates: Mapping[str, TemplateSource] = field(default_factory=dict)

    def digest(self) -> str:
        """sha256 over the journey and its templates, stable across machines."""
        hasher = hashlib.sha256(self.text.encode())
        for name in sorted(self.templates):
            hasher.update(b"\0" + name.encode() + b"\0" + self.templates[name].text.encode())
        return hasher.hexdigest()

    def to_wire(self) -> dict[str, object]:
        """Plain data for the deploy log."""
        return {
            "path": self.path,
            "text": self.text,
            "templates": {n: {"path": t.path, "text": t.text} for n, t in self.templates.items()},
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, object]) -> JourneySource:
        """Inverse of `to_wire`."""
        templates = data.get("templates") or {}
        if not isinstance(templates, dict):
            raise TypeError("templates must be a mapping")
        return cls(
            path=str(data["path"]),
            text=str(data["text"]),
            templates={
                str(n): TemplateSource(path=str(t["path"]), text=str(t["text"]))
                for n, t in templates.items()
            },
        )


def discover_journey_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to the journey files directly inside them (not `templates/`)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _SUFFIXES))
        else:
            found.append(path)
    return found


def read_source(path: Path, template_dirs: Iterable[Path] = ()) -> JourneySource:
    """Read a journey and every template in `templates/` beside it (and `template_dirs`).

    Later directories win, so `--templates DIR` overrides the ones beside the file.
    """
    templates: dict[str, TemplateSource] = {}
    for directory in (path.parent / TEMPLATE_DIR_NAME, *template_dirs):
        if not directory.is_dir():
            continue
        for file in sorted(directory.iterdir()):
            if file.is_file() and file.suffix in _SUFFIXES:
                templates[file.stem] = TemplateSource(str(file), file.read_text(encoding="utf-8"))
    return JourneySource(path=str(path), text=path.read_text(encoding="utf-8"), templates=templates)

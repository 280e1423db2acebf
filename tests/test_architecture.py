"""The package layout's arrows point down only (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "orchestrator"

# Each package and what it may import from `orchestrator` (besides the shared top-level
# modules errors, jsonwire, timefmt). Lower layers never import higher ones.
ALLOWED: dict[str, set[str]] = {
    "journey": set(),
    "engine": {"journey"},
    "simulate": {"engine", "journey"},
    "contracts": {"engine", "journey"},
    "infra": {"contracts", "engine", "journey"},
    "runtime": {"infra", "contracts", "engine", "journey"},
    "control": {"infra", "contracts", "engine", "journey", "simulate"},
    "dev": {"control", "infra", "contracts", "engine", "journey", "simulate"},
    "api": {
        "measure",
        "audit",
        "backtest",
        "control",
        "infra",
        "contracts",
        "engine",
        "journey",
        "simulate",
    },
    "audit": {"infra", "contracts", "engine", "journey"},
    "backtest": {"audit", "control", "infra", "contracts", "engine", "journey", "simulate"},
    "measure": {"audit", "control", "infra", "contracts", "engine", "journey"},
    "feedback": {"control", "infra", "contracts", "engine", "journey"},
    "cli": {
        "measure",
        "feedback",
        "audit",
        "backtest",
        "api",
        "runtime",
        "control",
        "dev",
        "infra",
        "contracts",
        "engine",
        "journey",
        "simulate",
    },
}
SHARED = {"errors", "jsonwire", "timefmt"}
# The pure core does no I/O: no clients, no event loop, no files of its own.
PURE = {"engine", "journey"}
IO_LIBRARIES = {"aiokafka", "faust", "redis", "asyncio", "socket", "httpx", "aiohttp"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _package_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _package_of(p) in ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_only(path: Path) -> None:
    package = _package_of(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] != "orchestrator" or len(parts) < 2:
            continue
        target = parts[1]
        if target in SHARED or target == package:
            continue
        assert target in ALLOWED[package], f"{path.name} ({package}) imports {name}"


@pytest.mark.parametrize(
    "path", [p for p in MODULES if _package_of(p) in PURE], ids=lambda p: p.name
)
def test_the_pure_core_does_no_io(path: Path) -> None:
    used = {name.split(".")[0] for name in _imports(path)}
    assert not used & IO_LIBRARIES, f"{path.name} imports {used & IO_LIBRARIES}"


def test_the_offline_commands_load_no_client_library() -> None:
    """`orchestrator validate` must not import faust, aiokafka or redis (lazy CLI)."""
    code = (
        "import sys; from orchestrator.cli import main; "
        "main(['validate', 'journeys']); "
        "print(sorted(m for m in ('faust', 'aiokafka', 'redis') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


CONNECTORS = Path(__file__).parent.parent / "connectors"
# The top-level connectors package uses orchestrator's contracts and infra (and control's
# publisher, the engine's event type, and the journey's channel -> provider map), never its
# runtime (docs/architecture.md).
CONNECTORS_MAY_USE = {"contracts", "infra", "control", "engine", "journey"} | SHARED


@pytest.mark.parametrize("path", sorted(CONNECTORS.rglob("*.py")), ids=lambda p: p.name)
def test_connectors_never_use_the_runtime(path: Path) -> None:
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "orchestrator" and len(parts) >= 2:
            assert parts[1] in CONNECTORS_MAY_USE, f"connectors/{path.name} imports {name}"

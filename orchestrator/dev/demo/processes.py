"""The demo's subprocesses (journey workers, connector workers, the API, the audit sink, the
feedback router), each logging to a file; and CLI commands run to their end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestrator.infra.settings import Settings

__all__ = ["DemoProcesses"]

# The width rich tables of commands run to their end are rendered at (their output is shown).
_COLUMNS = 120


class DemoProcesses:
    """`orchestrator <command>` subprocesses sharing the demo's settings; stops them all."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.environment = {**os.environ, **settings.as_environment()}
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def spawn(self, name: str, *command: str) -> None:
        """Start `orchestrator COMMAND...` as `name`, logging to `<log_dir>/<name>.log`."""
        with (self.log_dir / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "orchestrator", *command],
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run `orchestrator COMMAND...` to its end (at most 5 minutes); its output, as text."""
        return subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "orchestrator", *command],
            env={**self.environment, "COLUMNS": str(_COLUMNS)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def exited(self) -> list[str]:
        """Names of the processes that ended on their own (a demo in trouble)."""
        return [name for name, process in self.running.items() if process.poll() is not None]

    def stop(self, names: list[str]) -> None:
        """SIGTERM these processes together and wait for each (SIGKILL after 30 s)."""
        chosen = [self.running.pop(name) for name in names if name in self.running]
        for process in chosen:
            process.terminate()
        for process in chosen:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def stop_all(self) -> None:
        """Stop every process still running."""
        self.stop(list(self.running))

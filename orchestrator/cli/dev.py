"""`orchestrator demo`: the main job end to end on local infrastructure."""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli.operator import run_converting
from orchestrator.dev.demo.run import DemoOptions, run_demo
from orchestrator.infra.settings import load_settings

__all__ = ["demo"]


def demo(args: argparse.Namespace) -> int:
    options = DemoOptions(args.customers, args.speed, args.days, args.workers, args.journeys)
    return run_converting(load_settings(), run_demo(options, sys.stdout))

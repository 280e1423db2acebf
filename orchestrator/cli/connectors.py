"""`orchestrator connectors`: deliver outbound messages on some channels until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from connectors import CHANNELS, ConnectorWorker, configured_channels
from orchestrator.errors import ConfigurationError
from orchestrator.infra.outage import QuietRepeats, StoppedWhileWaitingError
from orchestrator.infra.settings import load_settings

__all__ = ["connectors"]

log = logging.getLogger(__name__)


def connectors(args: argparse.Namespace) -> int:
    """Run a connector worker for `--channels` (default: every configured channel)."""
    settings = load_settings()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "debug":
        # aiokafka narrates every rebalance at INFO and each failed connection at ERROR.
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(QuietRepeats(("aiokafka",)))
    if args.channels:
        channels = [c.strip() for c in args.channels.split(",") if c.strip()]
        unknown = sorted(set(channels) - set(CHANNELS))
        if unknown:
            raise ConfigurationError(
                f"--channels: no connector for {', '.join(unknown)}; use some of "
                f"{', '.join(CHANNELS)}"
            )
    else:
        channels = configured_channels(settings)

    async def main() -> None:
        worker = ConnectorWorker(settings, channels)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        try:
            async with worker:
                await worker.run()
        except StoppedWhileWaitingError as exc:
            log.warning("%s", exc)

    asyncio.run(main())
    return 0

"""`orchestrator bounces`: take the DSNs mailed to VERP bounce addresses until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from connectors.bounces import BounceReceiver
from orchestrator.infra.outage import QuietRepeats, StoppedWhileWaitingError
from orchestrator.infra.settings import load_settings

__all__ = ["bounces"]

log = logging.getLogger(__name__)


def bounces(args: argparse.Namespace) -> int:
    """Run the bounce receiver (`connectors/bounces.py`) on ORCHESTRATOR_BOUNCE_SMTP_HOST/_PORT."""
    settings = load_settings()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "debug":
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        # aiosmtpd narrates every session at INFO.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(QuietRepeats(("aiokafka",)))

    async def main() -> None:
        receiver = BounceReceiver(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, receiver.stop)
        try:
            async with receiver:
                await receiver.run()
        except StoppedWhileWaitingError as exc:
            log.warning("%s", exc)

    asyncio.run(main())
    return 0

"""`orchestrator worker`: run a journey worker until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading

from orchestrator.infra.gcpolicy import collect_garbage_less_often
from orchestrator.infra.outage import QuietRepeats, StoppedWhileWaitingError
from orchestrator.infra.settings import load_settings
from orchestrator.runtime.worker import JourneyWorker

__all__ = ["worker"]

log = logging.getLogger(__name__)


def worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "debug":
        # The libraries narrate every start, stop and rebalance step at INFO, and every failed
        # connection attempt at ERROR (hundreds a second while Kafka is away): the worker's
        # own outage lines summarise those.
        for noisy in ("faust", "mode", "aiokafka"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(QuietRepeats(("faust", "mode", "aiokafka")))
    threading.excepthook = _thread_failed
    # Last resort: a client thread that will not end must not keep a stopping process alive.
    watchdog = threading.Timer(settings.shutdown_timeout_s + 10, _exit_now, args=(1,))
    watchdog.daemon = True

    async def main() -> None:
        worker = JourneyWorker(settings, create_topics=True)

        def stop() -> None:
            if not watchdog.is_alive():
                watchdog.start()
            worker.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            async with worker:
                # Started: the catalog and clients are made, so they are frozen out too.
                collect_garbage_less_often()
                await worker.run()
        except StoppedWhileWaitingError as exc:
            log.warning("%s", exc)
        finally:
            if not watchdog.is_alive():
                watchdog.start()
            # Tasks of clients abandoned by close() (a broker away) are destroyed with the
            # loop; asyncio's "Task was destroyed but it is pending" says nothing new then.
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    try:
        asyncio.run(main())
    finally:
        lingering = [t.name for t in threading.enumerate() if _holds_exit(t)]
        if lingering:
            # A consumer thread of a client abandoned while the broker was away: waiting for
            # it would keep the process up for the whole outage.
            log.error("exiting without waiting for client threads %s", ", ".join(lingering))
            _exit_now(1 if sys.exc_info()[0] is not None else 0)
    watchdog.cancel()
    return 0


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    # faust's consumer thread raises when its stop is cut short while the broker is away;
    # one line says so (a traceback at debug level), not a 40-line dump.
    name = args.thread.name if args.thread is not None else "?"
    log.warning(
        "client thread %s ended with %s: %s",
        name,
        args.exc_type.__name__,
        args.exc_value,
        exc_info=args.exc_value if log.isEnabledFor(logging.DEBUG) else None,
    )


def _holds_exit(thread: threading.Thread) -> bool:
    return thread is not threading.main_thread() and not thread.daemon and thread.is_alive()


def _exit_now(code: int) -> None:
    log.error("the worker did not finish stopping in time; exiting with status %d", code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

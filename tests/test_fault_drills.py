"""The fault drills of issue 20 in small: every drill under steady load, on private Kafka
and Redis, must lose nothing and deliver nothing twice, with no process restarted by hand.

The drills share one rig (servers and processes), one after another, as an operator's
bad day would. `bench/faults.py` runs the same drills at the issue's sizes (30 s outages,
10,000 malformed records) and prints the times to recover.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.infra.settings import Settings
from tests.drill_rig import Rig, running_rig
from tests.fault_drills import CI_SETTINGS, CI_SIZE, DRILLS, run_drill


@pytest.fixture(scope="module")
async def rig(
    infrastructure: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Rig]:
    async with running_rig(
        infrastructure, tmp_path_factory.mktemp("drills"), CI_SETTINGS
    ) as running:
        yield running


@pytest.mark.timeout(150)
@pytest.mark.parametrize("drill", list(DRILLS))
async def test_drill_loses_nothing_and_sends_nothing_twice(rig: Rig, drill: str) -> None:
    report = await run_drill(rig, drill, CI_SIZE)
    await rig.keep_workers_running()
    print(report.as_dict())
    assert report.expected == CI_SIZE.customers
    assert report.lost == 0, report
    # Killing the connector between Twilio's 201 and the done mark included: the next worker
    # finds the message in Twilio's list instead of sending it again (docs/channels.md).
    assert report.duplicated == 0, report
    assert (report.audit_missing, report.audit_twice) == (0, 0), report
    assert report.exited == (), report
    if drill == "malformed records":
        assert report.dead_letters == CI_SIZE.malformed, report
    else:
        assert report.dead_letters == 0, report

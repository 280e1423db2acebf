"""What typed records cost on the worker's hot path: building and encoding the ~3 records
one applied event produces (inbound interaction, send interaction, outbound message).

    .venv/bin/python bench/contracts.py [--events 20000]

Compares (1) plain dicts + orjson (the code before typed records), (2) the contracts'
dataclasses + orjson (what the worker does), (3) pydantic validating each record as it is
built and encoding it (`TypeAdapter.validate_python` + `dump_json`), (4) pydantic encoding
only (`dump_json` of the dataclasses); and, for scale, what `advance()` itself costs per
event over the demo population. No Kafka or Redis needed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from orchestrator import jsonwire
from orchestrator.contracts.interactions import InboundInteraction, SendInteraction
from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.contracts.recording import action_interaction, inbound_interaction
from orchestrator.dev.demo.population import Population
from orchestrator.engine.actions import Sent
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event
from orchestrator.engine.state import CustomerState
from orchestrator.journey.library import load_journeys
from orchestrator.timefmt import format_instant

AT = 1_790_000_000.0
EVENT = Event(
    "ou-002",
    "cus_olga",
    "order.shipped",
    AT,
    "web",
    {"order_id": "NW-1001", "carrier": "DHL", "eta": "Thu 4 June"},
)
SENT = Sent(
    at=AT,
    customer_id="cus_olga",
    journey="order-updates",
    version=1,
    instance_id="order-updates:1",
    step="shipped",
    channel="email",
    template="order_shipped",
    variant=None,
    content={"subject": "Your order NW-1001 is on its way", "body": "Hi Olga,\n" * 20},
    to="olga@example.com",
    message_id="b42a51d5d1ab68010250df4a4d16289e",
    category="transactional",
    consent="not_set",
)
INBOUND: TypeAdapter[InboundInteraction] = TypeAdapter(InboundInteraction)
SEND: TypeAdapter[SendInteraction] = TypeAdapter(SendInteraction)
OUTBOUND: TypeAdapter[OutboundMessage] = TypeAdapter(OutboundMessage)


def plain_dicts() -> list[bytes]:
    """The code before typed records: hand-built dicts."""
    inbound = {
        "record_id": f"in:{EVENT.event_id}",
        "type": "inbound",
        "at": format_instant(AT),
        "received_at": format_instant(AT),
        "customer_id": EVENT.customer_id,
        "event": EVENT.to_wire(),
    }
    send = SENT.to_record()
    send.update(
        category=SENT.category,
        consent=SENT.consent,
        record_id="ou-002:0",
        caused_by="ou-002",
        message_id=SENT.message_id,
        version=SENT.version,
        instance_id=SENT.instance_id,
    )
    outbound = {
        "message_id": SENT.message_id,
        "at": format_instant(SENT.at),
        "customer_id": SENT.customer_id,
        "journey": SENT.journey,
        "version": SENT.version,
        "instance_id": SENT.instance_id,
        "step": SENT.step,
        "channel": SENT.channel,
        "to": SENT.to,
        "template": SENT.template,
        "variant": SENT.variant,
        "category": SENT.category,
        "content": SENT.content,
        "caused_by": "ou-002",
    }
    return [jsonwire.dumps(inbound), jsonwire.dumps(send), jsonwire.dumps(outbound)]


def dataclasses_orjson() -> list[bytes]:
    """What the worker does: the contracts' dataclasses, encoded by orjson."""
    return [
        inbound_interaction(EVENT, AT, AT).to_json(),
        action_interaction(SENT, "ou-002", 0).to_json(),
        OutboundMessage.of(SENT, "ou-002").to_json(),
    ]


def _as_python(record: Any) -> Any:
    return jsonwire.loads(record.to_json())


# Inputs for pydantic's validated construction, made once (not timed).
_INBOUND_IN = _as_python(inbound_interaction(EVENT, AT, AT))
_SEND_IN = _as_python(action_interaction(SENT, "ou-002", 0))
_OUTBOUND_IN = _as_python(OutboundMessage.of(SENT, "ou-002"))


def pydantic_validated() -> list[bytes]:
    """Records built through pydantic validation (as pydantic models are), pydantic encoding."""
    return [
        INBOUND.dump_json(INBOUND.validate_python(_INBOUND_IN)),
        SEND.dump_json(SEND.validate_python(_SEND_IN)),
        OUTBOUND.dump_json(OUTBOUND.validate_python(_OUTBOUND_IN)),
    ]


def _send_record() -> SendInteraction:
    record = action_interaction(SENT, "ou-002", 0)
    if not isinstance(record, SendInteraction):
        raise TypeError(f"a Sent action made a {type(record).__name__}")
    return record


def pydantic_encoding() -> list[bytes]:
    """The dataclasses built as the worker builds them, encoded by pydantic's serializer."""
    return [
        INBOUND.dump_json(inbound_interaction(EVENT, AT, AT)),
        SEND.dump_json(_send_record()),
        OUTBOUND.dump_json(OutboundMessage.of(SENT, "ou-002")),
    ]


def engine_per_event(customers: int = 1000) -> float:
    """Microseconds `advance()` takes per event over the demo population (for scale)."""
    catalog = catalog_of(load_journeys([Path(__file__).resolve().parent.parent / "journeys"]))
    events = Population(customers, time.time()).events()
    states: dict[str, CustomerState] = {}
    started = time.perf_counter()
    for event in events:
        state = states.get(event.customer_id) or CustomerState(event.customer_id)
        states[event.customer_id], _ = advance(state, event, catalog, event.occurred_at)
    return (time.perf_counter() - started) / len(events) * 1e6


def measure(build: Callable[[], list[bytes]], events: int) -> float:
    """Best of 5 runs: microseconds per event."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(events):
            build()
        best = min(best, time.perf_counter() - start)
    return best / events * 1e6


def main() -> None:
    """Print microseconds per event for each way."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    events = parser.parse_args().events
    for name, build in [
        ("plain dicts + orjson (before)", plain_dicts),
        ("dataclasses + orjson (chosen)", dataclasses_orjson),
        ("pydantic validate + dump_json", pydantic_validated),
        ("dataclasses + pydantic dump_json", pydantic_encoding),
    ]:
        size = sum(len(b) for b in build())
        print(f"{name:34} {measure(build, events):6.2f} µs/event  ({size} bytes)")
    print(f"{'advance() itself, for scale':34} {engine_per_event():6.2f} µs/event")


if __name__ == "__main__":
    main()

"""The one way every process makes a Kafka producer: idempotent, `acks=all`.

Idempotence plus `acks=all` is what lets the commit path say "produced" only when the
broker holds the record once; every producer of ours needs both, so no caller spells them.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

__all__ = ["MAX_BATCH_BYTES", "MAX_REQUEST_BYTES", "idempotent_producer"]

# aiokafka's (and the broker's default) ceiling on one request, stated so records can be
# checked against it before they are sent.
MAX_REQUEST_BYTES = 1024 * 1024
# Per-partition batches this large amortise a request over thousands of small records.
MAX_BATCH_BYTES = 256 * 1024


def idempotent_producer(
    bootstrap: str, *, linger_ms: int = 5, max_request_size: int = MAX_REQUEST_BYTES
) -> AIOKafkaProducer:
    """An unstarted idempotent producer (`acks=all`); `linger_ms` trades latency for batching,
    `max_request_size` is raised only for deploy records (a journey's every version)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=MAX_BATCH_BYTES,
        max_request_size=max_request_size,
    )

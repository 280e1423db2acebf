-- The audit store: every interaction record once, chained per customer, with the sink's offsets.

-- Every record, partitioned by month of its time so that retention drops whole partitions
-- (the sink creates each month's partition before it writes into it).
CREATE TABLE audit_records (
    chain_id         text        NOT NULL, -- the customer id; journey:<id> / key:<id> for operators
    seq              bigint      NOT NULL, -- position in the chain, from 1, in topic order
    record_id        text        NOT NULL,
    at               timestamptz NOT NULL,
    kind             text        NOT NULL,
    customer_id      text,
    direction        text,                 -- inbound | outbound | NULL (neither)
    channel          text,
    journey          text,
    body             json        NOT NULL, -- json, not jsonb: the exact text the hash covers
    prev_hash        bytea       NOT NULL,
    hash             bytea       NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL
) PARTITION BY RANGE (at);

-- One customer (timeline, customer queries), one time window, one journey, and verification.
CREATE INDEX audit_records_customer_at ON audit_records (customer_id, at, chain_id, seq);
CREATE INDEX audit_records_at ON audit_records (at, chain_id, seq);
CREATE INDEX audit_records_journey_at ON audit_records (journey, at, chain_id, seq);
CREATE INDEX audit_records_chain ON audit_records (chain_id, seq);

-- record_id is unique across partitions (a partitioned table's unique keys must contain the
-- partition key, and a record produced twice need not carry the same time).
CREATE TABLE audit_record_ids (
    record_id text        PRIMARY KEY,
    at        timestamptz NOT NULL
);

-- The next offset to read per partition of the interactions topic, committed with the records.
CREATE TABLE audit_offsets (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- The newest record of each chain; `dirty` until the next checkpoint has copied it.
CREATE TABLE audit_chain_heads (
    chain_id text    PRIMARY KEY,
    seq      bigint  NOT NULL,
    hash     bytea   NOT NULL,
    dirty    boolean NOT NULL DEFAULT true
);

-- Checkpoints of chain heads, themselves chained by `digest` so that one cannot be dropped or
-- edited unseen; publish a digest elsewhere to pin everything before it.
CREATE TABLE audit_checkpoints (
    checkpoint_id bigint      PRIMARY KEY,
    taken_at      timestamptz NOT NULL,
    chains        bigint      NOT NULL,
    digest        bytea       NOT NULL
);

CREATE TABLE audit_checkpoint_heads (
    checkpoint_id bigint NOT NULL REFERENCES audit_checkpoints ON DELETE CASCADE,
    chain_id      text   NOT NULL,
    seq           bigint NOT NULL,
    hash          bytea  NOT NULL,
    PRIMARY KEY (checkpoint_id, chain_id)
);
CREATE INDEX audit_checkpoint_heads_chain ON audit_checkpoint_heads (chain_id, checkpoint_id);

-- One data key per customer for their personal fields; erasure sets it to NULL for good.
CREATE TABLE audit_customer_keys (
    customer_id text        PRIMARY KEY,
    key         bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);

-- Every erasure: who asked, when, and what was removed besides the key.
CREATE TABLE audit_erasures (
    customer_id  text        NOT NULL,
    erased_at    timestamptz NOT NULL,
    operator     text        NOT NULL,
    redis_keys   integer     NOT NULL,
    PRIMARY KEY (customer_id, erased_at)
);

-- Values of the topic that are not interaction records: kept, never dropped silently.
CREATE TABLE audit_rejects (
    topic     text    NOT NULL,
    partition integer NOT NULL,
    "offset"  bigint  NOT NULL,
    reason    text    NOT NULL,
    value     bytea,
    PRIMARY KEY (topic, partition, "offset")
);

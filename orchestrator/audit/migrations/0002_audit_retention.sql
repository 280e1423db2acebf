-- Retention: whole monthly partitions dropped, and where each chain now starts.

-- Every retention run: who, when, the cutoff, the partitions it dropped and what they held.
CREATE TABLE audit_retentions (
    retention_id bigint      PRIMARY KEY,
    ran_at       timestamptz NOT NULL,
    operator     text        NOT NULL,
    cutoff       timestamptz NOT NULL,
    partitions   text[]      NOT NULL,
    records      bigint      NOT NULL,
    chains       bigint      NOT NULL
);

-- Per chain, its newest dropped record (seq, hash): `verify` starts the chain there, so the
-- first record kept links to it. `dropped` counts every record of the chain retention
-- dropped: the kept records numbered at or below `seq` (older by time, stored later) must
-- number `seq - dropped`, so deleting one of them by hand is still seen.
CREATE TABLE audit_retention_markers (
    chain_id     text   PRIMARY KEY,
    seq          bigint NOT NULL,
    hash         bytea  NOT NULL,
    record_id    text   NOT NULL,
    dropped      bigint NOT NULL,
    retention_id bigint NOT NULL REFERENCES audit_retentions
);

-- Journey figures (orchestrator/measure/journeys.py), kept current by the audit sink in the
-- transaction that stores the records they count: exact, and exactly once like the records.

-- One row per journey instance: where it is and how it ended (waiting, exits, time to goal).
-- An instance id is the customer's own (`<journey>:<n>`), so the customer is part of the key.
CREATE TABLE measure_instances (
    customer_id  text        NOT NULL,
    instance_id  text        NOT NULL,
    journey      text        NOT NULL,
    version      integer     NOT NULL,
    entered_at   timestamptz NOT NULL,
    current_step text,                   -- the step it last entered; NULL before the first
    exited_at    timestamptz,
    exit_reason  text,                   -- goal | exit_event | completed | expired | archived | error
    PRIMARY KEY (customer_id, instance_id)
);
CREATE INDEX measure_instances_journey ON measure_instances (journey, version, exit_reason);
CREATE INDEX measure_instances_waiting ON measure_instances (journey, version, current_step)
    WHERE exited_at IS NULL;

-- The arm of each split an instance went through (a customer always gets the same arm).
CREATE TABLE measure_arms (
    customer_id text    NOT NULL,
    instance_id text    NOT NULL,
    step        text    NOT NULL,
    journey     text    NOT NULL,
    version     integer NOT NULL,
    variant     text    NOT NULL,
    holdout     boolean NOT NULL,
    PRIMARY KEY (customer_id, instance_id, step)
);
CREATE INDEX measure_arms_journey ON measure_arms (journey, step, version, variant);

-- Per step: entries (loops count each time), entries that moved on, entries that ended there.
CREATE TABLE measure_steps (
    journey text    NOT NULL,
    version integer NOT NULL,
    step    text    NOT NULL,
    entered bigint  NOT NULL DEFAULT 0,
    passed  bigint  NOT NULL DEFAULT 0,
    exited  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (journey, version, step)
);

-- Moves of instances from one step to the next.
CREATE TABLE measure_edges (
    journey   text    NOT NULL,
    version   integer NOT NULL,
    from_step text    NOT NULL,
    to_step   text    NOT NULL,
    count     bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (journey, version, from_step, to_step)
);

-- Each message sent, so that a receipt (which names only the message) finds its step.
CREATE TABLE measure_sent (
    message_id text    PRIMARY KEY,
    journey    text    NOT NULL,
    version    integer NOT NULL,
    step       text    NOT NULL,
    channel    text    NOT NULL
);

-- Each (message, outcome) counted once: a provider may report an open or a click twice.
CREATE TABLE measure_receipts (
    message_id text NOT NULL,
    outcome    text NOT NULL,
    PRIMARY KEY (message_id, outcome)
);

-- Messages per step and channel by outcome: sent, suppressed (with its reason), delivered,
-- failed, bounced, opened, clicked, replied. `reason` is '' except for suppressions.
CREATE TABLE measure_messages (
    journey text    NOT NULL,
    version integer NOT NULL,
    step    text    NOT NULL,
    channel text    NOT NULL,
    outcome text    NOT NULL,
    reason  text    NOT NULL DEFAULT '',
    count   bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (journey, version, step, channel, outcome, reason)
);

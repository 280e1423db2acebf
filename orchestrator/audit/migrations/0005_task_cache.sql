-- Task figures (orchestrator/measure/task_cache.py): each customer's spans per task
-- definition, kept with what the store held when they were computed, so that a call reads
-- again only the customers whose records changed since.

-- One row per task definition computed: its id, to drop an old definition's rows when the
-- task file changes (a new digest).
CREATE TABLE measure_task_definitions (
    digest     text        PRIMARY KEY, -- of the rules and the task's definition
    task       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX measure_task_definitions_task ON measure_task_definitions (task);

-- Per (definition, customer): the store as the spans were computed from it (the chain's
-- head seq, the retention run that last dropped records of the chain, whether the
-- customer was erased), and the spans: NULL when none (most customers, most tasks).
-- `spans` holds times and gap places (journey, step, channel) only: nothing personal.
CREATE TABLE measure_task_customers (
    digest       text    NOT NULL REFERENCES measure_task_definitions ON DELETE CASCADE,
    customer_id  text    NOT NULL,
    seq          bigint  NOT NULL,
    retention_id bigint  NOT NULL, -- 0: no retention dropped any of the customer's records
    erased       boolean NOT NULL,
    spans        bytea,            -- orjson of the customer's spans (measure/task_cache.py)
    PRIMARY KEY (digest, customer_id)
);
CREATE INDEX measure_task_customers_customer ON measure_task_customers (customer_id);

-- X-Ray hot tier, schema version 1.
--
-- Applied at server start, idempotently, under an advisory lock (xray_server/migrations.py).
-- Every table's key starts with run_id so the schema can later be distributed by run
-- (Citus) or partitioned by time without a rewrite.

CREATE TABLE IF NOT EXISTS xray_schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One execution of one pipeline on one entity.
CREATE TABLE IF NOT EXISTS runs (
    run_id          uuid PRIMARY KEY,
    pipeline        text,                    -- NULL while the run is implicit
    entity          text,
    tags            jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata        jsonb,
    status          text NOT NULL DEFAULT 'running',
    outcome         jsonb,
    error           jsonb,
    -- true when events arrived before (or without) POST /api/v1/runs: the run exists so
    -- that its steps are never lost, and a later create fills in pipeline and entity.
    implicit        boolean NOT NULL DEFAULT false,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    finish_event_id uuid,                    -- the run_finish that won (latest ts, then id)
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS runs_started_idx ON runs (started_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_pipeline_started_idx ON runs (pipeline, started_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_entity_started_idx ON runs (entity, started_at DESC, run_id DESC);

-- One business decision. Standard metrics are typed columns so that cross-run
-- queries are index-served; every other metric lives in `metrics`.
CREATE TABLE IF NOT EXISTS steps (
    run_id              uuid NOT NULL,
    step_id             uuid NOT NULL,
    parent_step_id      uuid,
    seq                 integer NOT NULL,
    name                text NOT NULL,
    step_type           text NOT NULL,
    status              text NOT NULL DEFAULT 'running',
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    candidates_in       bigint,
    candidates_out      bigint,
    drop_ratio          double precision,
    model               text,
    temperature         double precision,
    metrics             jsonb,
    input               jsonb,
    output              jsonb,
    why                 text,
    error               jsonb,
    contract_violations text[],              -- NULL when the step honours the contract
    rejections          jsonb,               -- reason -> candidates it removed (a metric, never dropped)
    -- Merge bookkeeping, so that any order or repetition of events gives one final state.
    -- Identity and end fields come from the winning step_end (latest ts, then event id), or
    -- without one from the winning step_start (earliest ts, then event id). `input` comes
    -- from the earliest step_start that had one, else from the latest step_end that had one.
    start_ts            timestamptz,
    start_event_id      uuid,
    end_event_id        uuid,
    input_from_start    boolean NOT NULL DEFAULT false,
    input_ts            timestamptz,
    input_event_id      uuid,
    PRIMARY KEY (run_id, step_id)
);
-- The cross-run query: one step type, a time window, newest first (keyset pagination).
CREATE INDEX IF NOT EXISTS steps_type_started_idx
    ON steps (step_type, started_at DESC, run_id DESC, step_id DESC);
CREATE INDEX IF NOT EXISTS steps_started_idx
    ON steps (started_at DESC, run_id DESC, step_id DESC);
-- "Steps where reason R removed candidates": rejections ? 'R', inside the type/time window.
CREATE INDEX IF NOT EXISTS steps_rejections_idx ON steps USING gin (rejections);
CREATE INDEX IF NOT EXISTS steps_violations_idx
    ON steps (started_at DESC, run_id DESC, step_id DESC) WHERE contract_violations IS NOT NULL;

-- The ledger that makes ingest idempotent: an event_id is applied once per run.
CREATE TABLE IF NOT EXISTS ingested_events (
    run_id      uuid NOT NULL,
    event_id    uuid NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, event_id)
);

-- References to bulky evidence in the cold tier; never the evidence itself.
CREATE TABLE IF NOT EXISTS artifacts (
    run_id       uuid NOT NULL,
    artifact_id  uuid NOT NULL,              -- uuid5 of (run_id, step_id, name): replays collide
    step_id      uuid NOT NULL,
    name         text NOT NULL,
    capture      text NOT NULL,
    content_type text,
    status       text NOT NULL,              -- pending | stored | dropped (| referenced without a store)
    drop_reason  text,
    store_key    text,
    size_bytes   bigint,
    sha256       text,
    event_ts     timestamptz NOT NULL,       -- the step_end that described it: the latest wins
    event_id     uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, artifact_id)
);
-- GET /api/v1/artifacts/<artifact_id>, and the sweep that settles rows a crash left pending.
CREATE INDEX IF NOT EXISTS artifacts_id_idx ON artifacts (artifact_id);
CREATE INDEX IF NOT EXISTS artifacts_pending_idx ON artifacts (created_at) WHERE status = 'pending';

INSERT INTO xray_schema_version (version) VALUES (1) ON CONFLICT DO NOTHING;

-- The work queue: one job per date. A claim is a lease renewed by heartbeats, so a crashed worker's date
-- is claimed again once its lease expires.
CREATE TABLE backfill_jobs (
    day              DATE PRIMARY KEY,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'retry', 'failed')),
    retry_count      INTEGER NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    last_retry_at    TIMESTAMPTZ,
    next_attempt_at  TIMESTAMPTZ,
    error_message    TEXT,
    worker_id        TEXT,
    lease_expires_at TIMESTAMPTZ,
    heartbeat_at     TIMESTAMPTZ,
    started_at       TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    rows             BIGINT,
    run_id           BIGINT REFERENCES pipeline_runs (id) ON DELETE SET NULL,
    backfill_id      BIGINT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (status <> 'processing' OR (worker_id IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE INDEX backfill_jobs_claimable ON backfill_jobs (status, day);

-- Who ran which backfill, with what options, and what came of it.
CREATE TABLE backfill_audit (
    id            BIGSERIAL PRIMARY KEY,
    requested_by  TEXT NOT NULL,
    start_day     DATE NOT NULL,
    end_day       DATE NOT NULL,
    options       JSONB NOT NULL,
    dry_run       BOOLEAN NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    succeeded     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    rows_written  BIGINT NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'planned', 'enqueued'))
);

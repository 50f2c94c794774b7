-- What the scheduler decided about each date it considered: handed to the queue (`enqueued`; the queue's
-- job then says how it went), or held back because its preflight failed (`not_run`, with the cause). A
-- date held back never touches the queue, so waiting for Tardis to export it spends none of its retries.
CREATE TABLE schedule_dates (
    day                 DATE PRIMARY KEY,
    status              TEXT NOT NULL CHECK (status IN ('not_run', 'enqueued')),
    -- Failed preflights of the date so far, and the last one's failing checks.
    preflight_failures  INTEGER NOT NULL DEFAULT 0 CHECK (preflight_failures >= 0),
    cause               TEXT,
    checks              JSONB,
    scheduler_id        TEXT NOT NULL,
    first_seen_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (status <> 'not_run' OR cause IS NOT NULL)
);

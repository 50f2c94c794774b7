-- One row per attempt to process a date; stages of that attempt in stage_runs.
CREATE TABLE pipeline_runs (
    id              BIGSERIAL PRIMARY KEY,
    -- Random per run: part of every BigQuery job id of the run, so ids never collide across runs.
    run_key         TEXT NOT NULL UNIQUE,
    day             DATE NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    trigger         TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    error           TEXT,
    files           INTEGER,
    trades          BIGINT,
    candles         BIGINT,
    instruments     INTEGER,
    completeness    DOUBLE PRECISION CHECK (completeness BETWEEN 0 AND 1),
    quality         DOUBLE PRECISION CHECK (quality BETWEEN 0 AND 1),
    consistency     DOUBLE PRECISION CHECK (consistency BETWEEN 0 AND 1),
    validation      TEXT CHECK (validation IN ('pass', 'warn', 'fail', 'error')),
    report          JSONB
);
CREATE INDEX pipeline_runs_day ON pipeline_runs (day, started_at DESC);

CREATE TABLE stage_runs (
    run_id      BIGINT NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,
    stage       TEXT NOT NULL CHECK (stage IN ('download', 'instruments', 'candles', 'upload', 'validation')),
    status      TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    duration_ms BIGINT NOT NULL,
    rows        BIGINT,
    detail      JSONB,
    error       TEXT,
    PRIMARY KEY (run_id, stage)
);

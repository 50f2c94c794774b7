-- Every validation of a date (inside a run, or a later re-validation), its checks, and the per-symbol
-- metrics that later dates' anomaly checks compare against.
CREATE TABLE validations (
    id            BIGSERIAL PRIMARY KEY,
    day           DATE NOT NULL,
    run_id        BIGINT REFERENCES pipeline_runs (id) ON DELETE SET NULL,
    trigger       TEXT NOT NULL CHECK (trigger IN ('run', 'revalidate')),
    status        TEXT NOT NULL CHECK (status IN ('pass', 'warn', 'fail', 'error')),
    completeness  DOUBLE PRECISION NOT NULL CHECK (completeness BETWEEN 0 AND 1),
    quality       DOUBLE PRECISION NOT NULL CHECK (quality BETWEEN 0 AND 1),
    consistency   DOUBLE PRECISION NOT NULL CHECK (consistency BETWEEN 0 AND 1),
    report        JSONB NOT NULL,
    validated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX validations_day ON validations (day, validated_at DESC);

CREATE TABLE validation_checks (
    validation_id BIGINT NOT NULL REFERENCES validations (id) ON DELETE CASCADE,
    check_id      TEXT NOT NULL,
    family        TEXT NOT NULL,
    evaluated     BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    pass_ratio    DOUBLE PRECISION NOT NULL,
    status        TEXT NOT NULL,
    PRIMARY KEY (validation_id, check_id)
);

-- The latest observed value per (date, exchange, symbol, metric).
CREATE TABLE validation_metrics (
    day           DATE NOT NULL,
    exchange      TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    metric        TEXT NOT NULL,
    value         DOUBLE PRECISION NOT NULL,
    validation_id BIGINT REFERENCES validations (id) ON DELETE SET NULL,
    PRIMARY KEY (day, exchange, symbol, metric)
);

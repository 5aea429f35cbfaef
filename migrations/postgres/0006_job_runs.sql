-- (PostgreSQL) Background job runs (the full-project RevenueCat resync), polled by the jobs API, and the
-- RevenueCat budget shared by every process on the database.

CREATE TABLE job_runs (
    id                 TEXT PRIMARY KEY,
    job_type           TEXT NOT NULL CHECK (job_type IN ('revenuecat_sync')),
    status             TEXT NOT NULL CHECK (status IN
                           ('pending', 'running', 'completed', 'failed', 'cancelled')),
    team_id            TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    project_id         TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    triggered_by       TEXT NOT NULL,
    params             JSONB NOT NULL,
    progress_processed BIGINT NOT NULL DEFAULT 0,
    progress_total     BIGINT NOT NULL DEFAULT 0,
    progress_message   TEXT,
    result             JSONB,
    error              TEXT,
    -- Resume point: the last user id whose batch was checkpointed, and the counters up to it.
    checkpoint_cursor  TEXT,
    checkpoint         JSONB,
    cancel_requested   BOOLEAN NOT NULL DEFAULT FALSE,
    attempts           BIGINT NOT NULL DEFAULT 0,
    claimed_by         TEXT,
    -- Not before this (a retry after a failed attempt).
    run_after          BIGINT,
    dispatched_at      BIGINT,
    started_at         BIGINT,
    completed_at       BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- At most one pending or running run per project and type: a second trigger is refused by
-- the database, not by a check-then-insert.
CREATE UNIQUE INDEX job_runs_one_active ON job_runs(project_id, job_type)
    WHERE status IN ('pending', 'running');
CREATE INDEX job_runs_team ON job_runs(team_id, created_at, id);
CREATE INDEX job_runs_active ON job_runs(status) WHERE status IN ('pending', 'running');

-- One token bucket per RevenueCat key (fingerprint) and rate-limit domain, leased in slices.
CREATE TABLE rate_budgets (
    key_fingerprint  TEXT NOT NULL,
    domain           TEXT NOT NULL,
    tokens           DOUBLE PRECISION NOT NULL,
    refreshed_at     BIGINT NOT NULL,
    blocked_until    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_fingerprint, domain)
);

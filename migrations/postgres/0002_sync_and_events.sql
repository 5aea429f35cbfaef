-- (PostgreSQL) Per-user resync requests (our source of truth; apalis tasks only carry the row id) and the
-- webhook event log.

-- At most one pending resync per (project, user): the partial unique index is the dedupe.
CREATE TABLE user_resyncs (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    run_after    BIGINT NOT NULL,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX user_resyncs_one_pending ON user_resyncs(project_id, user_id) WHERE status = 'pending';
CREATE INDEX user_resyncs_status_run_after ON user_resyncs(status, run_after);

CREATE TABLE webhook_events (
    project_id          TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_id            TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    app_user_id         TEXT,
    target_user_id      TEXT,
    environment         TEXT,
    event_timestamp_ms  BIGINT NOT NULL,
    payload             TEXT NOT NULL,
    received_at         BIGINT NOT NULL,
    status              TEXT NOT NULL,
    status_detail       TEXT,
    processed_at        BIGINT,
    -- Anonymous-id resolution (status 'pending_resolution') retries.
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT,
    PRIMARY KEY (project_id, event_id)
);
CREATE INDEX webhook_events_status ON webhook_events(status, received_at);
CREATE INDEX webhook_events_user ON webhook_events(project_id, target_user_id, event_timestamp_ms);

-- The newest subscription event applied to a user, for the ordering guard.
ALTER TABLE app_users ADD COLUMN rc_event_timestamp_ms BIGINT;
-- Bytewise, like SQLite: equal timestamps are ordered by event id the same way on both.
ALTER TABLE app_users ADD COLUMN rc_event_id TEXT COLLATE "C";

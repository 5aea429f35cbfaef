-- Statuses held to their values by CHECK constraints, dispatch bookkeeping for follow-ups (the
-- dispatcher pushes due rows to apalis and notes when), the flag for implausible event
-- timestamps, and the liveness of worker processes. SQLite cannot add a CHECK to an existing
-- column, so the two tables are rebuilt.

CREATE TABLE webhook_events_new (
    project_id          TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_id            TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    app_user_id         TEXT,
    target_user_id      TEXT,
    environment         TEXT,
    event_timestamp_ms  INTEGER NOT NULL,
    -- 0: the timestamp was implausible, the event was ordered by received_at.
    timestamp_trusted   INTEGER NOT NULL DEFAULT 1,
    payload             TEXT NOT NULL,
    received_at         INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN
                            ('applied', 'superseded', 'ignored', 'pending_resolution', 'skipped', 'failed')),
    status_detail       TEXT,
    processed_at        INTEGER,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER,
    dispatched_at       INTEGER,
    PRIMARY KEY (project_id, event_id)
);
INSERT INTO webhook_events_new (project_id, event_id, event_type, app_user_id, target_user_id,
        environment, event_timestamp_ms, payload, received_at, status, status_detail,
        processed_at, attempts, next_attempt_at)
    SELECT project_id, event_id, event_type, app_user_id, target_user_id, environment,
        event_timestamp_ms, payload, received_at,
        CASE WHEN status IN ('applied', 'superseded', 'ignored', 'pending_resolution', 'skipped')
             THEN status ELSE 'failed' END,
        status_detail, processed_at, attempts, next_attempt_at
    FROM webhook_events;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_new RENAME TO webhook_events;
CREATE INDEX webhook_events_user ON webhook_events(project_id, target_user_id, event_timestamp_ms);
CREATE INDEX webhook_events_pending_resolution ON webhook_events(next_attempt_at)
    WHERE status = 'pending_resolution';

CREATE TABLE user_resyncs_new (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL,
    reason         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN
                       ('pending', 'running', 'succeeded', 'skipped', 'failed', 'superseded')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    run_after      INTEGER NOT NULL,
    last_error     TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- When the dispatcher last pushed this row's task (NULL: not since it became due).
    dispatched_at  INTEGER,
    -- The worker instance holding the claim while running.
    claimed_by     TEXT
);
INSERT INTO user_resyncs_new (id, project_id, user_id, reason, status, attempts, run_after,
        last_error, created_at, updated_at)
    SELECT id, project_id, user_id, reason, status, attempts, run_after, last_error, created_at,
        updated_at
    FROM user_resyncs;
DROP TABLE user_resyncs;
ALTER TABLE user_resyncs_new RENAME TO user_resyncs;
CREATE UNIQUE INDEX user_resyncs_one_pending ON user_resyncs(project_id, user_id) WHERE status = 'pending';
CREATE INDEX user_resyncs_status_run_after ON user_resyncs(status, run_after);

-- Processes running job workers, for taking over the claims of one that died.
CREATE TABLE worker_instances (
    id            TEXT PRIMARY KEY,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL
);
CREATE INDEX user_resyncs_dispatched ON user_resyncs(status, dispatched_at);

-- A webhook event's follow-up resync, requested on the user row the event writes anyway (no
-- extra row and indexes per event); the dispatcher turns due ones into user_resyncs rows.
ALTER TABLE app_users ADD COLUMN resync_due_at INTEGER;
CREATE INDEX app_users_resync_due ON app_users(resync_due_at) WHERE resync_due_at IS NOT NULL;

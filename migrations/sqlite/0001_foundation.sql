-- Foundation schema (SQLite). Timestamps are milliseconds since the Unix epoch (INTEGER),
-- booleans are INTEGER 0/1, JSON documents are TEXT. Table names avoid `jobs` and `workers`,
-- which apalis-sqlite owns in the same database.

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    team_id     TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX projects_team_id ON projects(team_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    team_id       TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    key_prefix    TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    permissions   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_team_id ON api_keys(team_id);

-- One row per (project, provider), ever: a soft-deleted row is restored in place by the next
-- create, so the UNIQUE constraint is what makes concurrent creates race-free.
CREATE TABLE integrations (
    id                     TEXT PRIMARY KEY,
    project_id             TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    provider               TEXT NOT NULL,
    config_ciphertext      BLOB NOT NULL,
    webhook_secret_hash    TEXT,
    provider_project_id    TEXT,
    revision               INTEGER NOT NULL DEFAULT 0,
    enabled                INTEGER NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    deleted_at             INTEGER,
    UNIQUE (project_id, provider)
);

CREATE TABLE app_users (
    project_id    TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    is_anonymous  INTEGER NOT NULL,
    properties    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

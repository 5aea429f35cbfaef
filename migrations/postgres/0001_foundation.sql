-- Foundation schema (PostgreSQL). Timestamps are milliseconds since the Unix epoch (BIGINT)
-- so both backends share one representation; JSON documents are JSONB.
-- apalis keeps its own tables in the `apalis` schema.

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    team_id     TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX projects_team_id ON projects(team_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    team_id       TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    key_prefix    TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    permissions   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_team_id ON api_keys(team_id);

-- One row per (project, provider), ever: a soft-deleted row is restored in place by the next
-- create, so the UNIQUE constraint is what makes concurrent creates race-free.
CREATE TABLE integrations (
    id                     TEXT PRIMARY KEY,
    project_id             TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    provider               TEXT NOT NULL,
    config_ciphertext      BYTEA NOT NULL,
    webhook_secret_hash    TEXT,
    provider_project_id    TEXT,
    revision               BIGINT NOT NULL DEFAULT 0,
    enabled                BOOLEAN NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    deleted_at             BIGINT,
    UNIQUE (project_id, provider)
);

-- user_id sorts bytewise (COLLATE "C") like SQLite, so cursor paging is identical on both.
CREATE TABLE app_users (
    project_id    TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id       TEXT COLLATE "C" NOT NULL,
    is_anonymous  BOOLEAN NOT NULL,
    properties    JSONB NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

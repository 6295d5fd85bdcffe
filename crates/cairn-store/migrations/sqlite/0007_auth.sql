-- Cairn metadata schema, version 7 (SQLite): access control.
--
-- Users sign in with a password kept only as an argon2id hash (a PHC string). Roles group
-- permissions, each a level on the resources of one type whose id matches a pattern (an id or
-- `*`); users are assigned roles, and may also hold direct grants on single resources. API
-- tokens are kept as the SHA-256 digest of their secret. Every row carries `seq`, the audit
-- event that last wrote it, like the tracking tables.
CREATE TABLE auth_users (
    user_id       INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    seq           INTEGER NOT NULL
);

CREATE TABLE auth_roles (
    role_id     INTEGER PRIMARY KEY,
    workspace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    description TEXT,
    seq         INTEGER NOT NULL,
    UNIQUE (workspace, name)
);

CREATE TABLE auth_role_permissions (
    role_permission_id INTEGER PRIMARY KEY,
    role_id            INTEGER NOT NULL,
    resource_type      TEXT    NOT NULL,
    resource_pattern   TEXT    NOT NULL,
    permission         TEXT    NOT NULL,
    seq                INTEGER NOT NULL,
    UNIQUE (role_id, resource_type, resource_pattern)
);

CREATE TABLE auth_role_assignments (
    assignment_id INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL,
    role_id       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    UNIQUE (user_id, role_id)
);

CREATE TABLE auth_grants (
    user_id       INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    permission    TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    PRIMARY KEY (user_id, resource_type, resource_id)
);

CREATE TABLE auth_tokens (
    token_id      TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL,
    scope         TEXT    NOT NULL,
    secret_digest TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    seq           INTEGER NOT NULL
);

-- When each token last authenticated a request. Operational, like a login timestamp: written
-- at most once a minute per token, outside the audit chain, and ignored by verification.
CREATE TABLE auth_token_use (
    token_id     TEXT    PRIMARY KEY,
    last_used_at INTEGER NOT NULL
);

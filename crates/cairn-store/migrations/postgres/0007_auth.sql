-- Cairn metadata schema, version 7 (PostgreSQL). Mirrors migrations/sqlite/0007_auth.sql;
-- see the comments there.

CREATE TABLE auth_users (
    user_id       BIGINT PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    seq           BIGINT  NOT NULL
);

CREATE TABLE auth_roles (
    role_id     BIGINT PRIMARY KEY,
    workspace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    description TEXT,
    seq         BIGINT  NOT NULL,
    UNIQUE (workspace, name)
);

CREATE TABLE auth_role_permissions (
    role_permission_id BIGINT PRIMARY KEY,
    role_id            BIGINT  NOT NULL,
    resource_type      TEXT    NOT NULL,
    resource_pattern   TEXT    NOT NULL,
    permission         TEXT    NOT NULL,
    seq                BIGINT  NOT NULL,
    UNIQUE (role_id, resource_type, resource_pattern)
);

CREATE TABLE auth_role_assignments (
    assignment_id BIGINT PRIMARY KEY,
    user_id       BIGINT  NOT NULL,
    role_id       BIGINT  NOT NULL,
    seq           BIGINT  NOT NULL,
    UNIQUE (user_id, role_id)
);

CREATE TABLE auth_grants (
    user_id       BIGINT  NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    permission    TEXT    NOT NULL,
    seq           BIGINT  NOT NULL,
    PRIMARY KEY (user_id, resource_type, resource_id)
);

CREATE TABLE auth_tokens (
    token_id      TEXT    PRIMARY KEY,
    user_id       BIGINT  NOT NULL,
    scope         TEXT    NOT NULL,
    secret_digest TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    seq           BIGINT  NOT NULL
);

CREATE TABLE auth_token_use (
    token_id     TEXT    PRIMARY KEY,
    last_used_at BIGINT  NOT NULL
);

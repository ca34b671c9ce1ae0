-- Built-in OAuth 2.1 authorization server (AUTH-1, AUTH-2, AUTH-7, AUTH-9), SQLite flavour.
-- Secrets are never stored in the clear: passwords as argon2id PHC strings, client secrets,
-- codes, refresh tokens and session ids as SHA-256 digests, signing keys sealed under the
-- master key kept outside the database.
CREATE TABLE auth_users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT,
    groups_json   TEXT NOT NULL,
    roles_json    TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_us    INTEGER NOT NULL
);

CREATE TABLE auth_clients (
    client_id      TEXT PRIMARY KEY NOT NULL,
    client_name    TEXT,
    redirect_uris  TEXT NOT NULL,
    grant_types    TEXT NOT NULL,
    auth_method    TEXT NOT NULL,
    secret_hash    BLOB,
    metadata       TEXT NOT NULL,
    created_us     INTEGER NOT NULL,
    revoked_us     INTEGER
);

CREATE TABLE auth_consents (
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    granted_us  INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
);

CREATE TABLE auth_requests (
    id          TEXT PRIMARY KEY NOT NULL,
    browser     BLOB NOT NULL,
    payload     TEXT NOT NULL,
    user_id     TEXT,
    expires_us  INTEGER NOT NULL
);

CREATE TABLE auth_sessions (
    id_hash     BLOB PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    created_us  INTEGER NOT NULL,
    expires_us  INTEGER NOT NULL
);

CREATE TABLE auth_codes (
    code_hash      BLOB PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    resource       TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    family_id      TEXT NOT NULL,
    expires_us     INTEGER NOT NULL,
    used_us        INTEGER
);

CREATE TABLE auth_families (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_us  INTEGER NOT NULL,
    expires_us  INTEGER NOT NULL,
    revoked_us  INTEGER,
    reason      TEXT
);
CREATE INDEX auth_families_user_client ON auth_families (user_id, client_id);
CREATE INDEX auth_families_revoked ON auth_families (revoked_us) WHERE revoked_us IS NOT NULL;

CREATE TABLE auth_refresh_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    family_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_us  INTEGER NOT NULL,
    expires_us  INTEGER NOT NULL,
    used_us     INTEGER
);
CREATE INDEX auth_refresh_family ON auth_refresh_tokens (family_id);

CREATE TABLE auth_revoked_jti (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_us  INTEGER NOT NULL
);

CREATE TABLE auth_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    alg         TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    nonce       BLOB NOT NULL,
    sealed      BLOB NOT NULL,
    created_us  INTEGER NOT NULL,
    retired_us  INTEGER
);

CREATE TABLE auth_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Audit log tables (AU-1, AU-3, AU-5), PostgreSQL flavour. Every event column is covered by the
-- chain hash; `redacted` and `leaf` are set only when retention or erasure blanks an event.
CREATE TABLE audit_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE audit_events (
    seq             BIGINT PRIMARY KEY NOT NULL,
    id              TEXT NOT NULL,
    time_ns         BIGINT NOT NULL,
    correlation_id  TEXT NOT NULL,
    kind            TEXT NOT NULL,
    principal       TEXT,
    client          TEXT,
    source          TEXT,
    session         TEXT,
    connector       TEXT,
    method          TEXT,
    target          TEXT,
    decision        TEXT NOT NULL,
    reasons         TEXT NOT NULL,
    findings        TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    upstream_status BIGINT,
    request_bytes   BIGINT NOT NULL,
    response_bytes  BIGINT NOT NULL,
    latency_us      BIGINT NOT NULL,
    data_class      TEXT NOT NULL,
    subject         TEXT,
    payload_digest  BYTEA,
    redacted        TEXT,
    leaf            BYTEA,
    hash            BYTEA NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time_ns);
CREATE INDEX audit_events_subject ON audit_events (subject) WHERE subject IS NOT NULL;

CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY NOT NULL,
    hash       BYTEA NOT NULL,
    time_us    BIGINT NOT NULL,
    public_key BYTEA NOT NULL,
    signature  BYTEA NOT NULL
);

CREATE TABLE audit_payloads (
    seq        BIGINT PRIMARY KEY NOT NULL,
    subject    TEXT NOT NULL,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);
CREATE INDEX audit_payloads_subject ON audit_payloads (subject);

CREATE TABLE audit_subject_keys (
    subject     TEXT PRIMARY KEY NOT NULL,
    nonce       BYTEA NOT NULL,
    wrapped_key BYTEA NOT NULL,
    created_us  BIGINT NOT NULL
);

CREATE TABLE audit_receipts (
    id       TEXT PRIMARY KEY NOT NULL,
    kind     TEXT NOT NULL,
    time_us  BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    details  TEXT NOT NULL
);

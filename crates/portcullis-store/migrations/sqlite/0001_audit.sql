-- Audit log tables (AU-1, AU-3, AU-5), SQLite flavour. Every event column is covered by the
-- chain hash; `redacted` and `leaf` are set only when retention or erasure blanks an event.
CREATE TABLE audit_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE audit_events (
    seq             INTEGER PRIMARY KEY NOT NULL,
    id              TEXT NOT NULL,
    time_ns         INTEGER NOT NULL,
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
    upstream_status INTEGER,
    request_bytes   INTEGER NOT NULL,
    response_bytes  INTEGER NOT NULL,
    latency_us      INTEGER NOT NULL,
    data_class      TEXT NOT NULL,
    subject         TEXT,
    payload_digest  BLOB,
    redacted        TEXT,
    leaf            BLOB,
    hash            BLOB NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time_ns);
CREATE INDEX audit_events_subject ON audit_events (subject) WHERE subject IS NOT NULL;

CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY NOT NULL,
    hash       BLOB NOT NULL,
    time_us    INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature  BLOB NOT NULL
);

CREATE TABLE audit_payloads (
    seq        INTEGER PRIMARY KEY NOT NULL,
    subject    TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);
CREATE INDEX audit_payloads_subject ON audit_payloads (subject);

CREATE TABLE audit_subject_keys (
    subject     TEXT PRIMARY KEY NOT NULL,
    nonce       BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    created_us  INTEGER NOT NULL
);

CREATE TABLE audit_receipts (
    id       TEXT PRIMARY KEY NOT NULL,
    kind     TEXT NOT NULL,
    time_us  INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    details  TEXT NOT NULL
);

-- Human confirmation of calls (HC-1, HC-2, HC-3), PostgreSQL flavour: calls parked in the approval
-- queue until a person approves or denies them, or they expire (denied). Each is bound to one
-- exact call by `call_hash` (tool and arguments) and is used at most once (`used_us`).
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY NOT NULL,
    created_us      BIGINT NOT NULL,
    expires_us      BIGINT NOT NULL,
    principal       TEXT NOT NULL,
    client          TEXT NOT NULL,
    connector       TEXT NOT NULL,
    tool            TEXT NOT NULL,
    call_hash       TEXT NOT NULL,
    summary         TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    status          TEXT NOT NULL,
    decided_by      TEXT,
    decided_us      BIGINT,
    reason          TEXT,
    used_us         BIGINT
);
CREATE INDEX approvals_status ON approvals (status, expires_us);

-- Alerts raised by anomaly detection (MON-1, MON-2) and incidents from users' leak reports
-- (MON-4), sqlite flavour. Evidence is referenced by correlation id (JSON array of strings), never
-- copied: the audit log stays the one record of what happened.
CREATE TABLE alerts (
    id               TEXT PRIMARY KEY NOT NULL,
    created_us       INTEGER NOT NULL,
    severity         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    principal        TEXT,
    client           TEXT,
    source           TEXT,
    connector        TEXT,
    correlation_ids  TEXT NOT NULL,
    explanation      TEXT NOT NULL,
    dedup_key        TEXT NOT NULL,
    status           TEXT NOT NULL,
    acked_by         TEXT,
    acked_us         INTEGER
);
CREATE INDEX alerts_created ON alerts (created_us);
CREATE INDEX alerts_status ON alerts (status, created_us);

CREATE TABLE incidents (
    id               TEXT PRIMARY KEY NOT NULL,
    created_us       INTEGER NOT NULL,
    reported_by      TEXT NOT NULL,
    principal        TEXT,
    connector        TEXT,
    from_us          INTEGER,
    to_us            INTEGER,
    description      TEXT NOT NULL,
    correlation_ids  TEXT NOT NULL,
    status           TEXT NOT NULL
);
CREATE INDEX incidents_created ON incidents (created_us);

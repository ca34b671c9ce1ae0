-- Pinned tool definitions (PI-3, MON-3), SQLite flavour. One row per (connector, tool): the
-- approved definition (canonical JSON) and its hash, who approved it and when (`auto:first-seen`
-- for the first definition seen), and, when the upstream now serves something else, the pending
-- definition the gateway blocks until a person approves it. A tool seen for the first time with
-- poisoning cues has no approved definition yet, only a pending one.
CREATE TABLE tool_pins (
    connector               TEXT NOT NULL,
    tool                    TEXT NOT NULL,
    first_seen_us           INTEGER NOT NULL,
    approved_hash           TEXT,
    approved_definition     TEXT,
    approved_us             INTEGER,
    approved_by             TEXT,
    pending_hash            TEXT,
    pending_definition      TEXT,
    pending_first_seen_us   INTEGER,
    PRIMARY KEY (connector, tool),
    CHECK ((approved_hash IS NULL) = (approved_definition IS NULL)),
    CHECK ((approved_hash IS NULL) = (approved_us IS NULL)),
    CHECK ((approved_hash IS NULL) = (approved_by IS NULL)),
    CHECK ((pending_hash IS NULL) = (pending_definition IS NULL)),
    CHECK ((pending_hash IS NULL) = (pending_first_seen_us IS NULL)),
    CHECK (approved_hash IS NOT NULL OR pending_hash IS NOT NULL)
);

-- What happened to each pin, newest last: first seen, drifted, approved, reverted. Kept so that
-- `portcullis tools list` can say what drifted when; bounded per tool by the store.
CREATE TABLE tool_pin_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    connector       TEXT NOT NULL,
    tool            TEXT NOT NULL,
    at_us           INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    hash            TEXT NOT NULL,
    previous_hash   TEXT,
    actor           TEXT
);
CREATE INDEX tool_pin_events_tool ON tool_pin_events (connector, tool, id);

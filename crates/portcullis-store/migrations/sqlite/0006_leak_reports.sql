-- Users' leak reports (MON-4), sqlite flavour: what a report said about the text, beside the
-- incident it opened. The reported text itself is never stored (AU-2): only its SHA-256, its
-- length and the detector kinds found in it, which is what links it to audit events.
CREATE TABLE leak_reports (
    incident_id      TEXT PRIMARY KEY NOT NULL REFERENCES incidents (id),
    tool             TEXT,
    text_sha256      TEXT NOT NULL,
    text_chars       INTEGER NOT NULL,
    finding_kinds    TEXT NOT NULL,
    matched_by       TEXT NOT NULL
);

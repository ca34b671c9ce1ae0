//! Pinned tool definitions (PI-3, MON-3): for each (connector, tool), the definition a person (or
//! the first-seen rule) approved, its hash, and the definition the upstream serves now when that
//! differs. The gateway calls [`ToolPins::observe`] for every tool of every `tools/list` answer and
//! blocks a tool whose state is not callable; `portcullis tools approve` calls
//! [`ToolPins::approve`] with the hash of the definition the reviewer read.
//!
//! The hash and the canonical definition come from `portcullis-inspect` (`pinning`); the store
//! treats them as opaque text. Every decision is taken in one transaction that holds the row's
//! lock (`BEGIN IMMEDIATE` on SQLite, `SELECT … FOR UPDATE` on PostgreSQL), so two gateways
//! observing the same definition, or a gateway and an approver, never both win: one pin, one
//! drift event, one approval.

use crate::{Db, Store, StoreError};

/// `approved_by` of a definition pinned because it was the first one seen. People cannot approve
/// under a name starting with `auto:`, so this can never be forged through
/// [`ToolPins::approve`].
pub const AUTO_FIRST_SEEN: &str = "auto:first-seen";

/// Largest definition (canonical JSON, in bytes) the store keeps. Real tool definitions are a few
/// KB; a bigger one is refused (and so blocked by the gateway) rather than stored.
pub const MAX_DEFINITION_BYTES: usize = 1 << 20;

/// Drift and revert events kept per tool. An upstream that flips between two definitions adds
/// two events per flip; older ones are dropped so the table stays bounded. First-seen and
/// approval events are always kept: they are the evidence of who approved what.
pub const MAX_DRIFT_EVENTS_PER_TOOL: i64 = 200;

const MAX_NAME_BYTES: usize = 256;
const MAX_HASH_BYTES: usize = 128;
const MAX_ACTOR_BYTES: usize = 200;

/// What [`ToolPins::observe`] found, and so what the gateway does with the tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinState {
    /// Never seen before: pinned now and approved by [`AUTO_FIRST_SEEN`]. Callable.
    FirstSeen,
    /// The definition matches the approved one. Callable.
    Approved,
    /// The definition differs from the approved one; it is recorded as pending. The tool is
    /// blocked until a person approves `pending_hash`.
    Drifted {
        /// The hash of the approved definition.
        approved_hash: String,
        /// The hash of the definition the upstream serves now.
        pending_hash: String,
    },
    /// Nothing has been approved yet (first seen under [`FirstSeenPolicy::Review`]); the
    /// definition waits for a person. Blocked.
    Unapproved {
        /// The hash of the definition the upstream serves now.
        pending_hash: String,
    },
}

impl PinState {
    /// Whether the gateway may forward calls to the tool: only when the definition served is the
    /// approved one.
    pub fn is_callable(&self) -> bool {
        matches!(self, PinState::FirstSeen | PinState::Approved)
    }
}

/// What to do with a definition seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstSeenPolicy {
    /// Pin it as approved by [`AUTO_FIRST_SEEN`] (trust on first use).
    AutoApprove,
    /// Record it as pending: nothing is callable until a person approves it. For definitions
    /// whose poisoning scan found something, and for deployments that review every tool.
    Review,
}

/// One pin, as stored. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ToolPinRow {
    /// The connector.
    pub connector: String,
    /// The tool's name.
    pub tool: String,
    /// When the tool was first seen.
    pub first_seen_us: i64,
    /// The approved definition's hash; `None` while nothing has been approved.
    pub approved_hash: Option<String>,
    /// The approved definition, canonical JSON.
    pub approved_definition: Option<String>,
    /// When it was approved.
    pub approved_us: Option<i64>,
    /// Who approved it: a person's name, or [`AUTO_FIRST_SEEN`].
    pub approved_by: Option<String>,
    /// The hash of the definition served now, when it is not the approved one.
    pub pending_hash: Option<String>,
    /// That definition, canonical JSON.
    pub pending_definition: Option<String>,
    /// When the upstream started serving it.
    pub pending_first_seen_us: Option<i64>,
}

impl ToolPinRow {
    /// The row's state as [`observe`](ToolPins::observe) would report it for the pending
    /// definition (or the approved one when nothing is pending).
    pub fn state(&self) -> PinState {
        match (&self.approved_hash, &self.pending_hash) {
            (Some(a), Some(p)) => PinState::Drifted {
                approved_hash: a.clone(),
                pending_hash: p.clone(),
            },
            (None, Some(p)) => PinState::Unapproved {
                pending_hash: p.clone(),
            },
            _ => PinState::Approved,
        }
    }
}

/// One thing that happened to a pin.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ToolPinEvent {
    /// Increasing id: the order events happened in.
    pub id: i64,
    /// The connector.
    pub connector: String,
    /// The tool.
    pub tool: String,
    /// When, microseconds since the epoch.
    pub at_us: i64,
    /// `first_seen` (auto-approved), `unapproved` (first seen, waiting for review), `drifted`
    /// (a new pending definition), `reverted` (the upstream serves the approved one again) or
    /// `approved` (by a person).
    pub kind: String,
    /// The hash the event is about: the definition seen, or the one approved.
    pub hash: String,
    /// The hash it replaced (the earlier pending or approved one), if any.
    pub previous_hash: Option<String>,
    /// Who: the approver, or [`AUTO_FIRST_SEEN`].
    pub actor: Option<String>,
}

/// Why a pin operation failed. Every message names the tool and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An argument was unusable (empty, too long, not JSON).
    #[error("invalid {what} for tool pinning: {why}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// What was wrong and what to do.
        why: String,
    },
    /// No pin exists for this connector and tool.
    #[error(
        "no pinned tool {tool:?} for connector {connector:?}: the gateway pins a tool when it first lists it; `portcullis tools list` shows the pinned ones"
    )]
    NotFound {
        /// The connector asked for.
        connector: String,
        /// The tool asked for.
        tool: String,
    },
    /// The tool has no pending definition: there is nothing to approve.
    #[error(
        "tool {tool:?} of connector {connector:?} has no pending change: the upstream serves the approved definition, so there is nothing to approve"
    )]
    NoPending {
        /// The connector.
        connector: String,
        /// The tool.
        tool: String,
    },
    /// The pending definition is not the one the reviewer approved: it changed after they read
    /// the diff. Nothing is approved.
    #[error(
        "the pending definition of tool {tool:?} of connector {connector:?} is {pending}, not {expected}: it changed after you reviewed it; nothing was approved. Read `portcullis tools diff {connector} {tool}` again and approve the hash it shows"
    )]
    HashMismatch {
        /// The connector.
        connector: String,
        /// The tool.
        tool: String,
        /// The hash the reviewer approved.
        expected: String,
        /// The hash pending now.
        pending: String,
    },
}

/// The pins of one [`Store`]: `store.tool_pins()`.
#[derive(Debug, Clone, Copy)]
pub struct ToolPins<'a> {
    store: &'a Store,
}

impl Store {
    /// The pinned tool definitions (PI-3).
    pub fn tool_pins(&self) -> ToolPins<'_> {
        ToolPins { store: self }
    }
}

const PIN_COLUMNS: &str = "connector, tool, first_seen_us, approved_hash, approved_definition, \
     approved_us, approved_by, pending_hash, pending_definition, pending_first_seen_us";
const EVENT_COLUMNS: &str = "id, connector, tool, at_us, kind, hash, previous_hash, actor";

/// Drops the drift and revert events of one tool beyond the newest
/// [`MAX_DRIFT_EVENTS_PER_TOOL`], inside the caller's transaction.
macro_rules! prune_events {
    ($store:expr, $tx:ident, $connector:expr, $tool:expr) => {
        sqlx::query(
            "DELETE FROM tool_pin_events WHERE connector = $1 AND tool = $2 \
             AND kind IN ('drifted', 'reverted') AND id <= (SELECT id FROM tool_pin_events \
             WHERE connector = $1 AND tool = $2 AND kind IN ('drifted', 'reverted') \
             ORDER BY id DESC LIMIT 1 OFFSET $3)",
        )
        .bind($connector)
        .bind($tool)
        .bind(MAX_DRIFT_EVENTS_PER_TOOL)
        .execute(&mut *$tx)
        .await
        .map_err($store.err("pruning old tool-pin events"))?;
    };
}

/// Runs `$body` inside a transaction that locks what it reads, on whichever backend the store
/// is; commits when the body ends normally, rolls back when it returns early with `?`. `$lock`
/// is the suffix that makes a `SELECT` lock its rows (empty on SQLite, where `BEGIN IMMEDIATE`
/// already holds the database's write lock).
macro_rules! locked_tx {
    ($store:expr, $tx:ident, $lock:ident => $body:block) => {
        match $store.db() {
            Db::Sqlite(pool) => {
                // IMMEDIATE takes the write lock at once: concurrent writers queue on the busy
                // timeout instead of one failing when it upgrades from a read to a write.
                #[allow(unused_mut)]
                let mut $tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err($store.err("starting a tool-pin transaction"))?;
                let $lock = "";
                let out = $body;
                $tx.commit()
                    .await
                    .map_err($store.err("committing a tool-pin transaction"))?;
                out
            }
            Db::Postgres(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool
                    .begin()
                    .await
                    .map_err($store.err("starting a tool-pin transaction"))?;
                let $lock = " FOR UPDATE";
                let out = $body;
                $tx.commit()
                    .await
                    .map_err($store.err("committing a tool-pin transaction"))?;
                out
            }
        }
    };
}

impl ToolPins<'_> {
    /// Records that the upstream serves the definition `definition_json` (canonical JSON, hash
    /// `hash`) for `tool` of `connector` at `now_us`, auto-approving it when the tool is new.
    /// Same as [`observe_with`](Self::observe_with) with [`FirstSeenPolicy::AutoApprove`].
    pub async fn observe(
        &self,
        connector: &str,
        tool: &str,
        hash: &str,
        definition_json: &str,
        now_us: i64,
    ) -> Result<PinState, PinError> {
        self.observe_with(
            connector,
            tool,
            hash,
            definition_json,
            now_us,
            FirstSeenPolicy::AutoApprove,
        )
        .await
    }

    /// Records that the upstream serves `definition_json` (hash `hash`) for `tool` of
    /// `connector`, and says whether it may be called:
    /// - a new tool is pinned as `first_policy` says ([`PinState::FirstSeen`] or
    ///   [`PinState::Unapproved`]);
    /// - the approved definition gives [`PinState::Approved`] (and clears a pending one: the
    ///   upstream went back);
    /// - any other definition is recorded as pending, replacing an earlier pending one, and gives
    ///   [`PinState::Drifted`] (or [`PinState::Unapproved`] when nothing was ever approved).
    ///
    /// Seeing the same definition again writes nothing. Safe to call from several gateways at
    /// once: the first definition of a tool is pinned once, without an error for the others.
    pub async fn observe_with(
        &self,
        connector: &str,
        tool: &str,
        hash: &str,
        definition_json: &str,
        now_us: i64,
        first_policy: FirstSeenPolicy,
    ) -> Result<PinState, PinError> {
        check_name("connector", connector)?;
        check_name("tool", tool)?;
        check_hash(hash)?;
        check_definition(definition_json)?;

        // The common case (nothing changed) reads without taking any lock.
        if let Some(row) = self.get(connector, tool).await? {
            let approved = row.approved_hash.as_deref() == Some(hash);
            if approved && row.pending_hash.is_none() {
                return Ok(PinState::Approved);
            }
            if !approved && row.pending_hash.as_deref() == Some(hash) {
                return Ok(row.state());
            }
        }

        let store = self.store;
        let state = locked_tx!(store, tx, lock => {
            let auto = first_policy == FirstSeenPolicy::AutoApprove;
            let (approved, pending) = if auto { (Some(hash), None) } else { (None, Some(hash)) };
            let (approved_def, pending_def) =
                if auto { (Some(definition_json), None) } else { (None, Some(definition_json)) };
            let inserted = sqlx::query(
                "INSERT INTO tool_pins (connector, tool, first_seen_us, approved_hash, \
                 approved_definition, approved_us, approved_by, pending_hash, pending_definition, \
                 pending_first_seen_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (connector, tool) DO NOTHING",
            )
            .bind(connector).bind(tool).bind(now_us)
            .bind(approved).bind(approved_def).bind(auto.then_some(now_us))
            .bind(auto.then_some(AUTO_FIRST_SEEN))
            .bind(pending).bind(pending_def).bind((!auto).then_some(now_us))
            .execute(&mut *tx)
            .await
            .map_err(store.err("pinning a new tool definition"))?
            .rows_affected()
                == 1;
            if inserted {
                let (kind, actor) = if auto {
                    ("first_seen", Some(AUTO_FIRST_SEEN))
                } else {
                    ("unapproved", None)
                };
                sqlx::query(
                    "INSERT INTO tool_pin_events (connector, tool, at_us, kind, hash, previous_hash, actor) \
                     VALUES ($1, $2, $3, $4, $5, NULL, $6)",
                )
                .bind(connector).bind(tool).bind(now_us).bind(kind).bind(hash).bind(actor)
                .execute(&mut *tx)
                .await
                .map_err(store.err("recording a tool-pin event"))?;
                if auto {
                    PinState::FirstSeen
                } else {
                    PinState::Unapproved { pending_hash: hash.to_owned() }
                }
            } else {
                let sql = format!(
                    "SELECT {PIN_COLUMNS} FROM tool_pins WHERE connector = $1 AND tool = $2{lock}"
                );
                let row: ToolPinRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(connector).bind(tool)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store.err("reading a tool pin"))?;
                if row.approved_hash.as_deref() == Some(hash) {
                    if let Some(previous) = &row.pending_hash {
                        // The upstream serves the approved definition again: nothing to review.
                        sqlx::query(
                            "UPDATE tool_pins SET pending_hash = NULL, pending_definition = NULL, \
                             pending_first_seen_us = NULL WHERE connector = $1 AND tool = $2",
                        )
                        .bind(connector).bind(tool)
                        .execute(&mut *tx)
                        .await
                        .map_err(store.err("clearing a pending tool definition"))?;
                        sqlx::query(
                            "INSERT INTO tool_pin_events (connector, tool, at_us, kind, hash, previous_hash, actor) \
                             VALUES ($1, $2, $3, 'reverted', $4, $5, NULL)",
                        )
                        .bind(connector).bind(tool).bind(now_us).bind(hash).bind(previous)
                        .execute(&mut *tx)
                        .await
                        .map_err(store.err("recording a tool-pin event"))?;
                        prune_events!(store, tx, connector, tool);
                    }
                    PinState::Approved
                } else if row.pending_hash.as_deref() == Some(hash) {
                    row.state()
                } else {
                    sqlx::query(
                        "UPDATE tool_pins SET pending_hash = $3, pending_definition = $4, \
                         pending_first_seen_us = $5 WHERE connector = $1 AND tool = $2",
                    )
                    .bind(connector).bind(tool).bind(hash).bind(definition_json).bind(now_us)
                    .execute(&mut *tx)
                    .await
                    .map_err(store.err("recording a drifted tool definition"))?;
                    let previous = row.pending_hash.as_deref().or(row.approved_hash.as_deref());
                    sqlx::query(
                        "INSERT INTO tool_pin_events (connector, tool, at_us, kind, hash, previous_hash, actor) \
                         VALUES ($1, $2, $3, 'drifted', $4, $5, NULL)",
                    )
                    .bind(connector).bind(tool).bind(now_us).bind(hash).bind(previous)
                    .execute(&mut *tx)
                    .await
                    .map_err(store.err("recording a tool-pin event"))?;
                    prune_events!(store, tx, connector, tool);
                    match row.approved_hash {
                        Some(approved_hash) => PinState::Drifted {
                            approved_hash,
                            pending_hash: hash.to_owned(),
                        },
                        None => PinState::Unapproved { pending_hash: hash.to_owned() },
                    }
                }
            }
        });
        Ok(state)
    }

    /// Approves the pending definition of `tool` of `connector`, by `by`, at `now_us`, but only
    /// if its hash is `expected_pending_hash`: the reviewer approves exactly what they read, never
    /// a definition that arrived after they ran `portcullis tools diff`. Returns the pin as it
    /// is now.
    pub async fn approve(
        &self,
        connector: &str,
        tool: &str,
        expected_pending_hash: &str,
        by: &str,
        now_us: i64,
    ) -> Result<ToolPinRow, PinError> {
        check_name("connector", connector)?;
        check_name("tool", tool)?;
        check_hash(expected_pending_hash)?;
        check_actor(by)?;
        let store = self.store;
        let row = locked_tx!(store, tx, lock => {
            let sql = format!(
                "SELECT {PIN_COLUMNS} FROM tool_pins WHERE connector = $1 AND tool = $2{lock}"
            );
            let row: Option<ToolPinRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(connector).bind(tool)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store.err("reading a tool pin"))?;
            let Some(mut row) = row else {
                return Err(PinError::NotFound {
                    connector: connector.to_owned(),
                    tool: tool.to_owned(),
                });
            };
            let Some(pending) = row.pending_hash.clone() else {
                return Err(PinError::NoPending {
                    connector: connector.to_owned(),
                    tool: tool.to_owned(),
                });
            };
            if pending != expected_pending_hash {
                return Err(PinError::HashMismatch {
                    connector: connector.to_owned(),
                    tool: tool.to_owned(),
                    expected: expected_pending_hash.to_owned(),
                    pending,
                });
            }
            sqlx::query(
                "UPDATE tool_pins SET approved_hash = pending_hash, \
                 approved_definition = pending_definition, approved_us = $3, approved_by = $4, \
                 pending_hash = NULL, pending_definition = NULL, pending_first_seen_us = NULL \
                 WHERE connector = $1 AND tool = $2 AND pending_hash = $5",
            )
            .bind(connector).bind(tool).bind(now_us).bind(by).bind(&pending)
            .execute(&mut *tx)
            .await
            .map_err(store.err("approving a tool definition"))?;
            sqlx::query(
                "INSERT INTO tool_pin_events (connector, tool, at_us, kind, hash, previous_hash, actor) \
                 VALUES ($1, $2, $3, 'approved', $4, $5, $6)",
            )
            .bind(connector).bind(tool).bind(now_us).bind(&pending)
            .bind(row.approved_hash.as_deref()).bind(by)
            .execute(&mut *tx)
            .await
            .map_err(store.err("recording a tool-pin event"))?;
            row.approved_hash = Some(pending);
            row.approved_definition = row.pending_definition.take();
            row.approved_us = Some(now_us);
            row.approved_by = Some(by.to_owned());
            row.pending_hash = None;
            row.pending_first_seen_us = None;
            row
        });
        Ok(row)
    }

    /// The pin of `tool` of `connector`, if the gateway has seen that tool.
    pub async fn get(&self, connector: &str, tool: &str) -> Result<Option<ToolPinRow>, PinError> {
        let sql = format!("SELECT {PIN_COLUMNS} FROM tool_pins WHERE connector = $1 AND tool = $2");
        let s = self.store;
        Ok(
            crate::dispatch!(s.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(connector).bind(tool).fetch_optional(pool).await)
            .map_err(s.err("reading a tool pin"))?,
        )
    }

    /// Every pin, of `connector` only when given, ordered by connector then tool.
    pub async fn list(&self, connector: Option<&str>) -> Result<Vec<ToolPinRow>, PinError> {
        let filter = if connector.is_some() {
            "connector = $1"
        } else {
            "$1 = $1"
        };
        let sql =
            format!("SELECT {PIN_COLUMNS} FROM tool_pins WHERE {filter} ORDER BY connector, tool");
        let s = self.store;
        Ok(
            crate::dispatch!(s.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(connector.unwrap_or("")).fetch_all(pool).await)
            .map_err(s.err("listing tool pins"))?,
        )
    }

    /// The newest `limit` events, of `connector` and `tool` when given, newest first.
    pub async fn events(
        &self,
        connector: Option<&str>,
        tool: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ToolPinEvent>, PinError> {
        let c = if connector.is_some() {
            "connector = $1"
        } else {
            "$1 = $1"
        };
        let t = if tool.is_some() {
            "tool = $2"
        } else {
            "$2 = $2"
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM tool_pin_events WHERE {c} AND {t} ORDER BY id DESC LIMIT $3"
        );
        let s = self.store;
        Ok(
            crate::dispatch!(s.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(connector.unwrap_or("")).bind(tool.unwrap_or("")).bind(limit)
            .fetch_all(pool).await)
            .map_err(s.err("listing tool-pin events"))?,
        )
    }
}

fn check_name(what: &'static str, s: &str) -> Result<(), PinError> {
    if s.is_empty() || s.len() > MAX_NAME_BYTES || s.chars().any(char::is_control) {
        return Err(PinError::Invalid {
            what,
            why: format!(
                "a {what} name must be 1 to {MAX_NAME_BYTES} bytes with no control characters"
            ),
        });
    }
    Ok(())
}

fn check_hash(s: &str) -> Result<(), PinError> {
    if s.is_empty() || s.len() > MAX_HASH_BYTES || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PinError::Invalid {
            what: "definition hash",
            why: format!(
                "a hash is 1 to {MAX_HASH_BYTES} printable ASCII characters, like sha256:<64 hex digits>"
            ),
        });
    }
    Ok(())
}

fn check_definition(s: &str) -> Result<(), PinError> {
    if s.len() > MAX_DEFINITION_BYTES {
        return Err(PinError::Invalid {
            what: "tool definition",
            why: format!(
                "it is {} bytes, more than the {MAX_DEFINITION_BYTES} bytes a definition may have; the tool stays blocked: ask the connector's owner why its definition is so large",
                s.len()
            ),
        });
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(s) {
        return Err(PinError::Invalid {
            what: "tool definition",
            why: format!(
                "it is not JSON ({e}); pass the canonical JSON from portcullis_inspect::pinning::canonical_json"
            ),
        });
    }
    Ok(())
}

fn check_actor(s: &str) -> Result<(), PinError> {
    let t = s.trim();
    if t.is_empty() || t.len() > MAX_ACTOR_BYTES || t.chars().any(char::is_control) {
        return Err(PinError::Invalid {
            what: "approver",
            why: format!(
                "name who approves (--by NAME): 1 to {MAX_ACTOR_BYTES} bytes, no control characters"
            ),
        });
    }
    if t.starts_with("auto:") {
        return Err(PinError::Invalid {
            what: "approver",
            why: "names starting with `auto:` are reserved for approvals the gateway makes itself; approve under your own name".to_owned(),
        });
    }
    if t != s {
        return Err(PinError::Invalid {
            what: "approver",
            why: "the name has leading or trailing spaces; give it without them".to_owned(),
        });
    }
    Ok(())
}

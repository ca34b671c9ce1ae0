//! Administrative changes as audit events (AU-1): every change an administrator makes (through
//! the `portcullis` CLI or an admin route) is one chained event saying who, what, on what, and
//! how it ended. Targets are ids and names only: never passwords, tokens or other secrets.

use chrono::{DateTime, Utc};
use portcullis_core::{CorrelationId, Decision, Event, EventKind, Outcome};

use crate::{AuditError, AuditLog};

/// The `client` of admin events made by the command-line tool.
pub const CLI_CLIENT: &str = "portcullis-cli";

/// Longest error text kept in an event; longer ones are cut (with `…`).
const MAX_ERROR_CHARS: usize = 300;

/// One administrative change and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAction {
    /// Who made it: the `--actor` given, else the operating-system user.
    pub actor: String,
    /// The operating-system user running the tool, when it differs from `actor` or is known.
    pub os_user: Option<String>,
    /// Where it came from: [`CLI_CLIENT`] or the route that made it.
    pub client: String,
    /// The command path: `users/disable`, `tools/approve`, `approvals/approve`...
    pub command: String,
    /// What it changed: ids and names, never secrets.
    pub target: String,
    /// Further facts, `key=value` each (roles granted, scopes of a minted token...).
    pub details: Vec<String>,
    /// `Ok` when the change was made, else the error, in words.
    pub outcome: Result<(), String>,
}

impl AdminAction {
    /// The event recording this action at `time`. Success is `allow` with an `ok` outcome; a
    /// failure is `allow` (the administrator was entitled to try) with an `error` outcome
    /// (`code` 1, `origin` `admin`) and the error text as an `error=` reason.
    pub fn to_event(&self, time: DateTime<Utc>) -> Event {
        let mut e = Event::new(
            time,
            CorrelationId::generate(&mut rand::rng()),
            EventKind::Admin,
        );
        e.principal = Some(self.actor.clone());
        e.client = Some(self.client.clone());
        e.method = Some(self.command.clone());
        e.target = Some(self.target.clone());
        e.decision = Decision::Allow;
        e.reasons = self.details.clone();
        if let Some(u) = &self.os_user {
            e.reasons.push(format!("os_user={u}"));
        }
        match &self.outcome {
            Ok(()) => e.outcome = Outcome::Ok { tool_error: false },
            Err(why) => {
                let mut text: String = why.chars().take(MAX_ERROR_CHARS).collect();
                if why.chars().count() > MAX_ERROR_CHARS {
                    text.push('…');
                }
                e.reasons.push(format!("error={text}"));
                e.outcome = Outcome::Error {
                    code: 1,
                    origin: "admin".into(),
                };
            }
        }
        e
    }
}

impl AuditLog {
    /// Records an administrative change and waits until it is committed to the chain; returns its
    /// seq. An event that cannot be committed is an error, so the caller can say the change went
    /// unrecorded instead of losing it silently.
    pub async fn record_admin(&self, action: &AdminAction) -> Result<i64, AuditError> {
        let event = action.to_event(self.clock().now());
        self.record_committed(event).await
    }
}

/// The operating-system user running this process (`$USER`, else `$LOGNAME`), when known.
pub fn os_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|u| u.trim().to_string())
        .find(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(outcome: Result<(), String>) -> AdminAction {
        AdminAction {
            actor: "carol".into(),
            os_user: Some("root".into()),
            client: CLI_CLIENT.into(),
            command: "users/disable".into(),
            target: "alice".into(),
            details: vec!["roles=end_user".into()],
            outcome,
        }
    }

    #[test]
    fn success_and_failure_are_told_apart() {
        let t = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let ok = action(Ok(())).to_event(t);
        assert_eq!(ok.kind, EventKind::Admin);
        assert_eq!(ok.principal.as_deref(), Some("carol"));
        assert_eq!(ok.method.as_deref(), Some("users/disable"));
        assert_eq!(ok.target.as_deref(), Some("alice"));
        assert_eq!(ok.outcome, Outcome::Ok { tool_error: false });
        assert_eq!(ok.reasons, vec!["roles=end_user", "os_user=root"]);
        let bad = action(Err("no user \"alice\"".into())).to_event(t);
        assert!(matches!(bad.outcome, Outcome::Error { code: 1, .. }));
        assert!(bad.reasons.contains(&"error=no user \"alice\"".to_string()));
    }

    #[test]
    fn long_errors_are_cut() {
        let t = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let e = action(Err("x".repeat(1000))).to_event(t);
        let r = e.reasons.iter().find(|r| r.starts_with("error=")).unwrap();
        assert_eq!(r.chars().count(), "error=".len() + MAX_ERROR_CHARS + 1);
    }
}

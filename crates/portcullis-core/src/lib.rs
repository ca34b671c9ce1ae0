//! Domain types shared by every Portcullis crate: the per-call [`event::Event`] record, the
//! [`clock::Clock`] that makes time injectable, and correlation ids. No I/O lives here.

pub mod auth;
pub mod clock;
pub mod correlation;
pub mod event;

pub use auth::{Principal, Secret, TokenRejection, TokenVerifier, VerifyFuture, scope_covers};
pub use clock::{Clock, SystemClock};
pub use correlation::CorrelationId;
pub use event::{Decision, Event, EventKind, EventSink, FindingSummary, MemorySink, Outcome};

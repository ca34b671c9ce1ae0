//! portcullis-inspect: the inspection stages of the data path (DESIGN.md, stages 2, 4, 5 and 8).
//!
//! Each module is one stage or one piece of one, pure and testable alone; the gateway calls them
//! in order and writes what they find into the call's event:
//! - [`schema`]: tool arguments against the tool's input schema and stricter overrides, with
//!   size and depth limits (IV-1).
//! - [`egress`]: URLs against a connector's allow-list, with private, loopback, link-local and
//!   metadata addresses refused after resolution (EG-1, IV-4).
//! - [`arguments`]: detectors on the arguments: injection (PI-2), secrets or personal data leaving
//!   to open-world tools, URL arguments (IV-4).
//! - [`transform`]: the data actions on spans of text: redact, mask, pseudonymize (DLP-4).
//! - [`results`]: tool results and read resources: data rules in `content`, `structuredContent`
//!   and `_meta`, output field allow-lists (DLP-5), indirect injection (PI-1).
//! - [`widget`]: widget resources' Content Security Policy and code (EG-3).
//! - [`pinning`]: tool definitions hashed, scanned for poisoning and pinned (PI-3).

pub mod arguments;
pub mod egress;
pub mod pinning;
pub mod results;
pub mod schema;
pub mod transform;
pub mod widget;

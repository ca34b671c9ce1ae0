//! Shared helpers of the `result_*` tests: the detector, keys, and results shaped exactly as
//! the demo connector's MCP SDK (rmcp) shapes them.
#![allow(dead_code)] // each test file uses its own subset

use std::sync::{Arc, OnceLock};

use portcullis_config::{ValidInspection, ValidToolInspect};
use portcullis_demo::rmcp::model::{CallToolResult, ContentBlock};
use portcullis_detect::{Detector, DetectorConfig};
use portcullis_inspect::results::{ResultFacts, ResultInspector, ResultMethod, ResultVerdict};
use portcullis_inspect::transform::PseudonymKey;
use serde_json::Value;

/// One detector for the whole test binary (building it compiles every rule).
pub fn detector() -> Arc<Detector> {
    static D: OnceLock<Arc<Detector>> = OnceLock::new();
    D.get_or_init(|| Arc::new(Detector::new(&DetectorConfig::default()).expect("detector")))
        .clone()
}

/// An inspector with `settings`.
pub fn inspector(settings: &ValidInspection) -> ResultInspector {
    ResultInspector::new(detector(), settings)
}

/// A session key from a fixed master and a session id.
pub fn key(session: &str) -> PseudonymKey {
    PseudonymKey::for_session(&[0x5a; 32], session).expect("key")
}

/// The `result` of a tool returning `value` as structured content, as rmcp's `Json` wrapper
/// sends it: `structuredContent` plus one text block holding the same JSON.
pub fn structured(value: &impl serde::Serialize) -> Value {
    let v = serde_json::to_value(value).expect("serialize");
    serde_json::to_value(CallToolResult::structured(v)).expect("result")
}

/// The `result` of a tool returning one text block (as `fetch_url` does).
pub fn text_result(text: &str) -> Value {
    serde_json::to_value(CallToolResult::success(vec![ContentBlock::text(text)])).expect("result")
}

/// Facts for the demo connector `crm`, tool `tool`.
pub fn facts<'a>(
    tool: &'a str,
    inspect: Option<&'a ValidToolInspect>,
    key: &'a PseudonymKey,
) -> ResultFacts<'a> {
    ResultFacts {
        connector: "crm",
        target: tool,
        method: ResultMethod::ToolCall,
        tool: inspect,
        egress_allow: &[],
        pseudonym_key: key,
        widget: false,
    }
}

/// Inspects `result` as `tool` of `crm` with `settings`.
pub fn run(settings: &ValidInspection, tool: &str, result: &mut Value) -> ResultVerdict {
    let k = key("s1");
    inspector(settings).inspect(&facts(tool, None, &k), result)
}

/// The text of `content[i]`.
pub fn text(result: &Value, i: usize) -> &str {
    result["content"][i]["text"].as_str().expect("a text block")
}

/// Every matched value of `kind` the detector finds in `value` (the ground truth the tests
/// check the output against).
pub fn values_of(value: &Value, kinds: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for f in detector().scan_json(value) {
        if !kinds.contains(&f.kind.as_str()) {
            continue;
        }
        let p = f.pointer.as_deref().unwrap_or("");
        if let Some(s) = value.pointer(p).and_then(Value::as_str) {
            out.push(s[f.start..f.end].to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

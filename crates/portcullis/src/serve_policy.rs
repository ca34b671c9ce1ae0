//! The policy stage for `portcullis serve` (issue 4): Cedar policies (the built-in baseline
//! and the config's files, validated against the published schema at start-up: an invalid
//! policy stops start-up with Cedar's diagnostics and the file position), the shadow set
//! (AZ-6), and the approval queue for calls that need a person's confirmation (HC-2).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use portcullis_config::ValidConfig;
use portcullis_core::Clock;
use portcullis_gateway::GatewayPolicy;
use portcullis_gateway::confirm::ApprovalQueue;
use portcullis_policy::{BASELINE_NAME, BASELINE_TEXT, PolicyEngine, PolicySource};

fn read_sources(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<PolicySource>> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).with_context(|| {
                format!(
                    "cannot read the policy file {}: check `policy.files` and `policy.shadow`",
                    p.display()
                )
            })?;
            Ok(PolicySource {
                name: p.display().to_string(),
                text,
            })
        })
        .collect()
}

/// Loads the policies and opens the approval queue.
pub async fn start(
    config: &ValidConfig,
    database: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<GatewayPolicy> {
    let p = &config.policy;
    let mut sources = Vec::new();
    if p.baseline {
        sources.push(PolicySource {
            name: BASELINE_NAME.to_string(),
            text: BASELINE_TEXT.to_string(),
        });
    }
    sources.extend(read_sources(&p.files)?);
    if sources.is_empty() {
        anyhow::bail!(
            "`policy.baseline: false` with no `policy.files` would deny every call: name the policy files to enforce"
        );
    }
    let mut engine = PolicyEngine::load(&sources).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !p.shadow.is_empty() {
        engine = engine
            .with_shadow(&read_sources(&p.shadow)?)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let url: portcullis_store::DatabaseUrl = database.parse()?;
    let store = portcullis_store::Store::open(&url, portcullis_store::OpenMode::CreateIfMissing)
        .await
        .with_context(|| format!("cannot open {} for the approval queue", url.redacted()))?;
    let environment = config
        .environment
        .as_str()
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(
        "policy: {} ({} policies{}), confirmations by elicitation or the approval queue",
        if p.baseline {
            "built-in baseline"
        } else {
            "config files"
        },
        engine.policies().count(),
        if p.shadow.is_empty() {
            ""
        } else {
            ", shadow set on"
        }
    );
    Ok(GatewayPolicy {
        engine,
        environment,
        elicitation_timeout: p.elicitation_timeout,
        approvals: Some(ApprovalQueue {
            store,
            clock,
            timeout: p.approval_timeout,
            poll: Duration::from_millis(250),
            webhook: p.approval_webhook.clone(),
        }),
    })
}

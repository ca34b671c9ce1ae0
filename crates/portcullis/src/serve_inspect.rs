//! `serve`'s inspection pipeline (issue 6): the detection engine, the stages of
//! `portcullis-inspect`, and tool pins kept in the gateway's database, shared with `portcullis
//! tools` and other replicas (PI-3).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;
use portcullis_gateway::inspection::{GatewayInspection, PinBook, PinRecord};
use portcullis_store::tools::FirstSeenPolicy;
use serde_json::Value;

/// Tool pins in the store.
struct StorePinBook {
    store: portcullis_store::Store,
    clock: Arc<dyn portcullis_core::Clock>,
}

impl PinBook for StorePinBook {
    fn list(&self, connector: &str) -> BoxFuture<'_, Result<BTreeMap<String, PinRecord>, String>> {
        let connector = connector.to_string();
        Box::pin(async move {
            let rows = self
                .store
                .tool_pins()
                .list(Some(&connector))
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    (
                        r.tool.clone(),
                        PinRecord {
                            approved_hash: r.approved_hash.clone(),
                            pending_hash: r.pending_hash.clone(),
                        },
                    )
                })
                .collect())
        })
    }

    fn observe(
        &self,
        connector: &str,
        tool: &str,
        hash: &str,
        definition: &Value,
        approve_if_first: bool,
    ) -> BoxFuture<'_, Result<PinRecord, String>> {
        let (connector, tool, hash) = (connector.to_string(), tool.to_string(), hash.to_string());
        let definition = portcullis_inspect::pinning::canonical_json(definition);
        Box::pin(async move {
            let now = self.clock.now().timestamp_micros();
            let first = if approve_if_first {
                FirstSeenPolicy::AutoApprove
            } else {
                FirstSeenPolicy::Review
            };
            let pins = self.store.tool_pins();
            pins.observe_with(&connector, &tool, &hash, &definition, now, first)
                .await
                .map_err(|e| e.to_string())?;
            let r = pins
                .get(&connector, &tool)
                .await
                .map_err(|e| e.to_string())?;
            Ok(PinRecord {
                approved_hash: r.as_ref().and_then(|r| r.approved_hash.clone()),
                pending_hash: r.and_then(|r| r.pending_hash),
            })
        })
    }
}

/// Refuses data rules that name a kind no detector emits: such a rule would silently never
/// apply (`portcullis config check` and `serve` both run it).
pub fn check_rule_kinds(config: &portcullis_config::ValidConfig) -> anyhow::Result<()> {
    let detector = portcullis_detect::Detector::new(&portcullis_detect::DetectorConfig::default())
        .context("building the detection engine")?;
    check_kinds(config, &detector)
}

fn check_kinds(
    config: &portcullis_config::ValidConfig,
    detector: &portcullis_detect::Detector,
) -> anyhow::Result<()> {
    let kinds = detector.kinds();
    for r in &config.inspection.rules {
        let (known, written) = match &r.matches {
            portcullis_config::RuleMatch::Kind(k) => (kinds.iter().any(|x| x == k), k.clone()),
            portcullis_config::RuleMatch::Prefix(p) => {
                (kinds.iter().any(|x| x.starts_with(p)), format!("{p}*"))
            }
            portcullis_config::RuleMatch::Category(c) => (true, c.clone()),
        };
        anyhow::ensure!(
            known,
            "inspection.rules: `{written}` matches no detector kind; the kinds are: {}",
            kinds.join(", ")
        );
    }
    Ok(())
}

/// Builds the inspection stages for `config`, with pins in the database at `database`.
pub async fn start(
    config: &portcullis_config::ValidConfig,
    database: &str,
    clock: Arc<dyn portcullis_core::Clock>,
) -> anyhow::Result<Arc<GatewayInspection>> {
    let detector = portcullis_detect::Detector::new(&portcullis_detect::DetectorConfig::default())
        .context("building the detection engine")?;
    check_kinds(config, &detector)?;
    let url: portcullis_store::DatabaseUrl = database.parse()?;
    let store = portcullis_store::Store::open(&url, portcullis_store::OpenMode::CreateIfMissing)
        .await
        .context("opening the database for pinned tool definitions")?;
    // DLP-4: pseudonyms are keyed; a configured key keeps them stable across restarts.
    let key = match &config.inspection.pseudonym_key {
        Some(source) => {
            let v = match source {
                portcullis_config::SecretSource::Env(n) => {
                    portcullis_config::SecretValue::from_env(n)
                }
                portcullis_config::SecretSource::File(p) => {
                    portcullis_config::SecretValue::from_file(p.clone())
                }
            }
            .context("inspection.pseudonym_key")?;
            let s = v.get().context("reading inspection.pseudonym_key")?;
            anyhow::ensure!(
                s.expose().len() >= 16,
                "inspection.pseudonym_key must hold at least 16 bytes"
            );
            s.expose().as_bytes().to_vec()
        }
        None => rand::random::<[u8; 32]>().to_vec(),
    };
    let inspection = GatewayInspection::new(
        config,
        Arc::new(detector),
        Arc::new(portcullis_inspect::egress::SystemResolver),
        Arc::new(StorePinBook { store, clock }),
        key,
    );
    for (i, c) in config.connectors.iter().enumerate() {
        inspection
            .refresh_pins(i, &c.name)
            .await
            .map_err(|e| anyhow::anyhow!("reading pinned tool definitions of {}: {e}", c.name))?;
    }
    Ok(Arc::new(inspection))
}

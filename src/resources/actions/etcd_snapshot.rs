//! `proxtalos_etcd_snapshot`: an etcd snapshot from a control plane into a
//! local file, as `talosctl etcd snapshot` takes it (`MachineService.
//! EtcdSnapshot`), verified (etcd's own SHA-256 at the end of the file, the
//! check `etcdutl snapshot restore` makes) before it is kept: 0600,
//! written under a temporary name then renamed, the newest `keep` of its
//! prefix kept in `directory`. The disaster-recovery copy to take before a
//! change to the control planes (docs/guides/day-2.md).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use super::node::validate_node_action;
use crate::data::ProxtalosData;
use crate::plugin::timeouts::parse_duration;
use crate::plugin::{Action, Attribute, AttributePath, Diagnostics, Progress, Schema, StopSignal, Value};
use crate::resources::shared::etcd_snapshot;
use crate::resources::shared::talos_node::{NodeArgs, attempt_timeouts, client_attr};

/// The action type.
pub struct EtcdSnapshot;

const DESCRIPTION: &str = "Takes an etcd snapshot from a control plane into a local file, as `talosctl etcd \
snapshot` does, and keeps the newest `keep` of them: the disaster-recovery copy to take before changing the \
control planes. The file is verified before it is kept (etcd appends the SHA-256 of its database, which \
`etcdutl snapshot restore` checks), written with mode 0600 under a temporary name and renamed, so a partial file \
never has the final name. Run it with `terraform apply -invoke=action.proxtalos_etcd_snapshot.<name>`, or from \
a resource's `action_trigger`; it reports each step while it runs and stops on Ctrl-C. Restore: the day-2 guide.";

fn schema() -> Schema {
    Schema::new(
        DESCRIPTION,
        vec![
            Attribute::string("node").required().description(
                "Address of a healthy control plane (`10.0.0.11`, optionally with a port; default 50000).",
            ),
            client_attr(),
            Attribute::string("directory").required().description(
                "Directory the snapshot goes to (created when missing, on the machine running Terraform).",
            ),
            Attribute::string("prefix").optional().description(
                "File name prefix: files are `<prefix>-<UTC time>.snapshot`, and only files with this prefix are \
pruned. Not set: `\"etcd\"`.",
            ),
            Attribute::number("keep")
                .optional()
                .description("How many snapshots with this prefix to keep, the newest (at least 1). Not set: `5`."),
            Attribute::string("timeout")
                .optional()
                .description("How long the snapshot may take (a Go-style duration). Not set: `\"5m\"`."),
        ],
    )
}

#[async_trait]
impl Action<ProxtalosData> for EtcdSnapshot {
    fn type_name(&self) -> &'static str {
        "proxtalos_etcd_snapshot"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        validate_node_action(config, diags);
        if let Some(k) = config.attr("keep").as_i64()
            && k < 1
        {
            diags.error_at(AttributePath::attr("keep"), "Invalid keep", "`keep` must be at least 1.");
        }
        if let Some(p) = config.attr("prefix").as_str()
            && (p.is_empty() || p.contains(['/', '\\']))
        {
            diags.error_at(
                AttributePath::attr("prefix"),
                "Invalid prefix",
                "`prefix` is a file name prefix, without `/`.",
            );
        }
        if config.attr("directory").as_str().is_some_and(|d| d.trim().is_empty()) {
            diags.error_at(AttributePath::attr("directory"), "Invalid directory", "`directory` must not be empty.");
        }
    }

    async fn invoke(
        &self,
        _data: Option<&ProxtalosData>,
        config: &Value,
        stop: &StopSignal,
        progress: &Progress,
        diags: &mut Diagnostics,
    ) {
        let args = match NodeArgs::from_value(config) {
            Ok(a) => a,
            Err(d) => return diags.push(d),
        };
        let node = args.node.clone();
        let dir = PathBuf::from(config.attr("directory").as_str().unwrap_or_default());
        let prefix = config.attr("prefix").as_str().unwrap_or("etcd").to_string();
        let keep = config.attr("keep").as_i64().unwrap_or(5).max(1) as usize;
        let limit =
            config.attr("timeout").as_str().and_then(|t| parse_duration(t).ok()).unwrap_or(Duration::from_secs(300));
        let summary = format!("etcd snapshot from {node} failed");
        progress.say(format!("connecting to {node}")).await;
        let target = args.target(attempt_timeouts());
        let client = match target.connect().await {
            Ok(c) => c,
            Err(e) => return diags.error(summary, crate::talos::api::error::chain(&e)),
        };
        progress.say(format!("streaming the snapshot from {node}")).await;
        let bytes = tokio::select! {
            r = client.etcd_snapshot(limit) => match r {
                Ok(b) => b,
                Err(e @ crate::talos::api::ApiError::Unimplemented { .. }) => {
                    return diags.error_at(
                        AttributePath::attr("node"),
                        summary,
                        format!(
                            "{}. Only control planes run etcd: aim `node` at one; no file was written.",
                            crate::talos::api::error::chain(&e)
                        ),
                    );
                }
                Err(e) => return diags.error(summary, crate::talos::api::error::chain(&e)),
            },
            _ = stop.stopped() => {
                return diags.error(summary, "Terraform asked the provider to stop; no file was written.");
            }
        };
        if let Err(e) = etcd_snapshot::verify(&bytes) {
            return diags.error(summary, format!("{e}; no file was written."));
        }
        progress.say(format!("received {} bytes, SHA-256 verified", bytes.len())).await;
        match etcd_snapshot::keep(&dir, &prefix, &bytes, keep) {
            Ok((path, removed)) => {
                progress.say(format!("wrote {} (mode 0600)", path.display())).await;
                if removed > 0 {
                    progress.say(format!("removed {removed} older snapshot(s), keeping the newest {keep}")).await;
                }
            }
            Err(e) => diags.error_at(AttributePath::attr("directory"), summary, e.to_string()),
        }
    }
}

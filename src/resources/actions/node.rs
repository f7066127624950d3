//! What the actions on one Talos node share: the `node`,
//! `client_configuration` and `timeout` attributes, their checks, the
//! state read before the action (boot id, version), and diagnostics that
//! name the node and say what may still be under way after Ctrl-C.

use std::time::Duration;

use crate::plugin::timeouts::{format_duration, parse_duration};
use crate::plugin::{Attribute, AttributePath, Diagnostic, Diagnostics, Progress, StopSignal, Value};
use crate::resources::shared::talos_node::{
    NodeArgs, RUNNING_READY, api_diag, attempt_timeouts, check_address, check_client_configuration, client_attr,
    deadline, running_ready, wait,
};
use crate::talos::api::wait::{Target, Until, conditions};
use crate::talos::api::{ApiError, NodeClient};

/// How long a node action may take when `timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// `node`, `client_configuration` and `timeout`.
pub fn node_action_attrs(what: &str) -> Vec<Attribute> {
    vec![
        Attribute::string("node").required().description(format!(
            "Address of the Talos node {what}: an IP address or host name, optionally with a port (`10.0.0.11`, \
`10.0.0.11:50000`; default port 50000)."
        )),
        client_attr(),
        Attribute::string("timeout").optional().description(format!(
            "How long the action may take, waits included (a Go-style duration such as `\"15m\"`). Not set: `\"{}\"`.",
            format_duration(DEFAULT_TIMEOUT)
        )),
    ]
}

/// The checks of [`node_action_attrs`].
pub fn validate_node_action(config: &Value, diags: &mut Diagnostics) {
    check_address(config, "node", diags);
    check_client_configuration(config, diags);
    if let Some(t) = config.attr("timeout").as_str()
        && let Err(e) = parse_duration(t)
    {
        diags.error_at(AttributePath::attr("timeout"), "Invalid timeout", e);
    }
}

/// What the node was before the action.
pub struct Before {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The Talos version it ran.
    pub version: String,
}

/// One run of a node action.
pub struct NodeRun {
    /// The node and credentials.
    pub args: NodeArgs,
    /// The action's deadline, ending early on Ctrl-C.
    pub until: Until,
    what: &'static str,
}

impl NodeRun {
    /// Reads the attributes; problems become diagnostics naming them.
    pub fn read(config: &Value, stop: &StopSignal, what: &'static str, diags: &mut Diagnostics) -> Option<NodeRun> {
        let args = match NodeArgs::from_value(config) {
            Ok(a) => a,
            Err(d) => {
                diags.push(d);
                return None;
            }
        };
        let limit = config.attr("timeout").as_str().and_then(|t| parse_duration(t).ok()).unwrap_or(DEFAULT_TIMEOUT);
        Some(NodeRun { args, until: deadline(limit, stop), what })
    }

    /// The node with mutual TLS, per-attempt limits.
    pub fn target(&self) -> Target {
        self.args.target(attempt_timeouts())
    }

    /// Connects and reads the boot id and version.
    pub async fn before(&self, progress: &Progress) -> Result<(NodeClient, Before), Diagnostic> {
        progress.say(format!("connecting to {}", self.args.node)).await;
        let step = "reading the node's boot id and version";
        let read = async {
            let c = self.target().connect().await?;
            let boot_id = c.boot_id().await?;
            let version = c.version_tag().await?;
            Ok::<_, ApiError>((c, Before { boot_id, version }))
        };
        let stopped = self.until.stop.clone();
        let (c, before) = tokio::select! {
            r = read => r.map_err(|e| self.failed(step, &e, false))?,
            _ = stopped.stopped() => return Err(self.stopped_before()),
        };
        progress.say(format!("{} runs Talos {}", self.args.node, before.version)).await;
        Ok((c, before))
    }

    /// Sends the request that takes the node down (`Reboot`, `Rollback`). A
    /// reply cut off by the node going down counts as sent: the waits of
    /// [`NodeRun::back`] tell.
    pub async fn send(
        &self,
        step: &str,
        request: impl std::future::Future<Output = Result<(), ApiError>>,
    ) -> Result<(), Diagnostic> {
        match request.await {
            Ok(()) => Ok(()),
            Err(e) if e.is_transient() => {
                tracing::debug!(node = %self.args.node, error = %e, "{step}: reply cut off");
                Ok(())
            }
            Err(e) => Err(self.failed(step, &e, false)),
        }
    }

    /// Waits until the node is back: a new boot id, then running and
    /// ready. Answers the Talos version it runs.
    pub async fn back(&self, before: &Before, progress: &Progress) -> Result<String, Diagnostic> {
        progress.say(format!("waiting for {} to come back", self.args.node)).await;
        let target = self.target();
        wait(&self.args.node, conditions::REBOOTED, &self.until, || conditions::rebooted(&target, &before.boot_id))
            .await
            .map_err(|e| self.failed("the wait for the reboot", &e, true))?;
        wait(&self.args.node, RUNNING_READY, &self.until, || running_ready(&target))
            .await
            .map_err(|e| self.failed("the wait for the node to be ready", &e, true))
    }

    /// The summary every diagnostic of this run has.
    pub fn summary(&self) -> String {
        format!("Talos node {} on {} failed", self.what, self.args.node)
    }

    /// A failure at `step`; `asked` says whether the node already accepted
    /// the request (then a stop or timeout leaves it under way).
    pub fn failed(&self, step: &str, e: &ApiError, asked: bool) -> Diagnostic {
        match e {
            ApiError::Stopped { condition, last, .. } => Diagnostic::error(
                self.summary(),
                format!(
                    "Terraform asked the provider to stop while it waited for {condition} (last seen: {last}). {}",
                    self.under_way(asked)
                ),
            ),
            ApiError::WaitTimedOut { .. } if asked => {
                let d = api_diag(&self.summary(), step, e);
                Diagnostic::error(d.summary.clone(), format!("{} {}", d.detail, self.under_way(true)))
            }
            _ => api_diag(&self.summary(), step, e),
        }
    }

    fn stopped_before(&self) -> Diagnostic {
        Diagnostic::error(self.summary(), format!("Terraform asked the provider to stop. {}", self.under_way(false)))
    }

    fn under_way(&self, asked: bool) -> String {
        if asked {
            format!(
                "The node had accepted the {}, which goes on without us: `talosctl -n {} version` and \
`talosctl -n {} dmesg` show where it is.",
                self.what, self.args.node, self.args.node
            )
        } else {
            format!("Nothing was asked of the node; {} was not touched.", self.args.node)
        }
    }
}

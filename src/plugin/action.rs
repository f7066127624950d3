//! Actions (protocol 6.10, Terraform ≥ 1.14): imperative operations a
//! configuration declares as `action "<type>" "<name>" { config { … } }`
//! and runs with `terraform apply -invoke=action.<type>.<name>` or from a
//! resource's `action_trigger`. Terraform validates and plans the config,
//! then invokes: the provider streams progress lines, which Terraform
//! prints while the action runs, and ends with its diagnostics. Nothing is
//! stored in state.

use async_trait::async_trait;

use super::diag::Diagnostics;
use super::resource::StopSignal;
use super::schema::Schema;
use super::value::Value;

/// Where an action reports progress (a line Terraform shows at once).
#[derive(Clone)]
pub struct Progress {
    tx: tokio::sync::mpsc::Sender<String>,
}

impl Progress {
    /// A progress channel and the receiving end the server streams from.
    pub fn channel() -> (Progress, tokio::sync::mpsc::Receiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        (Progress { tx }, rx)
    }

    /// Reports one line. A Terraform that stopped listening is not an
    /// error of the action.
    pub async fn say(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(progress = %line, "action progress");
        let _ = self.tx.send(line).await;
    }
}

/// An action type.
#[async_trait]
pub trait Action<D: Send + Sync + 'static>: Send + Sync {
    /// The full type name.
    fn type_name(&self) -> &'static str;
    /// The schema of its `config` block.
    fn schema(&self) -> Schema;
    /// Checks the configuration without I/O; values may be unknown.
    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        let _ = (config, diags);
    }
    /// Runs the action; ends early when `stop` fires (Ctrl-C). `data` is
    /// the configured provider's (Terraform configures the provider before
    /// it invokes an action; `None` only if it did not).
    async fn invoke(
        &self,
        data: Option<&D>,
        config: &Value,
        stop: &StopSignal,
        progress: &Progress,
        diags: &mut Diagnostics,
    );
}

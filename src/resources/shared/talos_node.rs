//! What the node-touching Talos objects share: the `node`/`endpoint`/
//! `client_configuration` attributes, reaching a node in whichever mode it
//! is in, waits with a deadline, the canonical form of a configuration, and
//! turning a client error into a diagnostic that names the node and the
//! stage.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::plugin::timeouts::format_duration;
use crate::plugin::{Attribute, AttributePath, Diagnostic, Value};
use crate::resources::shared::talos_model::{CLIENT_CONFIGURATION_DOC, client_configuration_type, value_to_client};
use crate::talos::api::error::chain;
use crate::talos::api::wait::{Probe, Target, Until};
use crate::talos::api::{Address, ApiError, Mode, NodeClient, Timeouts};
use crate::talos::client_config::ClientConfiguration;
use crate::wait::Stop;

/// How often waits look again.
pub const POLL: Duration = Duration::from_millis(500);

/// Per-attempt limits while waiting (a rebooting node refuses quickly).
pub fn attempt_timeouts() -> Timeouts {
    Timeouts { connect: Duration::from_secs(5), call: Duration::from_secs(30) }
}

/// Limits for best-effort plan-time and refresh calls.
pub fn quick_timeouts() -> Timeouts {
    Timeouts { connect: Duration::from_secs(3), call: Duration::from_secs(10) }
}

/// The `node` attribute.
pub fn node_attr(what: &str) -> Attribute {
    Attribute::string("node").required().requires_replace().description(format!(
        "Address of the Talos node {what}: an IP address or host name, optionally with a port \
(`10.0.0.11`, `10.0.0.11:50000`, `[fd00::11]:50000`; default port 50000). Changing it replaces the resource."
    ))
}

/// The `endpoint` attribute.
pub fn endpoint_attr() -> Attribute {
    Attribute::string("endpoint").optional().description(
        "Address the Talos API client dials when the node is configured (same form as `node`); the call then \
names `node` in the `node` header and the endpoint's apid proxies it. Both must be in the same cluster. Not set: \
the node itself. A node in maintenance mode is always dialled directly: another node's apid cannot verify its \
self-signed maintenance certificate.",
    )
}

/// The `client_configuration` input attribute.
pub fn client_attr() -> Attribute {
    Attribute::new("client_configuration", client_configuration_type()).required().sensitive().description(format!(
        "{CLIENT_CONFIGURATION_DOC} Usually `proxtalos_machine_secrets.<name>.client_configuration`."
    ))
}

/// `node`, `endpoint` and the credentials read from a config or state.
#[derive(Clone, Debug)]
pub struct NodeArgs {
    /// The node address as written.
    pub node: String,
    /// The endpoint, when set.
    pub endpoint: Option<String>,
    /// The credentials.
    pub creds: ClientConfiguration,
}

impl NodeArgs {
    /// Reads the three attributes; problems name the attribute.
    pub fn from_value(v: &Value) -> Result<NodeArgs, Diagnostic> {
        let node = v.attr("node").as_str().unwrap_or_default().to_string();
        let creds = value_to_client(v.attr("client_configuration")).map_err(|e| {
            Diagnostic::error("Invalid client configuration", e.to_string())
                .at(AttributePath::attr("client_configuration"))
        })?;
        let endpoint = v.attr("endpoint").as_str().map(str::to_string).filter(|e| !e.is_empty());
        Ok(NodeArgs { node, endpoint, creds })
    }

    /// A mutual-TLS target (through the endpoint when set).
    pub fn target(&self, timeouts: Timeouts) -> Target {
        Target {
            node: self.node.clone(),
            endpoint: self.endpoint.clone(),
            mode: Mode::Normal(self.creds.clone()),
            timeouts,
        }
    }

    /// The maintenance-mode target (always the node itself).
    pub fn maintenance_target(&self, timeouts: Timeouts) -> Target {
        Target { node: self.node.clone(), endpoint: None, mode: Mode::Maintenance { fingerprint: None }, timeouts }
    }
}

/// The drain's kubectl choices, as attributes of an upgrade policy block
/// (`drain_ignore_daemonsets`, `drain_delete_emptydir_data`).
pub fn drain_option_attrs() -> [Attribute; 2] {
    [
        Attribute::bool("drain_ignore_daemonsets").optional().description(
            "Leave DaemonSet pods on the node during the drain (they cannot move; talosctl does the same). \
`false`: a node that runs any refuses to drain, naming them, as `kubectl drain` without `--ignore-daemonsets` \
(and since nearly every cluster runs DaemonSets, such as kube-proxy, nearly always). Not set: `true`.",
        ),
        Attribute::bool("drain_delete_emptydir_data").optional().description(
            "Evict pods with `emptyDir` volumes, whose data is lost (talosctl does the same). `false`: a node that \
runs any refuses to drain before anything is evicted, naming them, as `kubectl drain` without \
`--delete-emptydir-data`. Not set: `true`.",
        ),
    ]
}

/// The drain's kubectl choices from a policy block (see
/// [`drain_option_attrs`]).
pub fn drain_options(block: &Value) -> crate::kubernetes::DrainOptions {
    crate::kubernetes::DrainOptions {
        ignore_daemonsets: block.attr("drain_ignore_daemonsets").as_bool().unwrap_or(true),
        delete_emptydir_data: block.attr("drain_delete_emptydir_data").as_bool().unwrap_or(true),
    }
}

/// Checks a `node` or `endpoint` address at validate time.
pub fn check_address(v: &Value, name: &str, diags: &mut crate::plugin::Diagnostics) {
    if let Some(s) = v.attr(name).as_str() {
        check_address_at(s, AttributePath::attr(name), diags);
    }
}

/// Checks one node address (`s`, found at `path`) at validate time.
pub fn check_address_at(s: &str, path: AttributePath, diags: &mut crate::plugin::Diagnostics) {
    if let Err(e) = Address::parse(s).and_then(|a| if s.contains("://") { Err(a.host) } else { Ok(a) }) {
        diags.error_at(
            path,
            "Invalid node address",
            format!("{s:?} is not `host` or `host:port` (no scheme), e.g. \"10.0.0.11\" or \"10.0.0.11:50000\": {e}"),
        );
    }
}

/// Checks `client_configuration` at validate time the way the connection
/// will use it (base64 PEM; the CA and the client certificate parse as
/// certificates rustls accepts; the key is one Talos writes and matches the
/// certificate). Unknown fields are skipped. Errors name the field.
pub fn check_client_configuration(v: &Value, diags: &mut crate::plugin::Diagnostics) {
    use crate::talos::api::tls;
    let cc = v.attr("client_configuration");
    let base = AttributePath::attr("client_configuration");
    let decoded = |field: &str, diags: &mut crate::plugin::Diagnostics| -> Option<String> {
        let text = cc.attr(field).as_str()?;
        match crate::resources::shared::common::unb64(text) {
            Ok(pem) => Some(pem),
            Err(e) => {
                diags.error_at(
                    base.and_attr(field),
                    "Invalid client configuration",
                    format!("`client_configuration.{field}` is base64-encoded PEM ({e}). Use `proxtalos_machine_secrets.<name>.client_configuration`."),
                );
                None
            }
        }
    };
    let ca = decoded("ca_certificate", diags);
    let crt = decoded("client_certificate", diags);
    let key = decoded("client_key", diags);
    let mut bad = |field: &str, why: String| {
        diags.error_at(
            base.and_attr(field),
            "Invalid client configuration",
            format!("`client_configuration.{field}`: {why}."),
        )
    };
    if let Some(ca) = &ca {
        let mut roots = rustls::RootCertStore::empty();
        if let Err(e) = tls::certificates(ca).and_then(|certs| {
            certs.into_iter().try_for_each(|c| roots.add(c).map_err(|e| format!("not an X.509 certificate ({e})")))
        }) {
            bad("ca_certificate", e);
        }
    }
    let chain = crt.as_deref().map(tls::certificates);
    if let Some(Err(e)) = &chain {
        bad("client_certificate", e.clone());
    }
    let key = key.as_deref().map(tls::private_key);
    if let Some(Err(e)) = &key {
        bad("client_key", e.clone());
    }
    if let (Some(Ok(chain)), Some(Ok(key))) = (chain, key) {
        let config = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(rustls::RootCertStore::empty()).with_client_auth_cert(chain, key));
        if let Ok(Err(e)) = config {
            bad("client_key", format!("cannot be used with `client_certificate` ({e})"));
        }
    }
}

/// A node reached in the mode it is in.
pub enum Reached {
    /// Maintenance mode (no configuration yet), dialled directly.
    Maintenance(NodeClient),
    /// Configured: mutual TLS, through the endpoint when set.
    Normal(NodeClient),
}

/// One attempt to reach the node: maintenance mode first (a configured
/// node refuses a client without a certificate), then mutual TLS.
pub async fn reach_once(args: &NodeArgs, timeouts: Timeouts) -> Result<Reached, ApiError> {
    let m = args.maintenance_target(timeouts);
    let attempt = async {
        let c = m.connect().await?;
        c.disks().await?;
        Ok::<_, ApiError>(c)
    };
    match attempt.await {
        Ok(c) => Ok(Reached::Maintenance(c)),
        // Refused or unreachable: the node is down, mutual TLS would fail too.
        Err(e @ ApiError::Connect { .. }) => Err(e),
        // A configured node wants a client certificate: it says so with an
        // alert, or (TLS 1.3, the alert races the first request) just
        // closes the connection. Either way, try mutual TLS.
        Err(_) => {
            let c = args.target(timeouts).connect().await?;
            c.version().await?;
            Ok(Reached::Normal(c))
        }
    }
}

/// Condition name: the node answers in one of its two modes.
pub const REACHABLE: &str = "the node to answer (maintenance mode or mutual TLS)";
/// Condition name: configured, rebooted, mutual TLS, applied config active.
pub const CONFIGURED: &str =
    "the node to be installed, rebooted and answering with mutual TLS in the applied configuration";
/// Condition name: the applied configuration is the active one.
pub const CONFIG_ACTIVE: &str = "the applied configuration to be active";
/// Condition name: back in maintenance mode after a reset.
pub const BACK_IN_MAINTENANCE: &str = "the node to come back in maintenance mode after the reset";

/// Checks a Talos release tag as users write it (`v1.11.2`, also with a
/// suffix such as `v1.12.0-beta.1`); the error says how to write it.
pub fn check_version_tag(v: &str) -> Result<(), String> {
    match v.strip_prefix('v') {
        Some(rest) if rest.split('.').count() >= 3 => Ok(()),
        _ => Err(format!("Write it like `v1.11.2`; got {v:?}.")),
    }
}

/// Condition name: the node runs and is ready (after a reboot).
pub const RUNNING_READY: &str = "the node to be running and ready";

/// One probe: the node's machine stage is `running` and it reports ready
/// (what `talosctl reboot --wait` waits for); answers the Talos version it
/// runs.
pub async fn running_ready(target: &Target) -> Result<Probe<String>, ApiError> {
    let c = target.connect().await?;
    let s = c.machine_status().await?;
    let v = c.version_tag().await?;
    Ok(if s.stage == crate::talos::api::MachineStage::Running && s.ready {
        Probe::Ready(v)
    } else {
        Probe::NotYet(format!("{v}, stage {:?}, ready {}", s.stage, s.ready))
    })
}

/// Polls `probe` until ready or `deadline` ([`crate::talos::api::wait::poll_until`]).
pub async fn wait<T, F, Fut>(node: &str, condition: &'static str, until: &Until, probe: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Probe<T>, ApiError>>,
{
    let mut probe = probe;
    crate::talos::api::wait::poll_until(node, condition, until, POLL, move || {
        let fut = probe();
        async move {
            match fut.await {
                Err(e) if e.closed_early() => Ok(Probe::NotYet(chain(&e))),
                other => other,
            }
        }
    })
    .await
}

/// Waits until the node answers in either mode.
pub async fn reach(args: &NodeArgs, until: &Until) -> Result<Reached, ApiError> {
    wait(&args.node, REACHABLE, until, || async {
        match reach_once(args, attempt_timeouts()).await {
            Ok(r) => Ok(Probe::Ready(r)),
            Err(e @ ApiError::ServerCertUntrusted { .. }) => Ok(Probe::NotYet(chain(&e))),
            Err(e) => Err(e),
        }
    })
    .await
}

/// One probe: the node answers with mutual TLS and its active
/// configuration is `want` (canonical form). A certificate we do not trust
/// yet (the maintenance one, during install) counts as "not yet".
pub async fn config_active(target: &Target, want: &str) -> Result<Probe<()>, ApiError> {
    let attempt = async { target.connect().await?.machine_config().await };
    match attempt.await {
        Ok(Some(text)) if canonical(&text) == want => Ok(Probe::Ready(())),
        Ok(Some(_)) => Ok(Probe::NotYet("the node runs another configuration".to_string())),
        Ok(None) => Ok(Probe::NotYet("the node has no active configuration".to_string())),
        Err(e @ ApiError::ServerCertUntrusted { .. }) => Ok(Probe::NotYet(format!(
            "{} (still in maintenance mode, installing, or `client_configuration` is from another cluster)",
            chain(&e)
        ))),
        Err(e) => Err(e),
    }
}

/// One probe: the node is back in maintenance mode (after a reset). While
/// it still answers with mutual TLS, or is going down, it is "not yet".
pub async fn in_maintenance(args: &NodeArgs) -> Result<Probe<()>, ApiError> {
    match reach_once(args, attempt_timeouts()).await {
        Ok(Reached::Maintenance(_)) => Ok(Probe::Ready(())),
        Ok(Reached::Normal(_)) => Ok(Probe::NotYet("the node still answers with mutual TLS".to_string())),
        Err(e) if e.is_transient() => Err(e),
        Err(e) => Ok(Probe::NotYet(chain(&e))),
    }
}

/// The deadline `d` from now, ending early when Terraform asks to stop.
pub fn deadline(d: Duration, stop: &Stop) -> Until {
    Until::after(d, stop)
}

/// A configuration in canonical form (documents re-emitted), so formatting
/// differences are not drift. Unparsable text stays as it is.
pub fn canonical(text: &str) -> String {
    match crate::talos::yaml::parse_documents(text) {
        Ok(docs) => crate::talos::yaml::emit_documents(&docs),
        Err(_) => text.to_string(),
    }
}

/// SHA-256 (hex) of the canonical form.
pub fn config_hash(text: &str) -> String {
    let digest = Sha256::digest(canonical(text).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical form with every secret replaced by `******`.
pub fn redacted(text: &str) -> Option<String> {
    let docs = crate::talos::yaml::parse_documents(text).ok()?;
    Some(crate::talos::yaml::emit_documents(&crate::talos::redact::redact(&docs)))
}

/// What to tell the user about a client error: the stage, the node, the
/// cause chain and a hint for the usual causes.
pub fn api_diag(summary: &str, stage: &str, e: &ApiError) -> Diagnostic {
    let hint = match e {
        ApiError::ClientCertRejected { .. } => {
            " The node does not accept the certificate in `client_configuration`: it is not signed by the node's \
OS CA (`machine.ca`). Use the client configuration of the `proxtalos_machine_secrets` the node's configuration was \
made from."
        }
        ApiError::ServerCertUntrusted { .. } => {
            " `client_configuration.ca_certificate` is not the CA that issued the node's certificate: the node \
belongs to another cluster, is still in maintenance mode, or the address is not among its certificate SANs."
        }
        ApiError::Connect { .. } | ApiError::Deadline { .. } => {
            " Check that the node is up and its Talos API port (50000) is reachable from here."
        }
        ApiError::WaitTimedOut { .. } => {
            " Raise the matching `timeouts` value if the node is only slow; the last observation above says \
what the node was doing."
        }
        ApiError::PermissionDenied { .. } | ApiError::Unimplemented { .. } => {
            " A node in maintenance mode answers only a few calls; apply a configuration first."
        }
        ApiError::Stopped { condition, after, last, .. } => {
            let what = format!(
                "{summary} (stage: {stage}): the provider stopped waiting for {condition} after {:.1}s; last \
seen: {last}.",
                after.as_secs_f64()
            );
            return crate::resources::shared::common::interrupted(
                &what,
                "What was already done on the node is recorded in state (an unfinished create as tainted); run \
`terraform apply` again to finish.",
            );
        }
        _ => "",
    };
    Diagnostic::error(summary, format!("Node {}, stage: {stage}.\n\n{}.{hint}", e.at().node, chain(e)))
}

/// A wait-timeout message with the duration as users wrote it.
pub fn timeout_note(d: Duration) -> String {
    format!("(timeout {})", format_duration(d))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_ignores_formatting() {
        let a = "machine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n";
        let b = "machine: {type: worker}\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto:   stable\n";
        assert_eq!(config_hash(a), config_hash(b));
        assert_ne!(config_hash(a), config_hash("machine: {type: controlplane}\n"));
        assert_eq!(config_hash(a).len(), 64);
    }

    #[test]
    fn addresses_are_checked() {
        let mut d = crate::plugin::Diagnostics::new();
        check_address(&Value::object([("node", "https://10.0.0.1".into())]), "node", &mut d);
        check_address(&Value::object([("node", "10.0.0.1:50000".into())]), "node", &mut d);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some("node"));
    }

    #[test]
    fn diagnostics_name_node_and_stage() {
        let e = ApiError::WaitTimedOut {
            at: crate::talos::api::At { node: "10.0.0.9".into(), call: CONFIGURED },
            condition: CONFIGURED,
            after: Duration::from_secs(3),
            last: "connection refused".into(),
        };
        let d = api_diag("Node not ready", "wait after apply", &e);
        assert!(d.detail.contains("Node 10.0.0.9, stage: wait after apply"), "{}", d.detail);
        assert!(d.detail.contains("connection refused"));
        assert!(d.detail.contains("timeouts"));
    }
}

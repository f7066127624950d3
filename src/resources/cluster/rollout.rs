//! Runs the steps of [`super::plan`]: each node step, then its health
//! gate; workers in batches; the state's `nodes` updated after every step,
//! so a rollout that stops records exactly where each node is.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;

use super::model::{Member, Role, Status, host_of};
use super::ops::{self, Expect, OpError};
use super::plan::Step;
use crate::day2::kubernetes_upgrade::{self, KubernetesUpgrade, KubernetesUpgradeError};
use crate::day2::node_upgrade::{self, Drain, NodeUpgrade, UpgradeError};
use crate::kubernetes;
use crate::resources::shared::talos_node::{attempt_timeouts, config_hash};
use crate::talos::api::wait::{Until, conditions};
use crate::talos::api::{ApiError, RebootMode};
use crate::talos::client_config::ClientConfiguration;

/// The `rollout` block's settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Workers changed at once.
    pub worker_parallelism: usize,
    /// A node's health gate limit.
    pub health_timeout: Duration,
    /// Drain before an upgrade's reboot.
    pub drain: bool,
    /// How long a drain may take.
    pub drain_timeout: Duration,
    /// DaemonSet and emptyDir pods.
    pub drain_options: crate::kubernetes::DrainOptions,
    /// Roll a node that fails its gate back.
    pub rollback: bool,
    /// Where snapshots go.
    pub snapshot_dir: Option<PathBuf>,
    /// How many to keep.
    pub snapshot_keep: usize,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An operation on a node.
    #[error(transparent)]
    Op(#[from] OpError),
    /// The in-place upgrade.
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    /// The Kubernetes upgrade.
    #[error(transparent)]
    Kubernetes(#[from] KubernetesUpgradeError),
    /// The node failed its gate and was rolled back.
    #[error("{cause}; the node was rolled back to {to}")]
    RolledBack {
        /// What failed.
        #[source]
        cause: Box<StepError>,
        /// The version it runs again.
        to: String,
    },
    /// The node failed its gate and the rollback failed too.
    #[error("{cause}; rolling the node back failed too: {rollback}")]
    RollbackFailed {
        /// What failed first.
        cause: Box<StepError>,
        /// Why the rollback failed.
        #[source]
        rollback: OpError,
    },
    /// No usable kubeconfig.
    #[error("no Kubernetes client: {0}")]
    NoKube(String),
    /// A step names a node the configuration does not have (a bug).
    #[error("node {0} is not in the configuration")]
    NoMember(String),
}

impl StepError {
    /// Terraform asked the provider to stop.
    pub fn is_stopped(&self) -> bool {
        match self {
            StepError::Op(e) => e.is_stopped(),
            StepError::Upgrade(e) => e.is_stopped(),
            StepError::Kubernetes(KubernetesUpgradeError::Talos { source: ApiError::Stopped { .. }, .. }) => true,
            StepError::Kubernetes(KubernetesUpgradeError::Kube {
                source: kubernetes::Error::Stopped { .. }, ..
            }) => true,
            _ => false,
        }
    }
}

/// A failed step: which, and why.
#[derive(Debug)]
pub struct Failed {
    /// The step's line (`cp-2: Talos v1.13.9 → v1.14.2 (…)`).
    pub step: String,
    /// The node, when the step is about one.
    pub node: Option<String>,
    /// Why.
    pub error: StepError,
}

/// Everything a rollout needs.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Talos credentials.
    pub creds: ClientConfiguration,
    /// The cluster name (snapshot file names).
    pub cluster: String,
    /// The members wanted, in order.
    pub members: Vec<Member>,
    /// Per member: the configuration its node step applies (at the running
    /// Kubernetes version).
    pub now_texts: BTreeMap<String, String>,
    /// Per member: its configuration at the end (the wanted Kubernetes
    /// version).
    pub final_texts: BTreeMap<String, String>,
    /// The Talos version wanted.
    pub talos_version: String,
    /// The installer image with its tag.
    pub installer: String,
    /// Kubernetes: running, wanted (`v1.33.1`).
    pub kubernetes: (String, String),
    /// The policy.
    pub policy: Policy,
    /// The Kubernetes API port of the control planes (the endpoint's).
    pub api_port: u16,
    /// An admin kubeconfig, once there is one.
    pub kubeconfig: Option<String>,
}

impl Rollout {
    fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// A Kubernetes client that talks to a control plane other than
    /// `avoid` when there is one (the endpoint may be the node that
    /// reboots), from the recorded members.
    pub fn kube(&self, nodes: &BTreeMap<String, Status>, avoid: Option<&str>) -> Result<kubernetes::Client, String> {
        let text = self.kubeconfig.as_deref().ok_or_else(|| "the cluster has no kubeconfig yet".to_string())?;
        let mut kc = kubernetes::Kubeconfig::parse(text).map_err(|e| e.to_string())?;
        let cps: Vec<&Status> =
            nodes.values().filter(|s| s.role == Role::ControlPlane.as_str() && !s.config_hash.is_empty()).collect();
        let pick = cps.iter().find(|s| Some(s.address.as_str()) != avoid).or(cps.first());
        if let Some(s) = pick {
            let h = host_of(&s.address);
            let h = if h.contains(':') { format!("[{h}]") } else { h };
            kc.server = format!("https://{h}:{}", self.api_port);
        }
        kubernetes::Client::new(&kc, kubernetes::Timeouts::default()).map_err(|e| e.to_string())
    }

    /// A Kubernetes client for the cluster endpoint itself, when it is
    /// not a node's own address (a shared VIP, a load balancer, a name):
    /// the gate then also proves that the endpoint answers. A node's own
    /// address is covered by the gate's per-node checks.
    pub fn endpoint(&self, nodes: &BTreeMap<String, Status>) -> Option<kubernetes::Client> {
        let kc = kubernetes::Kubeconfig::parse(self.kubeconfig.as_deref()?).ok()?;
        let h = super::model::endpoint_host(&kc.server)?;
        let own = |a: &str| host_of(a) == h;
        if nodes.values().any(|s| own(&s.address)) || self.members.iter().any(|m| own(&m.address)) {
            return None;
        }
        kubernetes::Client::new(&kc, kubernetes::Timeouts::default()).ok()
    }

    /// The health gate for `want`, from `kube` and at the cluster
    /// endpoint, within `limit`.
    async fn gate(
        &self,
        nodes: &BTreeMap<String, Status>,
        kube: Option<&kubernetes::Client>,
        want: &Expect,
        limit: Duration,
        until: &Until,
    ) -> Result<(), OpError> {
        ops::gate(&self.creds, kube, self.endpoint(nodes).as_ref(), want, limit, until).await
    }

    /// The gate's view of the cluster: the recorded members plus `joining`.
    fn expect(
        &self,
        nodes: &BTreeMap<String, Status>,
        joining: &[&Member],
        node: Option<(String, String)>,
        kubelet: &str,
    ) -> Expect {
        let mut cps = Vec::new();
        let mut workers = Vec::new();
        for s in nodes.values().filter(|s| !s.config_hash.is_empty()) {
            if s.role == Role::ControlPlane.as_str() {
                cps.push(s.address.clone())
            } else {
                workers.push(s.address.clone())
            }
        }
        for m in joining {
            let list = if m.role == Role::ControlPlane { &mut cps } else { &mut workers };
            if !list.contains(&m.address) {
                list.push(m.address.clone());
            }
        }
        Expect { node, control_planes: cps, workers, kubelet: Some(kubelet.to_string()) }
    }

    /// What a node reports now, as its status (None when it does not answer).
    pub async fn observe(&self, m: &Member) -> Option<Status> {
        let (version, active) = ops::observe(&ops::args(&self.creds, &m.address)).await.ok()?;
        let mut s = Status { role: m.role.as_str().into(), address: m.address.clone(), ..Status::default() };
        s.observed(version, active);
        Some(s)
    }

    /// Runs `steps` in order; `nodes` is updated after each, and `done`
    /// gets every step that finished.
    pub async fn run(
        &self,
        steps: &[Step],
        nodes: &mut BTreeMap<String, Status>,
        until: &Until,
        done: &mut Vec<Step>,
    ) -> Result<(), Failed> {
        let mut kubelet = self.kubernetes.0.clone();
        let mut i = 0;
        while i < steps.len() {
            // A batch: consecutive worker joins and changes, up to the
            // policy's size; anything else alone.
            let worker_step =
                |s: &Step| matches!(s, Step::Join { role: Role::Worker, .. } | Step::Change { role: Role::Worker, .. });
            let mut end = i + 1;
            if worker_step(&steps[i]) {
                while end < steps.len() && end - i < self.policy.worker_parallelism.max(1) && worker_step(&steps[end]) {
                    end += 1;
                }
            }
            let batch = &steps[i..end];
            let joining: Vec<&Member> = batch
                .iter()
                .filter_map(|s| match s {
                    Step::Join { name, .. } => self.member(name),
                    _ => None,
                })
                .collect();
            let before = nodes.clone();
            let results = join_all(batch.iter().map(|s| self.step(s, &before, &joining, &kubelet, until))).await;
            let mut failed = None;
            for (s, r) in batch.iter().zip(results) {
                let line =
                    s.describe(&self.talos_version, self.policy.snapshot_dir.as_deref().and_then(|p| p.to_str()));
                match r {
                    Ok(status) => {
                        tracing::info!(step = %line, "rollout step done");
                        done.push(s.clone());
                        match (s, status) {
                            (Step::Remove { name, .. }, _) => {
                                nodes.remove(name);
                            }
                            (_, Some((name, st))) => {
                                nodes.insert(name, st);
                            }
                            _ => {}
                        }
                        if let Step::Kubernetes { to, .. } = s {
                            kubelet = to.clone();
                        }
                    }
                    Err((status, error)) => {
                        if let (Some(name), Some(st)) = (s.node(), status) {
                            nodes.insert(name.to_string(), st);
                        }
                        failed.get_or_insert(Failed { step: line, node: s.node().map(str::to_string), error });
                    }
                }
            }
            if let Some(f) = failed {
                return Err(f);
            }
            i = end;
        }
        Ok(())
    }

    // The error carries the node's status with it; one per step, so its
    // size does not matter.
    #[allow(clippy::result_large_err)]
    /// One step; on success the node's new status (if the step is about
    /// one that stays), on failure what the node reports then.
    async fn step(
        &self,
        s: &Step,
        nodes: &BTreeMap<String, Status>,
        joining: &[&Member],
        kubelet: &str,
        until: &Until,
    ) -> Result<Option<(String, Status)>, (Option<Status>, StepError)> {
        match s {
            Step::Snapshot => {
                let (Some(dir), Some(cp)) = (
                    &self.policy.snapshot_dir,
                    nodes.values().find(|n| n.role == Role::ControlPlane.as_str() && !n.config_hash.is_empty()),
                ) else {
                    return Ok(None);
                };
                let path =
                    ops::snapshot(&self.creds, &cp.address, &self.cluster, dir, self.policy.snapshot_keep, until)
                        .await
                        .map_err(|e| (None, e.into()))?;
                tracing::info!(path = %path.display(), "etcd snapshot written");
                Ok(None)
            }
            Step::Join { name, .. } => {
                let m = self.member(name).ok_or((None, StepError::NoMember(name.clone())))?;
                let text = &self.now_texts[name];
                let a = ops::args(&self.creds, &m.address);
                let version = ops::install(&a, text, until).await.map_err(|e| (None, e.into()))?;
                let status = Status::of(m, &version, text);
                let kube = self.kube(nodes, None).ok();
                let want = self.expect(nodes, joining, Some((m.address.clone(), self.talos_version.clone())), kubelet);
                self.gate(nodes, kube.as_ref(), &want, self.policy.health_timeout, until)
                    .await
                    .map_err(|e| (Some(status.clone()), e.into()))?;
                Ok(Some((name.clone(), status)))
            }
            Step::Change { name, role, upgrade, reinstall, config } => {
                let m = self.member(name).ok_or((None, StepError::NoMember(name.clone())))?;
                let how = Change { upgrade: upgrade.as_ref(), reinstall: *reinstall, config: *config };
                self.change(m, *role, how, nodes, joining, kubelet, until).await.map(Some)
            }
            Step::Kubernetes { to, .. } => {
                self.kubernetes_step(to, nodes, until).await.map(|()| None).map_err(|e| (None, e))
            }
            Step::Remove { name, role } => {
                let Some(st) = nodes.get(name) else { return Ok(None) };
                let via = nodes
                    .iter()
                    .find(|(n, s)| *n != name && s.role == Role::ControlPlane.as_str())
                    .map(|(_, s)| s.address.clone());
                let kube = self.kube(nodes, Some(&st.address)).ok();
                ops::remove(&self.creds, name, &st.address, *role == Role::ControlPlane, via.as_deref(), kube.as_ref())
                    .await
                    .map_err(|e| (Some(st.clone()), e.into()))?;
                // The cluster without it must be healthy before the next.
                let mut rest = nodes.clone();
                rest.remove(name);
                let want = self.expect(&rest, &[], None, kubelet);
                let kube = self.kube(&rest, None).ok();
                self.gate(nodes, kube.as_ref(), &want, self.policy.health_timeout, until)
                    .await
                    .map_err(|e| (None, e.into()))?;
                Ok(None)
            }
        }
    }

    #[allow(clippy::too_many_arguments, clippy::result_large_err)]
    async fn change(
        &self,
        m: &Member,
        role: Role,
        how: Change<'_>,
        nodes: &BTreeMap<String, Status>,
        joining: &[&Member],
        kubelet: &str,
        until: &Until,
    ) -> Result<(String, Status), (Option<Status>, StepError)> {
        let a = ops::args(&self.creds, &m.address);
        let text = &self.now_texts[&m.name];
        let now = |v: &str| Status::of(m, v, text);
        let recorded = nodes.get(&m.name).cloned();
        // An upgrade's configuration names the new installer even when
        // nothing else changed (`config` is false then): apply whatever
        // differs from the active one.
        // One read gives the version it runs and its active configuration.
        let (from, active) = ops::observe(&a)
            .await
            .map_err(|e| (recorded.clone(), OpError::Talos { step: "read the version", source: e }.into()))?;
        let Change { upgrade, reinstall, config } = how;
        if config || active.map(|a| a.hash).as_deref() != Some(config_hash(text).as_str()) {
            ops::configure(&a, text, until).await.map_err(|e| (recorded.clone(), e.into()))?;
        }
        let target = a.target(attempt_timeouts());
        let want = self.expect(nodes, joining, Some((m.address.clone(), self.talos_version.clone())), kubelet);
        if upgrade.is_some() && (from != self.talos_version || reinstall) {
            let drain = if self.policy.drain && minor(&from) >= 13 {
                let kube = self.kube(nodes, Some(&m.address)).map_err(|e| (Some(now(&from)), StepError::NoKube(e)))?;
                Some(Drain { kube, timeout: self.policy.drain_timeout, options: self.policy.drain_options })
            } else {
                None
            };
            let u = NodeUpgrade {
                target: target.clone(),
                image: self.installer.clone(),
                version: self.talos_version.clone(),
                reinstall,
                cluster: self.creds.ca.clone(),
                control_plane: role == Role::ControlPlane,
                drain,
                reboot_mode: RebootMode::Default,
                settle: Some(self.policy.health_timeout),
            };
            let upgraded = node_upgrade::upgrade(&u, until).await;
            let gated = match upgraded {
                Ok(_) => {
                    let kube = self.kube(nodes, None).ok();
                    self.gate(nodes, kube.as_ref(), &want, self.policy.health_timeout, until)
                        .await
                        .map_err(StepError::from)
                }
                Err(e) => Err(StepError::from(e)),
            };
            if let Err(e) = gated {
                return Err(self.after_failure(m, &a, &from, e, until).await);
            }
            return Ok((m.name.clone(), now(&self.talos_version)));
        }
        let kube = self.kube(nodes, None).ok();
        self.gate(nodes, kube.as_ref(), &want, self.policy.health_timeout, until)
            .await
            .map_err(|e| (Some(now(&from)), e.into()))?;
        Ok((m.name.clone(), now(&from)))
    }

    /// After a failed upgrade or gate: roll back a node that runs the new
    /// version (when the policy says so); answer what it runs then.
    async fn after_failure(
        &self,
        m: &Member,
        a: &crate::resources::shared::talos_node::NodeArgs,
        from: &str,
        e: StepError,
        until: &Until,
    ) -> (Option<Status>, StepError) {
        let text = &self.now_texts[&m.name];
        let target = a.target(attempt_timeouts());
        let running = ops::running_version(&target).await.ok();
        let status = |v: &str| Some(Status::of(m, v, text));
        if e.is_stopped() || !self.policy.rollback || running.as_deref() != Some(self.talos_version.as_str()) {
            let v = running.unwrap_or_else(|| from.to_string());
            return (status(&v), e);
        }
        tracing::warn!(node = %m.name, error = %crate::plugin::diag::error_chain(&e), "rolling the node back to its previous image");
        match ops::rollback(a, from, until).await {
            Ok(()) => {
                // Back in service: uncordoned by the upgrade's own exit path.
                (status(from), StepError::RolledBack { cause: Box::new(e), to: from.to_string() })
            }
            Err(r) => {
                let v = ops::running_version(&target).await.unwrap_or_else(|_| self.talos_version.clone());
                (status(&v), StepError::RollbackFailed { cause: Box::new(e), rollback: r })
            }
        }
    }

    /// `upgrade-k8s`, then every node's configuration brought to its final
    /// form (what remains besides the images), then the cluster's gate.
    async fn kubernetes_step(
        &self,
        to: &str,
        nodes: &BTreeMap<String, Status>,
        until: &Until,
    ) -> Result<(), StepError> {
        let kube = self.kube(nodes, None).map_err(StepError::NoKube)?;
        let target = |m: &Member| ops::args(&self.creds, &m.address).target(attempt_timeouts());
        let present: Vec<&Member> = self.members.iter().filter(|m| nodes.contains_key(&m.name)).collect();
        let u = KubernetesUpgrade {
            control_planes: present.iter().filter(|m| m.role == Role::ControlPlane).map(|m| target(m)).collect(),
            workers: present.iter().filter(|m| m.role == Role::Worker).map(|m| target(m)).collect(),
            to: to.trim_start_matches('v').to_string(),
            kube: kube.clone(),
        };
        let done = kubernetes_upgrade::upgrade(&u, until).await?;
        tracing::info!(steps = done.len(), "Kubernetes upgraded");
        for m in &present {
            let text = &self.final_texts[&m.name];
            let a = ops::args(&self.creds, &m.address);
            let active = ops::observe(&a).await.ok().and_then(|(_, a)| a).map(|a| a.hash);
            if active.as_deref() != Some(config_hash(text).as_str()) {
                ops::configure(&a, text, until).await?;
            }
        }
        let want = self.expect(nodes, &[], None, to);
        self.gate(nodes, Some(&kube), &want, self.policy.health_timeout, until).await?;
        Ok(())
    }

    /// Create: every node installed at once, etcd bootstrapped on the first
    /// control plane, the kubeconfig fetched, the whole cluster gated.
    pub async fn create(&mut self, nodes: &mut BTreeMap<String, Status>, until: &Until) -> Result<(), Failed> {
        let fail = |step: &str, node: Option<&str>, error: StepError| Failed {
            step: step.to_string(),
            node: node.map(str::to_string),
            error,
        };
        let this = &*self;
        let installs = join_all(this.members.iter().map(|m| async move {
            let a = ops::args(&this.creds, &m.address);
            (m.clone(), ops::install(&a, &this.now_texts[&m.name], until).await)
        }))
        .await;
        let mut failed = None;
        for (m, r) in installs {
            match r {
                Ok(v) => {
                    nodes.insert(m.name.clone(), Status::of(&m, &v, &self.now_texts[&m.name]));
                }
                Err(e) => {
                    failed.get_or_insert(fail(&format!("{}: install", m.name), Some(&m.name), e.into()));
                }
            }
        }
        if let Some(f) = failed {
            return Err(f);
        }
        let Some(first) = self.members.iter().find(|m| m.role == Role::ControlPlane) else { return Ok(()) };
        let target = ops::args(&self.creds, &first.address).target(attempt_timeouts());
        let step = format!("{}: bootstrap etcd", first.name);
        crate::resources::shared::talos_node::wait(&first.address, conditions::BOOTSTRAPPED, until, || {
            crate::resources::machine_bootstrap::bootstrap_probe(&target)
        })
        .await
        .map_err(|e| fail(&step, Some(&first.name), OpError::Talos { step: "bootstrap", source: e }.into()))?;
        let step = format!("{}: fetch the kubeconfig", first.name);
        let kubeconfig = ops::kubeconfig(&ops::args(&self.creds, &first.address), until)
            .await
            .map_err(|e| fail(&step, Some(&first.name), e.into()))?;
        self.kubeconfig = Some(kubeconfig);
        let kube = self.kube(nodes, None).map_err(|e| fail("health", None, StepError::NoKube(e)))?;
        let want = self.expect(nodes, &[], None, &self.kubernetes.1);
        let left = until.deadline.saturating_duration_since(tokio::time::Instant::now());
        self.gate(nodes, Some(&kube), &want, left, until)
            .await
            .map_err(|e| fail("wait until the cluster is healthy", None, e.into()))
    }
}

fn minor(tag: &str) -> u32 {
    tag.trim_start_matches('v').split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0)
}

/// What a node's change step does.
#[derive(Debug, Clone, Copy)]
struct Change<'a> {
    /// The versions, when it is upgraded.
    upgrade: Option<&'a (String, String)>,
    /// A new installer at the same version (another schematic).
    reinstall: bool,
    /// Its configuration changes.
    config: bool,
}

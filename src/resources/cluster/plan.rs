//! The rollout a change needs, as steps in the order they run (pure: the
//! plan shows them, the apply runs them). Control planes first, one at a
//! time, in their blocks' order; then workers; then removals (workers,
//! then control planes, one at a time); then Kubernetes.

use std::collections::BTreeMap;

use super::model::{Member, Role, Status};

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An etcd snapshot before the first change that restarts a control plane.
    Snapshot,
    /// A node that is not part of the cluster yet: installed and joined.
    Join {
        /// The node.
        name: String,
        /// Its role.
        role: Role,
    },
    /// A node that changes: an upgrade (`from` → `to`), a configuration
    /// change, or both.
    Change {
        /// The node.
        name: String,
        /// Its role.
        role: Role,
        /// The version it runs, when it is upgraded.
        upgrade: Option<(String, String)>,
        /// The installer changes (a new schematic: other extensions), so
        /// the node is upgraded even at the same version.
        reinstall: bool,
        /// Its configuration changes.
        config: bool,
    },
    /// The `upgrade-k8s` procedure.
    Kubernetes {
        /// The version running.
        from: String,
        /// The version wanted.
        to: String,
    },
    /// A node that leaves the cluster.
    Remove {
        /// The node.
        name: String,
        /// Its role.
        role: Role,
    },
}

impl Step {
    /// The node a step is about, if one.
    pub fn node(&self) -> Option<&str> {
        match self {
            Step::Join { name, .. } | Step::Change { name, .. } | Step::Remove { name, .. } => Some(name),
            _ => None,
        }
    }

    /// One line, without its number.
    pub fn describe(&self, talos_version: &str, snapshot_dir: Option<&str>) -> String {
        match self {
            Step::Snapshot => format!("etcd snapshot to {}", snapshot_dir.unwrap_or("?")),
            Step::Join { name, role: Role::ControlPlane } => {
                format!("{name}: join as a control plane (install Talos {talos_version}, join etcd)")
            }
            Step::Join { name, role: Role::Worker } => {
                format!("{name}: join as a worker (install Talos {talos_version})")
            }
            Step::Change { name, role, upgrade: Some((from, to)), reinstall, config } => {
                let leader = if *role == Role::ControlPlane { ", forfeit etcd leadership" } else { "" };
                let and = if *config { " and a configuration change" } else { "" };
                if from == to {
                    format!("{name}: Talos {to} from the new installer{and} (upgrade, drain{leader}, reboot, uncordon)")
                } else {
                    let new = if *reinstall { " from the new installer" } else { "" };
                    format!("{name}: Talos {from} → {to}{new}{and} (upgrade, drain{leader}, reboot, uncordon)")
                }
            }
            Step::Change { name, upgrade: None, .. } => {
                format!("{name}: configuration change (applied without a reboot where Talos allows it)")
            }
            Step::Kubernetes { from, to } => format!(
                "Kubernetes {from} → {to} (upgrade-k8s: API servers, controller managers, schedulers, kubelets, \
bootstrap manifests)"
            ),
            Step::Remove { name, role: Role::ControlPlane } => {
                format!("{name}: remove (leave etcd, reset, delete the Node)")
            }
            Step::Remove { name, role: Role::Worker } => format!("{name}: remove (drain, reset, delete the Node)"),
        }
    }
}

/// What the plan compares.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    /// The members, in rollout order.
    pub members: &'a [Member],
    /// Per member: the hash of the configuration it gets before any
    /// Kubernetes upgrade (rendered at the running Kubernetes version).
    pub hashes: &'a BTreeMap<String, String>,
    /// The Talos version every node must run.
    pub talos_version: &'a str,
    /// The installer repository every node must be installed from.
    pub installer: &'a str,
    /// Kubernetes: running and wanted (`v1.33.1`), when known.
    pub kubernetes: Option<(String, String)>,
    /// Snapshots are taken before a control plane restarts.
    pub snapshots: bool,
}

/// The steps from `prior` (the recorded `nodes`) to `w`.
pub fn steps(prior: &BTreeMap<String, Status>, w: &Wanted<'_>) -> Vec<Step> {
    let mut out = Vec::new();
    let mut later = Vec::new();
    for role in [Role::ControlPlane, Role::Worker] {
        for m in w.members.iter().filter(|m| m.role == role) {
            let step = match prior.get(&m.name) {
                // Recorded but never configured (an interrupted create, a
                // reset behind Terraform's back): installed again.
                None => Step::Join { name: m.name.clone(), role },
                Some(s) if s.config_hash.is_empty() => Step::Join { name: m.name.clone(), role },
                Some(s) => {
                    // An installer not recorded (an older state) is not
                    // known to differ.
                    let reinstall = !s.installer.is_empty() && s.installer != w.installer;
                    let upgrade = (s.talos_version != w.talos_version || reinstall)
                        .then(|| (s.talos_version.clone(), w.talos_version.to_string()));
                    let config = w.hashes.get(&m.name).is_some_and(|h| *h != s.config_hash);
                    if upgrade.is_none() && !config {
                        continue;
                    }
                    Step::Change { name: m.name.clone(), role, upgrade, reinstall, config }
                }
            };
            // Joins come before changes of the same role (a new control
            // plane adds to quorum before another restarts).
            match step {
                Step::Join { .. } => out.push(step),
                other => later.push(other),
            }
        }
        out.append(&mut later);
    }
    // Removals before Kubernetes: a node on its way out is not upgraded.
    for role in [Role::Worker, Role::ControlPlane] {
        for (name, s) in prior {
            if s.role == role.as_str() && !w.members.iter().any(|m| &m.name == name) {
                out.push(Step::Remove { name: name.clone(), role });
            }
        }
    }
    if let Some((from, to)) = &w.kubernetes
        && from != to
    {
        out.push(Step::Kubernetes { from: from.clone(), to: to.clone() });
    }
    let restarts_cp = |s: &Step| {
        matches!(
            s,
            Step::Change { role: Role::ControlPlane, upgrade: Some(_), .. }
                | Step::Remove { role: Role::ControlPlane, .. }
                | Step::Kubernetes { .. }
        )
    };
    // Before the first change at all: joins change etcd membership too.
    if w.snapshots && !prior.is_empty() && out.iter().any(restarts_cp) {
        out.insert(0, Step::Snapshot);
    }
    out
}

/// The numbered lines of `rollout_steps`.
pub fn lines(steps: &[Step], talos_version: &str, snapshot_dir: Option<&str>) -> Vec<String> {
    steps.iter().enumerate().map(|(i, s)| format!("{}. {}", i + 1, s.describe(talos_version, snapshot_dir))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, role: Role) -> Member {
        Member {
            name: name.into(),
            role,
            address: format!("10.0.0.{}", name.len()),
            install_disk: "/dev/sda".into(),
            patches: vec![],
            index: 0,
        }
    }

    fn status(role: Role, v: &str, hash: &str) -> Status {
        Status {
            role: role.as_str().into(),
            address: String::new(),
            talos_version: v.into(),
            kubernetes_version: "v1.33.1".into(),
            config_hash: hash.into(),
            installer: "ghcr.io/siderolabs/installer".into(),
        }
    }

    #[test]
    fn an_upgrade_takes_control_planes_first_then_workers_then_removals() {
        let members = [
            member("cp-1", Role::ControlPlane),
            member("cp-2", Role::ControlPlane),
            member("w-1", Role::Worker),
            member("w-3", Role::Worker),
        ];
        let mut prior = BTreeMap::new();
        prior.insert("cp-1".to_string(), status(Role::ControlPlane, "v1.13.9", "a"));
        prior.insert("cp-2".to_string(), status(Role::ControlPlane, "v1.13.9", "a"));
        prior.insert("w-1".to_string(), status(Role::Worker, "v1.13.9", "b"));
        prior.insert("w-2".to_string(), status(Role::Worker, "v1.13.9", "b"));
        let hashes: BTreeMap<String, String> = [("cp-1", "a"), ("cp-2", "a"), ("w-1", "c"), ("w-3", "b")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let w = Wanted {
            members: &members,
            hashes: &hashes,
            talos_version: "v1.14.2",
            installer: "ghcr.io/siderolabs/installer",
            kubernetes: Some(("v1.33.1".into(), "v1.34.0".into())),
            snapshots: true,
        };
        let got = lines(&steps(&prior, &w), "v1.14.2", Some("/backups"));
        assert_eq!(
            got,
            [
                "1. etcd snapshot to /backups",
                "2. cp-1: Talos v1.13.9 → v1.14.2 (upgrade, drain, forfeit etcd leadership, reboot, uncordon)",
                "3. cp-2: Talos v1.13.9 → v1.14.2 (upgrade, drain, forfeit etcd leadership, reboot, uncordon)",
                "4. w-3: join as a worker (install Talos v1.14.2)",
                "5. w-1: Talos v1.13.9 → v1.14.2 and a configuration change (upgrade, drain, reboot, uncordon)",
                "6. w-2: remove (drain, reset, delete the Node)",
                "7. Kubernetes v1.33.1 → v1.34.0 (upgrade-k8s: API servers, controller managers, schedulers, kubelets, bootstrap manifests)",
            ]
        );
    }

    #[test]
    fn nothing_changed_is_no_step_and_a_worker_change_takes_no_snapshot() {
        let members = [member("cp-1", Role::ControlPlane), member("w-1", Role::Worker)];
        let mut prior = BTreeMap::new();
        prior.insert("cp-1".to_string(), status(Role::ControlPlane, "v1.13.9", "a"));
        prior.insert("w-1".to_string(), status(Role::Worker, "v1.13.9", "b"));
        let hashes: BTreeMap<String, String> =
            [("cp-1", "a"), ("w-1", "b")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let w = Wanted {
            members: &members,
            hashes: &hashes,
            talos_version: "v1.13.9",
            installer: "ghcr.io/siderolabs/installer",
            kubernetes: Some(("v1.33.1".into(), "v1.33.1".into())),
            snapshots: true,
        };
        assert!(steps(&prior, &w).is_empty());
        let mut changed = hashes.clone();
        changed.insert("w-1".into(), "changed".into());
        let w = Wanted { hashes: &changed, ..w };
        assert_eq!(
            lines(&steps(&prior, &w), "v1.13.9", None),
            ["1. w-1: configuration change (applied without a reboot where Talos allows it)"]
        );
    }

    #[test]
    fn a_new_installer_at_the_same_version_reinstalls_every_node() {
        let members = [member("cp-1", Role::ControlPlane), member("w-1", Role::Worker)];
        let mut prior = BTreeMap::new();
        prior.insert("cp-1".to_string(), status(Role::ControlPlane, "v1.13.9", "a"));
        let mut old = status(Role::Worker, "v1.13.9", "b");
        old.installer = String::new();
        prior.insert("w-1".to_string(), old);
        let hashes: BTreeMap<String, String> =
            [("cp-1", "a"), ("w-1", "b")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let w = Wanted {
            members: &members,
            hashes: &hashes,
            talos_version: "v1.13.9",
            installer: "factory.talos.dev/installer/613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245",
            kubernetes: Some(("v1.33.1".into(), "v1.33.1".into())),
            snapshots: false,
        };
        // The worker's installer was not recorded (an older state): not
        // known to differ, so not reinstalled.
        assert_eq!(
            lines(&steps(&prior, &w), "v1.13.9", None),
            [
                "1. cp-1: Talos v1.13.9 from the new installer (upgrade, drain, forfeit etcd leadership, reboot, uncordon)"
            ]
        );
        assert!(
            matches!(&steps(&prior, &w)[0], Step::Change { reinstall: true, upgrade: Some((a, b)), config: false, .. } if a == b)
        );
    }
}

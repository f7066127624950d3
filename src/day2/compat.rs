//! Which versions go together, as Talos decides it (siderolabs/talos
//! `pkg/machinery/compatibility/`, `talos1XX/talos1XX.go` per release):
//!
//! - a running Talos accepts a configuration only if its Kubernetes images
//!   (kubelet, control plane, kube-proxy) are of a version it supports
//!   (`kubernetes_image.go` `ValidateKubernetesImageTag`, called from the
//!   config's `Validate` on the node: "version of Kubernetes 1.38.0 is too
//!   new to be used with Talos 1.13.9"), and `talosctl upgrade-k8s` checks
//!   the same for every node (`pkg/cluster/kubernetes/compat.go`);
//! - the installer of a release upgrades only hosts from its minimum host
//!   version on (`talos_version.go` `UpgradeableFrom`, checked by the
//!   installer's preflight: "host version 1.10.5 is too old to upgrade to
//!   Talos 1.13.9").
//!
//! Both compare major.minor.patch; the maximum Kubernetes version is
//! `1.N.99`, so every patch of the last minor is in.

/// A version 1.minor.patch as (minor, patch).
type MinorPatch = (u64, u64);

/// One Talos minor: (minor, minimum host version it upgrades, minimum
/// Kubernetes, maximum Kubernetes).
type Row = (u64, MinorPatch, MinorPatch, MinorPatch);

/// Per Talos minor, from `talos1XX.go`.
const TABLE: [Row; 6] = [
    (10, (8, 0), (28, 0), (33, 99)),
    (11, (9, 0), (29, 0), (34, 99)),
    (12, (10, 0), (30, 0), (35, 99)),
    (13, (11, 0), (31, 0), (36, 99)),
    (14, (12, 0), (32, 0), (37, 99)),
    (15, (13, 0), (33, 0), (38, 99)),
];

/// `v1.13.9` or `1.13.9` → (1, 13, 9); None when not a version.
fn parse(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim_start_matches('v').split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

fn row(talos: (u64, u64, u64)) -> Option<&'static Row> {
    (talos.0 == 1).then_some(())?;
    TABLE.iter().find(|r| r.0 == talos.1)
}

/// A Kubernetes version a Talos release does not run; shown in Talos's
/// words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version of Kubernetes {kubernetes} is too {} to be used with Talos {talos}", self.age())]
pub struct Unsupported {
    /// The Kubernetes version, `1.37.0`.
    pub kubernetes: String,
    /// The Talos version, `1.13.9`.
    pub talos: String,
    /// Past the newest it runs (else before the oldest).
    pub too_new: bool,
}

impl Unsupported {
    /// `new` or `old`.
    pub fn age(&self) -> &'static str {
        if self.too_new { "new" } else { "old" }
    }
}

/// Whether Talos `talos` runs Kubernetes `kubernetes`. Versions this table
/// does not know pass (the schema and the contract checks speak for
/// those).
pub fn kubernetes_supported(kubernetes: &str, talos: &str) -> Result<(), Unsupported> {
    let (Some(k), Some(t)) = (parse(kubernetes), parse(talos)) else { return Ok(()) };
    let Some(&(_, _, min, max)) = row(t) else { return Ok(()) };
    let unsupported = |too_new| Unsupported {
        kubernetes: format!("{}.{}.{}", k.0, k.1, k.2),
        talos: format!("{}.{}.{}", t.0, t.1, t.2),
        too_new,
    };
    if (k.0, k.1, k.2) < (1, min.0, min.1) {
        return Err(unsupported(false));
    }
    if (k.0, k.1, k.2) >= (1, max.0, max.1) {
        return Err(unsupported(true));
    }
    Ok(())
}

/// The oldest Kubernetes version Talos `talos` runs (`1.31.0` for 1.13),
/// if this table knows it.
pub fn oldest_kubernetes(talos: &str) -> Option<String> {
    let &(_, _, min, _) = row(parse(talos)?)?;
    Some(format!("1.{}.{}", min.0, min.1))
}

/// The Kubernetes versions Talos `talos` runs, in words
/// (`Talos 1.13 runs Kubernetes 1.31.0 to 1.36.x`), if this table knows it.
pub fn kubernetes_range(talos: &str) -> Option<String> {
    let &(minor, _, min, max) = row(parse(talos)?)?;
    Some(format!("Talos 1.{minor} runs Kubernetes 1.{}.{} to 1.{}.x", min.0, min.1, max.0))
}

/// Whether the installer of Talos `to` upgrades a host that runs `host`:
/// Err with Talos's words and the oldest host it takes.
pub fn upgradeable_from(host: &str, to: &str) -> Result<(), String> {
    let (Some(h), Some(t)) = (parse(host), parse(to)) else { return Ok(()) };
    let Some(&(_, min, _, _)) = row(t) else { return Ok(()) };
    if (h.0, h.1, h.2) < (1, min.0, min.1) {
        return Err(format!(
            "host version {}.{}.{} is too old to upgrade to Talos {}.{}.{} (its installer takes hosts from \
1.{}.{} on: upgrade to a release in between first)",
            h.0, h.1, h.2, t.0, t.1, t.2, min.0, min.1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_ranges_follow_the_compatibility_tables() {
        assert!(kubernetes_supported("1.31.0", "v1.13.9").is_ok());
        assert!(kubernetes_supported("1.36.7", "v1.13.9").is_ok(), "every patch of the last minor (1.36.99)");
        let e = kubernetes_supported("1.37.0", "v1.13.9").unwrap_err().to_string();
        assert!(e.starts_with("version of Kubernetes 1.37.0 is too new to be used with Talos 1.13.9"), "{e}");
        assert_eq!(oldest_kubernetes("v1.13.9").as_deref(), Some("1.31.0"));
        assert_eq!(kubernetes_range("v1.13.9").as_deref(), Some("Talos 1.13 runs Kubernetes 1.31.0 to 1.36.x"));
        let e = kubernetes_supported("v1.30.4", "v1.13.0").unwrap_err().to_string();
        assert!(e.starts_with("version of Kubernetes 1.30.4 is too old"), "{e}");
        assert!(kubernetes_supported("1.38.1", "v1.15.0").is_ok());
        assert!(kubernetes_supported("1.28.0", "v1.10.5").is_ok());
        assert!(kubernetes_supported("1.40.0", "v1.16.0").is_ok(), "an unknown Talos release is not judged");
    }

    #[test]
    fn an_installer_takes_hosts_from_two_minors_back() {
        assert!(upgradeable_from("v1.11.0", "v1.13.9").is_ok());
        assert!(upgradeable_from("v1.13.9", "v1.14.2").is_ok());
        let e = upgradeable_from("v1.10.7", "v1.13.9").unwrap_err();
        assert!(e.starts_with("host version 1.10.7 is too old to upgrade to Talos 1.13.9"), "{e}");
        assert!(upgradeable_from("v1.12.6", "v1.15.0").is_err());
        assert!(upgradeable_from("v1.13.0", "v1.15.0").is_ok());
    }
}

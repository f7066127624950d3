//! Talos version contracts: which Talos release's generation rules apply.
//!
//! A contract is written `v1.10` … `v1.15` (the leading `v` is optional and a
//! patch level such as `v1.12.3` is accepted and ignored), like
//! `talosctl gen config --talos-version` (behaviour.md §9).

use std::fmt;
use std::str::FromStr;

/// A supported Talos version contract, ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VersionContract {
    /// Talos v1.10.
    V1_10,
    /// Talos v1.11.
    V1_11,
    /// Talos v1.12 (first multi-document configs: `HostnameConfig`).
    V1_12,
    /// Talos v1.13.
    V1_13,
    /// Talos v1.14 (Kubernetes settings split into typed documents).
    V1_14,
    /// Talos v1.15 (generates what v1.14 does: upstream's v1.15 stability
    /// goldens are identical to v1.14's).
    V1_15,
}

/// The input string is not a supported version contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported Talos version contract {input:?}: expected one of v1.10, v1.11, v1.12, v1.13, v1.14, v1.15")]
pub struct UnknownContract {
    /// What was given.
    pub input: String,
}

impl VersionContract {
    /// Every supported contract, oldest first.
    pub const ALL: [VersionContract; 6] = [
        VersionContract::V1_10,
        VersionContract::V1_11,
        VersionContract::V1_12,
        VersionContract::V1_13,
        VersionContract::V1_14,
        VersionContract::V1_15,
    ];

    /// The minor version number (10 for v1.10).
    pub fn minor(self) -> u32 {
        match self {
            VersionContract::V1_10 => 10,
            VersionContract::V1_11 => 11,
            VersionContract::V1_12 => 12,
            VersionContract::V1_13 => 13,
            VersionContract::V1_14 => 14,
            VersionContract::V1_15 => 15,
        }
    }

    /// At least `v1.minor`.
    pub fn at_least(self, minor: u32) -> bool {
        self.minor() >= minor
    }

    /// The oldest Kubernetes minor (1.x) this contract's generator accepts.
    ///
    /// Talos accepts six Kubernetes minors back from its default; the golden
    /// fixtures generate every contract with Kubernetes 1.28, so the floor
    /// is kept permissive (1.28) for all contracts here.
    pub fn min_kubernetes_minor(self) -> u32 {
        28
    }
}

impl fmt::Display for VersionContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}", self.minor())
    }
}

impl FromStr for VersionContract {
    type Err = UnknownContract;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UnknownContract { input: s.to_string() };
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut parts = t.split('.');
        let major = parts.next().ok_or_else(err)?;
        let minor = parts.next().ok_or_else(err)?;
        if let Some(patch) = parts.next() {
            // A patch level (possibly with a pre-release suffix) is ignored.
            let digits = patch.split(['-', '+']).next().unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
        }
        if parts.next().is_some() || major != "1" {
            return Err(err());
        }
        let minor: u32 = minor.parse().map_err(|_| err())?;
        VersionContract::ALL.into_iter().find(|c| c.minor() == minor).ok_or_else(err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_contracts() {
        assert_eq!("v1.10".parse::<VersionContract>(), Ok(VersionContract::V1_10));
        assert_eq!("1.14".parse::<VersionContract>(), Ok(VersionContract::V1_14));
        assert_eq!("v1.12.3".parse::<VersionContract>(), Ok(VersionContract::V1_12));
        assert!("v1.9".parse::<VersionContract>().is_err());
        assert!("v2.10".parse::<VersionContract>().is_err());
        assert_eq!("v1.15.0".parse::<VersionContract>(), Ok(VersionContract::V1_15));
        assert!("v1.16".parse::<VersionContract>().is_err());
        assert!("latest".parse::<VersionContract>().is_err());
        assert_eq!(VersionContract::V1_13.to_string(), "v1.13");
    }
}

//! Inputs of machine configuration generation and their validation.

use std::collections::BTreeMap;

use super::ConfigError;
use crate::talos::version::VersionContract;

/// Role of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineType {
    /// A control-plane node (etcd, API server).
    Controlplane,
    /// A worker node.
    Worker,
}

impl MachineType {
    /// The `machine.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::Controlplane => "controlplane",
            MachineType::Worker => "worker",
        }
    }
}

impl std::str::FromStr for MachineType {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "controlplane" | "init" => Ok(MachineType::Controlplane),
            "worker" | "join" => Ok(MachineType::Worker),
            other => Err(ConfigError::Input {
                field: "machine_type",
                message: format!("{other:?} is not one of controlplane, worker"),
            }),
        }
    }
}

/// Which CNI the cluster gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cni {
    /// Talos's default (Flannel).
    #[default]
    Default,
    /// No CNI: the user installs one.
    None,
    /// Manifests downloaded from these URLs.
    Custom(Vec<String>),
}

/// Everything `generate` needs besides the secrets bundle. Start from
/// [`ConfigInput::new`] and set what you need. Its `Debug` shows the
/// patches by size only (they may carry secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigInput {
    /// Cluster name.
    pub cluster_name: String,
    /// Kubernetes API endpoint, `https://host:port`.
    pub endpoint: String,
    /// Controlplane or worker.
    pub machine_type: MachineType,
    /// Version contract selecting the generation rules.
    pub contract: VersionContract,
    /// Kubernetes version, `1.28.0` or `v1.28.0`.
    pub kubernetes_version: String,
    /// Install disk (e.g. `/dev/sda`); `None` leaves it out.
    pub install_disk: Option<String>,
    /// Installer image; `None` leaves it out.
    pub install_image: Option<String>,
    /// Extra kernel arguments for the installed system (contracts before v1.14).
    pub install_extra_kernel_args: Vec<String>,
    /// Extra certificate SANs (Talos API and Kubernetes API server).
    pub extra_cert_sans: Vec<String>,
    /// Kubernetes DNS domain; `None` means `cluster.local`.
    pub dns_domain: Option<String>,
    /// Let workloads run on control planes.
    pub allow_scheduling_on_control_planes: bool,
    /// CNI selection.
    pub cni: Cni,
    /// Registry mirrors: registry host → mirror endpoint URLs.
    pub registry_mirrors: BTreeMap<String, Vec<String>>,
    /// Kernel sysctls.
    pub sysctls: BTreeMap<String, String>,
    /// Port the local API server listens on (control planes), if not the endpoint's.
    pub local_api_server_port: Option<u16>,
    /// Config patches applied in order after generation (strategic merge or RFC 6902).
    pub config_patches: Vec<String>,
}

impl std::fmt::Debug for ConfigInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let patches: Vec<_> = self.config_patches.iter().map(|p| crate::secret::Elided(p)).collect();
        f.debug_struct("ConfigInput")
            .field("cluster_name", &self.cluster_name)
            .field("endpoint", &self.endpoint)
            .field("machine_type", &self.machine_type)
            .field("contract", &self.contract)
            .field("kubernetes_version", &self.kubernetes_version)
            .field("install_disk", &self.install_disk)
            .field("install_image", &self.install_image)
            .field("install_extra_kernel_args", &self.install_extra_kernel_args)
            .field("extra_cert_sans", &self.extra_cert_sans)
            .field("dns_domain", &self.dns_domain)
            .field("allow_scheduling_on_control_planes", &self.allow_scheduling_on_control_planes)
            .field("cni", &self.cni)
            .field("registry_mirrors", &self.registry_mirrors)
            .field("sysctls", &self.sysctls)
            .field("local_api_server_port", &self.local_api_server_port)
            .field("config_patches", &patches)
            .finish()
    }
}

impl ConfigInput {
    /// Inputs with Talos's generator defaults for the rest.
    pub fn new(
        cluster_name: impl Into<String>,
        endpoint: impl Into<String>,
        machine_type: MachineType,
        contract: VersionContract,
        kubernetes_version: impl Into<String>,
    ) -> Self {
        ConfigInput {
            cluster_name: cluster_name.into(),
            endpoint: endpoint.into(),
            machine_type,
            contract,
            kubernetes_version: kubernetes_version.into(),
            install_disk: None,
            install_image: None,
            install_extra_kernel_args: Vec::new(),
            extra_cert_sans: Vec::new(),
            dns_domain: None,
            allow_scheduling_on_control_planes: false,
            cni: Cni::Default,
            registry_mirrors: BTreeMap::new(),
            sysctls: BTreeMap::new(),
            local_api_server_port: None,
            config_patches: Vec::new(),
        }
    }
}

/// The checked, derived form of the inputs the generators use.
pub(crate) struct Checked<'a> {
    pub input: &'a ConfigInput,
    pub cp: bool,
    /// Endpoint host (no brackets for IPv6).
    pub host: String,
    /// `v1.28.0`.
    pub k8s_tag: String,
    pub dns_domain: String,
}

fn input_err(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Input { field, message: message.into() }
}

/// Parses `https://host:port` into the host; errors name `endpoint`.
pub(crate) fn endpoint_host(endpoint: &str) -> Result<String, ConfigError> {
    let rest = endpoint
        .strip_prefix("https://")
        .ok_or_else(|| input_err("endpoint", format!("{endpoint:?} must start with https://")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| input_err("endpoint", format!("{endpoint:?}: unterminated IPv6 literal")))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(input_err("endpoint", format!("{endpoint:?} has no host")));
    }
    match port.map(str::parse::<u16>) {
        Some(Ok(p)) if p > 0 => Ok(host.to_string()),
        _ => Err(input_err("endpoint", format!("{endpoint:?} must include a port, e.g. https://{host}:6443"))),
    }
}

impl<'a> Checked<'a> {
    pub fn new(input: &'a ConfigInput) -> Result<Self, ConfigError> {
        if input.cluster_name.trim().is_empty() {
            return Err(input_err("cluster_name", "must not be empty"));
        }
        let host = endpoint_host(&input.endpoint)?;
        let version = input.kubernetes_version.trim();
        let version = version.strip_prefix('v').unwrap_or(version);
        let mut parts = version.split('.');
        let nums: Vec<Option<u32>> =
            (0..3).map(|_| parts.next().and_then(|p| p.split(['-', '+']).next()?.parse().ok())).collect();
        let (Some(major), Some(minor), Some(_)) = (nums[0], nums[1], nums[2]) else {
            return Err(input_err(
                "kubernetes_version",
                format!("{:?} is not a version like 1.32.0", input.kubernetes_version),
            ));
        };
        let floor = input.contract.min_kubernetes_minor();
        if major != 1 || minor < floor {
            return Err(input_err(
                "kubernetes_version",
                format!("{version} is older than Talos {} supports (>= 1.{floor})", input.contract),
            ));
        }
        if matches!(&input.cni, Cni::Custom(urls) if urls.is_empty()) {
            return Err(input_err("cni", "a custom CNI needs at least one URL"));
        }
        Ok(Checked {
            input,
            cp: input.machine_type == MachineType::Controlplane,
            host,
            k8s_tag: format!("v{version}"),
            dns_domain: input.dns_domain.clone().unwrap_or_else(|| "cluster.local".to_string()),
        })
    }
}

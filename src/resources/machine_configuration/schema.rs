//! The attributes of `proxtalos_machine_configuration` (data source and
//! ephemeral twin).

use crate::plugin::{Attribute, Type};

/// Every attribute, inputs first.
pub(crate) fn attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("cluster_name")
            .required()
            .description("Name of the cluster (`cluster.clusterName`), e.g. `\"homelab\"`."),
        Attribute::string("cluster_endpoint").required().description(
            "The Kubernetes API endpoint every machine talks to, with scheme and port: `https://HOST:PORT`, e.g. \
`\"https://10.0.0.10:6443\"` (a control-plane VIP or load balancer).",
        ),
        Attribute::string("machine_type").required().description("`\"controlplane\"` or `\"worker\"`."),
        super::secrets_input(),
        Attribute::string("talos_version").required().description(
            "Talos version contract to generate for: `\"v1.10\"` … `\"v1.15\"` (a patch level such as `\"v1.13.2\"` \
is accepted). Use the Talos version the machines run (or will be installed with); v1.12 and later produce \
multi-document configurations. Usually `proxtalos_machine_secrets.<name>.talos_version`.",
        ),
        Attribute::string("kubernetes_version").required().description(
            "Kubernetes version, e.g. `\"1.33.1\"` or `\"v1.33.1\"`. Versions older than the contract supports are \
rejected. There is no default on purpose: a default that moves with provider releases would change every \
configuration on a provider upgrade.",
        ),
        Attribute::string("install_disk")
            .optional()
            .description("Disk Talos installs to, e.g. `\"/dev/sda\"` (`machine.install.disk`). Not set: left out."),
        Attribute::string("install_image").optional().description(
            "Installer image, e.g. `\"factory.talos.dev/installer/<schematic>:v1.13.2\"` (`machine.install.image`). \
Not set: left out.",
        ),
        Attribute::new("kernel_args", Type::list(Type::String)).optional().description(
            "Extra kernel arguments for the installed system (`machine.install.extraKernelArgs`), e.g. \
`[\"console=ttyS0\"]`. Contracts from v1.14 on do not write them (a warning says so); use the boot image's schematic.",
        ),
        Attribute::new("extra_cert_sans", Type::list(Type::String)).optional().description(
            "Extra subject alternative names for the Talos API and Kubernetes API server certificates (IP addresses \
or DNS names, e.g. a VIP or load balancer name).",
        ),
        Attribute::string("dns_domain").optional().description("Kubernetes DNS domain. Not set: `cluster.local`."),
        Attribute::bool("allow_scheduling_on_control_planes")
            .optional()
            .description("Let ordinary workloads run on control-plane machines (small clusters). Not set: `false`."),
        Attribute::string("cni").optional().description(
            "Which CNI the cluster gets: `\"default\"` (Flannel, also when not set), `\"none\"` (install your own, \
e.g. Cilium), or `\"custom\"` with manifests from `cni_urls`.",
        ),
        Attribute::new("cni_urls", Type::list(Type::String)).optional().description(
            "Manifest URLs of a custom CNI, e.g. `[\"https://example.com/cni.yaml\"]`. Setting them without `cni` \
means `cni = \"custom\"`.",
        ),
        Attribute::new("registry_mirrors", super::mirrors_type()).optional().description(
            "Registry mirrors: registry host → mirror endpoint URLs, e.g. `{ \"docker.io\" = \
[\"https://mirror.example.com\"] }`. Written as `machine.registries` before v1.12 and as `RegistryMirrorConfig` \
documents from v1.12 on.",
        ),
        Attribute::new("sysctls", Type::map(Type::String))
            .optional()
            .description("Kernel sysctls (`machine.sysctls`), e.g. `{ \"vm.max_map_count\" = \"262144\" }`."),
        Attribute::number("local_api_server_port").optional().description(
            "Port the Kubernetes API server listens on locally on control planes, when it differs from \
`cluster_endpoint`'s port (e.g. behind a load balancer).",
        ),
        Attribute::new("config_patches", Type::list(Type::String)).optional().description(
            "Patches applied in order after generation, as `talosctl --config-patch` takes them: strategic-merge \
YAML (any document kind, several documents separated by `---`, `$patch: delete` to remove a document) or an RFC 6902 \
JSON patch (a list of operations; only for single-document configurations, i.e. contracts before v1.12). Use \
`yamlencode()` or `file()`. An error names the patch index and the path inside the configuration.",
        ),
        Attribute::string("machine_configuration")
            .computed()
            .sensitive()
            .description("The machine configuration YAML (with every secret), ready to apply to a machine."),
        Attribute::string("machine_configuration_redacted").computed().description(
            "The same YAML with every secret (keys, tokens, the cluster secret) replaced by `******`; not sensitive, \
so plans show changes line by line. Safe to print or put in an output.",
        ),
    ]
}

//! The schema of `proxtalos_cluster`.

use std::time::Duration;

use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{Attribute, NestedBlock, Nesting, Schema, Type};
use crate::resources::shared::talos_model::machine_secrets_type;
use crate::resources::shared::talos_node::{client_attr, drain_option_attrs};

/// Default create timeout: every node installed, bootstrap, health.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default update timeout: a whole rollout.
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(90 * 60);
/// Default delete timeout.
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(20 * 60);

const DESCRIPTION: &str = "One Talos cluster, its whole life: renders each node's machine configuration, installs \
the nodes, bootstraps etcd, waits until the cluster is healthy and returns the talosconfig and kubeconfig; then \
**rolls every later change out one safe step at a time**. A changed `talos_version` upgrades each node in place \
(pull, install, drain, forfeit etcd leadership on a control plane, reboot, uncordon); a changed \
`kubernetes_version` runs the `talosctl upgrade-k8s` procedure; configuration changes are applied without a \
reboot where Talos allows it; added nodes join and removed nodes leave (a control plane leaves etcd first). Control \
planes go first, one at a time, then workers in batches of `rollout.worker_parallelism`, and **a health gate runs \
after every node** (the node at its expected version, every node's Talos services healthy, one etcd member per \
control plane, every Kubernetes node Ready at the expected kubelet version, kube-proxy and CoreDNS ready, nothing \
cordoned, and the API answering at `cluster_endpoint` when that is a VIP or load balancer). A node that fails its gate is rolled back to its previous Talos image (`rollout.rollback_on_failure`), \
the rollout stops with an error naming the node, and `nodes` records exactly which nodes reached which version, so \
the next apply continues where this one stopped. The plan shows the rollout in order (`rollout_steps`, not \
sensitive). VMs stay separate resources (`proxtalos_vm`): their addresses feed `control_plane` and `worker`.";

/// The schema.
pub fn schema() -> Schema {
    Schema::new(DESCRIPTION, attributes()).blocks(vec![
        member_block(
            "control_plane",
            "A control-plane node (at least one). Nodes are told apart by `name`; the \
order of the blocks is the order control planes are taken in a rollout.",
            1,
        ),
        member_block(
            "worker",
            "A worker node. Nodes are told apart by `name`; the order of the blocks is the \
order workers are taken in a rollout.",
            0,
        ),
        rollout_block(),
        on_destroy_block(),
        timeouts::block(&[
            (Operation::Create, CREATE_TIMEOUT),
            (Operation::Update, UPDATE_TIMEOUT),
            (Operation::Delete, DELETE_TIMEOUT),
        ]),
    ])
}

fn member_block(name: &str, description: &str, min: i64) -> NestedBlock {
    let mut b = NestedBlock::new(
        name,
        Nesting::List,
        description,
        vec![
            Attribute::string("name").required().description(
                "The node's host name (`HostnameConfig`, or `machine.network.hostname` before v1.12) and \
Kubernetes Node name, e.g. `\"cp-1\"`: lowercase letters, digits and `-`. Unique in the cluster.",
            ),
            Attribute::string("address").required().description(
                "The node's address for the Talos API, as `node` elsewhere: an IP address or host name, optionally \
with a port (`10.0.0.11`, `10.0.0.11:50000`). Usually the VM's static address. Unique in the cluster.",
            ),
            Attribute::string("install_disk")
                .optional()
                .description("Disk Talos installs to (`machine.install.disk`). Not set: `\"/dev/sda\"`."),
            Attribute::new("config_patches", Type::list(Type::String)).optional().description(
                "Patches for this node only, applied after `config_patches` and the role's patches (same forms as \
`config_patches`).",
            ),
        ],
    );
    b.min_items = min;
    b
}

fn rollout_block() -> NestedBlock {
    NestedBlock::new(
        "rollout",
        Nesting::Single,
        "How changes are rolled out.",
        [
            Attribute::number("worker_parallelism").optional().description(
                "How many workers change at once (a batch; each batch passes its health gate before the next). \
Control planes always go one at a time. Not set: `1`.",
            ),
            Attribute::string("health_timeout").optional().description(
                "How long a node may take to pass its health gate after it changed (for an upgrade: from its \
reboot on). Not set: `\"10m\"`.",
            ),
            Attribute::bool("drain").optional().description(
                "Cordon and drain a node before rebooting it into a new Talos version (evictions respect \
PodDisruptionBudgets; DaemonSet and mirror pods stay). Not set: `true`.",
            ),
            Attribute::string("drain_timeout").optional().description(
                "How long the evictions of one node may take; the rollout stops (the node uncordoned) when they do \
not finish. Not set: `\"5m\"`, as talosctl.",
            ),
            Attribute::bool("rollback_on_failure").optional().description(
                "When an upgraded node does not pass its health gate, boot its previous Talos image again \
(`talosctl rollback`) before stopping the rollout. Not set: `true`.",
            ),
            Attribute::string("etcd_snapshot_dir").optional().description(
                "A local directory: before any change that restarts a control plane, an etcd snapshot is taken \
from a healthy control plane and written there as `<cluster>-<UTC time>.snapshot` (mode 0600; the same format as \
`talosctl etcd snapshot`, restorable with `talosctl bootstrap --recover-from`). Not set: no snapshot.",
            ),
            Attribute::number("etcd_snapshot_keep").optional().description(
                "How many snapshots of this cluster to keep in `etcd_snapshot_dir` (the oldest are removed). Not \
set: `5`.",
            ),
        ]
        .into_iter()
        .chain(drain_option_attrs())
        .collect(),
    )
}

fn on_destroy_block() -> NestedBlock {
    NestedBlock::new(
        "on_destroy",
        Nesting::Single,
        "What destroy does to the nodes. Changes take effect after an apply (they live in state).",
        vec![Attribute::bool("reset").optional().description(
            "Reset every node on destroy (workers first, then control planes; wipes `STATE` and `EPHEMERAL`, the \
nodes power off). Not set: `false`, destroy only forgets the cluster and the nodes keep running.",
        )],
    )
}

/// The object type of one entry of `nodes`.
pub fn node_status_type() -> Type {
    Type::object([
        ("role", Type::String),
        ("address", Type::String),
        ("talos_version", Type::String),
        ("kubernetes_version", Type::String),
        ("config_hash", Type::String),
        ("installer", Type::String),
    ])
}

fn attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("id").computed().use_state_for_unknown().description("The cluster name."),
        Attribute::string("cluster_name")
            .required()
            .description("Name of the cluster (`cluster.clusterName`; the talosconfig and kubeconfig context)."),
        Attribute::string("cluster_endpoint").required().description(
            "The Kubernetes API endpoint every node and the kubeconfig talk to, `https://HOST:PORT`: best the \
control planes' shared VIP (a `Layer2VIPConfig` in `control_plane_patches`; its holder hands it over before it \
reboots), e.g. `\"https://10.0.0.10:6443\"`, or a load balancer. The rollout talks to each control plane \
directly; when the endpoint is not a node's own address, every health gate also checks that the API answers \
there.",
        ),
        Attribute::new("machine_secrets", machine_secrets_type())
            .required()
            .sensitive()
            .description("The cluster's secrets: `proxtalos_machine_secrets.<name>.machine_secrets`."),
        client_attr(),
        Attribute::string("talos_version").required().description(
            "The Talos version every node runs, e.g. `\"v1.14.2\"`. Changing it upgrades the nodes in place, one \
at a time (see the resource description). Downgrades are refused at plan time.",
        ),
        Attribute::string("config_contract").optional().computed().description(
            "The Talos version contract of the generated configurations (`\"v1.13\"`). Not set: the minor of \
`talos_version` when the cluster is created, then kept, so that an upgrade keeps each node's configuration (as \
Talos upgrades do); set it to move the configurations to a newer contract.",
        ),
        Attribute::string("installer_image").optional().description(
            "The installer image repository, without a tag: the tag is `talos_version`. Not set: \
`\"ghcr.io/siderolabs/installer\"`, or the Image Factory's installer of `schematic_id`.",
        ),
        Attribute::string("schematic_id").optional().description(
            "An Image Factory schematic id (64 hexadecimal characters): the installer is \
`factory.talos.dev/installer/<id>:<talos_version>` (extensions, kernel arguments). Not together with \
`installer_image`.",
        ),
        Attribute::string("kubernetes_version").required().description(
            "The Kubernetes version, e.g. `\"1.33.1\"`. Changing it runs the `upgrade-k8s` procedure: API \
servers, controller managers, schedulers on each control plane, then every kubelet, then the bootstrap manifests. \
Only the same minor or the next one.",
        ),
        Attribute::new("config_patches", Type::list(Type::String)).optional().description(
            "Patches for every node, applied in order after generation, as `talosctl --config-patch` takes them \
(strategic-merge YAML, several documents separated by `---`).",
        ),
        Attribute::new("control_plane_patches", Type::list(Type::String))
            .optional()
            .description("Patches for control planes, applied after `config_patches`."),
        Attribute::new("worker_patches", Type::list(Type::String))
            .optional()
            .description("Patches for workers, applied after `config_patches`."),
        Attribute::new("nodes", Type::map(node_status_type())).computed().description(
            "Per node name: `role`, `address`, the Talos version it runs (`talos_version`), the kubelet version of \
its configuration (`kubernetes_version`), the SHA-256 of its active configuration (`config_hash`) and the installer \
repository it was installed from (`installer`: another one, a new schematic, reinstalls the node). Planned from \
the configuration; read from each node on refresh, so an upgrade or a change made behind Terraform's back shows as \
drift; after a stopped rollout it says which nodes reached which version.",
        ),
        Attribute::new("rollout_steps", Type::list(Type::String)).computed().description(
            "The steps of the latest rollout, in order, e.g. `\"1. cp-1: Talos v1.13.9 → v1.14.2 (upgrade, \
reboot)\"`. The plan shows them for the change it proposes; nothing in them is secret.",
        ),
        Attribute::string("talosconfig")
            .computed()
            .sensitive()
            .description("A talosconfig for the cluster (endpoints: the control planes), for `talosctl`."),
        Attribute::string("kubeconfig")
            .computed()
            .sensitive()
            .description("An admin kubeconfig for the cluster, as `talosctl kubeconfig` writes it."),
    ]
}

//! The bootstrap manifests a configured control plane renders, as COSI
//! `Manifests.kubernetes.talos.dev` resources in namespace `controlplane`
//! (siderolabs/talos `internal/app/machined/pkg/controllers/k8s/
//! manifest.go`; ids as `render()` names them). The lab renders the
//! objects the rest of the lab serves, with the fields that matter here
//! (names, labels, images, RBAC references), not every line of Talos's
//! templates. Left out: `00-kubelet-bootstrapping-token` (a Secret
//! holding the bootstrap token), `11-talos-node-rbac-template`,
//! `13-talos-service-account-crd`, the CNI (`05-flannel`) and extra or
//! inline manifests.

use serde_json::{Value, json};

use super::config::KubeFacts;
use super::kube::model::WORKLOADS;

/// The service IP of `kube-dns` in the default service subnet
/// (10.96.0.0/12, its tenth address, as Talos computes it).
const DNS_SERVICE_IP: &str = "10.96.0.10";

fn binding(name: &str, role: &str, subject: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subject]})
}

fn group(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name})
}

fn service_account(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "kube-system"}})
}

/// The manifests (id, objects), sorted by id, for a control plane whose
/// configuration has `kube`.
pub fn render(kube: &KubeFacts) -> Vec<(String, Vec<Value>)> {
    let coredns_image = if kube.coredns_image.is_empty() {
        WORKLOADS.iter().find(|w| w.name == "coredns").map(|w| w.image.to_string()).unwrap_or_default()
    } else {
        kube.coredns_image.clone()
    };
    let kube_proxy_sa = json!({"kind": "ServiceAccount", "name": "kube-proxy", "namespace": "kube-system"});
    let coredns_sa = json!({"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"});
    let mut out = vec![
        (
            "01-csr-approver-role-binding".to_string(),
            vec![binding(
                "system-bootstrap-approve-node-client-csr",
                "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                group("system:bootstrappers"),
            )],
        ),
        (
            "01-csr-node-bootstrap".to_string(),
            vec![binding(
                "system-bootstrap-node-bootstrapper",
                "system:node-bootstrapper",
                group("system:bootstrappers"),
            )],
        ),
        (
            "01-csr-renewal-role-binding".to_string(),
            vec![binding(
                "system-bootstrap-node-renewal",
                "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                group("system:nodes"),
            )],
        ),
        (
            "10-kube-proxy".to_string(),
            vec![
                service_account("kube-proxy"),
                binding("kube-proxy", "system:node-proxier", kube_proxy_sa),
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                    "metadata": {"name": "kube-proxy", "namespace": "kube-system",
                        "labels": {"k8s-app": "kube-proxy", "tier": "node"}},
                    "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                        "template": {"metadata": {"labels": {"k8s-app": "kube-proxy", "tier": "node"}},
                            "spec": {"serviceAccountName": "kube-proxy", "hostNetwork": true,
                                "containers": [{"name": "kube-proxy", "image": kube.proxy_image,
                                    "command": ["/usr/local/bin/kube-proxy", "--cluster-cidr=10.244.0.0/16",
                                        "--hostname-override=$(NODE_NAME)", "--proxy-mode=iptables"]}]}}}}),
            ],
        ),
        (
            "11-core-dns".to_string(),
            vec![
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "system:coredns"},
                    "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                        "verbs": ["list", "watch"]},
                        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]}),
                binding("system:coredns", "system:coredns", coredns_sa),
                service_account("coredns"),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
                    "data": {"Corefile": ".:53 {\n    errors\n    health\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }\n    forward . /etc/resolv.conf\n    cache 30\n    loop\n    reload\n}\n"}}),
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                            "spec": {"serviceAccountName": "coredns",
                                "containers": [{"name": "coredns", "image": coredns_image,
                                    "args": ["-conf", "/etc/coredns/Corefile"]}]}}}}),
            ],
        ),
        (
            "11-core-dns-svc".to_string(),
            vec![json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
                "spec": {"selector": {"k8s-app": "kube-dns"}, "clusterIP": DNS_SERVICE_IP,
                    "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}})],
        ),
        (
            "11-kube-config-in-cluster".to_string(),
            vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kubeconfig-in-cluster", "namespace": "kube-system"},
                "data": {"kubeconfig": "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: https://127.0.0.1:7445\n    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\nusers:\n- name: service-account\n  user:\n    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\ncontexts:\n- context:\n    cluster: local\n    user: service-account\n"}})],
        ),
    ];
    if kube.proxy_disabled {
        out.retain(|(id, _)| id != "10-kube-proxy");
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cluster.proxy.disabled`: no `10-kube-proxy` (manifest.go renders
    /// it only when `ProxyEnabled`).
    #[test]
    fn a_disabled_proxy_renders_no_kube_proxy() {
        let kube = KubeFacts { proxy_disabled: true, ..KubeFacts::default() };
        assert!(render(&kube).iter().all(|(id, _)| id != "10-kube-proxy"));
    }

    /// Talos's ids (manifest.go `render()`), sorted; the images follow the
    /// configuration.
    #[test]
    fn ids_and_images_follow_the_configuration() {
        let kube = KubeFacts {
            proxy_image: "registry.k8s.io/kube-proxy:v1.34.0".to_string(),
            coredns_image: "registry.k8s.io/coredns/coredns:v1.12.3".to_string(),
            ..KubeFacts::default()
        };
        let m = render(&kube);
        let ids: Vec<&str> = m.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "01-csr-approver-role-binding",
                "01-csr-node-bootstrap",
                "01-csr-renewal-role-binding",
                "10-kube-proxy",
                "11-core-dns",
                "11-core-dns-svc",
                "11-kube-config-in-cluster"
            ]
        );
        let ds = &m[3].1[2];
        assert_eq!(ds["spec"]["template"]["spec"]["containers"][0]["image"], "registry.k8s.io/kube-proxy:v1.34.0");
        let dep = &m[4].1[4];
        assert_eq!(
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.k8s.io/coredns/coredns:v1.12.3"
        );
    }
}

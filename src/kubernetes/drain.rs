//! Cordon, drain and uncordon of one Node: what talosctl does around a
//! Talos ≥ v1.13 upgrade, where the node no longer drains itself
//! (siderolabs/talos `cmd/talosctl/pkg/talos/nodedrain`, siderolabs/
//! go-kubernetes `kubernetes/nodedrain`: kubectl's drain helper with
//! `Force`, `IgnoreAllDaemonSets`, `DeleteEmptyDirData`, a 5 minute
//! timeout). Requests are built sans-IO with kube-core; the drain is one
//! wait on the provider's polling helper, so it ends on its deadline and on
//! Ctrl-C.
//!
//! A drain evicts every pod on the Node but mirror pods (static pods, which
//! the kubelet owns) and DaemonSet pods, through the eviction API so that
//! PodDisruptionBudgets hold: a 429 is retried after 1 s (kubectl waits
//! 5 s, its `EvictErrorRetryDelay`; a budget allows the next eviction as
//! soon as a replacement is Ready, so asking sooner ends a rollout's
//! drains up to 4 s earlier per refusal, for one eviction request a second
//! per refused pod), and an evicted pod counts as gone once it is
//! deleted or replaced (a new uid). It fails when the time is up, naming
//! the pods left and why.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use kube_core::params::{ListParams, Patch, PatchParams};
use kube_core::subresource::EvictParams;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Client, Error};
use crate::wait::{self, Backoff, Ended, Probe, Stop, Wait};

/// The pause before a refused eviction is tried again (kubectl: 5 s).
pub const EVICT_RETRY: Duration = Duration::from_secs(1);

/// The cordon (`true`) or uncordon patch of `node` (kubectl's cordon
/// helper: a strategic merge of `spec.unschedulable`).
pub fn cordon_request(node: &str, unschedulable: bool) -> Result<http::Request<Vec<u8>>, Error> {
    let value = if unschedulable { json!(true) } else { Value::Null };
    let patch = Patch::Strategic(json!({"spec": {"unschedulable": value}}));
    kube_core::Request::new("/api/v1/nodes").patch(node, &PatchParams::default(), &patch).map_err(Error::Build)
}

/// The list of every pod bound to `node`.
pub fn pods_on_request(node: &str) -> Result<http::Request<Vec<u8>>, Error> {
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    kube_core::Request::new("/api/v1/pods").list(&params).map_err(Error::Build)
}

/// The eviction of pod `namespace/name`.
pub fn evict_request(namespace: &str, name: &str) -> Result<http::Request<Vec<u8>>, Error> {
    kube_core::Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
        .evict(name, &EvictParams::default())
        .map_err(Error::Build)
}

/// What a drain may do with the pods kubectl's drain holds back by
/// default (kubectl `pkg/drain/filters.go`). talosctl's drain allows both
/// (`IgnoreAllDaemonSets`, `DeleteEmptyDirData`), and so does the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOptions {
    /// Leave DaemonSet pods where they are; without it, a Node that runs
    /// any refuses to drain.
    pub ignore_daemonsets: bool,
    /// Evict pods with `emptyDir` volumes (their data is lost); without it,
    /// a Node that runs any refuses to drain.
    pub delete_emptydir_data: bool,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions { ignore_daemonsets: true, delete_emptydir_data: true }
    }
}

/// kubectl drain's refusals for `pods` under `opts`, in its words with
/// the provider's attribute in place of kubectl's flag (`cannot delete
/// DaemonSet-managed Pods (set drain_ignore_daemonsets to ignore): ns/a,
/// ns/b`); empty when the drain may go on. Mirror pods are never moved; a
/// pod that already finished holds no local data.
pub fn refusals(pods: &Value, opts: DrainOptions) -> Vec<String> {
    let mut daemonset = Vec::new();
    let mut local = Vec::new();
    for p in pods["items"].as_array().into_iter().flatten() {
        if is_mirror(p) {
            continue;
        }
        let meta = &p["metadata"];
        let name = format!("{}/{}", meta["namespace"].as_str().unwrap_or(""), meta["name"].as_str().unwrap_or(""));
        if owned_by_daemonset(p) {
            daemonset.push(name);
            continue;
        }
        let finished = matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
        let empty_dir = p["spec"]["volumes"].as_array().is_some_and(|v| v.iter().any(|v| v.get("emptyDir").is_some()));
        if empty_dir && !finished {
            local.push(name);
        }
    }
    let mut out = Vec::new();
    if !opts.ignore_daemonsets && !daemonset.is_empty() {
        out.push(format!(
            "cannot delete DaemonSet-managed Pods (set drain_ignore_daemonsets to ignore): {}",
            daemonset.join(", ")
        ));
    }
    if !opts.delete_emptydir_data && !local.is_empty() {
        out.push(format!(
            "cannot delete Pods with local storage (set drain_delete_emptydir_data to override): {}",
            local.join(", ")
        ));
    }
    out
}

/// A static pod's mirror (the kubelet owns it; never moved).
fn is_mirror(p: &Value) -> bool {
    p["metadata"]["annotations"].get("kubernetes.io/config.mirror").is_some()
}

fn owned_by_daemonset(p: &Value) -> bool {
    p["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["kind"] == "DaemonSet" && r["controller"] == true))
}

/// A pod a drain must move: `(namespace, name, uid)`.
pub type Evictee = (String, String, String);

/// The pods of a pod list a drain waits for: not mirror pods
/// (`kubernetes.io/config.mirror`), not DaemonSet pods; those already being
/// deleted are in the second list (waited for, not evicted again: kubectl
/// waits until they are gone).
pub fn evictees(pods: &Value) -> (Vec<Evictee>, Vec<Evictee>) {
    let all = movable(pods);
    let terminating = |p: &Evictee| {
        pods["items"].as_array().is_some_and(|items| {
            items.iter().any(|i| i["metadata"]["uid"] == p.2.as_str() && !i["metadata"]["deletionTimestamp"].is_null())
        })
    };
    all.into_iter().partition(|p| !terminating(p))
}

fn movable(pods: &Value) -> Vec<Evictee> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    pods["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|p| !is_mirror(p))
                .filter(|p| !owned_by_daemonset(p))
                .map(|p| (text(&p["metadata"]["namespace"]), text(&p["metadata"]["name"]), text(&p["metadata"]["uid"])))
                .collect()
        })
        .unwrap_or_default()
}

/// What the drain knows of each pod it is moving.
#[derive(Debug, Default)]
struct Progress {
    /// Pods refused (429) and when to try again, with the server's reason.
    refused: BTreeMap<(String, String), (Instant, String)>,
    /// Pods whose eviction was accepted, by uid.
    evicted: BTreeMap<String, (String, String)>,
}

impl Client {
    /// Cordons (`true`) or uncordons `node`.
    pub async fn cordon(&self, node: &str, unschedulable: bool) -> Result<(), Error> {
        self.send::<Value>(cordon_request(node, unschedulable)?).await.map(|_| ())
    }

    /// Node `name`.
    pub async fn node(&self, name: &str) -> Result<super::objects::Node, Error> {
        let req = kube_core::Request::new("/api/v1/nodes")
            .get(name, &kube_core::params::GetParams::default())
            .map_err(Error::Build)?;
        self.send(req).await
    }

    /// Deletes Node `name` (a node taken out of the cluster); one that is
    /// gone already counts as deleted.
    pub async fn delete_node(&self, name: &str) -> Result<(), Error> {
        let req = kube_core::Request::new("/api/v1/nodes")
            .delete(name, &kube_core::params::DeleteParams::default())
            .map_err(Error::Build)?;
        match self.send::<Value>(req).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Whether Node `name` is cordoned (`spec.unschedulable`).
    pub async fn node_unschedulable(&self, name: &str) -> Result<bool, Error> {
        Ok(self.node(name).await?.spec.unschedulable == Some(true))
    }

    /// Whether Node `name` has its Ready condition True.
    pub async fn node_ready(&self, name: &str) -> Result<bool, Error> {
        Ok(super::objects::Condition::of(&self.node(name).await?.status.conditions, "Ready") == Some(true))
    }

    /// Evicts the pods of `node` (see the module) until none is left,
    /// within `limit`; ends early on `stop`. Refuses, before evicting
    /// anything, a Node with pods `opts` does not let it move.
    pub async fn drain(&self, node: &str, opts: DrainOptions, limit: Duration, stop: &Stop) -> Result<usize, Error> {
        let progress = Mutex::new(Progress::default());
        let what = format!("node {node} to be drained");
        let w = Wait::new(&what, limit, Backoff::fixed(Duration::from_secs(1)), stop);
        let result = wait::until(&w, || self.drain_round(node, opts, &progress)).await;
        let moved = progress.lock().map(|p| p.evicted.len()).unwrap_or_default();
        match result {
            Ok(()) => Ok(moved),
            Err(Ended::Failed(e)) => Err(e),
            Err(Ended::TimedOut(r)) => {
                Err(Error::Drain { node: node.to_string(), after: r.after, left: r.last_or_none() })
            }
            Err(Ended::Stopped(r)) => Err(Error::Stopped { what: format!("the drain of node {node}"), after: r.after }),
        }
    }

    /// One look: evict what is due, then say what is left.
    async fn drain_round(
        &self,
        node: &str,
        opts: DrainOptions,
        progress: &Mutex<Progress>,
    ) -> Result<Probe<()>, Error> {
        let pods: Value = match self.send(pods_on_request(node)?).await {
            Ok(p) => p,
            // An API server that is restarting or unreachable for a moment
            // is "not yet", as kubectl's drain retries.
            Err(e @ (Error::Transport { .. } | Error::Api { code: 500..=599, .. })) => {
                return Ok(Probe::NotYet(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let refused = refusals(&pods, opts);
        if !refused.is_empty() {
            return Err(Error::DrainRefused { node: node.to_string(), reasons: refused.join("; ") });
        }
        let (left, terminating) = evictees(&pods);
        if left.is_empty() && terminating.is_empty() {
            return Ok(Probe::Ready(()));
        }
        let mut waiting: Vec<String> =
            terminating.iter().map(|(ns, name, _)| format!("{ns}/{name} (terminating)")).collect();
        for (ns, name, uid) in &left {
            let key = (ns.clone(), name.clone());
            let (evicted, due) = {
                let p = progress.lock().unwrap_or_else(|e| e.into_inner());
                let due = p.refused.get(&key).is_none_or(|(at, _)| Instant::now() >= *at);
                (p.evicted.contains_key(uid), due)
            };
            if evicted {
                waiting.push(format!("{ns}/{name} (evicted, terminating)"));
                continue;
            }
            if !due {
                let p = progress.lock().unwrap_or_else(|e| e.into_inner());
                let why = p.refused.get(&key).map(|(_, w)| w.clone()).unwrap_or_default();
                waiting.push(format!("{ns}/{name} ({why})"));
                continue;
            }
            match self.send::<Value>(evict_request(ns, name)?).await {
                Ok(_) => {
                    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                    p.refused.remove(&key);
                    p.evicted.insert(uid.clone(), key);
                    waiting.push(format!("{ns}/{name} (evicted, terminating)"));
                }
                Err(e) if e.is_not_found() => {}
                // The API server restarting, or failing for a moment.
                Err(e @ (Error::Transport { .. } | Error::Api { code: 500..=599, .. })) => {
                    waiting.push(format!("{ns}/{name} ({e})"))
                }
                Err(Error::Api { code: 429, message, .. }) => {
                    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                    p.refused.insert(key, (Instant::now() + EVICT_RETRY, message.clone()));
                    waiting.push(format!("{ns}/{name} ({message})"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Probe::NotYet(format!("{} pod(s) left: {}", waiting.len(), waiting.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mirror and DaemonSet pods stay; others are evicted (kubectl drain's
    /// filters with IgnoreAllDaemonSets).
    #[test]
    fn evictees_skip_mirror_and_daemonset_pods() {
        let pods = json!({"items": [
            {"metadata": {"namespace": "kube-system", "name": "kube-apiserver-cp", "uid": "1",
                "annotations": {"kubernetes.io/config.mirror": "x"}}},
            {"metadata": {"namespace": "kube-system", "name": "kube-proxy-a", "uid": "2",
                "ownerReferences": [{"kind": "DaemonSet", "name": "kube-proxy", "controller": true}]}},
            {"metadata": {"namespace": "default", "name": "web-1", "uid": "3",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5", "controller": true}]}},
            {"metadata": {"namespace": "default", "name": "going", "uid": "4", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
        ]});
        let (left, terminating) = evictees(&pods);
        assert_eq!(left, [("default".to_string(), "web-1".to_string(), "3".to_string())]);
        assert_eq!(terminating, [("default".to_string(), "going".to_string(), "4".to_string())]);
    }

    /// kubectl `pkg/drain/filters.go`: without `--ignore-daemonsets` a
    /// DaemonSet pod, without `--delete-emptydir-data` a running pod with an
    /// emptyDir volume, stops the drain before any eviction; mirror pods
    /// and finished pods never do.
    #[test]
    fn refusals_follow_kubectls_filters() {
        let pods = json!({"items": [
            {"metadata": {"namespace": "kube-system", "name": "kube-apiserver-cp", "uid": "1",
                "annotations": {"kubernetes.io/config.mirror": "x"}},
             "spec": {"volumes": [{"name": "x", "emptyDir": {}}]}},
            {"metadata": {"namespace": "kube-system", "name": "kube-proxy-a", "uid": "2",
                "ownerReferences": [{"kind": "DaemonSet", "name": "kube-proxy", "controller": true}]}},
            {"metadata": {"namespace": "default", "name": "cache-1", "uid": "3"},
             "spec": {"volumes": [{"name": "scratch", "emptyDir": {}}]}},
            {"metadata": {"namespace": "default", "name": "job-1", "uid": "4"},
             "spec": {"volumes": [{"name": "scratch", "emptyDir": {}}]}, "status": {"phase": "Succeeded"}},
        ]});
        assert!(refusals(&pods, DrainOptions::default()).is_empty(), "talosctl's defaults move everything");
        let strict = DrainOptions { ignore_daemonsets: false, delete_emptydir_data: false };
        assert_eq!(
            refusals(&pods, strict),
            [
                "cannot delete DaemonSet-managed Pods (set drain_ignore_daemonsets to ignore): kube-system/kube-proxy-a",
                "cannot delete Pods with local storage (set drain_delete_emptydir_data to override): default/cache-1",
            ]
        );
    }

    #[test]
    fn requests() {
        let r = cordon_request("w-1", true).unwrap();
        assert_eq!(r.uri().path(), "/api/v1/nodes/w-1");
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], "application/strategic-merge-patch+json");
        assert_eq!(serde_json::from_slice::<Value>(r.body()).unwrap(), json!({"spec": {"unschedulable": true}}));
        let r = cordon_request("w-1", false).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(r.body()).unwrap(), json!({"spec": {"unschedulable": null}}));
        let r = pods_on_request("w-1").unwrap();
        assert_eq!(r.uri().to_string(), "/api/v1/pods?&fieldSelector=spec.nodeName%3Dw-1");
        let r = evict_request("default", "web-1").unwrap();
        assert_eq!(r.method(), http::Method::POST);
        assert_eq!(r.uri().path(), "/api/v1/namespaces/default/pods/web-1/eviction");
    }
}

//! Watches, sans-IO (`GET …?watch=true`): the events a client gets, as
//! `{"type": ADDED|MODIFIED|DELETED, "object": …}` lines (kube-apiserver's
//! watch stream, `staging/src/k8s.io/apimachinery/pkg/watch`). The server
//! polls [`Watch::poll`] and writes what it returns.
//!
//! - Without `resourceVersion` (or with `0`) the watch starts with a
//!   synthetic `ADDED` for every object that matches, as the API does for
//!   "start at most recent"; with one (a client that just listed, as
//!   client-go's reflector and `kubectl get -w` do) it starts from what is
//!   there now, without events.
//! - An object whose content changes is `MODIFIED`; one that goes is
//!   `DELETED` with its last state. The kubelet's heartbeat time is not a
//!   change.
//! - A streaming list (`sendInitialEvents=true`, client-go's WatchList,
//!   which kubectl 1.37's `wait` uses) gets an `ADDED` for every object,
//!   then a `BOOKMARK` whose object carries the annotation
//!   `k8s.io/initial-events-end: "true"` (apiserver
//!   `staging/src/k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go`):
//!   without it the client waits for the end of the initial events.
//! - With `Accept: …as=Table…` every event's object is a one-row Table.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::{Request, Response, Target, authenticate, authorize, list, no_route, param};
use crate::talos::sim::kube::model::{Cluster, Machine};
use crate::talos::sim::kube::render::View;
use crate::talos::sim::kube::table;

/// One open watch.
#[derive(Debug)]
pub struct Watch {
    target: Target,
    query: String,
    table: bool,
    /// What the client knows, by namespace/name: (content to compare, object).
    known: BTreeMap<String, (Value, Value)>,
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or_default(),
        o["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The object without what changes on every look (the heartbeat).
fn content(o: &Value) -> Value {
    let mut c = o.clone();
    if let Some(conds) = c.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
        for cond in conds {
            if let Some(m) = cond.as_object_mut() {
                m.remove("lastHeartbeatTime");
            }
        }
    }
    c
}

impl Watch {
    /// Opens a watch for `req`, or the error response (401, 403, 404).
    /// Returns the watch and its first events.
    pub fn start(
        cluster: &Cluster,
        machines: &[Machine],
        now: Instant,
        req: &Request<'_>,
    ) -> Result<(Watch, Vec<Value>), Response> {
        if let Some(refused) = authenticate(req).or_else(|| authorize(req)) {
            return Err(refused);
        }
        let target = match Target::parse(req.path.trim_end_matches('/')) {
            Some(t) if t.name.is_none() && t.sub.is_none() => t,
            _ => return Err(no_route()),
        };
        let mut w = Watch {
            target,
            query: req.query.to_string(),
            table: req.accept.contains("as=Table"),
            known: BTreeMap::new(),
        };
        let initial = param(req.query, "sendInitialEvents").is_some_and(|v| v == "true");
        let resumed = param(req.query, "resourceVersion").is_some_and(|rv| !rv.is_empty() && rv != "0");
        let mut events = w.poll(cluster, machines, now);
        if initial {
            let (kind, api_version) = w.target.kind();
            events.push(json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                "metadata": {"resourceVersion": cluster.rv.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"}}}}));
        } else if resumed {
            events.clear();
        }
        Ok((w, events))
    }

    /// The events since the last look.
    pub fn poll(&mut self, cluster: &Cluster, machines: &[Machine], now: Instant) -> Vec<Value> {
        let view = View { cluster, machines, now };
        let items = list(&view, &self.target, &self.query).unwrap_or_default();
        let mut seen = BTreeMap::new();
        let mut events = Vec::new();
        for o in items {
            let k = key(&o);
            let c = content(&o);
            match self.known.get(&k) {
                None => events.push(self.event("ADDED", &o, &view)),
                Some((old, _)) if *old != c => events.push(self.event("MODIFIED", &o, &view)),
                Some(_) => {}
            }
            seen.insert(k, (c, o));
        }
        for (k, (_, o)) in &self.known {
            if !seen.contains_key(k) {
                events.push(self.event("DELETED", o, &view));
            }
        }
        self.known = seen;
        events
    }

    fn event(&self, kind: &str, o: &Value, view: &View<'_>) -> Value {
        let object = if self.table {
            table::table(&self.target.resource, std::slice::from_ref(o), view, &self.query)
        } else {
            o.clone()
        };
        json!({"type": kind, "object": object})
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::talos::sim::kube::api::User;

    fn req<'a>(path: &'a str, query: &'a str, user: &'a User) -> Request<'a> {
        Request {
            method: "GET",
            path,
            query,
            accept: "application/json",
            content_type: "",
            body: b"",
            user: Some(user),
        }
    }

    #[test]
    fn a_watch_adds_what_is_there_then_tells_changes_and_deletions() {
        // apimachinery watch events; "start at most recent" sends synthetic
        // ADDED events, a resourceVersion from a list starts without them.
        let machines = vec![Machine::for_test("cp-1", 11, true), Machine::for_test("w-1", 21, false)];
        let mut c = Cluster::new(Duration::from_secs(5), 1);
        let now = Instant::now();
        c.sync(&machines, now, SystemTime::now());
        let admin = User { name: "admin".into(), groups: vec!["system:masters".into()] };
        let (mut w, first) = Watch::start(&c, &machines, now, &req("/api/v1/nodes", "watch=true", &admin)).unwrap();
        let kinds: Vec<_> =
            first.iter().map(|e| (e["type"].clone(), e["object"]["metadata"]["name"].clone())).collect();
        assert_eq!(kinds, [(json!("ADDED"), json!("cp-1")), (json!("ADDED"), json!("w-1"))]);
        assert!(w.poll(&c, &machines, now).is_empty(), "nothing changed");
        c.set_unschedulable("w-1", true);
        let e = w.poll(&c, &machines, now);
        assert_eq!(
            (e.len(), &e[0]["type"], &e[0]["object"]["spec"]["unschedulable"]),
            (1, &json!("MODIFIED"), &json!(true))
        );
        c.delete_node("w-1");
        let e = w.poll(&c, &machines, now);
        assert_eq!((&e[0]["type"], &e[0]["object"]["metadata"]["name"]), (&json!("DELETED"), &json!("w-1")));

        let (_, resumed) =
            Watch::start(&c, &machines, now, &req("/api/v1/nodes", "watch=true&resourceVersion=12", &admin)).unwrap();
        assert!(resumed.is_empty());
        let streaming = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";
        let (_, listed) = Watch::start(&c, &machines, now, &req("/api/v1/nodes", streaming, &admin)).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1]["type"], "BOOKMARK");
        assert_eq!(listed[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
        let one = "watch=true&fieldSelector=metadata.name%3Dcp-1";
        let (_, only) = Watch::start(&c, &machines, now, &req("/api/v1/nodes", one, &admin)).unwrap();
        assert_eq!(only.len(), 1);
        let nobody = User { name: "dev".into(), groups: vec![] };
        assert_eq!(
            Watch::start(&c, &machines, now, &req("/api/v1/nodes", "watch=true", &nobody)).unwrap_err().code,
            403
        );
        assert_eq!(
            Watch::start(&c, &machines, now, &req("/api/v1/persistentvolumes", "watch=true", &admin)).unwrap_err().code,
            404
        );
    }
}

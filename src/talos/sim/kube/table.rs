//! Server-side printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`):
//! kubectl 1.37 prints only NAME and AGE unless the server answers a Table,
//! so the lab answers with kube-apiserver's columns (kubernetes
//! `pkg/printers/internalversion/printers.go`) and ages as apimachinery's
//! `duration.HumanDuration` writes them.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::render::View;

/// Ages as `k8s.io/apimachinery/pkg/util/duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".to_string();
    }
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", s % 60) }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 { format!("{}d", h / 24) } else { format!("{}d{}h", h / 24, h % 24) }
    } else if h < 24 * 365 * 2 {
        format!("{}d", h / 24)
    } else if h < 24 * 365 * 8 {
        let d = h / 24 % 365;
        if d == 0 { format!("{}y", h / 24 / 365) } else { format!("{}y{d}d", h / 24 / 365) }
    } else {
        format!("{}y", h / 24 / 365)
    }
}

fn age(o: &Value) -> String {
    let created = o["metadata"]["creationTimestamp"].as_str().unwrap_or_default();
    let Some(t) = unix_seconds(created) else {
        return "<unknown>".to_string();
    };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    human_duration(now - t)
}

/// Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SSZ` timestamp (what
/// [`super::render::timestamp`] writes).
fn unix_seconds(ts: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| ts.get(r).and_then(|s| s.parse::<u8>().ok());
    let year: i32 = ts.get(0..4)?.parse().ok()?;
    let month = time::Month::try_from(n(5..7)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, n(8..10)?).ok()?;
    let t = time::Time::from_hms(n(11..13)?, n(14..16)?, n(17..19)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "<none>".to_string(),
    }
}

fn node_cells(o: &Value) -> Vec<Value> {
    let ready = o["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    let mut status = match ready {
        Some(c) if c["status"] == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if o["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = o["metadata"]["labels"]
        .as_object()
        .map(|l| l.keys().filter_map(|k| k.strip_prefix("node-role.kubernetes.io/")).map(str::to_string).collect())
        .unwrap_or_default();
    roles.sort();
    let address = |t: &str| {
        o["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["type"] == t))
            .map_or("<none>".to_string(), |a| s(&a["address"]))
    };
    let info = &o["status"]["nodeInfo"];
    [
        s(&o["metadata"]["name"]),
        status,
        if roles.is_empty() { "<none>".to_string() } else { roles.join(",") },
        age(o),
        s(&info["kubeletVersion"]),
        address("InternalIP"),
        address("ExternalIP"),
        s(&info["osImage"]),
        s(&info["kernelVersion"]),
        s(&info["containerRuntimeVersion"]),
    ]
    .into_iter()
    .map(Value::String)
    .collect()
}

fn pod_cells(o: &Value) -> Vec<Value> {
    let statuses = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
    let containers = o["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses.iter().filter_map(|c| c["restartCount"].as_i64()).sum();
    vec![
        json!(s(&o["metadata"]["name"])),
        json!(format!("{ready}/{containers}")),
        json!(s(&o["status"]["phase"])),
        json!(restarts.to_string()),
        json!(age(o)),
        json!(s(&o["status"]["podIP"])),
        json!(s(&o["spec"]["nodeName"])),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn selector(o: &Value) -> String {
    o["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn template(o: &Value, what: &str) -> String {
    o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().map(|c| c[what].as_str().unwrap_or_default()).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

/// A resource's column definitions (name, priority).
type Columns = Vec<(&'static str, u8)>;
/// What makes one row's cells of an object.
type Cells = fn(&Value) -> Vec<Value>;

/// Columns and cells of one resource's rows.
fn columns(resource: &str) -> (Columns, Cells) {
    match resource {
        "nodes" => (
            vec![
                ("Name", 0),
                ("Status", 0),
                ("Roles", 0),
                ("Age", 0),
                ("Version", 0),
                ("Internal-IP", 1),
                ("External-IP", 1),
                ("OS-Image", 1),
                ("Kernel-Version", 1),
                ("Container-Runtime", 1),
            ],
            node_cells,
        ),
        "pods" => (
            vec![
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1),
            ],
            pod_cells,
        ),
        "daemonsets" => (
            vec![
                ("Name", 0),
                ("Desired", 0),
                ("Current", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Node Selector", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ],
            |o| {
                let st = &o["status"];
                vec![
                    json!(s(&o["metadata"]["name"])),
                    st["desiredNumberScheduled"].clone(),
                    st["currentNumberScheduled"].clone(),
                    st["numberReady"].clone(),
                    st["updatedNumberScheduled"].clone(),
                    st["numberAvailable"].clone(),
                    json!("<none>"),
                    json!(age(o)),
                    json!(template(o, "name")),
                    json!(template(o, "image")),
                    json!(selector(o)),
                ]
            },
        ),
        "deployments" => (
            vec![
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ],
            |o| {
                let st = &o["status"];
                vec![
                    json!(s(&o["metadata"]["name"])),
                    json!(format!(
                        "{}/{}",
                        st["readyReplicas"].as_u64().unwrap_or(0),
                        o["spec"]["replicas"].as_u64().unwrap_or(0)
                    )),
                    st["updatedReplicas"].clone(),
                    st["availableReplicas"].clone(),
                    json!(age(o)),
                    json!(template(o, "name")),
                    json!(template(o, "image")),
                    json!(selector(o)),
                ]
            },
        ),
        "replicasets" => (
            vec![
                ("Name", 0),
                ("Desired", 0),
                ("Current", 0),
                ("Ready", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ],
            |o| {
                let st = &o["status"];
                vec![
                    json!(s(&o["metadata"]["name"])),
                    o["spec"]["replicas"].clone(),
                    st["replicas"].clone(),
                    st["readyReplicas"].clone(),
                    json!(age(o)),
                    json!(template(o, "name")),
                    json!(template(o, "image")),
                    json!(selector(o)),
                ]
            },
        ),
        "poddisruptionbudgets" => (
            vec![("Name", 0), ("Min Available", 0), ("Max Unavailable", 0), ("Allowed Disruptions", 0), ("Age", 0)],
            |o| {
                vec![
                    json!(s(&o["metadata"]["name"])),
                    json!(s(&o["spec"]["minAvailable"])),
                    json!(s(&o["spec"]["maxUnavailable"]).replace("<none>", "N/A")),
                    o["status"]["disruptionsAllowed"].clone(),
                    json!(age(o)),
                ]
            },
        ),
        // kube-apiserver's printers for the kinds the bootstrap manifests
        // hold (printers.go: printConfigMap, printSecret,
        // printServiceAccount, printService; the RBAC kinds print their
        // name and age here, a lab simplification).
        "configmaps" => (vec![("Name", 0), ("Data", 0), ("Age", 0)], |o| {
            let data =
                o["data"].as_object().map_or(0, |m| m.len()) + o["binaryData"].as_object().map_or(0, |m| m.len());
            vec![json!(s(&o["metadata"]["name"])), json!(data), json!(age(o))]
        }),
        "secrets" => (vec![("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)], |o| {
            let data =
                o["data"].as_object().map_or(0, |m| m.len()) + o["stringData"].as_object().map_or(0, |m| m.len());
            let ty = o["type"].as_str().unwrap_or("Opaque");
            vec![json!(s(&o["metadata"]["name"])), json!(ty), json!(data), json!(age(o))]
        }),
        "serviceaccounts" => (vec![("Name", 0), ("Secrets", 0), ("Age", 0)], |o| {
            let n = o["secrets"].as_array().map_or(0, Vec::len);
            vec![json!(s(&o["metadata"]["name"])), json!(n), json!(age(o))]
        }),
        "services" => (vec![("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("Age", 0)], |o| {
            let ty = o["spec"]["type"].as_str().unwrap_or("ClusterIP");
            vec![json!(s(&o["metadata"]["name"])), json!(ty), json!(s(&o["spec"]["clusterIP"])), json!(age(o))]
        }),
        "clusterroles" | "clusterrolebindings" | "roles" | "rolebindings" => {
            (vec![("Name", 0), ("Age", 0)], |o| vec![json!(s(&o["metadata"]["name"])), json!(age(o))])
        }
        _ => (vec![("Name", 0), ("Status", 0), ("Age", 0)], |o| {
            vec![json!(s(&o["metadata"]["name"])), json!(s(&o["status"]["phase"])), json!(age(o))]
        }),
    }
}

/// A `meta.k8s.io/v1` Table of `items` of `resource`; each row carries
/// the object's metadata (`includeObject=Metadata`, the default), the
/// whole object (`Object`) or nothing (`None`).
pub fn table(resource: &str, items: &[Value], view: &View<'_>, query: &str) -> Value {
    let include = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "includeObject")
        .map_or("Metadata".to_string(), |(_, v)| v.into_owned());
    let (cols, cells) = columns(resource);
    let defs: Vec<Value> = cols
        .iter()
        .map(|(name, priority)| {
            json!({"name": name, "type": "string", "format": if *name == "Name" { "name" } else { "" },
                "description": "", "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(o)});
            match include.as_str() {
                "None" => {}
                "Object" => row["object"] = o.clone(),
                _ => {
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
                }
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": view.cluster.rv.to_string()}, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        // apimachinery pkg/util/duration/duration.go HumanDuration.
        for (secs, want) in [
            (-5, "<invalid>"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 600, "3h10m"),
            (8 * 3600, "8h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs} s");
        }
    }
}

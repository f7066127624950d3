#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::plugin::StopSignal;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden/secrets.yaml");

pub(crate) fn ctx() -> Context<ProxtalosData> {
    Context { data: Arc::new(ProxtalosData::default()), stop: StopSignal::new().1 }
}

/// A clock the test moves: seconds since the epoch in an atomic.
fn movable_clock(start: SystemTime) -> (Arc<AtomicU64>, Clock) {
    let secs = Arc::new(AtomicU64::new(start.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()));
    let s = secs.clone();
    (secs, Arc::new(move || SystemTime::UNIX_EPOCH + Duration::from_secs(s.load(Ordering::SeqCst))))
}

fn config(pairs: &[(&str, Value)]) -> Value {
    let mut c = null_object(&MachineSecrets::default().schema().value_type());
    for (k, v) in pairs {
        c.set_attr(k, v.clone());
    }
    c
}

#[test]
fn schema_is_consistent_and_version_0() {
    let s = MachineSecrets::default().schema();
    assert!(s.check().is_empty(), "{:?}", s.check());
    assert_eq!(s.version, 0);
    assert!(s.block.attribute("machine_secrets").unwrap().sensitive);
    assert!(!s.block.attribute("client_certificate_expires_at").unwrap().sensitive);
}

#[test]
fn import_from_path_and_from_content() {
    let now = SystemTime::now();
    let by_path = import_state(GOLDEN, now).unwrap();
    let text = std::fs::read_to_string(GOLDEN).unwrap();
    let by_content = import_state(&text, now).unwrap();
    assert_eq!(by_path.attr("machine_secrets"), by_content.attr("machine_secrets"));
    assert_eq!(by_path.attr("talos_version"), &Value::from("v1.13"));
    assert_eq!(by_path.attr("client_certificate_ttl"), &Value::from(DEFAULT_CLIENT_TTL));
    let bundle = value_to_bundle(by_path.attr("machine_secrets")).unwrap();
    assert_eq!(bundle, SecretsBundle::from_yaml(&text).unwrap());
    assert_eq!(SecretsBundle::from_yaml(by_path.attr("secrets_yaml").as_str().unwrap()).unwrap(), bundle);
    let client = value_to_client(by_path.attr("client_configuration")).unwrap();
    assert_eq!(client.ca, bundle.certs.os.crt);
}

#[test]
fn import_errors_are_clear() {
    let (summary, detail) = import_state("/no/such/secrets.yaml", SystemTime::now()).unwrap_err();
    assert_eq!(summary, "Cannot read secrets.yaml");
    assert!(detail.contains("/no/such/secrets.yaml"));
    let (summary, _) = import_state("cluster:\n    id: x\n", SystemTime::now()).unwrap_err();
    assert_eq!(summary, "Malformed secrets.yaml");
    let text = std::fs::read_to_string(GOLDEN).unwrap().replace("inn7ol.u4ehnti8qyls9ymo", "not-a-token");
    let (summary, detail) = import_state(&text, SystemTime::now()).unwrap_err();
    assert_eq!(summary, "Malformed secrets.yaml");
    assert!(detail.contains("bootstraptoken"), "{detail}");
}

#[tokio::test]
async fn renewal_is_planned_inside_the_window_only() {
    let start = SystemTime::now();
    let (secs, clock) = movable_clock(start);
    let r = MachineSecrets::with_clock(clock);
    // A state whose client certificate was issued now, valid one year.
    let prior = import_state(GOLDEN, start).unwrap();
    let cfg = config(&[]);
    assert_eq!(plan_unchanged(&r, &cfg, &prior).await, prior, "fresh certificate: empty plan");
    // 300 days later: 65 days left, outside the 30-day window.
    secs.fetch_add(300 * 86_400, Ordering::SeqCst);
    assert_eq!(plan_unchanged(&r, &cfg, &prior).await, prior);
    // 340 days later: 25 days left, inside the window.
    secs.fetch_add(40 * 86_400, Ordering::SeqCst);
    let plan = plan_unchanged(&r, &cfg, &prior).await;
    assert!(plan.attr("client_configuration").is_unknown());
    assert!(plan.attr("client_certificate_expires_at").is_unknown());
    assert_eq!(plan.attr("machine_secrets"), prior.attr("machine_secrets"), "secrets are kept");

    // Apply the renewal: a new certificate from the same CA, valid from "now".
    let mut resp = ApplyResponse { state: plan.clone(), ..ApplyResponse::default() };
    let ureq = UpdateRequest {
        config: cfg.clone(),
        planned: plan,
        prior: prior.clone(),
        planned_private: Vec::new(),
        prior_identity: None,
    };
    r.update(&ctx(), ureq, &mut resp).await;
    assert!(resp.diags.is_empty(), "{:?}", resp.diags);
    let renewed = value_to_client(resp.state.attr("client_configuration")).unwrap();
    let old = value_to_client(prior.attr("client_configuration")).unwrap();
    assert_ne!(renewed.crt, old.crt);
    assert_eq!(renewed.ca, old.ca);
    assert!(renewed.expires_at().unwrap() > old.expires_at().unwrap());
    assert!(resp.state.attr("client_certificate_expires_at").as_str().is_some());
}

/// The plan for an unchanged configuration (Terraform proposes the prior state).
async fn plan_unchanged(r: &MachineSecrets, cfg: &Value, prior: &Value) -> Value {
    let req = ModifyPlanRequest { config: cfg.clone(), prior: prior.clone(), prior_private: Vec::new() };
    let mut resp = ModifyPlanResponse { plan: prior.clone(), ..ModifyPlanResponse::default() };
    r.modify_plan(&ctx(), &req, &mut resp).await;
    resp.plan
}

#[tokio::test]
async fn talos_version_change_and_ttl_change() {
    let now = SystemTime::now();
    let r = MachineSecrets::with_clock(Arc::new(move || now));
    let prior = import_state(GOLDEN, now).unwrap();
    // talos_version changes in place and keeps every secret and the certificate.
    let mut planned = prior.clone();
    planned.set_attr("talos_version", "v1.14".into());
    let req = ModifyPlanRequest {
        config: config(&[("talos_version", "v1.14".into())]),
        prior: prior.clone(),
        prior_private: Vec::new(),
    };
    let mut resp = ModifyPlanResponse { plan: planned.clone(), ..ModifyPlanResponse::default() };
    r.modify_plan(&ctx(), &req, &mut resp).await;
    assert_eq!(resp.plan, planned);
    assert!(resp.requires_replace.is_empty());
    // A new ttl re-issues the certificate.
    planned.set_attr("client_certificate_ttl", "4380h".into());
    let mut resp = ModifyPlanResponse { plan: planned, ..ModifyPlanResponse::default() };
    r.modify_plan(&ctx(), &req, &mut resp).await;
    assert!(resp.plan.attr("client_configuration").is_unknown());
}

#[tokio::test]
async fn create_generates_a_valid_bundle_for_the_contract() {
    let r = MachineSecrets::default();
    let mut planned = config(&[
        ("talos_version", "v1.12".into()),
        ("client_certificate_ttl", "24h".into()),
        ("client_certificate_renewal_window", "1h".into()),
    ]);
    for k in ["machine_secrets", "secrets_yaml", "client_configuration", "client_certificate_expires_at"] {
        planned.set_attr(k, Value::Unknown);
    }
    let mut resp = ApplyResponse::default();
    r.create(&ctx(), CreateRequest { config: planned.clone(), planned, planned_private: Vec::new() }, &mut resp).await;
    assert!(resp.diags.is_empty(), "{:?}", resp.diags);
    assert!(resp.state.is_fully_known());
    let bundle = value_to_bundle(resp.state.attr("machine_secrets")).unwrap();
    assert!(bundle.cluster.id.len() == 44);
    let client = value_to_client(resp.state.attr("client_configuration")).unwrap();
    let left = client.expires_at().unwrap().duration_since(SystemTime::now()).unwrap();
    assert!(left <= Duration::from_secs(24 * 3600) && left > Duration::from_secs(23 * 3600));
}

#[test]
fn validation_names_the_attribute() {
    let cases = [
        (config(&[("talos_version", "v1.9".into())]), "talos_version"),
        (config(&[("client_certificate_ttl", "1y".into())]), "client_certificate_ttl"),
        (config(&[("client_certificate_ttl", "30m".into())]), "client_certificate_ttl"),
        (
            config(&[("client_certificate_ttl", "24h".into()), ("client_certificate_renewal_window", "720h".into())]),
            "client_certificate_renewal_window",
        ),
    ];
    for (c, path) in cases {
        let mut d = Diagnostics::new();
        MachineSecrets::default().validate_config(&ValidateRequest { config: c }, &mut d);
        assert!(d.has_errors(), "{path}");
        assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some(path));
    }
    let mut d = Diagnostics::new();
    let unknown = config(&[("talos_version", Value::Unknown), ("client_certificate_ttl", Value::Unknown)]);
    MachineSecrets::default().validate_config(&ValidateRequest { config: unknown }, &mut d);
    assert!(d.is_empty());
}

/// Ten malformed `secrets.yaml` imports (issue 12 §3): each fails with a
/// diagnostic naming the path and the kind of problem, and no diagnostic
/// holds any of the bundle's secret values (serde quotes the offending
/// scalar; `yaml::safe_error` keeps it out).
#[test]
fn malformed_secrets_never_echo_a_secret() {
    let golden = std::fs::read_to_string(GOLDEN).unwrap();
    let value_of = |key: &str| -> String {
        let line = golden.lines().find(|l| l.trim_start().starts_with(&format!("{key}:"))).unwrap();
        line.split_once(": ").unwrap().1.trim().to_string()
    };
    let (id, secret, token, trustd) =
        (value_of("id"), value_of("secret"), value_of("bootstraptoken"), value_of("token"));
    let key = value_of("key");
    let edit = |from: &str, to: &str| {
        assert!(golden.contains(from), "{from}");
        golden.replacen(from, to, 1)
    };
    let cases = [
        edit(&format!("id: {id}"), &format!("id: [{id}]")),
        edit(&format!("cluster:\n    id: {id}"), &format!("cluster: {secret}\nunused:\n    id: {id}")),
        edit(&format!("bootstraptoken: {token}"), &format!("bootstraptoken: {{{token}: 1}}")),
        edit(
            &format!("secret: {secret}"),
            &format!("secret: {secret}\n    {}: x", &secret[..20].replace(['/', '+'], "a")),
        ),
        edit(&format!("secret: {secret}"), &format!("secret: '{secret}")),
        edit(&format!("trustdinfo:\n    token: {trustd}"), &format!("trustdinfo: {trustd}\nother:\n    token: x")),
        edit(&format!("key: {key}"), &format!("key: [{key}, {{")),
        edit(&format!("secret: {secret}"), &format!("secret: {secret}\n    secret: {secret}")),
        edit(&format!("key: {key}"), &format!("key: \"%%{key}\"")),
        edit(&format!("token: {trustd}"), &format!("token:\n\t- {trustd}")),
    ];
    let secrets: Vec<String> = golden
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, v)| v.trim().to_string()))
        .filter(|v| v.len() >= 20)
        .collect();
    assert!(secrets.len() >= 10, "{secrets:?}");
    for (i, text) in cases.iter().enumerate() {
        let Err((summary, detail)) = import_state(text, SystemTime::now()) else { panic!("case {i} must fail") };
        let shown = format!("{summary}\n{detail}");
        for s in &secrets {
            let mid = &s[s.len() / 2 - 8..s.len() / 2 + 8];
            assert!(!shown.contains(mid), "case {i} echoes part of a secret:\n{shown}");
        }
        assert!(!shown.contains(&secret[..20].replace(['/', '+'], "a")), "case {i}:\n{shown}");
        eprintln!("case {i}: {detail}");
    }
}

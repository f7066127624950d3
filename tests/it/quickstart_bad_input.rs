//! The quickstart's bad input (issue 6: "a wrong token, an unreachable
//! endpoint, a storage that does not exist: a plan-time or early apply
//! diagnostic naming the variable to fix"). `terraform plan` of
//! examples/quickstart, unchanged, with one wrong variable at a time, against
//! fakepve 0.5.0 on loopback: it exits 1 and its diagnostic shows the line
//! with the variable (`api_token = var.proxmox_api_token`) or, for a value
//! from the environment, the `PROXMOX_VE_*` name. Plan only: no Talos node is
//! needed and nothing is created.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::fakepve::FakePve;
use crate::support::terraform::{Workspace, build_provider, repo_root, terraform};

const SOURCE: &str = "proxtalos/proxtalos";

struct Case {
    name: &'static str,
    vars: Vec<(&'static str, String)>,
    env: Vec<(&'static str, String)>,
    want: Vec<String>,
}

fn workspace(pve: &FakePve) -> Workspace {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5 (run the README's test command)");
    let ws = Workspace::new(&tf, SOURCE, &build_provider("bin", "terraform-provider-proxtalos"));
    for f in ["main.tf", "variables.tf", "outputs.tf"] {
        std::fs::copy(repo_root().join("examples/quickstart").join(f), ws.work().join(f)).unwrap();
    }
    std::fs::write(ws.work().join("ca.pem"), &pve.ca_pem).unwrap();
    ws.init();
    ws
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn each_wrong_variable_is_named_at_plan() {
    let pve = FakePve::start();
    let token = pve.token("root@pam!quickstart", "5f0c8f5e-2f7d-4d6b-9a53-6f1a3b0c7e21");
    let mut ws = workspace(&pve);
    let base = vec![
        ("proxmox_endpoint", format!("{}/", pve.url)),
        ("proxmox_ca_certificate_file", "ca.pem".to_string()),
        ("network_cidr", "127.0.10.0/24".to_string()),
    ];
    let cases = vec![
        Case {
            name: "wrong token (variable)",
            vars: vec![("proxmox_api_token", "root@pam!quickstart=00000000-0000-0000-0000-000000000000".into())],
            env: vec![],
            want: vec![
                "Proxmox VE refused the credentials".into(),
                "api_token      = var.proxmox_api_token".into(),
                "root@pam!quickstart".into(),
            ],
        },
        Case {
            name: "wrong token (environment)",
            vars: vec![],
            env: vec![("PROXMOX_VE_API_TOKEN", "root@pam!other=00000000-0000-0000-0000-000000000000".into())],
            want: vec!["Proxmox VE refused the credentials".into(), "(from PROXMOX_VE_API_TOKEN)".into()],
        },
        Case {
            name: "malformed token",
            vars: vec![("proxmox_api_token", "just-a-secret".into())],
            env: vec![],
            want: vec!["Invalid Proxmox API token".into(), "var.proxmox_api_token".into()],
        },
        Case {
            name: "unreachable endpoint",
            vars: vec![("proxmox_endpoint", format!("https://127.0.0.1:{}/", closed_port()))],
            env: vec![],
            want: vec!["Cannot reach the Proxmox VE API".into(), "endpoint       = var.proxmox_endpoint".into()],
        },
        Case {
            name: "CA not given",
            vars: vec![("proxmox_ca_certificate_file", "null".into())],
            env: vec![],
            want: vec!["Proxmox VE certificate not trusted".into(), "var.proxmox_ca_certificate_file".into()],
        },
        Case {
            name: "ISO storage that does not exist",
            vars: vec![("iso_storage", "nas-iso".into())],
            env: vec![],
            want: vec![
                "Unknown storage".into(),
                "storage       = var.iso_storage".into(),
                "Node pve1 has no storage \"nas-iso\"".into(),
            ],
        },
        Case {
            name: "VM storage that does not exist",
            vars: vec![("vm_storage", "ceph-fast".into())],
            env: vec![],
            want: vec!["Unknown storage".into(), "var.vm_storage".into(), "no storage \"ceph-fast\"".into()],
        },
        Case {
            name: "VM storage without disk images",
            vars: vec![("vm_storage", "local".into())],
            env: vec![],
            want: vec!["Content type not enabled".into(), "var.vm_storage".into()],
        },
        Case {
            name: "node that does not exist",
            vars: vec![("proxmox_node", "pve7".into())],
            env: vec![],
            want: vec!["Unknown Proxmox node".into(), "var.proxmox_node".into(), "Its nodes: pve1".into()],
        },
        Case {
            name: "bridge that does not exist",
            vars: vec![("bridge", "vmbr9".into())],
            env: vec![],
            want: vec!["Unknown bridge".into(), "var.bridge".into(), "Its bridges: vmbr0".into()],
        },
    ];

    // The same configuration with right values plans cleanly.
    ws.env("PROXMOX_VE_API_TOKEN", &token);
    let args = |vars: &[(&str, String)]| -> Vec<String> {
        let mut merged: Vec<(&str, String)> = base.clone();
        for (k, v) in vars {
            merged.retain(|(b, _)| b != k);
            if v != "null" {
                merged.push((k, v.clone()));
            }
        }
        let mut a = vec!["plan".to_string(), "-no-color".to_string(), "-detailed-exitcode".to_string()];
        a.extend(merged.iter().map(|(k, v)| format!("-var={k}={v}")));
        a
    };
    let good = args(&[]);
    let out = ws.expect(2, &good.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("Plan: 14 to add"), "{out}");

    let mut failures = Vec::new();
    for case in &cases {
        let a = args(&case.vars);
        let mut cmd = ws.command(&a.iter().map(String::as_str).collect::<Vec<_>>());
        for (k, v) in &case.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // Terraform wraps a detail at 78 columns: compare with runs of
        // whitespace made one space.
        let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let flat_text = flat(&text);
        let missing: Vec<&String> = case.want.iter().filter(|w| !flat_text.contains(&flat(w))).collect();
        if out.status.code() != Some(1) || !missing.is_empty() {
            failures.push(format!("{}: exit {:?}, missing {missing:?}\n{text}", case.name, out.status.code()));
        }
        assert!(!text.contains("00000000-0000-0000-0000-000000000000"), "{}: a token secret was printed", case.name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n----\n"));
    assert!(pve.vmids().is_empty(), "nothing was created");
}

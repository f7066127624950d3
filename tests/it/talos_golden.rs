//! Golden tests: for every folder of `tests/fixtures/talos/golden/`
//! (contracts v1.10–v1.15; base and overrides; controlplane and worker),
//! generating with the inputs of `tests/fixtures/README.md` and
//! `secrets.yaml` must reproduce the upstream "config encoding stability"
//! fixtures (siderolabs/talos
//! `pkg/machinery/config/types/v1alpha1/testdata/stability/`;
//! behaviour.md §10, §11, §12).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proxtalos::talos::VersionContract;
use proxtalos::talos::config::{self, Cni, ConfigInput, MachineType};
use proxtalos::talos::secrets::SecretsBundle;
use proxtalos::talos::yaml;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden");

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{GOLDEN}/{rel}")).unwrap()
}

/// The inputs of the upstream stability test (tests/fixtures/README.md table).
fn input(contract: VersionContract, overrides: bool, machine: MachineType) -> ConfigInput {
    let mut i = ConfigInput::new("base", "https://base:6443", machine, contract, "1.28.0");
    if overrides {
        i.extra_cert_sans = vec!["foo".into(), "bar".into()];
        i.allow_scheduling_on_control_planes = true;
        i.dns_domain = Some("example.com".into());
        i.install_disk = Some("/dev/vda".into());
        i.install_extra_kernel_args = vec!["foo=bar".into(), "bar=baz".into()];
        i.local_api_server_port = Some(5443);
        i.sysctls = BTreeMap::from([("foo".to_string(), "bar".to_string())]);
        i.cni = Cni::Custom(vec!["https://example.com/cni.yaml".into()]);
        i.registry_mirrors =
            BTreeMap::from([("ghcr.io".to_string(), vec!["https://ghcr.io.my-mirror.com".to_string()])]);
        let patch = if contract.at_least(14) { "patch.yaml" } else { "patch-pre14.yaml" };
        i.config_patches = vec![read(patch)];
    }
    i
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Bytes,
    Parsed,
    Differs(String),
}

fn check(contract: VersionContract, case: &str, role: &str) -> Outcome {
    let secrets = SecretsBundle::from_yaml(&read("secrets.yaml")).unwrap();
    let machine = if role == "controlplane" { MachineType::Controlplane } else { MachineType::Worker };
    let expected = read(&format!("{contract}/{case}-{role}.yaml"));
    let got = match config::generate(&input(contract, case == "overrides", machine), &secrets) {
        Ok(c) => c.to_yaml(),
        Err(e) => return Outcome::Differs(format!("generation failed: {e}")),
    };
    if got == expected {
        return Outcome::Bytes;
    }
    let (g, e) = (yaml::parse_documents(&got).unwrap(), yaml::parse_documents(&expected).unwrap());
    if g == e {
        return Outcome::Parsed;
    }
    let first = got
        .lines()
        .zip(expected.lines())
        .position(|(a, b)| a != b)
        .map(|n| format!("line {}: got {:?} want {:?}", n + 1, got.lines().nth(n), expected.lines().nth(n)))
        .unwrap_or_else(|| "length differs".to_string());
    Outcome::Differs(first)
}

/// All 24 golden files must match byte for byte.
#[test]
fn golden_files_match() {
    let mut report = Vec::new();
    let mut failures = 0;
    for contract in VersionContract::ALL {
        for case in ["base", "overrides"] {
            for role in ["controlplane", "worker"] {
                let outcome = check(contract, case, role);
                if outcome != Outcome::Bytes {
                    failures += 1;
                }
                report.push(format!("{contract}/{case}-{role}.yaml: {outcome:?}"));
            }
        }
    }
    println!("{}", report.join("\n"));
    assert_eq!(failures, 0, "golden mismatches:\n{}", report.join("\n"));
}

#![allow(clippy::unwrap_used)]

use super::*;
use crate::resources::shared::common::{b64, null_object};

fn config() -> Value {
    null_object(&MachineConfigurationApply.schema().value_type())
}

#[test]
fn schema_is_consistent() {
    let s = MachineConfigurationApply.schema();
    assert!(s.check().is_empty(), "{:?}", s.check());
    assert!(s.block.attribute("machine_configuration_wo").unwrap().write_only);
    assert!(s.block.attribute("machine_configuration").unwrap().sensitive);
    assert!(!s.block.attribute("machine_configuration_redacted").unwrap().sensitive);
    assert!(s.block.block("timeouts").is_some());
}

#[test]
fn apply_modes_are_version_aware() {
    let t = Duration::from_secs(60);
    assert_eq!(plan_request("reboot", 13, t), (ApplyMode::Reboot, None, false));
    assert_eq!(plan_request("reboot", 14, t), (ApplyMode::NoReboot, None, true));
    assert_eq!(plan_request("try", 12, t), (ApplyMode::Try, Some(t), false));
    assert_eq!(plan_request("auto", 14, t), (ApplyMode::Auto, None, false));
    assert_eq!(plan_request("staged", 13, t), (ApplyMode::Staged, None, false));
    assert_eq!(plan_request("no_reboot", 12, t), (ApplyMode::NoReboot, None, false));
}

#[test]
fn exactly_one_configuration_input() {
    let mut c = config();
    let mut d = Diagnostics::new();
    validate(&c, &mut d);
    assert_eq!(d.0[0].summary, "No machine configuration");
    c.set_attr("machine_configuration", "a: b".into());
    c.set_attr("machine_configuration_wo", "a: b".into());
    let mut d = Diagnostics::new();
    validate(&c, &mut d);
    assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some("machine_configuration_wo"));
    c.set_attr("machine_configuration_wo", Value::Null);
    c.set_attr("apply_mode", "sometimes".into());
    c.set_attr("try_timeout", "soon".into());
    let mut d = Diagnostics::new();
    validate(&c, &mut d);
    let paths: Vec<_> = d.0.iter().filter_map(|d| d.path.as_ref().map(ToString::to_string)).collect();
    assert_eq!(paths, vec!["apply_mode", "try_timeout"]);
    assert_eq!(config_text(&c), Ok(Some("a: b".to_string())));
    c.set_attr("machine_configuration", Value::Unknown);
    assert_eq!(config_text(&c), Err(()));
}

#[test]
fn client_ca_must_be_the_configuration_os_ca() {
    let pem = || {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec!["talos".into()]).unwrap().self_signed(&key).unwrap().pem()
    };
    let (one, two) = (pem(), pem());
    let mut c = config();
    c.set_attr("machine_configuration", Value::string(format!("machine:\n  ca:\n    crt: {}\n", b64(&one))));
    c.set_attr(
        "client_configuration",
        Value::object([
            ("ca_certificate", b64(&two).into()),
            ("client_certificate", Value::Null),
            ("client_key", Value::Null),
        ]),
    );
    let mut d = Diagnostics::new();
    validate(&c, &mut d);
    assert_eq!(
        d.0[0].path.as_ref().map(ToString::to_string).as_deref(),
        Some("client_configuration.ca_certificate"),
        "{d:?}"
    );
    let mut same = c.clone();
    same.set_attr(
        "client_configuration",
        Value::object([
            ("ca_certificate", b64(&one).into()),
            ("client_certificate", Value::Null),
            ("client_key", Value::Null),
        ]),
    );
    let mut d = Diagnostics::new();
    validate(&same, &mut d);
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn outputs_are_hash_and_redacted_rendering() {
    let mut v = config();
    fill_outputs(&mut v, "machine:\n  token: secret123\n  type: worker\n");
    assert_eq!(v.attr("machine_configuration_hash").as_str().unwrap().len(), 64);
    let r = v.attr("machine_configuration_redacted").as_str().unwrap();
    assert!(!r.contains("secret123"), "{r}");
    assert!(r.contains("worker"));
}

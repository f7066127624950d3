//! The protocol layer driven by real Terraform: the test provider `tftest`
//! (tests/tftest) through init, plan with unknowns, apply, empty re-plan,
//! drift, out-of-band delete, import (CLI, and by identity), a schema
//! version upgrade, write-only attributes, an ephemeral resource, a
//! validation error with its attribute, Ctrl-C during apply, and destroy.
//! Against Terraform 1.15.5 and 1.0.3 (features gated by version), and any
//! tofu/terraform on PATH.

use std::time::Duration;

use crate::support::terraform::{Terraform, Workspace, build_provider, ctrl_c, terraform, terraforms};

const SOURCE: &str = "proxtalos/tftest";

fn workspace(tf: &Terraform) -> (Workspace, std::path::PathBuf) {
    let bin = build_provider("example", "terraform-provider-tftest");
    let mut ws = Workspace::new(tf, &format!("registry.terraform.io/{SOURCE}"), &bin);
    let store = ws.dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    ws.env("TFTEST_STORE", store.to_str().unwrap());
    (ws, store)
}

fn header() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    tftest = {{ source = \"{SOURCE}\" }}\n  }}\n}}\n\nprovider \"tftest\" {{}}\n"
    )
}

fn base_config() -> String {
    header()
        + r#"
resource "tftest_thing" "a" {
  name   = "a"
  tags   = ["x", "y"]
  labels = { team = "infra" }
  ports  = [{ port = 80 }, { port = 443, protocol = "tcp" }]
}

resource "tftest_thing" "b" {
  name = "b-${tftest_thing.a.id}"
}

data "tftest_info" "i" {
  prefix = "hi"
}

output "greeting" {
  value = data.tftest_info.i.greeting
}
"#
}

fn id_of(ws: &Workspace, address: &str) -> String {
    ws.resource(address)
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no {address} in state"))
}

/// The part of the story every Terraform ≥ 1.0 supports.
fn core_story(tf: &Terraform) {
    let (ws, store) = workspace(tf);
    ws.write_config(&base_config());
    ws.init();

    // plan with unknown values (b's name depends on a's id)
    let plan = ws.plan_exit(2);
    assert!(plan.contains("known after apply"), "{plan}");
    assert!(plan.contains("3 to add") || plan.contains("2 to add"), "{plan}");

    let out = ws.apply();
    assert!(out.contains("greeting = \"hi, world\""), "{out}");
    let a = id_of(&ws, "tftest_thing.a");
    let b = ws.resource("tftest_thing.b").unwrap();
    assert_eq!(b["name"], format!("b-{a}"));
    assert_eq!(ws.resource("tftest_thing.a").unwrap()["size"], 3, "default");

    // re-plan must be empty
    ws.plan_exit(0);

    // Terraform ≥ 1.6 honours get_provider_schema_optional: one
    // GetProviderSchema per plan, not one per provider process (three).
    if tf.at_least(1, 6) {
        let out = ws.command(&["plan", "-no-color"]).env("TF_LOG", "trace").output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        let calls = log.lines().filter(|l| l.ends_with("GRPCProvider.v6: GetProviderSchema")).count();
        assert_eq!(calls, 1, "GetProviderSchema calls in one plan");
    }

    // drift made behind the provider's back shows in plan
    let file = store.join(format!("{a}.json"));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(r#""note":null"#, r#""note":"drifted""#)).unwrap();
    let plan = ws.plan_exit(2);
    assert!(plan.contains("drifted"), "{plan}");
    // `refresh` records the drift in state; the next plan puts it back
    ws.ok(&["refresh", "-no-color"]);
    assert_eq!(ws.resource("tftest_thing.a").unwrap()["note"], "drifted");
    let plan = ws.plan_exit(2);
    assert!(plan.contains("\"drifted\" -> null"), "{plan}");
    ws.apply();
    ws.plan_exit(0);

    // deleted out of band: plan re-creates it
    std::fs::remove_file(store.join(format!("{}.json", id_of(&ws, "tftest_thing.b")))).unwrap();
    let plan = ws.plan_exit(2);
    assert!(plan.contains("1 to add"), "{plan}");
    ws.apply();
    ws.plan_exit(0);

    // CLI import of an object that exists in the store
    std::fs::write(
        store.join("imported1.json"),
        r#"{"id":"imported1","name":"imp","size":3,"note":null,"etag":"e0","secret":null,"secret_hash":null,"create_delay_ms":null,"labels":null,"tags":null,"ports":null}"#,
    )
    .unwrap();
    ws.write_config(&(base_config() + "\nresource \"tftest_thing\" \"c\" {\n  name = \"imp\"\n}\n"));
    let out = ws.ok(&["import", "-no-color", "tftest_thing.c", "imported1"]);
    assert!(out.contains("Import successful"), "{out}");
    ws.plan_exit(0);
    // importing something that does not exist is a clear error
    ws.write_config(&(base_config() + "\nresource \"tftest_thing\" \"c\" {\n  name = \"imp\"\n}\nresource \"tftest_thing\" \"z\" {\n  name = \"z\"\n}\n"));
    let out = ws.expect(1, &["import", "-no-color", "tftest_thing.z", "nothing-here"]);
    assert!(out.contains("No thing with id \"nothing-here\""), "{out}");
    ws.write_config(&(base_config() + "\nresource \"tftest_thing\" \"c\" {\n  name = \"imp\"\n}\n"));

    // schema upgrade: rewrite c's stored state as schema version 0 (size as a string)
    let state = ws.state_file();
    let mut json: serde_json::Value = serde_json::from_str(&state).unwrap();
    for r in json["resources"].as_array_mut().unwrap() {
        if r["name"] == "c" {
            let inst = &mut r["instances"][0];
            inst["schema_version"] = 0.into();
            inst["attributes"]["size"] = "3".into();
            inst["attributes"].as_object_mut().unwrap().remove("secret_hash");
        }
    }
    json["serial"] = (json["serial"].as_i64().unwrap() + 1).into();
    std::fs::write(ws.work().join("terraform.tfstate"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    ws.plan_exit(0);
    ws.apply();
    assert!(ws.state_file().contains("\"schema_version\": 1"), "upgraded state written back");

    // a validation error names the attribute
    ws.write_config(&(header() + "resource \"tftest_thing\" \"bad\" {\n  name = \"\"\n  size = -1\n}\n"));
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("Empty name") && out.contains("Negative size"), "{out}");
    assert!(out.contains("name = \"\"") || out.contains("on main.tf"), "diagnostic points at the config: {out}");

    // destroy removes everything
    ws.write_config(&(base_config() + "\nresource \"tftest_thing\" \"c\" {\n  name = \"imp\"\n}\n"));
    ws.ok(&["destroy", "-no-color", "-auto-approve"]);
    let left: Vec<_> = std::fs::read_dir(&store).unwrap().collect();
    assert!(left.is_empty(), "store not empty after destroy: {left:?}");
}

/// Features of newer protocol minors: write-only (6.8, TF 1.11), ephemeral
/// resources (6.7, TF 1.10), resource identity import (6.9, TF 1.12).
fn modern_story(tf: &Terraform) {
    let (ws, store) = workspace(tf);
    let config = header()
        + r#"
ephemeral "tftest_token" "t" {
  name = "n"
}

resource "tftest_thing" "w" {
  name   = "w"
  secret = ephemeral.tftest_token.t.value
}
"#;
    ws.write_config(&config);
    ws.init();
    ws.apply();
    let w = ws.resource("tftest_thing.w").unwrap();
    assert!(w["secret"].is_null(), "write-only never stored");
    assert!(w["secret_hash"].is_string(), "the ephemeral value reached create through the write-only attribute");
    assert!(!ws.state_file().contains("token-for-n"), "secret not in state");
    ws.plan_exit(0);

    // import by identity
    std::fs::write(
        store.join("ident1.json"),
        r#"{"id":"ident1","name":"byid","size":3,"note":null,"etag":"e0","secret":null,"secret_hash":null,"create_delay_ms":null,"labels":null,"tags":null,"ports":null}"#,
    )
    .unwrap();
    ws.write_config(&(config.clone() + "\nimport {\n  to       = tftest_thing.i\n  identity = { id = \"ident1\" }\n}\n\nresource \"tftest_thing\" \"i\" {\n  name = \"byid\"\n}\n"));
    let out = ws.plan_exit(2);
    assert!(out.contains("1 to import"), "{out}");
    ws.apply();
    ws.plan_exit(0);
    ws.ok(&["destroy", "-no-color", "-auto-approve"]);
}

/// Ctrl-C during a slow create: the provider ignores SIGINT, Terraform
/// lets the create finish, and the object is recorded in state.
fn ctrl_c_story(tf: &Terraform) {
    let (ws, store) = workspace(tf);
    ws.write_config(
        &(header() + "resource \"tftest_thing\" \"slow\" {\n  name = \"slow\"\n  create_delay_ms = 4000\n}\n"),
    );
    ws.init();
    let mut cmd = ws.command(&["apply", "-no-color", "-auto-approve"]);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // wait until the create is under way (the test provider marks it)
    let marker = store.join("creating");
    crate::support::wait::until_blocking("the create is under way", Duration::from_secs(60), || marker.exists());
    std::thread::sleep(Duration::from_millis(500));
    // Ctrl-C reaches the whole process group, provider included
    ctrl_c(&child);
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Plugin did not respond"), "{text}");
    assert!(!text.contains("plugin crashed"), "{text}");
    let slow = ws.resource("tftest_thing.slow");
    assert!(slow.is_some(), "the create that was under way is recorded in state:\n{text}");
    assert!(!marker.exists(), "create ran to its end");
    ws.ok(&["destroy", "-no-color", "-auto-approve"]);
}

#[test]
fn terraform_1_15_5_drives_the_protocol_layer() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5 is installed by the harness");
    core_story(&tf);
    modern_story(&tf);
    ctrl_c_story(&tf);
}

#[test]
fn terraform_1_0_3_drives_the_protocol_layer() {
    let Some(tf) = crate::support::terraform::terraform_1_0_3() else { return };
    core_story(&tf);
}

#[test]
fn other_terraforms_on_path() {
    for tf in terraforms() {
        let v = tf.version_string();
        if !tf.tofu && (v == "1.15.5" || v == "1.0.3") {
            continue;
        }
        eprintln!("also testing {} {v} at {}", if tf.tofu { "OpenTofu" } else { "Terraform" }, tf.bin.display());
        core_story(tf);
        if tf.at_least(1, 12) {
            modern_story(tf);
        }
    }
}

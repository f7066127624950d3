//! `proxtalos_image_factory_schematic` with real Terraform 1.15.5 against
//! the lab's Image Factory double (issue 16): create registers the
//! document and the factory's id equals the plan's; a re-plan is empty; a
//! rewrite with the same id (JSON for YAML) updates in place and sends
//! nothing; new extensions replace it with the new id known at plan time,
//! and the id and installer flow into a `proxtalos_image`'s URL; an unknown
//! extension or field is a plan-time error naming `schematic`; offline
//! computes the id without a call; import by id re-plans without a
//! replacement; a factory that forgot the schematic gets it again; destroy
//! only forgets.
//!
//! What the double cannot show: the public factory's own answers (the ids
//! are held to upstream's vectors in `talos::schematic`'s unit tests), its
//! full extension list, and images built from the schematic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proxtalos::lab::factory::FactoryDouble;

use crate::support::fakepve::FakePve;
use crate::support::terraform::terraform;

const EMPTY: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

const OUTPUTS: &str = r#"
output "id" { value = proxtalos_image_factory_schematic.this.id }
output "installer" { value = proxtalos_image_factory_schematic.this.installer_image }
"#;

fn schematic(doc: &str, extra: &str) -> String {
    format!(
        "resource \"proxtalos_image_factory_schematic\" \"this\" {{\n  schematic     = {doc}\n  talos_version = \"v1.11.5\"\n{extra}}}\n{OUTPUTS}"
    )
}

const LONGHORN: &str = r#"yamlencode({
    customization = {
      systemExtensions = { officialExtensions = ["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"] }
    }
  })"#;

/// An ISO of the schematic, from the schematic's factory.
const IMAGE: &str = r#"
resource "proxtalos_image" "iso" {
  node          = "pve1"
  storage       = "local"
  content       = "iso"
  schematic_id  = proxtalos_image_factory_schematic.this.id
  talos_version = proxtalos_image_factory_schematic.this.talos_version
  factory_url   = proxtalos_image_factory_schematic.this.factory_url
}
"#;

fn posts(f: &FactoryDouble) -> usize {
    f.requests().iter().filter(|r| r.starts_with("POST ")).count()
}

#[test]
fn a_schematic_registers_replans_empty_replaces_on_a_new_id_and_imports() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let pve = FakePve::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let factory = rt.block_on(FactoryDouble::start()).unwrap();
    let url = factory.url().to_string();
    let host = url.trim_start_matches("http://").to_string();
    let (mut ws, _token, header) = pve.workspace(&tf, "root@pam!schematic");
    // The provider's default factory, from the environment (the lab's way).
    ws.env("PROXTALOS_IMAGE_FACTORY_URL", &url);
    let config = |body: String| header.clone() + &body;

    // Create: registered once, with the id the plan showed; the installer
    // is at the factory's registry.
    ws.write_config(&config(schematic("\"customization: {}\"", "")));
    ws.init();
    let plan = ws.ok(&["plan", "-no-color"]);
    assert!(plan.contains(EMPTY), "the id is known at plan time: {plan}");
    ws.apply();
    assert_eq!(posts(&factory), 1, "{:?}", factory.requests());
    assert_eq!(ws.ok(&["output", "-raw", "id"]), EMPTY);
    assert_eq!(ws.ok(&["output", "-raw", "installer"]), format!("{host}/installer/{EMPTY}:v1.11.5"));
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty");

    // The same schematic written as JSON: same id, an update that sends
    // nothing.
    ws.write_config(&config(schematic("jsonencode({ customization = {} })", "")));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("0 to add, 1 to change, 0 to destroy") && !plan.contains("must be replaced"), "{plan}");
    ws.apply();
    assert_eq!(posts(&factory), 1, "nothing sent for the same id");
    assert!(ws.plan_exit(0).contains("No changes"));

    // New extensions: a new id, known at plan time, replaces it, and an
    // ISO of it downloads from that factory.
    let new_id = proxtalos::talos::schematic::id(
        "customization: {systemExtensions: {officialExtensions: [siderolabs/iscsi-tools, siderolabs/util-linux-tools]}}",
    )
    .unwrap();
    ws.write_config(&config(schematic(LONGHORN, "") + IMAGE));
    let plan = ws.plan_exit(2);
    assert!(plan.contains("this must be replaced") && plan.contains("2 to add, 0 to change, 1 to destroy"), "{plan}");
    assert!(plan.contains(&new_id), "the new id is in the plan: {plan}");
    ws.apply();
    assert_eq!(posts(&factory), 2);
    assert_eq!(ws.ok(&["output", "-raw", "id"]), new_id);
    let iso = ws.resource("proxtalos_image.iso").unwrap();
    assert_eq!(iso["url"], format!("{url}/image/{new_id}/v1.11.5/nocloud-amd64.iso"), "{iso}");
    assert!(ws.plan_exit(0).contains("No changes"), "re-plans empty with the image");

    // Bad input, at plan time, naming `schematic`; nothing registered.
    ws.write_config(&config(schematic(LONGHORN, "")));
    ws.apply();
    let before = posts(&factory);
    let nope = r#"yamlencode({ customization = { systemExtensions = { officialExtensions = ["siderolabs/iscsi-tools", "siderolabs/nvidia-nope"] } } })"#;
    ws.write_config(&config(schematic(nope, "")));
    let out = ws.expect(1, &["plan", "-no-color"]).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        out.contains("Unknown system extension")
            && out.contains("official extension \"siderolabs/nvidia-nope\" is not available for Talos version v1.11.5")
            && out.contains("schematic"),
        "{out}"
    );
    ws.write_config(&config(schematic("\"customization: {systemExtension: {}}\"", "")));
    let out = ws.expect(1, &["plan", "-no-color"]);
    assert!(out.contains("Invalid schematic") && out.contains("customization.systemExtension"), "{out}");
    assert_eq!(posts(&factory), before, "nothing registered for bad input");

    // The factory forgets it (a self-hosted factory reset): the next plan
    // creates it again.
    ws.write_config(&config(schematic(LONGHORN, "")));
    factory.forget_all();
    let plan = ws.plan_exit(2);
    assert!(plan.contains("1 to add, 0 to change, 0 to destroy"), "{plan}");
    ws.apply();
    assert!(ws.plan_exit(0).contains("No changes"));

    // Import by id: the document comes from the factory; the plan after
    // it only stores the configuration's text (same id, no replacement).
    ws.ok(&["state", "rm", "proxtalos_image_factory_schematic.this"]);
    ws.ok(&["import", "-no-color", "proxtalos_image_factory_schematic.this", &new_id]);
    let plan = ws.plan_exit(2);
    assert!(plan.contains("0 to add, 1 to change, 0 to destroy") && !plan.contains("must be replaced"), "{plan}");
    ws.apply();
    assert!(ws.plan_exit(0).contains("No changes"));

    // Offline: the id without any call (the factory named is not there).
    // (The refresh of the online object before it still reads it.)
    let before = posts(&factory);
    ws.write_config(&config(schematic(
        "\"customization: {}\"",
        "  offline     = true\n  factory_url = \"http://127.0.0.1:9\"\n",
    )));
    ws.apply();
    assert_eq!(ws.ok(&["output", "-raw", "id"]), EMPTY);
    assert_eq!(posts(&factory), before, "offline registers nothing");
    let before = factory.requests().len();
    assert!(ws.plan_exit(0).contains("No changes"));
    assert_eq!(factory.requests().len(), before, "offline reads nothing: {:?}", factory.requests());

    // Destroy only forgets.
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(ws.state()["values"]["root_module"]["resources"].as_array().is_none_or(|r| r.is_empty()));
}

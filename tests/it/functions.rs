//! Provider functions with real Terraform 1.15.5 (issue 15): the values
//! `provider::proxtalos::…` gives in a plan and in `terraform console`, the
//! function error naming the argument, and Terraform 1.0.3 still serving
//! the provider (it ignores the functions). The schematic ids are the
//! Image Factory's own test vectors (siderolabs/image-factory
//! `pkg/schematic/schematic_test.go`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::terraform::{Workspace, build_provider, terraform};

const HEADER: &str =
    "terraform {\n  required_providers {\n    proxtalos = { source = \"proxtalos/proxtalos\" }\n  }\n}\n";

#[test]
fn functions_compute_factory_references_in_plans_and_the_console() {
    let tf = terraform("1.15.5").expect("Terraform 1.15.5");
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    ws.write_config(&format!(
        r#"{HEADER}
output "args" {{
  value = provider::proxtalos::schematic_id(jsonencode({{ customization = {{ extraKernelArgs = ["noapic", "nolapic"] }} }}))
}}
output "meta" {{
  value = provider::proxtalos::schematic_id(yamlencode({{ customization = {{ meta = [{{ key = 10, value = "foo" }}] }} }}))
}}
output "installer" {{
  value = provider::proxtalos::installer_image(provider::proxtalos::schematic_id("{{}}"), "v1.14.2", true)
}}
"#
    ));
    ws.init();
    ws.apply();
    let out = |name: &str| ws.ok(&["output", "-raw", name]);
    assert_eq!(out("args"), "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c");
    assert_eq!(out("meta"), "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f");
    assert_eq!(
        out("installer"),
        "factory.talos.dev/installer-secureboot/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.14.2"
    );
    ws.plan_exit(0);

    let console = ws.run_with_stdin(
        &["console"],
        "provider::proxtalos::image_url(provider::proxtalos::schematic_id(\"{}\"), \"v1.13.9\", \"nocloud\", \"amd64\", false, \"iso\")\n",
    );
    assert!(
        console.contains(
            "https://factory.talos.dev/image/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba/v1.13.9/nocloud-amd64.iso"
        ),
        "{console}"
    );

    // A field the factory does not know: an error on that argument.
    ws.write_config(&format!(
        "{HEADER}\noutput \"bad\" {{\n  value = provider::proxtalos::schematic_id(\"customization: {{extensions: [a]}}\")\n}}\n"
    ));
    let err = ws.expect(1, &["plan", "-no-color"]);
    let words = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("Invalid value for \"schematic\" parameter"), "{err}");
    assert!(words.contains("field extensions not found in type schematic.Customization"), "{err}");
}

#[test]
fn terraform_1_0_3_ignores_the_functions() {
    let Some(tf) = crate::support::terraform::terraform_1_0_3() else { return };
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let ws = Workspace::new(&tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
    ws.write_config(&format!(
        "{HEADER}\nresource \"proxtalos_machine_secrets\" \"this\" {{\n  talos_version = \"v1.13\"\n}}\n"
    ));
    ws.init();
    ws.apply();
    ws.plan_exit(0);
}

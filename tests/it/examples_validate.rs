//! Every example under `examples/*/*/` passes `terraform validate` with the
//! real provider binary (dev_overrides), on every Terraform the harness
//! knows that supports the example: ephemeral resources need ≥ 1.10, and
//! Terraform < 1.15 is validated without `init` (it cannot init offline
//! with dev_overrides). Examples that are only resource blocks (the docs
//! pages show them after the provider example; their own tests prepend a
//! provider block) are validated with the standard `required_providers`.
//! Validation is the cross-version check; tests/it/examples_apply.rs applies
//! them (validate alone let an example that fails at apply go unnoticed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::support::terraform::{Terraform, Workspace, build_provider, example_dirs, terraforms};

/// Ephemeral resources need Terraform 1.10, provider functions 1.8,
/// actions 1.14.
fn supports(tf: &Terraform, dir: &Path) -> bool {
    match dir.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()) {
        Some("ephemeral-resources") => tf.at_least(1, 10),
        Some("functions") => tf.at_least(1, 8),
        Some("actions") | Some("list-resources") => tf.at_least(1, 14),
        _ => true,
    }
}

#[test]
fn every_example_validates() {
    let bin = build_provider("bin", "terraform-provider-proxtalos");
    let dirs = example_dirs();
    assert!(dirs.len() >= 5, "examples missing: {dirs:?}");
    for tf in terraforms() {
        for dir in &dirs {
            if !supports(tf, dir) {
                continue;
            }
            let ws = Workspace::new(tf, "registry.terraform.io/proxtalos/proxtalos", &bin);
            let mut tf_files = 0;
            let mut query = false;
            for f in std::fs::read_dir(dir).unwrap() {
                let f = f.unwrap().path();
                let name = f.file_name().unwrap().to_string_lossy().to_string();
                if f.extension().is_some_and(|e| e == "tf") || name.ends_with(".tfquery.hcl") {
                    std::fs::copy(&f, ws.work().join(&name)).unwrap();
                    tf_files += 1;
                    query |= name.ends_with(".tfquery.hcl");
                }
            }
            assert!(tf_files > 0, "{} has no .tf or .tfquery.hcl file", dir.display());
            let has_header = std::fs::read_dir(ws.work())
                .unwrap()
                .any(|f| std::fs::read_to_string(f.unwrap().path()).unwrap_or_default().contains("required_providers"));
            if !has_header {
                std::fs::write(
                    ws.work().join("providers.tf"),
                    "terraform {\n  required_providers {\n    proxtalos = { source = \"proxtalos/proxtalos\" }\n  }\n}\n",
                )
                .unwrap();
            }
            ws.init();
            let out = ws.run(if query { &["validate", "-query", "-no-color"] } else { &["validate", "-no-color"] });
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(
                out.status.success() && text.contains("The configuration is valid"),
                "terraform {} validate {}:\n{text}",
                tf.version_string(),
                dir.display()
            );
        }
    }
}

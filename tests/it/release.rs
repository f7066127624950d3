//! Release configuration checks (shared/design/release.md): `.goreleaser.yml`
//! validates against GoReleaser's saved JSON schema and agrees with
//! Cargo.toml; the registry manifest declares protocol 6.0 (the anchor
//! provider declares the wrong one; we do not).

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn goreleaser() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join(".goreleaser.yml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn validator() -> jsonschema::Validator {
    let schema_path = root().join("tests/fixtures/goreleaser/schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn goreleaser_config_validates_against_the_schema() {
    let v = validator();
    let cfg = goreleaser();
    let errors: Vec<String> = v.iter_errors(&cfg).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // control: the same check flags an unknown key and a wrongly typed field
    let mut bad = cfg.clone();
    bad["no_such_key"] = true.into();
    bad["builds"][0]["targets"] = "x86_64-unknown-linux-gnu".into();
    assert!(v.iter_errors(&bad).count() >= 1, "the schema check must be able to fail");
}

#[test]
fn goreleaser_agrees_with_cargo_toml() {
    let cfg = goreleaser();
    let cargo: String = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("[[bin]]\nname = \"terraform-provider-proxtalos\""), "binary must equal the [[bin]] name");
    assert_eq!(cfg["project_name"], "terraform-provider-proxtalos");
    let builds = cfg["builds"].as_array().unwrap();
    let mut triples = Vec::new();
    for build in builds {
        assert_eq!(build["builder"], "rust");
        assert_eq!(build["binary"], "terraform-provider-proxtalos");
        let env: Vec<&str> = build["env"].as_array().unwrap().iter().filter_map(|e| e.as_str()).collect();
        assert!(env.iter().any(|e| e.starts_with("PROVIDER_VERSION=")), "version embedded in the binary");
        let targets: Vec<&str> = build["targets"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
        for t in &targets {
            // Every build's RUSTFLAGS are what scripts/lib/release-flags.sh
            // gives its triples (the dry run and the benchmarks use that).
            let want = release_rustflags(t);
            let have = env.iter().find_map(|e| e.strip_prefix("RUSTFLAGS=")).unwrap_or("");
            assert_eq!(have, want, "RUSTFLAGS of the build holding {t}");
            // A linker script they name is in the repository, where cargo
            // runs rustc (the package root).
            for script in have.split_whitespace().filter_map(|f| f.split_once("-T,").map(|(_, p)| p)) {
                assert!(root().join(script).is_file(), "{t}: linker script {script} is missing");
            }
            if t.contains("-linux-") {
                assert!(have.contains("no-unwind-tables.ld"), "{t}: Linux binaries drop the unwind tables");
            }
            if t.contains("apple-darwin") {
                assert!(env.contains(&"MACOSX_DEPLOYMENT_TARGET=11.0"));
            }
        }
        triples.extend(targets);
    }
    for t in [
        "x86_64-unknown-linux-gnu.2.17",
        "aarch64-unknown-linux-gnu.2.17",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-gnu",
    ] {
        assert!(triples.contains(&t), "{t} is released");
    }
    assert_eq!(triples.len(), 5, "each triple once: {triples:?}");
    assert_eq!(cfg["archives"][0]["name_template"], "{{ .ProjectName }}_{{ .Version }}_{{ .Os }}_{{ .Arch }}");
    assert_eq!(cfg["checksum"]["name_template"], "{{ .ProjectName }}_{{ .Version }}_SHA256SUMS");
}

/// `release_rustflags TRIPLE` of scripts/lib/release-flags.sh.
fn release_rustflags(triple: &str) -> String {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(". scripts/lib/release-flags.sh && release_rustflags \"$1\"")
        .arg("bash")
        .arg(triple)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn registry_manifest_declares_protocol_6() {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("terraform-registry-manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["version"], 1);
    assert_eq!(m["metadata"]["protocol_versions"], serde_json::json!(["6.0"]));
}

#[test]
fn release_notes_come_from_the_changelog() {
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let version = cargo.lines().find_map(|l| l.strip_prefix("version = \"")).unwrap().trim_end_matches('"');
    let out = std::process::Command::new("bash")
        .arg(root().join("scripts/release-notes.sh"))
        .arg(format!("v{version}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "CHANGELOG.md needs a section for {version}");
    assert!(String::from_utf8_lossy(&out.stdout).trim().len() > 20, "notes for {version} are empty");
    let none = std::process::Command::new("bash")
        .arg(root().join("scripts/release-notes.sh"))
        .arg("0.0.0-none")
        .output()
        .unwrap();
    assert!(!none.status.success(), "a version without a section must fail");
    let workflow = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    assert!(workflow.contains("--release-notes") && workflow.contains("scripts/release-notes.sh"));
}

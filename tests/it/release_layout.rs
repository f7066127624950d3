//! The published release layout, proven without cross-building: the native
//! debug binary is packaged by the release dry run's own packaging step
//! (`scripts/release-dry-run.sh --package-only`), the artifacts are checked
//! from the outside (names, zip root, SHA256SUMS, binary signature), and real
//! Terraform (1.15.5 and 1.0.3) installs the provider from a filesystem
//! mirror (no dev_overrides) in both layouts Terraform knows: the unpacked
//! archive and the zip itself. `init` must record an `h1:` hash, `plan` must
//! reach the provider, and `terraform version` must show its version.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::terraform::{Terraform, build_provider, repo_root, terraform};
use sha2::{Digest, Sha256};

const PROJECT: &str = "terraform-provider-proxtalos";
const SOURCE: &str = "registry.terraform.io/proxtalos/proxtalos";

fn artifact(version: &str, suffix: &str) -> String {
    format!("{PROJECT}_{version}_{suffix}")
}

/// Runs the packaging step of the dry run into `dist`.
fn package(bin: &Path, version: &str, dist: &Path) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/release-dry-run.sh"))
        .args(["--package-only"])
        .arg(bin)
        .arg(version)
        .env("DIST", dist)
        .output()
        .expect("run scripts/release-dry-run.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "release-dry-run.sh --package-only failed:\n{text}");
    text
}

fn sha256_hex(path: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The artifacts are named as GoReleaser names them and hold what the
/// registries read.
fn check_artifacts(dist: &Path, version: &str) {
    let zip = artifact(version, "linux_amd64.zip");
    let manifest = artifact(version, "manifest.json");
    let sums = artifact(version, "SHA256SUMS");
    let mut names: Vec<String> =
        std::fs::read_dir(dist).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, vec![sums.clone(), format!("{sums}.sig"), zip.clone(), manifest.clone()]);

    // The executable at the zip root, under a name both CLIs accept.
    let list = Command::new("unzip").arg("-Z1").arg(dist.join(&zip)).output().expect("unzip -Z1");
    let entries = String::from_utf8_lossy(&list.stdout);
    assert!(entries.lines().any(|l| l == PROJECT), "no {PROJECT} at the zip root: {entries}");
    assert!(!entries.contains('/'), "the zip must be flat: {entries}");

    // SHA256SUMS covers every zip and the manifest, with correct hashes.
    let text = std::fs::read_to_string(dist.join(&sums)).unwrap();
    let mut covered = Vec::new();
    for line in text.lines() {
        let (hex, name) = line.split_once("  ").expect("sha256sum line: <hex>  <name>");
        assert_eq!(hex, sha256_hex(&dist.join(name)), "{name}");
        covered.push(name.to_string());
    }
    assert_eq!(covered, vec![zip, manifest.clone()]);

    // The manifest is the repository's, renamed; protocol 6.0.
    assert_eq!(
        std::fs::read(dist.join(&manifest)).unwrap(),
        std::fs::read(repo_root().join("terraform-registry-manifest.json")).unwrap()
    );

    // A binary (not ASCII-armoured) OpenPGP signature packet.
    let sig = std::fs::read(dist.join(format!("{sums}.sig"))).unwrap();
    assert!(matches!(sig.first(), Some(0x88..=0x8a | 0xc2)), "not a binary signature packet: {:02x?}", &sig[..4]);
}

/// A working directory whose CLI config installs from `mirror` only.
struct MirrorWorkspace {
    dir: PathBuf,
    cli_config: PathBuf,
    tf: Terraform,
}

impl MirrorWorkspace {
    fn new(root: &Path, tf: &Terraform, mirror: &Path, version: &str) -> MirrorWorkspace {
        let dir = root.join(format!("work-{}-{}", tf.version_string(), mirror.file_name().unwrap().to_string_lossy()));
        std::fs::create_dir_all(&dir).unwrap();
        let cli_config = dir.join("cli.tfrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{SOURCE}\"]\n  }}\n}}\n",
                mirror.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("main.tf"),
            format!(
                r#"terraform {{
  required_providers {{
    proxtalos = {{
      source  = "proxtalos/proxtalos"
      version = "= {version}"
    }}
  }}
}}

provider "proxtalos" {{}}

resource "proxtalos_machine_secrets" "this" {{
  talos_version = "v1.13"
}}
"#
            ),
        )
        .unwrap();
        MirrorWorkspace { dir, cli_config, tf: tf.clone() }
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(&self.tf.bin)
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env_remove("TF_DATA_DIR")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run terraform");
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    /// init + plan + version; returns the `h1:` hashes from the lock file.
    fn install_and_plan(&self, version: &str) -> Vec<String> {
        let v = self.tf.version_string();
        let (code, text) = self.run(&["init", "-no-color"]);
        assert_eq!(code, Some(0), "terraform {v} init from {}:\n{text}", self.dir.display());
        let lock = std::fs::read_to_string(self.dir.join(".terraform.lock.hcl")).expect("lock file");
        assert!(lock.contains(&format!("provider \"{SOURCE}\"")), "{lock}");
        assert!(
            lock.lines().any(|l| l.trim_start().starts_with("version ") && l.ends_with(&format!("\"{version}\""))),
            "the lock file must pin {version}:\n{lock}"
        );
        let h1: Vec<String> = lock.split('"').filter(|s| s.starts_with("h1:")).map(str::to_string).collect();
        assert!(!h1.is_empty(), "no h1: hash in the lock file:\n{lock}");

        let (code, text) = self.run(&["plan", "-no-color", "-detailed-exitcode"]);
        assert_eq!(code, Some(2), "terraform {v} plan:\n{text}");
        assert!(text.contains("Plan: 1 to add"), "{text}");

        let (code, text) = self.run(&["version"]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains(&format!("provider {SOURCE} v{version}")), "terraform {v} version:\n{text}");
        h1
    }
}

#[test]
fn terraform_installs_the_packaged_provider_from_a_filesystem_mirror() {
    let version = proxtalos::VERSION;
    let bin = build_provider("bin", PROJECT);
    let version_line = Command::new(&bin).arg("--version").output().expect("--version");
    assert_eq!(String::from_utf8_lossy(&version_line.stdout).trim(), format!("{PROJECT} {version}"));

    let tmp = tempfile::Builder::new().prefix("proxtalos-release-layout").tempdir().unwrap();
    let dist = tmp.path().join("dist");
    let printed = package(&bin, version, &dist);
    assert!(printed.contains("checksums: OK") && printed.contains("signature: OK"), "{printed}");
    check_artifacts(&dist, version);

    // The two layouts of a filesystem mirror: unpacked and packed (the zip).
    let zip = dist.join(artifact(version, "linux_amd64.zip"));
    let unpacked = tmp.path().join("unpacked");
    let platform_dir = unpacked.join(SOURCE).join(version).join("linux_amd64");
    std::fs::create_dir_all(&platform_dir).unwrap();
    let status = Command::new("unzip").arg("-q").arg(&zip).arg("-d").arg(&platform_dir).status().unwrap();
    assert!(status.success(), "unzip");
    let packed = tmp.path().join("packed");
    std::fs::create_dir_all(packed.join(SOURCE)).unwrap();
    std::fs::copy(&zip, packed.join(SOURCE).join(zip.file_name().unwrap())).unwrap();

    let tfs: Vec<Terraform> =
        terraform("1.15.5").into_iter().chain(crate::support::terraform::terraform_1_0_3()).collect();
    assert!(tfs.iter().any(|t| t.version_string() == "1.15.5"), "Terraform 1.15.5 is required");
    if tfs.len() < 2 {
        eprintln!("Terraform 1.0.3 left out (PROXTALOS_SKIP_TF_1_0_3=1): checked with 1.15.5 only");
    }
    let mut hashes = Vec::new();
    for tf in &tfs {
        for mirror in [&unpacked, &packed] {
            let ws = MirrorWorkspace::new(tmp.path(), tf, mirror, version);
            hashes.push((tf.version_string(), mirror.clone(), ws.install_and_plan(version)));
        }
    }
    // h1: hashes the unpacked content: the same whatever the layout or version.
    let first = &hashes[0].2;
    for (v, m, h) in &hashes {
        assert_eq!(h, first, "h1 from {v} with {} differs from the first", m.display());
    }
}

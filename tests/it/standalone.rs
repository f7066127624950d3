//! The repository stands alone (issue 12 §1): no file the build, the tests
//! or the scripts run reads `../shared`, the reference folder beside the
//! checkout that a user cloning the project does not have. Comments and
//! Markdown may cite it as a source; code may not open it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

const SKIP_DIRS: &[&str] = &[".git", "target", ".tools", "node_modules"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

/// A line that is only a comment in Rust, shell, YAML, HCL or protobuf.
fn comment(line: &str) -> bool {
    let t = line.trim_start();
    ["//", "#", "*", "/*"].iter().any(|c| t.starts_with(c))
}

#[test]
fn nothing_reads_the_shared_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    files(root, &mut all);
    let this = root.join("tests/it/standalone.rs");
    let mut found = Vec::new();
    for path in all {
        let ext = path.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default();
        if path == this || ext == "md" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for (n, line) in text.lines().enumerate() {
            let reads = line.contains("../shared") || line.contains("PROXTALOS_SHARED") || line.contains("$SHARED");
            if reads && !comment(line) {
                found.push(format!("{}:{}: {}", path.strip_prefix(root).unwrap().display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "files that read ../shared:\n{}", found.join("\n"));
}

/// Layering (issue 12 §6): resources import the configured data
/// (`crate::data`) and the clients, never `crate::provider`, which holds
/// the registry of resources; the clients and the wait helper import no
/// resource and no plugin type.
#[test]
fn resources_never_import_the_provider_and_clients_never_import_resources() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules: &[(&str, &[&str])] = &[
        ("resources", &["crate::provider"]),
        ("proxmox", &["crate::resources", "crate::plugin", "crate::provider"]),
        ("talos", &["crate::resources", "crate::provider"]),
    ];
    let mut bad = Vec::new();
    for (dir, forbidden) in rules {
        let mut fs = Vec::new();
        files(&root.join(dir), &mut fs);
        for f in fs.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
            let text = std::fs::read_to_string(f).unwrap();
            for (n, line) in text.lines().enumerate() {
                if !comment(line) && forbidden.iter().any(|x| line.contains(x)) {
                    bad.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    for leaf in ["wait.rs", "secret.rs", "data.rs"] {
        let text = std::fs::read_to_string(root.join(leaf)).unwrap();
        for (n, line) in text.lines().enumerate() {
            if !comment(line)
                && ["crate::resources", "crate::provider", "crate::plugin"].iter().any(|x| line.contains(x))
            {
                bad.push(format!("src/{leaf}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "imports against the layering:\n{}", bad.join("\n"));
}

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
    let this = root.join("tests/standalone.rs");
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

//! What the benchmark programs share (not an example of its own: cargo
//! finds examples as `examples/*.rs` and `examples/*/main.rs`).

use std::path::PathBuf;

/// Terraform: `$PROXTALOS_TF`, else `tofu` or `terraform` on PATH.
pub fn terraform() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PROXTALOS_TF") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["tofu", "terraform"] {
        if let Some(p) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(p);
        }
    }
    Err("no Terraform: set PROXTALOS_TF or put tofu/terraform on PATH".to_string())
}

//! Talos node simulator (placeholder until the simulator lands).
fn main() {}

//! The `terraform-provider-tftest` binary: the test provider in `mod.rs`,
//! served exactly as the real provider is.

#[path = "mod.rs"]
mod tftest;

fn main() -> std::process::ExitCode {
    proxtalos::plugin::serve::main(tftest::TestProvider)
}

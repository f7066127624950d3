//! `terraform-provider-proxtalos`: started by Terraform/OpenTofu, speaks tfplugin6.
//!
//! `terraform-provider-proxtalos docs [--check]` renders the registry docs
//! from the schemas (see `proxtalos::plugin::docs`).

use proxtalos::provider::ProxtalosProvider;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("docs") {
        return proxtalos::plugin::docs::cli(&ProxtalosProvider, &args[1..]);
    }
    proxtalos::plugin::serve::main(ProxtalosProvider)
}

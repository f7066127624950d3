//! `terraform-provider-proxtalos`: started by Terraform/OpenTofu, speaks tfplugin6.

fn main() -> std::process::ExitCode {
    proxtalos::plugin::serve::main(proxtalos::provider::ProxtalosProvider)
}

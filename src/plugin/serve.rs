//! (in progress)
/// Runs the provider.
pub fn main<P>(_p: P) -> std::process::ExitCode { std::process::ExitCode::SUCCESS }

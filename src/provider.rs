//! The proxtalos provider.
/// The provider.
#[derive(Default)]
pub struct ProxtalosProvider;

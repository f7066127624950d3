//! Provider functions (protocol 6.5, Terraform ≥ 1.8): pure computations a
//! configuration calls as `provider::<provider>::<name>(…)`. Terraform
//! learns their signatures from `GetProviderSchema` (and `GetFunctions`)
//! and calls them with `CallFunction`, during validation and planning, on
//! an unconfigured provider; so a function does no I/O. Older Terraform
//! ignores the signatures (an unknown protobuf field) and never calls.

use super::value::{Type, Value};

/// One positional parameter.
#[derive(Debug, Clone)]
pub struct Param {
    /// The name Terraform shows.
    pub name: &'static str,
    /// Its type constraint.
    pub ty: Type,
    /// Markdown documentation.
    pub description: &'static str,
}

/// Why a call failed: Terraform shows `text`, and names the argument when
/// `argument` (zero-based) is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// What is wrong.
    pub text: String,
    /// The argument at fault.
    pub argument: Option<usize>,
}

impl FunctionError {
    /// An error about argument `index`.
    pub fn argument(index: usize, text: impl Into<String>) -> FunctionError {
        FunctionError { text: text.into(), argument: Some(index) }
    }
}

/// A provider function. Arguments arrive known and not null (Terraform
/// checks both before calling, as no parameter allows them), typed as
/// declared.
pub trait Function: Send + Sync + 'static {
    /// The name after `provider::<provider>::`.
    fn name(&self) -> &'static str;
    /// One line.
    fn summary(&self) -> &'static str;
    /// Markdown documentation.
    fn description(&self) -> &'static str;
    /// The parameters, in order.
    fn params(&self) -> Vec<Param>;
    /// The type of the result.
    fn returns(&self) -> Type;
    /// Computes the result.
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError>;
}

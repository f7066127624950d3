//! The contracts a provider and its resources, data sources and ephemeral
//! resources implement, modelled on terraform-plugin-framework.
//!
//! Responses are passed as `&mut` so that what a call has already done is
//! never lost: a `create` that made a VM sets `resp.state` first and then,
//! if a later step fails, adds an error. Terraform then records the object
//! (tainted) instead of orphaning it.
//!
//! `D` is the provider's configured data (clients), produced once per
//! process by [`Provider::configure`] and handed to every call as
//! [`Context::data`].

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use super::diag::{AttributePath, Diagnostics};
use super::schema::{IdentitySchema, Schema};
use super::value::{Type, Value};

/// What every call receives: the configured provider data and the stop
/// signal (Terraform's `StopProvider`, e.g. after Ctrl-C).
pub struct Context<D> {
    /// The provider's configured data.
    pub data: Arc<D>,
    /// Fires when Terraform asks the provider to stop.
    pub stop: StopSignal,
}

/// "Terraform asked us to stop" ([`crate::wait::Stop`], read by every wait).
pub use crate::wait::Stop as StopSignal;

/// What Terraform said at `ConfigureProvider`.
#[derive(Clone)]
pub struct ConfigureRequest {
    /// The provider block (may hold unknowns when it depends on resources).
    pub config: Value,
    /// Terraform's version string.
    pub terraform_version: String,
}

/// A provider: its own schema, its configuration, and its object types.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider's configured data, shared by all calls.
    type Data: Send + Sync + 'static;

    /// The provider type name (`proxtalos`), the prefix of every type name.
    fn type_name(&self) -> &'static str;

    /// The `provider "..." {}` block schema.
    fn schema(&self) -> Schema;

    /// Checks the provider block without I/O; values may be unknown.
    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        let _ = (config, diags);
    }

    /// Builds the provider data. A provider whose Proxmox settings are
    /// absent must still serve its other objects; one that has them may
    /// check them here (proxtalos sends one `GET /version`).
    async fn configure(&self, req: ConfigureRequest, diags: &mut Diagnostics) -> Option<Self::Data>;

    /// Managed resource types.
    fn resources(&self) -> Vec<Arc<dyn Resource<Self::Data>>>;

    /// Data source types.
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Self::Data>>> {
        Vec::new()
    }

    /// Ephemeral resource types (protocol 6.7).
    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource<Self::Data>>> {
        Vec::new()
    }

    /// List resource types (protocol 6.10, `terraform query`), each named
    /// like a managed resource type that has an identity schema.
    fn list_resources(&self) -> Vec<Arc<dyn super::ListResource<Self::Data>>> {
        Vec::new()
    }

    /// Action types (protocol 6.10).
    fn actions(&self) -> Vec<Arc<dyn super::Action<Self::Data>>> {
        Vec::new()
    }

    /// Provider functions (protocol 6.5).
    fn functions(&self) -> Vec<Arc<dyn super::Function>> {
        Vec::new()
    }
}

/// A state upgrader from one prior schema version straight to the current
/// one (only the upgrader for the stored version runs).
#[derive(Clone)]
pub struct StateUpgrader {
    /// The stored version this upgrader reads.
    pub from_version: i64,
    /// The value type of that version's state (to decode the raw JSON).
    pub prior_type: Type,
    /// Turns a prior-version value into a current-version value.
    pub upgrade: fn(Value) -> Result<Value, Diagnostics>,
}

/// `ValidateResourceConfig` / `ValidateDataResourceConfig` input.
#[derive(Clone)]
pub struct ValidateRequest {
    /// The configuration; values may be unknown.
    pub config: Value,
}

/// Input to [`Resource::modify_plan`], run after the attribute modifiers.
pub struct ModifyPlanRequest {
    /// The configuration (may hold unknowns).
    pub config: Value,
    /// Prior state; Null on create.
    pub prior: Value,
    /// Prior private data.
    pub prior_private: Vec<u8>,
}

/// Output of the plan, which [`Resource::modify_plan`] may change.
#[derive(Default)]
pub struct ModifyPlanResponse {
    /// The planned state; Null on destroy (must stay Null).
    pub plan: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttributePath>,
    /// Private data to hand to apply.
    pub private: Vec<u8>,
    /// Problems.
    pub diags: Diagnostics,
}

/// Input to [`Resource::create`].
#[derive(Clone)]
pub struct CreateRequest {
    /// The configuration (write-only values are only here).
    pub config: Value,
    /// The planned state: unknowns are for the resource to fill in.
    pub planned: Value,
    /// Private data from plan.
    pub planned_private: Vec<u8>,
}

/// Input to [`Resource::update`].
#[derive(Clone)]
pub struct UpdateRequest {
    /// The configuration (write-only values are only here).
    pub config: Value,
    /// The planned state.
    pub planned: Value,
    /// The prior state.
    pub prior: Value,
    /// Private data from plan.
    pub planned_private: Vec<u8>,
    /// The prior identity, if the resource has one.
    pub prior_identity: Option<Value>,
}

/// Output of create and update. Starts with `state` = the planned state.
#[derive(Default)]
pub struct ApplyResponse {
    /// The new state: set it as soon as the remote object exists.
    pub state: Value,
    /// Private data to store.
    pub private: Vec<u8>,
    /// The resource identity (required when the type declares one).
    pub identity: Option<Value>,
    /// Problems. An error with a non-null state records a tainted object.
    pub diags: Diagnostics,
}

/// Input to [`Resource::read`].
#[derive(Clone)]
pub struct ReadRequest {
    /// The current state.
    pub state: Value,
    /// Private data.
    pub private: Vec<u8>,
    /// The current identity, if stored.
    pub identity: Option<Value>,
}

/// Output of read. Starts as the current state; set `state` to Null when
/// the remote object is gone.
#[derive(Default)]
pub struct ReadResponse {
    /// The refreshed state, or Null when the object no longer exists.
    pub state: Value,
    /// Private data.
    pub private: Vec<u8>,
    /// The identity (required when the type declares one).
    pub identity: Option<Value>,
    /// Problems.
    pub diags: Diagnostics,
}

/// Input to [`Resource::delete`].
#[derive(Clone)]
pub struct DeleteRequest {
    /// The prior state.
    pub prior: Value,
    /// Private data.
    pub private: Vec<u8>,
}

/// Input to [`Resource::import`]: an id string (CLI `terraform import` or
/// an `import {}` block with `id`), or an identity (`import {}` with
/// `identity`, Terraform ≥ 1.12).
#[derive(Clone)]
pub struct ImportRequest {
    /// The import id; empty when importing by identity.
    pub id: String,
    /// The identity given to import by, if any.
    pub identity: Option<Value>,
}

/// Output of import: enough state for [`Resource::read`] to fill in the rest.
#[derive(Default)]
pub struct ImportResponse {
    /// The imported state (an object of the schema type; unset attributes
    /// Null).
    pub state: Value,
    /// Private data.
    pub private: Vec<u8>,
    /// The identity.
    pub identity: Option<Value>,
    /// Problems.
    pub diags: Diagnostics,
}

/// A managed resource type.
#[async_trait]
pub trait Resource<D: Send + Sync + 'static>: Send + Sync {
    /// The full type name, e.g. `proxtalos_vm`.
    fn type_name(&self) -> &'static str;

    /// The schema (called once per process and cached).
    fn schema(&self) -> Schema;

    /// The identity schema, if the type has a resource identity.
    fn identity_schema(&self) -> Option<IdentitySchema> {
        None
    }

    /// Upgraders from prior schema versions, one per stored version.
    fn state_upgraders(&self) -> Vec<StateUpgrader> {
        Vec::new()
    }

    /// Checks the configuration without I/O; values may be unknown.
    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        let _ = (req, diags);
    }

    /// Changes the plan after defaults, unknown marking and attribute
    /// modifiers (runs on destroy too, with `resp.plan` Null).
    async fn modify_plan(&self, ctx: &Context<D>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        let _ = (ctx, req, resp);
    }

    /// Creates the remote object.
    async fn create(&self, ctx: &Context<D>, req: CreateRequest, resp: &mut ApplyResponse);

    /// Refreshes the state from the remote object.
    async fn read(&self, ctx: &Context<D>, req: ReadRequest, resp: &mut ReadResponse);

    /// Updates the remote object in place.
    async fn update(&self, ctx: &Context<D>, req: UpdateRequest, resp: &mut ApplyResponse);

    /// Deletes the remote object. The state is removed when no error is
    /// reported.
    async fn delete(&self, ctx: &Context<D>, req: DeleteRequest, diags: &mut Diagnostics);

    /// Imports an existing object.
    async fn import(&self, ctx: &Context<D>, req: ImportRequest, resp: &mut ImportResponse) {
        let _ = (ctx, req);
        resp.diags.error("Import not supported", format!("The resource type {} cannot be imported.", self.type_name()));
    }
}

/// Input to [`DataSource::read`].
#[derive(Clone)]
pub struct ReadDataRequest {
    /// The configuration (fully known).
    pub config: Value,
}

/// Output of a data source read. Starts as the configuration.
#[derive(Default)]
pub struct ReadDataResponse {
    /// The result: the configuration with computed attributes filled in.
    pub state: Value,
    /// Problems.
    pub diags: Diagnostics,
}

/// A data source type.
#[async_trait]
pub trait DataSource<D: Send + Sync + 'static>: Send + Sync {
    /// The full type name.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> Schema;
    /// Checks the configuration without I/O; values may be unknown.
    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        let _ = (req, diags);
    }
    /// Reads the data.
    async fn read(&self, ctx: &Context<D>, req: ReadDataRequest, resp: &mut ReadDataResponse);
}

/// Input to [`EphemeralResource::open`].
#[derive(Clone)]
pub struct OpenRequest {
    /// The configuration.
    pub config: Value,
}

/// Output of open. Starts as the configuration.
#[derive(Default)]
pub struct OpenResponse {
    /// The result value.
    pub result: Value,
    /// Private data handed to renew and close.
    pub private: Option<Vec<u8>>,
    /// When Terraform should call renew, if ever.
    pub renew_at: Option<SystemTime>,
    /// Problems.
    pub diags: Diagnostics,
}

/// Output of renew.
#[derive(Default)]
pub struct RenewResponse {
    /// New private data.
    pub private: Option<Vec<u8>>,
    /// When to renew next.
    pub renew_at: Option<SystemTime>,
    /// Problems.
    pub diags: Diagnostics,
}

/// An ephemeral resource type (never stored in plan or state).
#[async_trait]
pub trait EphemeralResource<D: Send + Sync + 'static>: Send + Sync {
    /// The full type name.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> Schema;
    /// Checks the configuration without I/O; values may be unknown.
    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        let _ = (req, diags);
    }
    /// Opens (produces) the value.
    async fn open(&self, ctx: &Context<D>, req: OpenRequest, resp: &mut OpenResponse);
    /// Renews what open produced.
    async fn renew(&self, ctx: &Context<D>, private: Option<Vec<u8>>, resp: &mut RenewResponse) {
        let _ = ctx;
        resp.private = private;
    }
    /// Releases what open produced.
    async fn close(&self, ctx: &Context<D>, private: Option<Vec<u8>>, diags: &mut Diagnostics) {
        let _ = (ctx, private, diags);
    }
}

/// How a field of a request or response shows in `Debug`: values by their
/// [`Value::shape`], private state by its length, the rest as it is.
struct Show<'a, T: ?Sized>(&'a T);

impl std::fmt::Debug for Show<'_, Value> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.shape().fmt(f)
    }
}

impl std::fmt::Debug for Show<'_, Option<Value>> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.as_ref().map(Value::shape).fmt(f)
    }
}

impl std::fmt::Debug for Show<'_, Vec<u8>> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl std::fmt::Debug for Show<'_, Option<Vec<u8>>> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.as_ref().map(Show).fmt(f)
    }
}

macro_rules! shown_as_is {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for Show<'_, $t> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}
shown_as_is!(String, Diagnostics, Vec<AttributePath>, Option<SystemTime>);

/// `Debug` for the request and response types: the structure of their
/// values, none of the contents (sensitive and write-only values included).
macro_rules! redacted_debug {
    ($($t:ident { $($f:ident),* })*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))$(.field(stringify!($f), &Show(&self.$f)))*.finish()
            }
        }
    )*};
}

redacted_debug! {
    ConfigureRequest { config, terraform_version }
    ValidateRequest { config }
    ModifyPlanRequest { config, prior, prior_private }
    ModifyPlanResponse { plan, requires_replace, private, diags }
    CreateRequest { config, planned, planned_private }
    UpdateRequest { config, planned, prior, planned_private, prior_identity }
    ApplyResponse { state, private, identity, diags }
    ReadRequest { state, private, identity }
    ReadResponse { state, private, identity, diags }
    DeleteRequest { prior, private }
    ImportRequest { id, identity }
    ImportResponse { state, private, identity, diags }
    ReadDataRequest { config }
    ReadDataResponse { state, diags }
    OpenRequest { config }
    OpenResponse { result, private, renew_at, diags }
    RenewResponse { private, renew_at, diags }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests carry sensitive and write-only values: their `Debug` shows
    /// structure only.
    #[test]
    fn request_debug_shows_no_value() {
        let config = Value::object([
            ("machine_configuration_wo", Value::string("machine:\n  token: abcdef.0123456789abcdef\n")),
            ("node", Value::string("10.0.0.11")),
            ("patches", Value::List(vec![Value::string("s3cret-patch")])),
        ]);
        let req = CreateRequest { config: config.clone(), planned: config, planned_private: b"hidden!".to_vec() };
        let text = format!("{req:?}");
        for secret in ["abcdef", "10.0.0.11", "s3cret", "hidden"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("machine_configuration_wo") && text.contains("string(") && text.contains("<7 bytes>"));
        let text = format!("{:?}", ImportRequest { id: "pve1/100".into(), identity: Some(Value::string("x")) });
        assert!(text.contains("pve1/100") && text.contains("string(1 bytes)"), "{text}");
    }
}

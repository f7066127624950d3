//! The tfplugin6 `Provider` service: one method per RPC.
//!
//! Every handler does the same steps: find the type and its cached schema,
//! decode the request values, call the contract in [`super::resource`], and
//! encode the result. Anything the user can act on travels back as
//! diagnostics; a gRPC error status is never used for that.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tonic::{Request, Response, Status};
use tracing::instrument;

use super::convert::{self, decode, encode};
use super::diag::{Diagnostic, Diagnostics};
use super::lifecycle;
use super::plan;
use super::proto::tfplugin6 as pb;
use super::resource::*;
use super::schema::{IdentitySchema, Schema};
use super::value::{Type, Value};

struct ResourceEntry<D> {
    imp: Arc<dyn Resource<D>>,
    schema: Schema,
    ty: Type,
    identity: Option<(IdentitySchema, Type)>,
    upgraders: Vec<StateUpgrader>,
}

struct DataSourceEntry<D> {
    imp: Arc<dyn DataSource<D>>,
    schema: Schema,
    ty: Type,
}

struct EphemeralEntry<D> {
    imp: Arc<dyn EphemeralResource<D>>,
    schema: Schema,
    ty: Type,
}

/// A type's implementation and, once first asked for, its schema. Schemas
/// are built on first use, not at start-up: Terraform starts the provider
/// several times per command, and most starts touch one or two types (or
/// none: a start that only answers `GetProviderSchema` from its cache).
struct Lazy<I, E> {
    imp: I,
    entry: OnceLock<E>,
}

impl<I: Clone, E> Lazy<I, E> {
    fn new(imp: I) -> Self {
        Lazy { imp, entry: OnceLock::new() }
    }

    fn get(&self, build: impl FnOnce(I) -> E) -> &E {
        self.entry.get_or_init(|| build(self.imp.clone()))
    }
}

fn resource_entry<D: Send + Sync + 'static>(imp: Arc<dyn Resource<D>>) -> ResourceEntry<D> {
    let schema = imp.schema();
    let identity = imp.identity_schema().map(|s| {
        let t = s.value_type();
        (s, t)
    });
    ResourceEntry { ty: schema.value_type(), upgraders: imp.state_upgraders(), schema, identity, imp }
}

fn data_source_entry<D: Send + Sync + 'static>(imp: Arc<dyn DataSource<D>>) -> DataSourceEntry<D> {
    let schema = imp.schema();
    DataSourceEntry { ty: schema.value_type(), schema, imp }
}

fn ephemeral_entry<D: Send + Sync + 'static>(imp: Arc<dyn EphemeralResource<D>>) -> EphemeralEntry<D> {
    let schema = imp.schema();
    EphemeralEntry { ty: schema.value_type(), schema, imp }
}

type Registry<I, E> = HashMap<&'static str, Lazy<I, E>>;

/// An action type, shared with the task that runs an invocation.
type ActionRef<D> = Arc<dyn super::Action<D>>;

/// The tfplugin6 service for a [`Provider`].
pub struct ProviderServer<P: Provider> {
    provider: P,
    provider_ty: OnceLock<Type>,
    resources: Registry<Arc<dyn Resource<P::Data>>, ResourceEntry<P::Data>>,
    data_sources: Registry<Arc<dyn DataSource<P::Data>>, DataSourceEntry<P::Data>>,
    ephemerals: Registry<Arc<dyn EphemeralResource<P::Data>>, EphemeralEntry<P::Data>>,
    functions: std::collections::BTreeMap<&'static str, Arc<dyn super::Function>>,
    actions: std::collections::BTreeMap<&'static str, ActionRef<P::Data>>,
    lists: std::collections::BTreeMap<&'static str, Arc<dyn super::ListResource<P::Data>>>,
    schema_response: OnceLock<pb::get_provider_schema::Response>,
    data: OnceLock<Arc<P::Data>>,
    stop_tx: crate::wait::StopSender,
    stop: StopSignal,
}

impl<P: Provider> ProviderServer<P> {
    /// Builds the service. Cheap: schemas are built when first needed.
    pub fn new(provider: P) -> ProviderServer<P> {
        let resources = provider.resources().into_iter().map(|imp| (imp.type_name(), Lazy::new(imp))).collect();
        let data_sources = provider.data_sources().into_iter().map(|imp| (imp.type_name(), Lazy::new(imp))).collect();
        let ephemerals =
            provider.ephemeral_resources().into_iter().map(|imp| (imp.type_name(), Lazy::new(imp))).collect();
        let functions = provider.functions().into_iter().map(|f| (f.name(), f)).collect();
        let actions = provider.actions().into_iter().map(|a| (a.type_name(), a)).collect();
        let lists = provider.list_resources().into_iter().map(|l| (l.type_name(), l)).collect();
        let (stop_tx, stop) = StopSignal::new();
        ProviderServer {
            provider,
            provider_ty: OnceLock::new(),
            resources,
            data_sources,
            ephemerals,
            functions,
            actions,
            lists,
            schema_response: OnceLock::new(),
            data: OnceLock::new(),
            stop_tx,
            stop,
        }
    }

    fn provider_ty(&self) -> &Type {
        self.provider_ty.get_or_init(|| self.provider.schema().value_type())
    }

    /// The `GetProviderSchema` answer, built once (also used to generate docs).
    pub fn schema_response(&self) -> &pb::get_provider_schema::Response {
        self.schema_response.get_or_init(|| pb::get_provider_schema::Response {
            provider: Some(convert::schema(&self.provider.schema())),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, e)| (k.to_string(), convert::schema(&e.get(resource_entry).schema)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, e)| (k.to_string(), convert::schema(&e.get(data_source_entry).schema)))
                .collect(),
            ephemeral_resource_schemas: self
                .ephemerals
                .iter()
                .map(|(k, e)| (k.to_string(), convert::schema(&e.get(ephemeral_entry).schema)))
                .collect(),
            functions: self.function_signatures(),
            list_resource_schemas: self
                .lists
                .iter()
                .map(|(k, l)| (k.to_string(), convert::schema(&l.schema())))
                .collect(),
            action_schemas: self
                .actions
                .iter()
                .map(|(k, a)| (k.to_string(), pb::ActionSchema { schema: Some(convert::schema(&a.schema())) }))
                .collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(capabilities()),
        })
    }

    fn function_signatures(&self) -> HashMap<String, pb::Function> {
        self.functions.iter().map(|(k, f)| (k.to_string(), convert::function(f.as_ref()))).collect()
    }

    /// The action `name` and its decoded `config`.
    fn action_config(
        &self,
        name: &str,
        config: Option<&pb::DynamicValue>,
        diags: &mut Diagnostics,
    ) -> Option<(ActionRef<P::Data>, Value)> {
        let Some(a) = self.actions.get(name) else {
            diags.error("Unknown action type", format!("This provider has no action type {name:?}."));
            return None;
        };
        let config = decode(config, &a.schema().value_type(), "action configuration", diags)?;
        Some((a.clone(), config))
    }

    fn context(&self, diags: &mut Diagnostics) -> Option<Context<P::Data>> {
        match self.data.get() {
            Some(data) => Some(Context { data: data.clone(), stop: self.stop.clone() }),
            None => {
                diags.error(
                    "Provider not configured",
                    "Terraform called the provider before ConfigureProvider succeeded. This is a bug in Terraform or the provider.",
                );
                None
            }
        }
    }

    fn resource(&self, name: &str, diags: &mut Diagnostics) -> Option<&ResourceEntry<P::Data>> {
        let e = self.resources.get(name).map(|l| l.get(resource_entry));
        if e.is_none() {
            diags.error("Unknown resource type", format!("This provider has no resource type {name:?}."));
        }
        e
    }

    fn data_source(&self, name: &str, diags: &mut Diagnostics) -> Option<&DataSourceEntry<P::Data>> {
        let e = self.data_sources.get(name).map(|l| l.get(data_source_entry));
        if e.is_none() {
            diags.error("Unknown data source", format!("This provider has no data source {name:?}."));
        }
        e
    }

    fn ephemeral(&self, name: &str, diags: &mut Diagnostics) -> Option<&EphemeralEntry<P::Data>> {
        let e = self.ephemerals.get(name).map(|l| l.get(ephemeral_entry));
        if e.is_none() {
            diags.error("Unknown ephemeral resource", format!("This provider has no ephemeral resource {name:?}."));
        }
        e
    }

    fn identity_value(
        &self,
        e: &ResourceEntry<P::Data>,
        id: Option<&pb::ResourceIdentityData>,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let (_, ty) = e.identity.as_ref()?;
        let dv = id?.identity_data.as_ref()?;
        decode(Some(dv), ty, "resource identity", diags).filter(|v| !v.is_null())
    }

    /// Encodes an identity the semantic layer returned (`None` for a
    /// resource without an identity schema).
    fn identity_wire(
        &self,
        e: &ResourceEntry<P::Data>,
        v: Option<&Value>,
        diags: &mut Diagnostics,
    ) -> Option<pb::ResourceIdentityData> {
        let (_, ty) = e.identity.as_ref()?;
        encode(v?, ty, "resource identity", diags).map(|dv| pb::ResourceIdentityData { identity_data: Some(dv) })
    }

    /// The semantic layer's view of a resource.
    fn target<'a>(&self, e: &'a ResourceEntry<P::Data>) -> lifecycle::Target<'a, P::Data> {
        lifecycle::Target { imp: e.imp.as_ref(), schema: &e.schema, has_identity: e.identity.is_some() }
    }
}

/// Decodes the arguments as the parameters' types, calls, encodes.
fn call(f: &dyn super::Function, arguments: &[pb::DynamicValue]) -> Result<pb::DynamicValue, super::FunctionError> {
    let params = f.params();
    if arguments.len() != params.len() {
        return Err(super::FunctionError {
            text: format!("{} takes {} arguments, not {}.", f.name(), params.len(), arguments.len()),
            argument: None,
        });
    }
    let mut args = Vec::with_capacity(params.len());
    for (i, (dv, p)) in arguments.iter().zip(&params).enumerate() {
        let v = super::codec::decode_msgpack(&dv.msgpack, &p.ty)
            .map_err(|e| super::FunctionError::argument(i, format!("{}: cannot decode the argument: {e}", p.name)))?;
        if !v.is_fully_known() || v.is_null() {
            return Err(super::FunctionError::argument(i, format!("{} must be known and not null.", p.name)));
        }
        args.push(v);
    }
    let out = f.call(&args)?;
    let msgpack = super::codec::encode_msgpack(&out, &f.returns())
        .map_err(|e| super::FunctionError { text: format!("cannot encode the result: {e}"), argument: None })?;
    Ok(pb::DynamicValue { msgpack, json: Vec::new() })
}

/// What we advertise. Only what we serve: schema caching, destroy planning
/// (so ModifyPlan can warn on destroy), and GenerateResourceConfig (for
/// `terraform query -generate-config-out`). Not move_resource_state.
fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: true,
        move_resource_state: false,
        generate_resource_config: true,
    }
}

fn required_diags(schema: &Schema, config: &Value, diags: &mut Diagnostics) {
    for p in plan::missing_required(&schema.block, config) {
        diags.push(
            Diagnostic::error(
                "Missing required argument",
                format!("The argument \"{p}\" is required, but no definition was found."),
            )
            .at(p),
        );
    }
}

fn timestamp(t: std::time::SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

type Rpc<T> = Result<Response<T>, Status>;

mod list_rpc;

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderServer<P> {
    #[instrument(skip_all, fields(rpc = "GetMetadata"))]
    async fn get_metadata(&self, _r: Request<pb::get_metadata::Request>) -> Rpc<pb::get_metadata::Response> {
        let names = |keys: Vec<&&'static str>| {
            keys.into_iter().map(|k| pb::get_metadata::TypeName { type_name: k.to_string() }).collect()
        };
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: Vec::new(),
            data_sources: names(self.data_sources.keys().collect()),
            resources: names(self.resources.keys().collect()),
            ephemeral_resources: names(self.ephemerals.keys().collect()),
            functions: self.functions.keys().map(|k| pb::get_metadata::FunctionName { name: k.to_string() }).collect(),
            list_resources: names(self.lists.keys().collect()),
            actions: names(self.actions.keys().collect()),
        }))
    }

    #[instrument(skip_all, fields(rpc = "GetProviderSchema"))]
    async fn get_provider_schema(
        &self,
        _r: Request<pb::get_provider_schema::Request>,
    ) -> Rpc<pb::get_provider_schema::Response> {
        Ok(Response::new(self.schema_response().clone()))
    }

    #[instrument(skip_all, fields(rpc = "GetResourceIdentitySchemas"))]
    async fn get_resource_identity_schemas(
        &self,
        _r: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Rpc<pb::get_resource_identity_schemas::Response> {
        let identity_schemas = self
            .resources
            .iter()
            .filter_map(|(k, e)| {
                e.get(resource_entry).identity.as_ref().map(|(s, _)| (k.to_string(), convert::identity_schema(s)))
            })
            .collect();
        Ok(Response::new(pb::get_resource_identity_schemas::Response { identity_schemas, diagnostics: Vec::new() }))
    }

    #[instrument(skip_all, fields(rpc = "UpgradeResourceIdentity", type_name = %r.get_ref().type_name))]
    async fn upgrade_resource_identity(
        &self,
        r: Request<pb::upgrade_resource_identity::Request>,
    ) -> Rpc<pb::upgrade_resource_identity::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut upgraded = None;
        if let Some(e) = self.resource(&req.type_name, &mut diags) {
            match &e.identity {
                Some((schema, ty)) if schema.version == req.version => {
                    let json = req.raw_identity.map(|r| r.json).unwrap_or_default();
                    match super::codec::decode_json(&json, ty, true) {
                        Ok(v) => {
                            upgraded = encode(&v, ty, "resource identity", &mut diags)
                                .map(|dv| pb::ResourceIdentityData { identity_data: Some(dv) })
                        }
                        Err(err) => diags.push(convert::codec_diagnostic("stored resource identity", &err)),
                    }
                }
                Some((schema, _)) => diags.error(
                    "Unsupported identity version",
                    format!(
                        "The stored identity of {} has version {}; this provider knows version {}.",
                        req.type_name, req.version, schema.version
                    ),
                ),
                None => diags.error("No resource identity", format!("{} has no resource identity.", req.type_name)),
            }
        }
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity: upgraded,
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    #[instrument(skip_all, fields(rpc = "ValidateProviderConfig"))]
    async fn validate_provider_config(
        &self,
        r: Request<pb::validate_provider_config::Request>,
    ) -> Rpc<pb::validate_provider_config::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(config) = decode(req.config.as_ref(), self.provider_ty(), "provider configuration", &mut diags) {
            self.provider.validate_config(&config, &mut diags);
        }
        Ok(Response::new(pb::validate_provider_config::Response { diagnostics: convert::diagnostics(&diags) }))
    }

    #[instrument(skip_all, fields(rpc = "ValidateResourceConfig", type_name = %r.get_ref().type_name))]
    async fn validate_resource_config(
        &self,
        r: Request<pb::validate_resource_config::Request>,
    ) -> Rpc<pb::validate_resource_config::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(e) = self.resource(&req.type_name, &mut diags)
            && let Some(config) = decode(req.config.as_ref(), &e.ty, "resource configuration", &mut diags)
        {
            let wo_allowed = req.client_capabilities.is_some_and(|c| c.write_only_attributes_allowed);
            if !wo_allowed {
                for p in convert::write_only_set(&e.schema.block, &config) {
                    diags.push(
                            Diagnostic::error(
                                "Write-only attribute not supported",
                                "This attribute is write-only, which needs Terraform 1.11 or OpenTofu 1.11 or later. Upgrade, or use the attribute's non-write-only variant.",
                            )
                            .at(p),
                        );
                }
            }
            required_diags(&e.schema, &config, &mut diags);
            let imp = e.imp.clone();
            diags.off_thread(move |d| imp.validate_config(&ValidateRequest { config }, d)).await;
        }
        Ok(Response::new(pb::validate_resource_config::Response { diagnostics: convert::diagnostics(&diags) }))
    }

    #[instrument(skip_all, fields(rpc = "ValidateDataResourceConfig", type_name = %r.get_ref().type_name))]
    async fn validate_data_resource_config(
        &self,
        r: Request<pb::validate_data_resource_config::Request>,
    ) -> Rpc<pb::validate_data_resource_config::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(e) = self.data_source(&req.type_name, &mut diags)
            && let Some(config) = decode(req.config.as_ref(), &e.ty, "data source configuration", &mut diags)
        {
            required_diags(&e.schema, &config, &mut diags);
            let imp = e.imp.clone();
            diags.off_thread(move |d| imp.validate_config(&ValidateRequest { config }, d)).await;
        }
        Ok(Response::new(pb::validate_data_resource_config::Response { diagnostics: convert::diagnostics(&diags) }))
    }

    /// A hot path: Terraform calls it for every resource on every plan.
    #[instrument(skip_all, fields(rpc = "UpgradeResourceState", type_name = %r.get_ref().type_name, version = r.get_ref().version))]
    async fn upgrade_resource_state(
        &self,
        r: Request<pb::upgrade_resource_state::Request>,
    ) -> Rpc<pb::upgrade_resource_state::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut upgraded_state = None;
        if let Some(e) = self.resource(&req.type_name, &mut diags) {
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() && !raw.flatmap.is_empty() {
                diags.error(
                    "Unsupported state format",
                    "This state was written in the legacy flatmap format, which this provider does not read.",
                );
            } else if req.version == e.schema.version {
                match super::codec::decode_json(&raw.json, &e.ty, true) {
                    Ok(v) => upgraded_state = encode(&v, &e.ty, "upgraded state", &mut diags),
                    Err(err) => diags.push(convert::codec_diagnostic("stored state", &err)),
                }
            } else if req.version > e.schema.version {
                diags.error(
                    "State written by a newer provider",
                    format!(
                        "The state of this {} has schema version {}, but this provider only knows up to version {}. Use the provider version that wrote it, or newer.",
                        req.type_name, req.version, e.schema.version
                    ),
                );
            } else if let Some(u) = e.upgraders.iter().find(|u| u.from_version == req.version) {
                match super::codec::decode_json(&raw.json, &u.prior_type, true) {
                    Ok(v) => match (u.upgrade)(v) {
                        Ok(v) => upgraded_state = encode(&v, &e.ty, "upgraded state", &mut diags),
                        Err(d) => diags.extend(d),
                    },
                    Err(err) => diags.push(convert::codec_diagnostic("stored state", &err)),
                }
            } else {
                diags.error(
                    "Unsupported state version",
                    format!(
                        "This provider cannot upgrade {} state from schema version {}.",
                        req.type_name, req.version
                    ),
                );
            }
        }
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    #[instrument(skip_all, fields(rpc = "ConfigureProvider", terraform_version = %r.get_ref().terraform_version))]
    async fn configure_provider(
        &self,
        r: Request<pb::configure_provider::Request>,
    ) -> Rpc<pb::configure_provider::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(config) = decode(req.config.as_ref(), self.provider_ty(), "provider configuration", &mut diags) {
            let creq = ConfigureRequest { config, terraform_version: req.terraform_version };
            if let Some(data) = self.provider.configure(creq, &mut diags).await
                && !diags.has_errors()
                && self.data.set(Arc::new(data)).is_err()
            {
                diags.warning(
                    "Provider configured twice",
                    "ConfigureProvider was called more than once; the first configuration is kept.",
                );
            }
        }
        Ok(Response::new(pb::configure_provider::Response { diagnostics: convert::diagnostics(&diags) }))
    }

    #[instrument(skip_all, fields(rpc = "ReadResource", type_name = %r.get_ref().type_name))]
    async fn read_resource(&self, r: Request<pb::read_resource::Request>) -> Rpc<pb::read_resource::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut out = pb::read_resource::Response::default();
        if let Some(e) = self.resource(&req.type_name, &mut diags) {
            let state = decode(req.current_state.as_ref(), &e.ty, "current state", &mut diags);
            let identity = self.identity_value(e, req.current_identity.as_ref(), &mut diags);
            if let (Some(state), Some(ctx)) = (state, self.context(&mut diags)) {
                let o = lifecycle::read(&self.target(e), &ctx, state, req.private, identity, &mut diags).await;
                out.new_identity = self.identity_wire(e, o.identity.as_ref(), &mut diags);
                out.new_state = encode(&o.state, &e.ty, "state", &mut diags);
                out.private = o.private;
            }
        }
        out.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(out))
    }

    #[instrument(skip_all, fields(rpc = "PlanResourceChange", type_name = %r.get_ref().type_name))]
    async fn plan_resource_change(
        &self,
        r: Request<pb::plan_resource_change::Request>,
    ) -> Rpc<pb::plan_resource_change::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut out = pb::plan_resource_change::Response::default();
        if let Some(e) = self.resource(&req.type_name, &mut diags) {
            let prior = decode(req.prior_state.as_ref(), &e.ty, "prior state", &mut diags);
            let proposed = decode(req.proposed_new_state.as_ref(), &e.ty, "proposed new state", &mut diags);
            let config = decode(req.config.as_ref(), &e.ty, "configuration", &mut diags);
            if let (Some(prior), Some(proposed), Some(config), Some(ctx)) =
                (prior, proposed, config, self.context(&mut diags))
            {
                let t = self.target(e);
                let p = lifecycle::plan(&t, &ctx, prior, proposed, config, req.prior_private, &mut diags).await;
                out.planned_state = encode(&p.plan, &e.ty, "planned state", &mut diags);
                out.requires_replace = p.requires_replace.iter().map(convert::attribute_path).collect();
                out.planned_private = p.private;
                // An identity never changes once known: plan the prior one.
                if e.identity.is_some() {
                    out.planned_identity = req.prior_identity;
                }
            }
        }
        out.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(out))
    }

    #[instrument(skip_all, fields(rpc = "ApplyResourceChange", type_name = %r.get_ref().type_name))]
    async fn apply_resource_change(
        &self,
        r: Request<pb::apply_resource_change::Request>,
    ) -> Rpc<pb::apply_resource_change::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut out = pb::apply_resource_change::Response::default();
        if let Some(e) = self.resource(&req.type_name, &mut diags) {
            let prior = decode(req.prior_state.as_ref(), &e.ty, "prior state", &mut diags);
            let planned = decode(req.planned_state.as_ref(), &e.ty, "planned state", &mut diags);
            let config = decode(req.config.as_ref(), &e.ty, "configuration", &mut diags);
            let prior_identity = self.identity_value(e, req.planned_identity.as_ref(), &mut diags);
            if let (Some(prior), Some(planned), Some(config), Some(ctx)) =
                (prior, planned, config, self.context(&mut diags))
            {
                let a =
                    lifecycle::Apply { prior, planned, config, planned_private: req.planned_private, prior_identity };
                let o = lifecycle::apply(&self.target(e), &ctx, a, &mut diags).await;
                out.new_identity = self.identity_wire(e, o.identity.as_ref(), &mut diags);
                out.new_state = encode(&o.state, &e.ty, "state", &mut diags);
                out.private = o.private;
            }
        }
        out.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(out))
    }

    #[instrument(skip_all, fields(rpc = "ImportResourceState", type_name = %r.get_ref().type_name))]
    async fn import_resource_state(
        &self,
        r: Request<pb::import_resource_state::Request>,
    ) -> Rpc<pb::import_resource_state::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut out = pb::import_resource_state::Response::default();
        if let Some(e) = self.resource(&req.type_name, &mut diags) {
            let identity = self.identity_value(e, req.identity.as_ref(), &mut diags);
            if let Some(ctx) = self.context(&mut diags)
                && let Some(o) = lifecycle::import(&self.target(e), &ctx, req.id, identity, &mut diags).await
            {
                let identity = self.identity_wire(e, o.identity.as_ref(), &mut diags);
                if let Some(state) = encode(&o.state, &e.ty, "imported state", &mut diags) {
                    out.imported_resources.push(pb::import_resource_state::ImportedResource {
                        type_name: req.type_name.clone(),
                        state: Some(state),
                        private: o.private,
                        identity,
                    });
                }
            }
        }
        out.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(out))
    }

    #[instrument(skip_all, fields(rpc = "ReadDataSource", type_name = %r.get_ref().type_name))]
    async fn read_data_source(&self, r: Request<pb::read_data_source::Request>) -> Rpc<pb::read_data_source::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut out = pb::read_data_source::Response::default();
        if let Some(e) = self.data_source(&req.type_name, &mut diags) {
            let config = decode(req.config.as_ref(), &e.ty, "data source configuration", &mut diags);
            if let (Some(config), Some(ctx)) = (config, self.context(&mut diags)) {
                let mut resp = ReadDataResponse { state: config.clone(), diags: Diagnostics::new() };
                e.imp.read(&ctx, ReadDataRequest { config }, &mut resp).await;
                diags.extend(std::mem::take(&mut resp.diags));
                if !diags.has_errors() {
                    lifecycle::reject_unknowns(&mut resp.state, "read", &mut diags);
                    out.state = encode(&resp.state, &e.ty, "data source result", &mut diags);
                }
            }
        }
        out.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(out))
    }

    #[instrument(skip_all, fields(rpc = "ValidateEphemeralResourceConfig", type_name = %r.get_ref().type_name))]
    async fn validate_ephemeral_resource_config(
        &self,
        r: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Rpc<pb::validate_ephemeral_resource_config::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(e) = self.ephemeral(&req.type_name, &mut diags)
            && let Some(config) = decode(req.config.as_ref(), &e.ty, "ephemeral resource configuration", &mut diags)
        {
            required_diags(&e.schema, &config, &mut diags);
            let imp = e.imp.clone();
            diags.off_thread(move |d| imp.validate_config(&ValidateRequest { config }, d)).await;
        }
        Ok(Response::new(pb::validate_ephemeral_resource_config::Response {
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    #[instrument(skip_all, fields(rpc = "OpenEphemeralResource", type_name = %r.get_ref().type_name))]
    async fn open_ephemeral_resource(
        &self,
        r: Request<pb::open_ephemeral_resource::Request>,
    ) -> Rpc<pb::open_ephemeral_resource::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut out = pb::open_ephemeral_resource::Response::default();
        if let Some(e) = self.ephemeral(&req.type_name, &mut diags) {
            let config = decode(req.config.as_ref(), &e.ty, "ephemeral resource configuration", &mut diags);
            if let (Some(config), Some(ctx)) = (config, self.context(&mut diags)) {
                let mut resp = OpenResponse { result: config.clone(), ..OpenResponse::default() };
                e.imp.open(&ctx, OpenRequest { config }, &mut resp).await;
                diags.extend(std::mem::take(&mut resp.diags));
                if !diags.has_errors() {
                    lifecycle::reject_unknowns(&mut resp.result, "open", &mut diags);
                    out.result = encode(&resp.result, &e.ty, "ephemeral result", &mut diags);
                    out.private = resp.private;
                    out.renew_at = resp.renew_at.map(timestamp);
                }
            }
        }
        out.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(out))
    }

    #[instrument(skip_all, fields(rpc = "RenewEphemeralResource", type_name = %r.get_ref().type_name))]
    async fn renew_ephemeral_resource(
        &self,
        r: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Rpc<pb::renew_ephemeral_resource::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut out = pb::renew_ephemeral_resource::Response::default();
        if let Some(e) = self.ephemeral(&req.type_name, &mut diags)
            && let Some(ctx) = self.context(&mut diags)
        {
            let mut resp = RenewResponse::default();
            e.imp.renew(&ctx, req.private, &mut resp).await;
            diags.extend(std::mem::take(&mut resp.diags));
            out.private = resp.private;
            out.renew_at = resp.renew_at.map(timestamp);
        }
        out.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(out))
    }

    #[instrument(skip_all, fields(rpc = "CloseEphemeralResource", type_name = %r.get_ref().type_name))]
    async fn close_ephemeral_resource(
        &self,
        r: Request<pb::close_ephemeral_resource::Request>,
    ) -> Rpc<pb::close_ephemeral_resource::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(e) = self.ephemeral(&req.type_name, &mut diags)
            && let Some(ctx) = self.context(&mut diags)
        {
            e.imp.close(&ctx, req.private, &mut diags).await;
        }
        Ok(Response::new(pb::close_ephemeral_resource::Response { diagnostics: convert::diagnostics(&diags) }))
    }

    #[instrument(skip_all, fields(rpc = "GetFunctions"))]
    async fn get_functions(&self, _r: Request<pb::get_functions::Request>) -> Rpc<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self.function_signatures(),
            diagnostics: Vec::new(),
        }))
    }

    #[instrument(skip_all, fields(rpc = "CallFunction", name = %r.get_ref().name))]
    async fn call_function(&self, r: Request<pb::call_function::Request>) -> Rpc<pb::call_function::Response> {
        let req = r.into_inner();
        let answer = match self.functions.get(req.name.as_str()) {
            Some(f) => call(f.as_ref(), &req.arguments),
            None => Err(super::FunctionError {
                text: format!("This provider has no function {:?}.", req.name),
                argument: None,
            }),
        };
        Ok(Response::new(match answer {
            Ok(result) => pb::call_function::Response { result: Some(result), error: None },
            Err(e) => {
                // The text names the argument's problem, never its value.
                tracing::debug!(function = %req.name, argument = ?e.argument, "function call failed");
                pb::call_function::Response {
                    result: None,
                    error: Some(pb::FunctionError { text: e.text, function_argument: e.argument.map(|i| i as i64) }),
                }
            }
        }))
    }

    #[instrument(skip_all, fields(rpc = "ValidateActionConfig", type_name = %r.get_ref().type_name))]
    async fn validate_action_config(
        &self,
        r: Request<pb::validate_action_config::Request>,
    ) -> Rpc<pb::validate_action_config::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some((a, config)) = self.action_config(&req.type_name, req.config.as_ref(), &mut diags) {
            a.validate_config(&config, &mut diags);
        }
        Ok(Response::new(pb::validate_action_config::Response { diagnostics: convert::diagnostics(&diags) }))
    }

    #[instrument(skip_all, fields(rpc = "PlanAction", type_name = %r.get_ref().action_type))]
    async fn plan_action(&self, r: Request<pb::plan_action::Request>) -> Rpc<pb::plan_action::Response> {
        let req = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some((a, config)) = self.action_config(&req.action_type, req.config.as_ref(), &mut diags) {
            a.validate_config(&config, &mut diags);
        }
        Ok(Response::new(pb::plan_action::Response { diagnostics: convert::diagnostics(&diags), deferred: None }))
    }

    type InvokeActionStream = tokio_stream::wrappers::ReceiverStream<Result<pb::invoke_action::Event, Status>>;

    #[instrument(skip_all, fields(rpc = "InvokeAction", type_name = %r.get_ref().action_type))]
    async fn invoke_action(&self, r: Request<pb::invoke_action::Request>) -> Rpc<Self::InvokeActionStream> {
        use pb::invoke_action::event::{Completed, Progress as Line, Type};
        let req = r.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let mut diags = Diagnostics::new();
        let found = self.action_config(&req.action_type, req.config.as_ref(), &mut diags);
        let stop = self.stop.clone();
        let data = self.data.get().cloned();
        tokio::spawn(async move {
            if let Some((a, config)) = found {
                let (progress, mut lines) = super::Progress::channel();
                let forward = {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        while let Some(message) = lines.recv().await {
                            let event = pb::invoke_action::Event { r#type: Some(Type::Progress(Line { message })) };
                            if tx.send(Ok(event)).await.is_err() {
                                break;
                            }
                        }
                    })
                };
                a.invoke(data.as_deref(), &config, &stop, &progress, &mut diags).await;
                drop(progress);
                let _ = forward.await;
            }
            let done = Completed { diagnostics: convert::diagnostics(&diags) };
            let _ = tx.send(Ok(pb::invoke_action::Event { r#type: Some(Type::Completed(done)) })).await;
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    #[instrument(skip_all, fields(rpc = "GenerateResourceConfig", type_name = %r.get_ref().type_name))]
    async fn generate_resource_config(
        &self,
        r: Request<pb::generate_resource_config::Request>,
    ) -> Rpc<pb::generate_resource_config::Response> {
        Ok(Response::new(self.generate_config(r.into_inner())))
    }

    #[instrument(skip_all, fields(rpc = "ValidateListResourceConfig", type_name = %r.get_ref().type_name))]
    async fn validate_list_resource_config(
        &self,
        r: Request<pb::validate_list_resource_config::Request>,
    ) -> Rpc<pb::validate_list_resource_config::Response> {
        Ok(Response::new(self.validate_list(r.into_inner())))
    }

    type ListResourceStream = tokio_stream::wrappers::ReceiverStream<Result<pb::list_resource::Event, Status>>;

    #[instrument(skip_all, fields(rpc = "ListResource", type_name = %r.get_ref().type_name))]
    async fn list_resource(&self, r: Request<pb::list_resource::Request>) -> Rpc<Self::ListResourceStream> {
        Ok(Response::new(self.list(r.into_inner())))
    }

    #[instrument(skip_all, fields(rpc = "StopProvider"))]
    async fn stop_provider(&self, _r: Request<pb::stop_provider::Request>) -> Rpc<pb::stop_provider::Response> {
        tracing::info!("stop requested: in-flight operations are asked to finish early");
        self.stop_tx.stop();
        Ok(Response::new(pb::stop_provider::Response { error: String::new() }))
    }
}

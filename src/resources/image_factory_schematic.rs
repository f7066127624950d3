//! `proxtalos_image_factory_schematic` (resource): an Image Factory
//! schematic, its id computed locally exactly as the factory computes it
//! (`talos::schematic`), registered with the factory on create and
//! checked equal, or only computed (`offline = true`) for air-gapped
//! sites. With `talos_version`, the plan checks every official extension
//! against the factory's list for that release (the factory refuses an
//! image with an unknown one only when the image is asked for, far from
//! the line that named it) and `installer_image` is the installer the
//! machine configuration names.
//!
//! A schematic is content-addressed: the same document is the same id, and
//! the factory has no delete. So a change of the document that keeps the
//! id (another key order, JSON for YAML) is an update in place that sends
//! nothing; one that changes it replaces the resource (a new id flows to
//! the images and installers that use it). Read asks the factory whether
//! it still knows the id (a self-hosted factory can forget it): when not,
//! the object leaves state and the next apply registers it again. Import
//! by id: `terraform import proxtalos_image_factory_schematic.this <id>`.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::image_factory::{self, Client, FactoryError};
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{
    ApplyResponse, Attribute, AttributePath, Context, CreateRequest, DeleteRequest, Diagnostic, Diagnostics,
    ImportRequest, ImportResponse, ModifyPlanRequest, ModifyPlanResponse, ReadRequest, ReadResponse, Resource, Schema,
    UpdateRequest, ValidateRequest, Value,
};
use crate::resources::shared::common::null_object;
use crate::talos::schematic::{self, SchematicError};

/// Default time for one call to the factory.
const TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// The resource.
#[derive(Debug, Default)]
pub struct ImageFactorySchematic;

fn p(name: &str) -> AttributePath {
    AttributePath::attr(name)
}

fn schema() -> Schema {
    Schema::new(
        "An Image Factory schematic: the system extensions, kernel arguments, META values, overlay and secure-boot \
options of a Talos image. Its `id` is computed locally exactly as the factory computes it, so plans show the id of \
a changed schematic before anything is sent; create registers the document with the factory (`POST /schematics`) \
and checks that the factory gives the same id. With `talos_version`, the plan checks that every official extension \
exists for that release. A schematic cannot be deleted from the factory: destroy only forgets it. Pass `id` to \
`proxtalos_image` (and `factory_url`) and `installer_image` to the machine configuration's `machine.install.image`, \
so one change of extensions reaches the ISO, the installer and the nodes.",
        vec![
            Attribute::string("schematic").required().description(
                "The schematic document, YAML or JSON (e.g. `yamlencode({customization = {systemExtensions = \
{officialExtensions = [\"siderolabs/iscsi-tools\"]}}})`). Fields the factory does not know are errors, as the \
factory's strict decoder refuses them. A rewrite with the same id (another key order, JSON for YAML) is an update \
that sends nothing; a change of id replaces the schematic.",
            ),
            Attribute::string("factory_url").optional().computed().description(
                "The Image Factory, e.g. `https://factory.talos.dev` or a self-hosted one (`http(s)://host[:port]`). \
Not set: the provider's `image_factory_url`. A change registers the schematic with the new factory, in place.",
            ),
            Attribute::bool("offline").optional().default(false).description(
                "Compute the id only and never call the factory (air-gapped sites, or a factory mirrored by other \
means). No extension check and no registration.",
            ),
            Attribute::string("talos_version").optional().description(
                "A Talos release, e.g. `v1.11.5`: the plan checks the official extensions against the factory's \
list for it, and `installer_image` names its installer.",
            ),
            Attribute::bool("secureboot")
                .optional()
                .default(false)
                .description("`installer_image` is the secure-boot installer (`installer-secureboot`)."),
            Attribute::string("id").computed().description("The schematic id (64 hex digits)."),
            Attribute::string("installer_image").computed().description(
                "`<factory host>/installer[-secureboot]/<id>:<talos_version>`, for `machine.install.image`; null \
without `talos_version`.",
            ),
        ],
    )
    .blocks(vec![timeouts::block(&[(Operation::Create, TIMEOUT), (Operation::Read, TIMEOUT)])])
}

/// Where a [`SchematicError`] points: the `schematic` attribute, its path
/// inside the document in the detail (never the offending value).
fn schematic_diag(e: &SchematicError) -> Diagnostic {
    let detail = match e {
        SchematicError::Syntax(m) => format!("The schematic is not YAML or JSON: {m}."),
        SchematicError::Invalid { path, message } => {
            format!("{path}: {message}. The Image Factory decodes schematics strictly and refuses this document.")
        }
        SchematicError::Unsupported { path, message } => format!(
            "{path}: {message}. proxtalos cannot compute this schematic's id locally; the factory gives it on \
create (`offline = true` cannot be used with it)."
        ),
    };
    Diagnostic::error("Invalid schematic", detail).at(p("schematic"))
}

fn factory_diag(summary: &str, e: &FactoryError) -> Diagnostic {
    let d = Diagnostic::from_error(summary, e);
    match e {
        FactoryError::Refused { status: 400, .. } => d.at(p("schematic")),
        FactoryError::Url { .. } => d.at(p("factory_url")),
        _ => d,
    }
}

/// A Talos version as the factory names it (`v1.11.5`; `1.11.5` gets its `v`).
fn version_tag(v: &str) -> String {
    if v.starts_with('v') { v.to_string() } else { format!("v{v}") }
}

/// The installer image for `id` at `base` (None when a part is unknown).
fn installer(base: &str, id: &str, version: Option<&str>, secureboot: bool) -> Option<String> {
    let host = image_factory::registry_host(base)?;
    Some(format!("{}:{}", image_factory::installer_repository(&host, id, secureboot), version_tag(version?)))
}

fn set_installer(state: &mut Value) {
    let value = match (state.attr("factory_url").as_str(), state.attr("id").as_str()) {
        (Some(base), Some(id)) => {
            installer(base, id, state.attr("talos_version").as_str(), state.attr("secureboot").as_bool() == Some(true))
                .map(Value::string)
                .unwrap_or(Value::Null)
        }
        _ if state.attr("talos_version").is_null() => Value::Null,
        _ => Value::Unknown,
    };
    state.set_attr("installer_image", value);
}

fn client(url: &str, config: &Value, op: Operation) -> Result<Client, FactoryError> {
    Client::new(url, timeouts::get(config, op, TIMEOUT))
}

/// Sends `req` to the factory at `url` (the `op` timeout of `config`) and
/// decodes the answer.
async fn ask<T>(
    ctx: &Context<ProxtalosData>,
    url: &str,
    config: &Value,
    op: Operation,
    req: &image_factory::Request,
    decode: fn(&image_factory::Request, &image_factory::Response) -> Result<T, FactoryError>,
) -> Result<T, FactoryError> {
    let resp = client(url, config, op)?.send(req, &ctx.stop).await?;
    decode(req, &resp)
}

/// The plan-time extension check: errors for names the factory lists not
/// for this release; a warning when the list cannot be read.
async fn check_extensions(ctx: &Context<ProxtalosData>, plan: &Value, url: &str, diags: &mut Diagnostics) {
    let (Some(doc), Some(version)) = (plan.attr("schematic").as_str(), plan.attr("talos_version").as_str()) else {
        return;
    };
    let Ok(wanted) = schematic::official_extensions(doc) else { return };
    if wanted.is_empty() {
        return;
    }
    let version = version_tag(version);
    let req = image_factory::official_extensions(&version);
    match ask(ctx, url, plan, Operation::Read, &req, image_factory::decode_extensions).await {
        Ok(available) => {
            for name in image_factory::unavailable(&wanted, &available) {
                diags.error_at(
                    p("schematic"),
                    "Unknown system extension",
                    format!(
                        "official extension {name:?} is not available for Talos version {version} (the Image \
Factory at {url} lists {} official extensions for it; names are written `siderolabs/<name>`).",
                        available.len()
                    ),
                );
            }
        }
        Err(e) => diags.warning_at(
            p("talos_version"),
            "The official extensions could not be checked",
            format!(
                "{}. The plan goes on; the factory refuses an image with an unknown extension when the image is \
asked for.",
                crate::plugin::diag::error_chain(&e)
            ),
        ),
    }
}

/// Registers `doc` at `url` and checks the factory's id against `expect`
/// (when known); returns the factory's id.
async fn register(
    ctx: &Context<ProxtalosData>,
    config: &Value,
    url: &str,
    doc: &str,
    expect: Option<&str>,
) -> Result<String, Diagnostic> {
    let req = image_factory::register(doc);
    let got = ask(ctx, url, config, Operation::Create, &req, image_factory::decode_registered).await.map_err(|e| {
        let summary = match e {
            FactoryError::Url { .. } => "Invalid Image Factory URL",
            FactoryError::Transport { .. } | FactoryError::Stopped { .. } => "Cannot register the schematic",
            _ => "The Image Factory did not register the schematic",
        };
        factory_diag(summary, &e)
    })?;
    if let Some(want) = expect
        && want != got.id
    {
        return Err(Diagnostic::error(
            "The Image Factory gave another schematic id",
            format!(
                "The factory at {url} registered the schematic as {}, but its id computed locally (as the plan \
showed) is {want}. Images and installers named by the plan would not be this schematic's. This is a proxtalos \
bug: please report it with the schematic document.",
                got.id
            ),
        )
        .at(p("schematic")));
    }
    Ok(got.id)
}

#[async_trait]
impl Resource<ProxtalosData> for ImageFactorySchematic {
    fn type_name(&self) -> &'static str {
        "proxtalos_image_factory_schematic"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        let c = &req.config;
        timeouts::validate(c, diags);
        if let Some(doc) = c.attr("schematic").as_str() {
            match schematic::canonical(doc) {
                Err(e @ SchematicError::Unsupported { .. }) if c.attr("offline").as_bool() == Some(true) => {
                    diags.push(schematic_diag(&e).at(p("offline")))
                }
                Err(SchematicError::Unsupported { .. }) | Ok(_) => {}
                Err(e) => diags.push(schematic_diag(&e)),
            }
        }
        if let Some(u) = c.attr("factory_url").as_str()
            && let Err(e) = image_factory::base_url(u)
        {
            diags.error_at(p("factory_url"), "Invalid Image Factory URL", e.to_string());
        }
        if let Some(v) = c.attr("talos_version").as_str()
            && let Err(e) = crate::resources::shared::talos_node::check_version_tag(v)
        {
            diags.error_at(p("talos_version"), "Invalid Talos version", e);
        }
    }

    async fn modify_plan(&self, ctx: &Context<ProxtalosData>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.plan.is_null() {
            return;
        }
        let plan = &mut resp.plan;
        if req.config.attr("factory_url").is_null() {
            plan.set_attr("factory_url", Value::string(ctx.data.image_factory_url()));
        }
        let offline = plan.attr("offline").as_bool() == Some(true);
        let prior_id = req.prior.attr("id").as_str().map(str::to_string);
        let id = match plan.attr("schematic").as_str() {
            Some(doc) => match schematic::id(doc) {
                Ok(id) => Value::string(id),
                Err(SchematicError::Unsupported { .. }) if !offline => Value::Unknown,
                Err(e) => return resp.diags.push(schematic_diag(&e)),
            },
            None => Value::Unknown,
        };
        // A new id is a new schematic; the same id (or, where the id is
        // the factory's to give, the same text) is the same one.
        let replace = match (&prior_id, id.as_str()) {
            (None, _) => false,
            (Some(prior), Some(new)) => prior != new,
            (Some(_), None) => req.prior.attr("schematic") != plan.attr("schematic"),
        };
        match prior_id {
            Some(prior) if !replace => plan.set_attr("id", Value::string(prior)),
            _ => plan.set_attr("id", id),
        }
        if replace {
            resp.requires_replace.push(p("schematic"));
        }
        set_installer(plan);
        let changed = |k: &str| req.prior.attr(k) != req.config.attr(k);
        if !offline
            && (req.prior.is_null() || changed("schematic") || changed("talos_version") || changed("factory_url"))
            && let Some(url) = plan.attr("factory_url").as_str().map(str::to_string)
        {
            let plan = plan.clone();
            check_extensions(ctx, &plan, &url, &mut resp.diags).await;
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        resp.state = Value::Null;
        let mut state = req.planned.clone();
        let (Some(doc), Some(url)) = (state.attr("schematic").as_str(), state.attr("factory_url").as_str()) else {
            return resp.diags.error("Missing schematic", "`schematic` and `factory_url` are known at apply.");
        };
        let (doc, url) = (doc.to_string(), url.to_string());
        if state.attr("offline").as_bool() != Some(true) {
            match register(ctx, &req.config, &url, &doc, state.attr("id").as_str()).await {
                Ok(id) => state.set_attr("id", Value::string(id)),
                Err(d) => return resp.diags.push(d),
            }
        } else if state.attr("id").is_unknown() {
            return resp.diags.push(schematic_diag(&SchematicError::Unsupported {
                path: "schematic".into(),
                message: "no local id".into(),
            }));
        }
        set_installer(&mut state);
        resp.state = state;
    }

    async fn read(&self, ctx: &Context<ProxtalosData>, req: ReadRequest, resp: &mut ReadResponse) {
        let s = &req.state;
        if s.attr("offline").as_bool() == Some(true) {
            return;
        }
        let (Some(id), Some(url)) = (s.attr("id").as_str(), s.attr("factory_url").as_str()) else { return };
        let get = image_factory::get_schematic(id);
        match ask(ctx, url, s, Operation::Read, &get, image_factory::decode_schematic).await {
            Ok(Some(doc)) => {
                // After an import the document is the factory's own.
                if s.attr("schematic").is_null() {
                    resp.state.set_attr("schematic", Value::string(doc));
                }
            }
            Ok(None) => {
                tracing::info!(id, url, "the Image Factory no longer knows the schematic: it leaves state");
                resp.state = Value::Null;
            }
            Err(e) => resp.diags.warning(
                "The schematic could not be checked",
                format!(
                    "{}. The state is kept as it was; the next plan checks again.",
                    crate::plugin::diag::error_chain(&e)
                ),
            ),
        }
    }

    async fn update(&self, ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        let mut state = req.planned.clone();
        let online = state.attr("offline").as_bool() != Some(true);
        let moved = req.prior.attr("factory_url") != state.attr("factory_url")
            || req.prior.attr("offline").as_bool() == Some(true);
        if online
            && moved
            && let (Some(doc), Some(url)) = (state.attr("schematic").as_str(), state.attr("factory_url").as_str())
        {
            let (doc, url) = (doc.to_string(), url.to_string());
            if let Err(d) = register(ctx, &req.config, &url, &doc, state.attr("id").as_str()).await {
                resp.state = req.prior;
                return resp.diags.push(d);
            }
        }
        set_installer(&mut state);
        resp.state = state;
    }

    async fn delete(&self, _ctx: &Context<ProxtalosData>, _req: DeleteRequest, _diags: &mut Diagnostics) {}

    async fn import(&self, ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        let id = req.id.trim().to_ascii_lowercase();
        if !schematic::valid_id(&id) {
            return resp.diags.error(
                "Invalid import id",
                format!("The import id is a schematic id (64 hex digits); got {:?}.", req.id),
            );
        }
        let mut state = null_object(&schema().value_type());
        state.set_attr("id", Value::string(id));
        state.set_attr("factory_url", Value::string(ctx.data.image_factory_url()));
        state.set_attr("offline", Value::Bool(false));
        state.set_attr("secureboot", Value::Bool(false));
        resp.state = state;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EMPTY: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[test]
    fn schema_is_consistent() {
        assert!(schema().check().is_empty(), "{:?}", schema().check());
    }

    #[test]
    fn installer_images_name_the_factorys_registry() {
        assert_eq!(
            installer("https://factory.talos.dev", EMPTY, Some("1.11.5"), false).as_deref(),
            Some(format!("factory.talos.dev/installer/{EMPTY}:v1.11.5").as_str())
        );
        assert_eq!(
            installer("http://127.0.0.1:8080", EMPTY, Some("v1.12.0"), true).as_deref(),
            Some(format!("127.0.0.1:8080/installer-secureboot/{EMPTY}:v1.12.0").as_str())
        );
        assert_eq!(installer("https://factory.talos.dev", EMPTY, None, false), None);
    }

    fn validate(pairs: &[(&str, Value)]) -> Diagnostics {
        let mut c = null_object(&schema().value_type());
        for (k, v) in pairs {
            c.set_attr(k, v.clone());
        }
        let mut d = Diagnostics::new();
        ImageFactorySchematic.validate_config(&ValidateRequest { config: c }, &mut d);
        d
    }

    #[test]
    fn bad_input_names_the_attribute() {
        let at = |d: &Diagnostics| d.0.iter().map(|x| x.path.as_ref().map(ToString::to_string)).collect::<Vec<_>>();
        let d = validate(&[("schematic", "customization: {systemExtension: {}}".into())]);
        assert_eq!(at(&d), vec![Some("schematic".to_string())]);
        assert!(d.0[0].detail.contains("customization.systemExtension"), "{}", d.0[0].detail);
        let d = validate(&[("schematic", "customization: {}".into()), ("factory_url", "factory.talos.dev".into())]);
        assert_eq!(at(&d), vec![Some("factory_url".to_string())]);
        let d = validate(&[("schematic", "".into()), ("talos_version", "latest".into())]);
        assert_eq!(at(&d), vec![Some("talos_version".to_string())]);
        assert!(validate(&[("schematic", "customization: {}".into())]).is_empty());
    }

    #[tokio::test]
    async fn import_takes_an_id() {
        let ctx = crate::resources::machine_secrets::tests::ctx();
        let mut resp = ImportResponse::default();
        ImageFactorySchematic.import(&ctx, ImportRequest { id: EMPTY.to_uppercase(), identity: None }, &mut resp).await;
        assert!(resp.diags.is_empty());
        assert_eq!(resp.state.attr("id").as_str(), Some(EMPTY));
        assert_eq!(resp.state.attr("factory_url").as_str(), Some(image_factory::PUBLIC_URL));
        let mut resp = ImportResponse::default();
        ImageFactorySchematic.import(&ctx, ImportRequest { id: "abc".into(), identity: None }, &mut resp).await;
        assert!(resp.diags.has_errors());
    }
}

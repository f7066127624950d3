//! `tftest`: a small provider built from the proxtalos plugin library, used
//! only to prove the protocol layer (in-process RPC tests and real-Terraform
//! end-to-end tests). It is not shipped.
//!
//! - `tftest_thing` (resource, schema version 1, identity `id`): `name`
//!   (required, forces replacement), `id` (computed, stable), `size`
//!   (optional, default 3), `note` (optional), `etag` (computed, changes on
//!   every update), `secret` (write-only), `secret_hash` (computed from the
//!   write-only value), `create_delay_ms` (create sleeps, for the Ctrl-C
//!   test), `labels` (map), `tags` (set), `ports` (list-nested). Objects live
//!   as JSON files in `$TFTEST_STORE`, so refresh sees drift and import
//!   finds real objects. Version 0 stored `size` as a string; the upgrader
//!   converts it.
//! - `tftest_info` (data source): `prefix` → `greeting`.
//! - `tftest_token` (ephemeral resource): `name` → `value`, renewed after
//!   `renew_in_s`.

#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use proxtalos::plugin::*;

pub struct TestProvider;

pub struct Data {
    store: PathBuf,
}

#[async_trait]
impl Provider for TestProvider {
    type Data = Data;

    fn type_name(&self) -> &'static str {
        "tftest"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Test provider.",
            vec![
                Attribute::string("store")
                    .optional()
                    .description("Directory of the object store (default `$TFTEST_STORE`)."),
            ],
        )
    }

    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        if config.attr("store").as_str() == Some("") {
            diags.error_at(AttributePath::attr("store"), "Empty store", "`store` must name a directory.");
        }
    }

    async fn configure(&self, req: ConfigureRequest, diags: &mut Diagnostics) -> Option<Data> {
        let store = req
            .config
            .attr("store")
            .as_str()
            .map(str::to_string)
            .or_else(|| std::env::var("TFTEST_STORE").ok())
            .unwrap_or_else(|| std::env::temp_dir().join("tftest-store").display().to_string());
        if let Err(e) = std::fs::create_dir_all(&store) {
            diags.push(Diagnostic::from_error("Cannot create the store", &e).at(AttributePath::attr("store")));
            return None;
        }
        Some(Data { store: store.into() })
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<Data>>> {
        vec![Arc::new(Thing)]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Data>>> {
        vec![Arc::new(Info)]
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource<Data>>> {
        vec![Arc::new(Token)]
    }
}

pub struct Thing;

fn thing_attrs() -> Vec<Attribute> {
    vec![
        Attribute::string("id").computed().use_state_for_unknown().description("Object id."),
        Attribute::string("name").required().requires_replace().description("Name; changing it replaces the object."),
        Attribute::number("size").optional().default(3).description("Size, default 3."),
        Attribute::string("note").optional().description("Free text, updated in place."),
        Attribute::string("etag").computed().description("Changes on every write."),
        Attribute::string("secret").optional().write_only().description("Write-only secret; never stored."),
        Attribute::string("secret_hash")
            .computed()
            .use_state_for_unknown()
            .description("Hash of the last secret written."),
        Attribute::number("create_delay_ms").optional().description("Create sleeps this long."),
        Attribute::new("labels", Type::map(Type::String)).optional().description("Labels."),
        Attribute::new("tags", Type::set(Type::String)).optional().description("Tags."),
        Attribute::nested(
            "ports",
            Nesting::List,
            vec![
                Attribute::number("port").required().description("Port."),
                Attribute::string("protocol").optional().default("tcp").description("Protocol."),
            ],
        )
        .optional()
        .description("Ports."),
    ]
}

/// Version 0: `size` was a string.
fn thing_v0_type() -> Type {
    let mut attrs = Schema::new("v0", thing_attrs()).value_type();
    if let Type::Object(m) = &mut attrs {
        m.insert("size".into(), Type::String);
        m.remove("secret_hash");
    }
    attrs
}

fn upgrade_v0(mut v: Value) -> Result<Value, Diagnostics> {
    let size = match v.attr("size").as_str() {
        Some(s) => match s.parse::<i64>() {
            Ok(n) => Value::int(n),
            Err(_) => {
                return Err(Diagnostic::error("Cannot upgrade state", format!("size {s:?} is not a number"))
                    .at(AttributePath::attr("size"))
                    .into());
            }
        },
        None => Value::Null,
    };
    v.set_attr("size", size);
    v.set_attr("secret_hash", Value::Null);
    Ok(v)
}

impl Thing {
    fn path(data: &Data, id: &str) -> PathBuf {
        data.store.join(format!("{id}.json"))
    }

    fn save(data: &Data, id: &str, v: &Value) -> std::io::Result<()> {
        let j = proxtalos::plugin::codec::encode_json(v, &Self::ty()).map_err(std::io::Error::other)?;
        std::fs::write(Self::path(data, id), j)
    }

    fn load(data: &Data, id: &str) -> Option<Value> {
        let bytes = std::fs::read(Self::path(data, id)).ok()?;
        proxtalos::plugin::codec::decode_json(&bytes, &Self::ty(), true).ok()
    }

    fn ty() -> Type {
        Schema::new("", thing_attrs()).value_type()
    }

    fn etag() -> Value {
        let n = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        Value::string(format!("e{n}"))
    }

    fn hash(s: &str) -> String {
        // Not cryptographic: shows that write-only input reached the provider.
        let mut h: u64 = 1469598103934665603;
        for b in s.bytes() {
            h = (h ^ b as u64).wrapping_mul(1099511628211);
        }
        format!("{h:016x}")
    }
}

#[async_trait]
impl Resource<Data> for Thing {
    fn type_name(&self) -> &'static str {
        "tftest_thing"
    }

    fn schema(&self) -> Schema {
        Schema::new("A thing in a file-backed store.", thing_attrs()).version(1)
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema {
            version: 0,
            attributes: vec![IdentityAttribute::required("id", Type::String, "Object id.")],
        })
    }

    fn state_upgraders(&self) -> Vec<StateUpgrader> {
        vec![StateUpgrader { from_version: 0, prior_type: thing_v0_type(), upgrade: upgrade_v0 }]
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        if req.config.attr("name").as_str() == Some("") {
            diags.error_at(AttributePath::attr("name"), "Empty name", "`name` must not be empty.");
        }
        if let Some(n) = req.config.attr("size").as_i64()
            && n < 0
        {
            diags.error_at(AttributePath::attr("size"), "Negative size", format!("`size` must be ≥ 0, got {n}."));
        }
        if let Some(ports) = req.config.attr("ports").as_elements() {
            for (i, p) in ports.iter().enumerate() {
                if p.attr("port").as_i64().is_some_and(|n| !(1..=65535).contains(&n)) {
                    diags.error_at(
                        AttributePath::attr("ports").and_index(i as i64).and_attr("port"),
                        "Invalid port",
                        "A port is 1–65535.",
                    );
                }
            }
        }
    }

    async fn modify_plan(&self, _ctx: &Context<Data>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.plan.is_null() && req.prior.attr("note").as_str() == Some("keep") {
            resp.diags.warning("Deleting a kept thing", "note = \"keep\"; it is deleted anyway.");
        }
        // A new secret changes its hash.
        if !resp.plan.is_null()
            && let Some(s) = req.config.attr("secret").as_str()
        {
            let h = Value::string(Self::hash(s));
            if req.prior.attr("secret_hash") != &h {
                resp.plan.set_attr("secret_hash", Value::Unknown);
            }
        }
    }

    async fn create(&self, ctx: &Context<Data>, req: CreateRequest, resp: &mut ApplyResponse) {
        if let Some(ms) = req.planned.attr("create_delay_ms").as_i64() {
            // A marker lets the Ctrl-C test know the create is under way.
            let marker = ctx.data.store.join("creating");
            let _ = std::fs::write(&marker, b"");
            tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)).await;
            let _ = std::fs::remove_file(&marker);
        }
        let id =
            format!("t{}", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        let mut state = req.planned.clone();
        state.set_attr("id", Value::string(&id));
        state.set_attr("etag", Self::etag());
        let hash = req.config.attr("secret").as_str().map(|s| Value::string(Self::hash(s))).unwrap_or(Value::Null);
        state.set_attr("secret_hash", hash);
        if let Err(e) = Self::save(&ctx.data, &id, &state) {
            resp.diags.push(Diagnostic::from_error("Cannot store the thing", &e));
            return;
        }
        resp.identity = Some(Value::object([("id", Value::string(&id))]));
        resp.state = state;
        if req.planned.attr("note").as_str() == Some("fail-after-create") {
            resp.diags.error("Create failed after the object existed", "The object is kept in state (tainted).");
        }
    }

    async fn read(&self, ctx: &Context<Data>, req: ReadRequest, resp: &mut ReadResponse) {
        let Some(id) = req.state.attr("id").as_str().map(str::to_string) else {
            resp.diags.error("Missing id", "The state has no id.");
            return;
        };
        match Self::load(&ctx.data, &id) {
            Some(v) => {
                resp.state = v;
                resp.identity = Some(Value::object([("id", Value::string(&id))]));
            }
            None => resp.state = Value::Null,
        }
    }

    async fn update(&self, ctx: &Context<Data>, req: UpdateRequest, resp: &mut ApplyResponse) {
        let mut state = req.planned.clone();
        state.set_attr("etag", Self::etag());
        let hash = match req.config.attr("secret").as_str() {
            Some(s) => Value::string(Self::hash(s)),
            None => req.prior.attr("secret_hash").clone(),
        };
        state.set_attr("secret_hash", hash);
        let id = state.attr("id").as_str().unwrap_or_default().to_string();
        if let Err(e) = Self::save(&ctx.data, &id, &state) {
            resp.diags.push(Diagnostic::from_error("Cannot store the thing", &e));
            return;
        }
        resp.identity = Some(Value::object([("id", Value::string(&id))]));
        resp.state = state;
    }

    async fn delete(&self, ctx: &Context<Data>, req: DeleteRequest, diags: &mut Diagnostics) {
        if let Some(id) = req.prior.attr("id").as_str() {
            match std::fs::remove_file(Self::path(&ctx.data, id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => diags.push(Diagnostic::from_error("Cannot delete the thing", &e)),
            }
        }
    }

    async fn import(&self, ctx: &Context<Data>, req: ImportRequest, resp: &mut ImportResponse) {
        let id = match (&req.identity, req.id.as_str()) {
            (Some(identity), _) => identity.attr("id").as_str().unwrap_or_default().to_string(),
            (None, id) => id.to_string(),
        };
        if Self::load(&ctx.data, &id).is_none() {
            resp.diags.error("Cannot import", format!("No thing with id {id:?} exists."));
            return;
        }
        let mut state = BTreeMap::new();
        if let Type::Object(attrs) = Self::ty() {
            for k in attrs.keys() {
                state.insert(k.clone(), Value::Null);
            }
        }
        state.insert("id".into(), Value::string(&id));
        resp.state = Value::Object(state);
        resp.identity = Some(Value::object([("id", Value::string(&id))]));
    }
}

pub struct Info;

#[async_trait]
impl DataSource<Data> for Info {
    fn type_name(&self) -> &'static str {
        "tftest_info"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "Says hello.",
            vec![
                Attribute::string("prefix").optional().description("Greeting prefix."),
                Attribute::string("greeting").computed().description("The greeting."),
            ],
        )
    }

    async fn read(&self, _ctx: &Context<Data>, req: ReadDataRequest, resp: &mut ReadDataResponse) {
        let prefix = req.config.attr("prefix").as_str().unwrap_or("hello");
        resp.state.set_attr("greeting", Value::string(format!("{prefix}, world")));
    }
}

pub struct Token;

#[async_trait]
impl EphemeralResource<Data> for Token {
    fn type_name(&self) -> &'static str {
        "tftest_token"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            "An ephemeral token.",
            vec![
                Attribute::string("name").required().description("Token name."),
                Attribute::number("renew_in_s").optional().description("Renew after this many seconds."),
                Attribute::string("value").computed().sensitive().description("The token."),
            ],
        )
    }

    async fn open(&self, _ctx: &Context<Data>, req: OpenRequest, resp: &mut OpenResponse) {
        let name = req.config.attr("name").as_str().unwrap_or_default().to_string();
        resp.result.set_attr("value", Value::string(format!("token-for-{name}")));
        resp.private = Some(name.into_bytes());
        if let Some(s) = req.config.attr("renew_in_s").as_i64() {
            resp.renew_at = Some(SystemTime::now() + Duration::from_secs(s.max(0) as u64));
        }
    }

    async fn renew(&self, _ctx: &Context<Data>, private: Option<Vec<u8>>, resp: &mut RenewResponse) {
        resp.private = private;
        resp.renew_at = Some(SystemTime::now() + Duration::from_secs(60));
    }

    async fn close(&self, _ctx: &Context<Data>, private: Option<Vec<u8>>, diags: &mut Diagnostics) {
        if private.is_none() {
            diags.error("Close without open", "No private data.");
        }
    }
}

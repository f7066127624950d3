//! In-process tests of every RPC we serve: the generated tonic service is
//! called directly with msgpack fixtures, no process, no network.

use crate::tftest;

use pb::provider_server::Provider as _;
use proxtalos::plugin::codec::{decode_msgpack, encode_json, encode_msgpack};
use proxtalos::plugin::proto::tfplugin6 as pb;
use proxtalos::plugin::server::ProviderServer;
use proxtalos::plugin::*;
use tonic::Request;

struct Fixture {
    server: ProviderServer<tftest::TestProvider>,
    _store: tempfile::TempDir,
    ty: Type,
}

fn dv(v: &Value, ty: &Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue { msgpack: encode_msgpack(v, ty).unwrap(), json: vec![] })
}

fn raw(bytes: Vec<u8>) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue { msgpack: bytes, json: vec![] })
}

fn errors(d: &[pb::Diagnostic]) -> Vec<String> {
    d.iter().filter(|d| d.severity == pb::diagnostic::Severity::Error as i32).map(|d| d.summary.clone()).collect()
}

fn path_of(d: &pb::Diagnostic) -> String {
    use pb::attribute_path::step::Selector;
    let Some(p) = &d.attribute else { return String::new() };
    let mut out = String::new();
    for s in &p.steps {
        match &s.selector {
            Some(Selector::AttributeName(a)) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(a)
            }
            Some(Selector::ElementKeyInt(i)) => out.push_str(&format!("[{i}]")),
            Some(Selector::ElementKeyString(k)) => out.push_str(&format!("[{k:?}]")),
            None => {}
        }
    }
    out
}

fn provider_config(store: &str) -> Value {
    Value::object([("store", Value::string(store))])
}

fn provider_ty() -> Type {
    Type::object([("store", Type::String)])
}

async fn fixture() -> Fixture {
    let store = tempfile::tempdir().unwrap();
    let server = ProviderServer::new(tftest::TestProvider);
    let resp = server
        .configure_provider(Request::new(pb::configure_provider::Request {
            terraform_version: "1.15.5".into(),
            config: dv(&provider_config(store.path().to_str().unwrap()), &provider_ty()),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    let ty = thing_schema(&server).1;
    Fixture { server, _store: store, ty }
}

fn thing_schema(server: &ProviderServer<tftest::TestProvider>) -> (i64, Type) {
    let s = &server.schema_response().resource_schemas["tftest_thing"];
    let block = s.block.as_ref().unwrap();
    let mut attrs = std::collections::BTreeMap::new();
    for a in &block.attributes {
        let ty = if a.r#type.is_empty() {
            // ports: list of {port, protocol}
            Type::list(Type::object([("port", Type::Number), ("protocol", Type::String)]))
        } else {
            Type::from_json(&serde_json::from_slice(&a.r#type).unwrap()).unwrap()
        };
        attrs.insert(a.name.clone(), ty);
    }
    (s.version, Type::Object(attrs))
}

fn config(name: &str, extra: &[(&str, Value)]) -> Value {
    let mut v = Value::object(
        ["id", "name", "size", "note", "etag", "secret", "secret_hash", "create_delay_ms", "labels", "tags", "ports"]
            .iter()
            .map(|k| (*k, Value::Null)),
    );
    v.set_attr("name", Value::string(name));
    for (k, x) in extra {
        v.set_attr(k, x.clone());
    }
    v
}

impl Fixture {
    async fn plan(&self, prior: &Value, config: &Value) -> pb::plan_resource_change::Response {
        // Terraform's proposed new state: config, with prior values for
        // computed attributes that are null in config.
        let mut proposed = config.clone();
        if !prior.is_null() {
            for k in ["id", "etag", "secret_hash", "size"] {
                if config.attr(k).is_null() {
                    proposed.set_attr(k, prior.attr(k).clone());
                }
            }
        }
        if config.is_null() {
            proposed = Value::Null;
        }
        self.server
            .plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: "tftest_thing".into(),
                prior_state: dv(prior, &self.ty),
                proposed_new_state: dv(&proposed, &self.ty),
                config: dv(config, &self.ty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn apply(
        &self,
        prior: &Value,
        planned: &pb::DynamicValue,
        config: &Value,
    ) -> pb::apply_resource_change::Response {
        self.server
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "tftest_thing".into(),
                prior_state: dv(prior, &self.ty),
                planned_state: Some(planned.clone()),
                config: dv(config, &self.ty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    }

    fn decode(&self, v: &Option<pb::DynamicValue>) -> Value {
        decode_msgpack(&v.as_ref().unwrap().msgpack, &self.ty).unwrap()
    }

    async fn create(&self, config: &Value) -> Value {
        let plan = self.plan(&Value::Null, config).await;
        assert!(errors(&plan.diagnostics).is_empty(), "{:?}", plan.diagnostics);
        let applied = self.apply(&Value::Null, plan.planned_state.as_ref().unwrap(), config).await;
        assert!(errors(&applied.diagnostics).is_empty(), "{:?}", applied.diagnostics);
        self.decode(&applied.new_state)
    }

    async fn read(&self, state: &Value) -> pb::read_resource::Response {
        self.server
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "tftest_thing".into(),
                current_state: dv(state, &self.ty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    }
}

#[tokio::test]
async fn schema_metadata_and_identity_schemas() {
    let server = ProviderServer::new(tftest::TestProvider);
    let s = server.get_provider_schema(Request::new(pb::get_provider_schema::Request {})).await.unwrap().into_inner();
    let caps = s.server_capabilities.unwrap();
    assert!(caps.get_provider_schema_optional && caps.plan_destroy && !caps.move_resource_state);
    assert_eq!(s.resource_schemas["tftest_thing"].version, 1);
    let attrs = &s.resource_schemas["tftest_thing"].block.as_ref().unwrap().attributes;
    let secret = attrs.iter().find(|a| a.name == "secret").unwrap();
    assert!(secret.write_only && secret.optional);
    assert_eq!(secret.description_kind, pb::StringKind::Markdown as i32);
    let ports = attrs.iter().find(|a| a.name == "ports").unwrap();
    assert_eq!(ports.nested_type.as_ref().unwrap().nesting, pb::schema::object::NestingMode::List as i32);
    assert!(s.data_source_schemas.contains_key("tftest_info"));
    assert!(s.ephemeral_resource_schemas.contains_key("tftest_token"));

    let m = server.get_metadata(Request::new(pb::get_metadata::Request {})).await.unwrap().into_inner();
    assert_eq!(m.resources[0].type_name, "tftest_thing");
    let ids = server
        .get_resource_identity_schemas(Request::new(pb::get_resource_identity_schemas::Request {}))
        .await
        .unwrap()
        .into_inner();
    let id = &ids.identity_schemas["tftest_thing"];
    assert_eq!(id.identity_attributes[0].name, "id");
    assert!(id.identity_attributes[0].required_for_import);
    let f = server.get_functions(Request::new(pb::get_functions::Request {})).await.unwrap().into_inner();
    assert!(f.diagnostics.is_empty());
}

#[tokio::test]
async fn validate_provider_config_reports_paths() {
    let server = ProviderServer::new(tftest::TestProvider);
    let r = server
        .validate_provider_config(Request::new(pb::validate_provider_config::Request {
            config: dv(&provider_config(""), &provider_ty()),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&r.diagnostics), vec!["Empty store"]);
    assert_eq!(path_of(&r.diagnostics[0]), "store");
}

#[tokio::test]
async fn validate_resource_config_paths_and_write_only_capability() {
    let f = fixture().await;
    let validate = |cfg: Value, wo: bool| {
        let req = pb::validate_resource_config::Request {
            type_name: "tftest_thing".into(),
            config: dv(&cfg, &f.ty),
            client_capabilities: Some(pb::ClientCapabilities {
                deferral_allowed: false,
                write_only_attributes_allowed: wo,
            }),
        };
        async { f.server.validate_resource_config(Request::new(req)).await.unwrap().into_inner().diagnostics }
    };
    let d = validate(config("", &[]), true).await;
    assert_eq!((errors(&d), path_of(&d[0])), (vec!["Empty name".to_string()], "name".to_string()));
    let ports = Value::List(vec![Value::object([("port", Value::int(70000)), ("protocol", Value::Null)])]);
    let d = validate(config("a", &[("ports", ports)]), true).await;
    assert_eq!(path_of(&d[0]), "ports[0].port");
    let d = validate(config("a", &[("secret", "s".into())]), false).await;
    assert_eq!(
        (errors(&d), path_of(&d[0])),
        (vec!["Write-only attribute not supported".to_string()], "secret".to_string())
    );
    assert!(validate(config("a", &[("secret", "s".into())]), true).await.is_empty());
    // a missing required attribute is named
    let d = validate(config("a", &[("name", Value::Null)]), true).await;
    assert_eq!((errors(&d), path_of(&d[0])), (vec!["Missing required argument".to_string()], "name".to_string()));
    // unknown values are fine at validate time
    assert!(validate(config("a", &[("name", Value::Unknown), ("size", Value::Unknown)]), true).await.is_empty());
}

#[tokio::test]
async fn bad_wire_input_is_a_diagnostic_never_a_panic() {
    let f = fixture().await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xc1], "Invalid resource configuration"), // reserved marker
        (vec![0x81, 0xa4, b'n', b'a', b'm', b'e'], "Invalid resource configuration"), // truncated
        (
            encode_msgpack(&Value::object([("nope", Value::int(1))]), &Type::object([("nope", Type::Number)])).unwrap(),
            "Invalid resource configuration",
        ),
        (
            encode_msgpack(&Value::object([("size", "x".into())]), &Type::object([("size", Type::String)])).unwrap(),
            "Invalid resource configuration",
        ),
    ];
    for (bytes, want) in cases {
        let r = f
            .server
            .validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: "tftest_thing".into(),
                config: raw(bytes.clone()),
                client_capabilities: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(errors(&r.diagnostics), vec![want.to_string()], "{bytes:02x?}");
    }
    // wrong type names the attribute
    let r = f
        .server
        .validate_resource_config(Request::new(pb::validate_resource_config::Request {
            type_name: "tftest_thing".into(),
            config: raw(encode_msgpack(
                &Value::object([("size", "x".into())]),
                &Type::object([("size", Type::String)]),
            )
            .unwrap()),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(path_of(&r.diagnostics[0]), "size");
    // unknown type name
    let r = f
        .server
        .validate_resource_config(Request::new(pb::validate_resource_config::Request {
            type_name: "tftest_nope".into(),
            config: None,
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&r.diagnostics), vec!["Unknown resource type"]);
}

#[tokio::test]
async fn plan_before_configure_is_a_diagnostic() {
    let server = ProviderServer::new(tftest::TestProvider);
    let ty = thing_schema(&server).1;
    let cfg = config("a", &[]);
    let r = server
        .plan_resource_change(Request::new(pb::plan_resource_change::Request {
            type_name: "tftest_thing".into(),
            prior_state: dv(&Value::Null, &ty),
            proposed_new_state: dv(&cfg, &ty),
            config: dv(&cfg, &ty),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&r.diagnostics), vec!["Provider not configured"]);
}

#[tokio::test]
async fn create_plan_apply_read_update_delete() {
    let f = fixture().await;
    let cfg = config("a", &[("secret", "s3cret".into()), ("tags", Value::Set(vec!["x".into()]))]);
    let plan = f.plan(&Value::Null, &cfg).await;
    let planned = f.decode(&plan.planned_state);
    assert_eq!(planned.attr("id"), &Value::Unknown);
    assert_eq!(planned.attr("size"), &Value::int(3), "default");
    assert_eq!(planned.attr("secret"), &Value::Null, "write-only never planned");
    assert!(plan.requires_replace.is_empty());

    let applied = f.apply(&Value::Null, plan.planned_state.as_ref().unwrap(), &cfg).await;
    assert!(applied.diagnostics.is_empty(), "{:?}", applied.diagnostics);
    let state = f.decode(&applied.new_state);
    assert!(state.attr("id").as_str().unwrap().starts_with('t'));
    assert_eq!(state.attr("secret"), &Value::Null, "write-only never stored");
    assert!(state.attr("secret_hash").as_str().is_some(), "write-only value reached create");
    assert!(applied.new_identity.is_some());

    // an empty re-plan keeps everything
    let cfg2 = config("a", &[("tags", Value::Set(vec!["x".into()]))]);
    let replan = f.plan(&state, &cfg2).await;
    assert_eq!(f.decode(&replan.planned_state), state);

    // read sees the same object; identity returned
    let read = f.read(&state).await;
    assert_eq!(f.decode(&read.new_state), state);
    assert!(read.new_identity.is_some());

    // update in place: id kept, etag unknown
    let cfg3 = config("a", &[("note", "n".into())]);
    let plan = f.plan(&state, &cfg3).await;
    let planned = f.decode(&plan.planned_state);
    assert_eq!(planned.attr("id"), state.attr("id"));
    assert_eq!(planned.attr("etag"), &Value::Unknown);
    let updated = f.apply(&state, plan.planned_state.as_ref().unwrap(), &cfg3).await;
    let updated_state = f.decode(&updated.new_state);
    assert_eq!(updated_state.attr("note"), &Value::from("n"));
    assert_ne!(updated_state.attr("etag"), state.attr("etag"));

    // name change forces replacement
    let plan = f.plan(&updated_state, &config("b", &[("note", "n".into())])).await;
    assert_eq!(plan.requires_replace.len(), 1);

    // destroy: plan null, apply null, object gone
    let plan = f.plan(&updated_state, &Value::Null).await;
    assert_eq!(f.decode(&plan.planned_state), Value::Null);
    let gone = f.apply(&updated_state, plan.planned_state.as_ref().unwrap(), &Value::Null).await;
    assert!(gone.diagnostics.is_empty());
    assert_eq!(f.decode(&gone.new_state), Value::Null);
    let read = f.read(&updated_state).await;
    assert_eq!(f.decode(&read.new_state), Value::Null, "deleted behind our back → removed from state");
}

#[tokio::test]
async fn destroy_plan_runs_modify_plan_and_warns() {
    let f = fixture().await;
    let state = f.create(&config("k", &[("note", "keep".into())])).await;
    let plan = f.plan(&state, &Value::Null).await;
    assert_eq!(plan.diagnostics[0].summary, "Deleting a kept thing");
    assert_eq!(f.decode(&plan.planned_state), Value::Null);
}

#[tokio::test]
async fn failure_after_create_keeps_the_object_in_state() {
    let f = fixture().await;
    let cfg = config("a", &[("note", "fail-after-create".into())]);
    let plan = f.plan(&Value::Null, &cfg).await;
    let applied = f.apply(&Value::Null, plan.planned_state.as_ref().unwrap(), &cfg).await;
    assert_eq!(errors(&applied.diagnostics), vec!["Create failed after the object existed"]);
    let state = f.decode(&applied.new_state);
    assert!(state.attr("id").as_str().is_some(), "state kept so Terraform taints, not orphans");
}

#[tokio::test]
async fn import_by_id_and_by_identity() {
    let f = fixture().await;
    let state = f.create(&config("a", &[])).await;
    let id = state.attr("id").as_str().unwrap().to_string();
    let r = f
        .server
        .import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: "tftest_thing".into(),
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let imported = f.decode(&r.imported_resources[0].state);
    assert_eq!(imported.attr("id"), &Value::string(&id));
    assert!(r.imported_resources[0].identity.is_some());

    let idty = Type::object([("id", Type::String)]);
    let identity = pb::ResourceIdentityData { identity_data: dv(&Value::object([("id", Value::string(&id))]), &idty) };
    let r = f
        .server
        .import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: "tftest_thing".into(),
            id: String::new(),
            identity: Some(identity),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);

    let r = f
        .server
        .import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: "tftest_thing".into(),
            id: "missing".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&r.diagnostics), vec!["Cannot import"]);
    assert!(r.imported_resources.is_empty());
}

async fn upgrade(f: &Fixture, version: i64, json: &str) -> pb::upgrade_resource_state::Response {
    f.server
        .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
            type_name: "tftest_thing".into(),
            version,
            raw_state: Some(pb::RawState { json: json.as_bytes().to_vec(), flatmap: Default::default() }),
        }))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn upgrade_resource_state_versions() {
    let f = fixture().await;
    let state = f.create(&config("a", &[])).await;
    let json = String::from_utf8(encode_json(&state, &f.ty).unwrap()).unwrap();
    let same = upgrade(&f, 1, &json).await;
    assert!(same.diagnostics.is_empty());
    assert_eq!(f.decode(&same.upgraded_state), state);

    // an attribute removed from the schema is dropped, not an error
    let with_extra = json.replacen('{', r#"{"removed_attr":"x","#, 1);
    assert!(upgrade(&f, 1, &with_extra).await.diagnostics.is_empty());

    // v0 stored size as a string
    let v0 = r#"{"id":"t1","name":"a","size":"5","note":null,"etag":"e","secret":null,"create_delay_ms":null,"labels":null,"tags":null,"ports":null}"#;
    let up = upgrade(&f, 0, v0).await;
    assert!(up.diagnostics.is_empty(), "{:?}", up.diagnostics);
    assert_eq!(f.decode(&up.upgraded_state).attr("size"), &Value::int(5));
    let bad_v0 = v0.replace(r#""5""#, r#""five""#);
    let up = upgrade(&f, 0, &bad_v0).await;
    assert_eq!(
        (errors(&up.diagnostics), path_of(&up.diagnostics[0])),
        (vec!["Cannot upgrade state".to_string()], "size".to_string())
    );

    assert_eq!(errors(&upgrade(&f, 2, &json).await.diagnostics), vec!["State written by a newer provider"]);
    assert_eq!(errors(&upgrade(&f, 1, "{not json").await.diagnostics), vec!["Invalid stored state"]);
    let flat = f
        .server
        .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
            type_name: "tftest_thing".into(),
            version: 1,
            raw_state: Some(pb::RawState { json: vec![], flatmap: [("id".to_string(), "x".to_string())].into() }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&flat.diagnostics), vec!["Unsupported state format"]);
}

#[tokio::test]
async fn data_source_and_ephemeral_resource() {
    let f = fixture().await;
    let ty = Type::object([("prefix", Type::String), ("greeting", Type::String)]);
    let r = f
        .server
        .read_data_source(Request::new(pb::read_data_source::Request {
            type_name: "tftest_info".into(),
            config: dv(&Value::object([("prefix", "hi".into()), ("greeting", Value::Null)]), &ty),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decode_msgpack(&r.state.unwrap().msgpack, &ty).unwrap().attr("greeting"), &Value::from("hi, world"));

    let ety = Type::object([("name", Type::String), ("renew_in_s", Type::Number), ("value", Type::String)]);
    let cfg = Value::object([("name", "n".into()), ("renew_in_s", Value::int(30)), ("value", Value::Null)]);
    let v = f
        .server
        .validate_ephemeral_resource_config(Request::new(pb::validate_ephemeral_resource_config::Request {
            type_name: "tftest_token".into(),
            config: dv(&cfg, &ety),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.diagnostics.is_empty());
    let o = f
        .server
        .open_ephemeral_resource(Request::new(pb::open_ephemeral_resource::Request {
            type_name: "tftest_token".into(),
            config: dv(&cfg, &ety),
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(o.diagnostics.is_empty());
    assert_eq!(decode_msgpack(&o.result.unwrap().msgpack, &ety).unwrap().attr("value"), &Value::from("token-for-n"));
    assert!(o.renew_at.is_some());
    let rn = f
        .server
        .renew_ephemeral_resource(Request::new(pb::renew_ephemeral_resource::Request {
            type_name: "tftest_token".into(),
            private: o.private.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rn.private, o.private);
    let c = f
        .server
        .close_ephemeral_resource(Request::new(pb::close_ephemeral_resource::Request {
            type_name: "tftest_token".into(),
            private: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&c.diagnostics), vec!["Close without open"]);
}

#[tokio::test]
async fn stop_provider_answers() {
    let f = fixture().await;
    let r = f.server.stop_provider(Request::new(pb::stop_provider::Request {})).await.unwrap().into_inner();
    assert_eq!(r.error, "");
}

#[tokio::test]
async fn unknown_data_source_and_ephemeral_names_are_diagnostics() {
    let f = fixture().await;
    let r = f
        .server
        .read_data_source(Request::new(pb::read_data_source::Request {
            type_name: "tftest_nope".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&r.diagnostics), vec!["Unknown data source"]);
    let r = f
        .server
        .open_ephemeral_resource(Request::new(pb::open_ephemeral_resource::Request {
            type_name: "tftest_nope".into(),
            config: None,
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&r.diagnostics), vec!["Unknown ephemeral resource"]);
    let r = f
        .server
        .close_ephemeral_resource(Request::new(pb::close_ephemeral_resource::Request {
            type_name: "x".into(),
            private: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&r.diagnostics), vec!["Unknown ephemeral resource"]);
}

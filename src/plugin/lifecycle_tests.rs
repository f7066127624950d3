//! Table tests of the managed-resource rules, on values only: each row is a
//! resource that behaves one way (the script) and one RPC, with the state,
//! identity and diagnostic summaries the rules must give.

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::plugin::diag::PathStep;
use crate::plugin::resource::{Context, StopSignal};
use crate::plugin::schema::{Attribute, IdentitySchema};

/// How the fake resource behaves.
#[derive(Clone, Default)]
struct Script {
    /// The state create/update/read/import leaves (None: leave it as is;
    /// create starts from Null, read and update from their input).
    state: Option<Value>,
    /// The identity returned with it.
    identity: Option<Value>,
    /// The operation reports an error.
    fails: bool,
    /// ModifyPlan sets this plan and these replacement paths.
    plan: Option<Value>,
    replace: Vec<AttributePath>,
}

struct Fake(Script);

fn err(d: &mut Diagnostics, fails: bool) {
    if fails {
        d.error("Backend failed", "scripted failure");
    }
}

#[async_trait]
impl Resource<()> for Fake {
    fn type_name(&self) -> &'static str {
        "fake_thing"
    }
    fn schema(&self) -> Schema {
        schema()
    }
    fn identity_schema(&self) -> Option<IdentitySchema> {
        None
    }
    async fn modify_plan(&self, _: &Context<()>, _: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if let Some(p) = &self.0.plan {
            resp.plan = p.clone();
        }
        resp.requires_replace.extend(self.0.replace.iter().cloned());
    }
    async fn create(&self, _: &Context<()>, _: CreateRequest, resp: &mut ApplyResponse) {
        self.leave(&mut resp.state, &mut resp.identity, &mut resp.diags);
    }
    async fn read(&self, _: &Context<()>, _: ReadRequest, resp: &mut ReadResponse) {
        self.leave(&mut resp.state, &mut resp.identity, &mut resp.diags);
    }
    async fn update(&self, _: &Context<()>, _: UpdateRequest, resp: &mut ApplyResponse) {
        self.leave(&mut resp.state, &mut resp.identity, &mut resp.diags);
    }
    async fn delete(&self, _: &Context<()>, _: DeleteRequest, diags: &mut Diagnostics) {
        err(diags, self.0.fails);
    }
    async fn import(&self, _: &Context<()>, _: ImportRequest, resp: &mut ImportResponse) {
        self.leave(&mut resp.state, &mut resp.identity, &mut resp.diags);
    }
}

impl Fake {
    fn leave(&self, state: &mut Value, identity: &mut Option<Value>, diags: &mut Diagnostics) {
        if let Some(s) = &self.0.state {
            *state = s.clone();
        }
        if self.0.identity.is_some() {
            identity.clone_from(&self.0.identity);
        }
        err(diags, self.0.fails);
    }
}

fn schema() -> Schema {
    Schema::new(
        "fake",
        vec![
            Attribute::string("id").computed().use_state_for_unknown().description("id"),
            Attribute::string("name").required().requires_replace().description("name"),
            Attribute::string("password").optional().write_only().description("pw"),
        ],
    )
}

fn obj(id: Value, name: &str, password: Value) -> Value {
    Value::object([("id", id), ("name", Value::from(name)), ("password", password)])
}

fn thing(name: &str) -> Value {
    obj("i-1".into(), name, Value::Null)
}

fn ident() -> Value {
    Value::object([("id", Value::from("i-1"))])
}

enum Op {
    Plan { prior: Value, proposed: Value },
    Apply { prior: Value, planned: Value, prior_identity: Option<Value> },
    Read { state: Value, identity: Option<Value> },
    Import,
}

struct Case {
    name: &'static str,
    has_identity: bool,
    script: Script,
    op: Op,
    /// Expected state (or plan); `None` for an import that returns nothing.
    state: Option<Value>,
    identity: Option<Value>,
    replace: Vec<AttributePath>,
    summaries: &'static [&'static str],
}

fn case(name: &'static str, op: Op, script: Script, state: Option<Value>) -> Case {
    Case { name, has_identity: false, script, op, state, identity: None, replace: Vec::new(), summaries: &[] }
}

impl Case {
    fn identity(mut self, has: bool, expect: Option<Value>) -> Case {
        self.has_identity = has;
        self.identity = expect;
        self
    }
    fn says(mut self, summaries: &'static [&'static str]) -> Case {
        self.summaries = summaries;
        self
    }
    fn replaces(mut self, paths: Vec<AttributePath>) -> Case {
        self.replace = paths;
        self
    }
}

fn cases() -> Vec<Case> {
    let fails = Script { fails: true, ..Script::default() };
    let makes = |v: Value| Script { state: Some(v), ..Script::default() };
    let with_unknown = obj(Value::Unknown, "a", Value::Null);
    let with_secret = obj("i-1".into(), "a", "hunter2".into());
    let a = AttributePath::attr("name");
    let b = AttributePath::attr("id");
    vec![
        case(
            "a destroy plan stays null whatever ModifyPlan did",
            Op::Plan { prior: thing("a"), proposed: Value::Null },
            Script { plan: Some(thing("b")), replace: vec![a.clone()], ..Script::default() },
            Some(Value::Null),
        ),
        case(
            "replacement paths come back sorted and once each",
            Op::Plan { prior: thing("a"), proposed: obj(Value::Unknown, "b", Value::Null) },
            Script { replace: vec![a.clone(), b.clone(), a.clone()], ..Script::default() },
            Some(obj(Value::Unknown, "b", Value::Null)),
        )
        .replaces(vec![b.clone(), a.clone()]),
        case(
            "a delete that succeeds leaves no state and no identity",
            Op::Apply { prior: thing("a"), planned: Value::Null, prior_identity: Some(ident()) },
            Script::default(),
            Some(Value::Null),
        )
        .identity(true, None),
        case(
            "a delete that fails keeps the object and its identity",
            Op::Apply { prior: thing("a"), planned: Value::Null, prior_identity: Some(ident()) },
            fails.clone(),
            Some(thing("a")),
        )
        .identity(true, Some(ident()))
        .says(&["Backend failed"]),
        case(
            "a create that returns nothing and no error is a provider bug",
            Op::Apply { prior: Value::Null, planned: thing("a"), prior_identity: None },
            Script::default(),
            Some(Value::Null),
        )
        .says(&["Missing state after create"]),
        case(
            "a create that fails before making anything says only its error",
            Op::Apply { prior: Value::Null, planned: thing("a"), prior_identity: None },
            fails.clone(),
            Some(Value::Null),
        )
        .says(&["Backend failed"]),
        case(
            "a create that made its object and then failed keeps it in state",
            Op::Apply { prior: Value::Null, planned: thing("a"), prior_identity: None },
            Script { state: Some(thing("a")), fails: true, ..Script::default() },
            Some(thing("a")),
        )
        .says(&["Backend failed"]),
        case(
            "write-only values never reach state after create",
            Op::Apply { prior: Value::Null, planned: with_secret.clone(), prior_identity: None },
            makes(with_secret.clone()),
            Some(thing("a")),
        ),
        case(
            "an unknown left after apply becomes null with an error at its path",
            Op::Apply { prior: Value::Null, planned: with_unknown.clone(), prior_identity: None },
            makes(with_unknown.clone()),
            Some(obj(Value::Null, "a", Value::Null)),
        )
        .says(&["Provider returned an unknown value after apply"]),
        case(
            "a resource with an identity must return one with its object",
            Op::Apply { prior: Value::Null, planned: thing("a"), prior_identity: None },
            makes(thing("a")),
            Some(thing("a")),
        )
        .identity(true, None)
        .says(&["Missing resource identity"]),
        case(
            "an identity from a resource without an identity schema is dropped",
            Op::Apply { prior: Value::Null, planned: thing("a"), prior_identity: None },
            Script { state: Some(thing("a")), identity: Some(ident()), ..Script::default() },
            Some(thing("a")),
        ),
        case(
            "an update keeps the prior identity when the resource sets none",
            Op::Apply { prior: thing("a"), planned: thing("b"), prior_identity: Some(ident()) },
            Script::default(),
            Some(thing("b")),
        )
        .identity(true, Some(ident())),
        case(
            "a failed update returns what the resource left, with its error",
            Op::Apply { prior: thing("a"), planned: thing("b"), prior_identity: None },
            Script { state: Some(thing("a")), fails: true, ..Script::default() },
            Some(thing("a")),
        )
        .says(&["Backend failed"]),
        case(
            "a read that finds the object gone needs no identity",
            Op::Read { state: thing("a"), identity: None },
            makes(Value::Null),
            Some(Value::Null),
        )
        .identity(true, None),
        case(
            "write-only values are nulled after read too",
            Op::Read { state: thing("a"), identity: Some(ident()) },
            makes(with_secret),
            Some(thing("a")),
        )
        .identity(true, Some(ident())),
        case(
            "an unknown left after read is an error",
            Op::Read { state: thing("a"), identity: None },
            makes(with_unknown),
            Some(obj(Value::Null, "a", Value::Null)),
        )
        .says(&["Provider returned an unknown value after read"]),
        case("an import that finds nothing is a provider bug", Op::Import, Script::default(), None)
            .says(&["Import produced no state"]),
        case("an import that fails returns nothing but its error", Op::Import, fails, None).says(&["Backend failed"]),
        case(
            "an import of a resource with an identity returns it",
            Op::Import,
            Script { state: Some(thing("a")), identity: Some(ident()), ..Script::default() },
            Some(thing("a")),
        )
        .identity(true, Some(ident())),
        case(
            "an imported object without its identity is a provider bug",
            Op::Import,
            makes(thing("a")),
            Some(thing("a")),
        )
        .identity(true, None)
        .says(&["Missing resource identity"]),
    ]
}

#[tokio::test]
async fn the_rules_table() {
    let ctx = Context { data: Arc::new(()), stop: StopSignal::never() };
    let schema = schema();
    let mut failures = Vec::new();
    for c in cases() {
        let fake = Fake(c.script.clone());
        let t = Target { imp: &fake, schema: &schema, has_identity: c.has_identity };
        let mut diags = Diagnostics::new();
        let (state, identity, replace) = match c.op {
            Op::Plan { prior, proposed } => {
                let config = proposed.clone();
                let p = plan(&t, &ctx, prior, proposed, config, Vec::new(), &mut diags).await;
                (Some(p.plan), None, p.requires_replace)
            }
            Op::Apply { prior, planned, prior_identity } => {
                let config = planned.clone();
                let a = Apply { prior, planned, config, planned_private: Vec::new(), prior_identity };
                let o = apply(&t, &ctx, a, &mut diags).await;
                (Some(o.state), o.identity, Vec::new())
            }
            Op::Read { state, identity } => {
                let o = read(&t, &ctx, state, Vec::new(), identity, &mut diags).await;
                (Some(o.state), o.identity, Vec::new())
            }
            Op::Import => match import(&t, &ctx, "i-1".into(), None, &mut diags).await {
                Some(o) => (Some(o.state), o.identity, Vec::new()),
                None => (None, None, Vec::new()),
            },
        };
        let summaries: Vec<&str> = diags.0.iter().map(|d| d.summary.as_str()).collect();
        if state != c.state || identity != c.identity || replace != c.replace || summaries != c.summaries {
            failures.push(format!(
                "{}:\n  state {state:?} (want {:?})\n  identity {identity:?} (want {:?})\n  replace {replace:?} (want {:?})\n  diags {summaries:?} (want {:?})",
                c.name, c.state, c.identity, c.replace, c.summaries
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_paths_name_the_attribute() {
    let schema = schema();
    let fake = Fake(Script::default());
    let t = Target { imp: &fake, schema: &schema, has_identity: false };
    let mut diags = Diagnostics::new();
    let o = finish(&t, obj(Value::Unknown, "a", Value::Null), None, Vec::new(), "apply", &mut diags);
    assert_eq!(o.state, obj(Value::Null, "a", Value::Null));
    let path = diags.0[0].path.clone().unwrap();
    assert_eq!(path.0, vec![PathStep::Attr("id".into())]);
}

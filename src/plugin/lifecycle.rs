//! The semantic layer of the managed-resource RPCs: the protocol's rules on
//! decoded [`Value`]s, apart from the wire. `server.rs` decodes a request,
//! calls one of these, and encodes what it returns; the rules themselves
//! (a null plan is a delete, a failed delete keeps the object, a create must
//! return state, write-only attributes never reach state, no unknown after
//! apply or read, a resource with an identity always returns one) live here,
//! where the table tests below pin them without any protobuf.

use super::diag::{AttributePath, Diagnostic, Diagnostics};
use super::plan;
use super::resource::{
    ApplyResponse, Context, CreateRequest, DeleteRequest, ImportRequest, ImportResponse, ModifyPlanRequest,
    ModifyPlanResponse, ReadRequest, ReadResponse, Resource, UpdateRequest,
};
use super::schema::Schema;
use super::value::Value;

/// A resource as the semantic layer sees it.
pub struct Target<'a, D: Send + Sync + 'static> {
    /// The implementation.
    pub imp: &'a dyn Resource<D>,
    /// Its schema (write-only attributes, plan modifiers).
    pub schema: &'a Schema,
    /// Whether it has an identity schema.
    pub has_identity: bool,
}

/// What a resource returns from apply, read or import, after the rules.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The new state (Null: the object is gone).
    pub state: Value,
    /// The new identity; `None` for a resource without one, or when the
    /// state is Null.
    pub identity: Option<Value>,
    /// Private bytes to store with the state.
    pub private: Vec<u8>,
}

/// What a plan returns.
#[derive(Debug, Default)]
pub struct Planned {
    /// The planned state (Null: destroy).
    pub plan: Value,
    /// Sorted, deduplicated replacement paths (empty for a destroy).
    pub requires_replace: Vec<AttributePath>,
    /// Private bytes for apply.
    pub private: Vec<u8>,
}

/// PlanResourceChange: the framework's plan steps, then the resource's own
/// `ModifyPlan`. A destroy (`proposed` Null) stays a destroy whatever
/// `ModifyPlan` did, and has no replacement paths.
pub async fn plan<D: Send + Sync + 'static>(
    t: &Target<'_, D>,
    ctx: &Context<D>,
    prior: Value,
    proposed: Value,
    config: Value,
    prior_private: Vec<u8>,
    diags: &mut Diagnostics,
) -> Planned {
    let destroy = proposed.is_null();
    let (planned, replace) =
        if destroy { (Value::Null, Vec::new()) } else { plan::plan_attributes(t.schema, &prior, &proposed, &config) };
    let req = ModifyPlanRequest { config, prior, prior_private: prior_private.clone() };
    let mut resp = ModifyPlanResponse {
        plan: planned,
        requires_replace: replace,
        private: prior_private,
        diags: Diagnostics::new(),
    };
    t.imp.modify_plan(ctx, &req, &mut resp).await;
    diags.extend(std::mem::take(&mut resp.diags));
    if destroy {
        resp.plan = Value::Null;
        resp.requires_replace.clear();
    }
    Planned {
        plan: resp.plan,
        requires_replace: plan::finish_requires_replace(resp.requires_replace),
        private: resp.private,
    }
}

/// The inputs of ApplyResourceChange, decoded.
pub struct Apply {
    /// Prior state (Null: create).
    pub prior: Value,
    /// Planned state (Null: delete).
    pub planned: Value,
    /// The configuration.
    pub config: Value,
    /// Private bytes from the plan.
    pub planned_private: Vec<u8>,
    /// The identity planned (the prior one).
    pub prior_identity: Option<Value>,
}

/// ApplyResourceChange: delete on a null plan (a failed delete keeps the
/// object and its identity in state), create on a null prior (which must
/// return state or an error), update otherwise.
pub async fn apply<D: Send + Sync + 'static>(
    t: &Target<'_, D>,
    ctx: &Context<D>,
    a: Apply,
    diags: &mut Diagnostics,
) -> Outcome {
    if a.planned.is_null() {
        let mut d = Diagnostics::new();
        t.imp.delete(ctx, DeleteRequest { prior: a.prior.clone(), private: a.planned_private }, &mut d).await;
        let failed = d.has_errors();
        diags.extend(d);
        return if failed {
            // The object still exists: keep it, and what identifies it.
            Outcome { state: a.prior, identity: a.prior_identity.filter(|_| t.has_identity), private: Vec::new() }
        } else {
            Outcome::default()
        };
    }
    let mut resp = ApplyResponse {
        state: a.planned.clone(),
        private: a.planned_private.clone(),
        identity: a.prior_identity.clone(),
        diags: Diagnostics::new(),
    };
    if a.prior.is_null() {
        resp.state = Value::Null;
        let req = CreateRequest { config: a.config, planned: a.planned, planned_private: a.planned_private };
        t.imp.create(ctx, req, &mut resp).await;
        if resp.state.is_null() && !resp.diags.has_errors() {
            resp.diags.error(
                "Missing state after create",
                "The provider created nothing and reported no error. This is a bug in the provider.",
            );
        }
    } else {
        let req = UpdateRequest {
            config: a.config,
            planned: a.planned,
            prior: a.prior,
            planned_private: a.planned_private,
            prior_identity: a.prior_identity,
        };
        t.imp.update(ctx, req, &mut resp).await;
    }
    diags.extend(std::mem::take(&mut resp.diags));
    finish(t, resp.state, resp.identity, resp.private, "apply", diags)
}

/// ReadResource: the resource refreshes its state (Null: the object is gone).
pub async fn read<D: Send + Sync + 'static>(
    t: &Target<'_, D>,
    ctx: &Context<D>,
    state: Value,
    private: Vec<u8>,
    identity: Option<Value>,
    diags: &mut Diagnostics,
) -> Outcome {
    let mut resp = ReadResponse {
        state: state.clone(),
        private: private.clone(),
        identity: identity.clone(),
        diags: Diagnostics::new(),
    };
    t.imp.read(ctx, ReadRequest { state, private, identity }, &mut resp).await;
    diags.extend(std::mem::take(&mut resp.diags));
    finish(t, resp.state, resp.identity, resp.private, "read", diags)
}

/// ImportResourceState: one object, which must have state (and an identity
/// when the resource has one); nothing is returned after an error.
pub async fn import<D: Send + Sync + 'static>(
    t: &Target<'_, D>,
    ctx: &Context<D>,
    id: String,
    identity: Option<Value>,
    diags: &mut Diagnostics,
) -> Option<Outcome> {
    let mut resp = ImportResponse::default();
    t.imp.import(ctx, ImportRequest { id, identity }, &mut resp).await;
    diags.extend(std::mem::take(&mut resp.diags));
    if diags.has_errors() {
        return None;
    }
    if resp.state.is_null() {
        diags.error("Import produced no state", "The provider imported nothing. This is a bug in the provider.");
        return None;
    }
    let identity = checked_identity(t, resp.identity, false, diags);
    Some(Outcome { state: resp.state, identity, private: resp.private })
}

/// The rules every returned state passes: write-only attributes nulled, no
/// unknowns, an identity wherever there is an object.
fn finish<D: Send + Sync + 'static>(
    t: &Target<'_, D>,
    mut state: Value,
    identity: Option<Value>,
    private: Vec<u8>,
    what: &str,
    diags: &mut Diagnostics,
) -> Outcome {
    plan::null_write_only(&t.schema.block, &mut state);
    reject_unknowns(&mut state, what, diags);
    let identity = checked_identity(t, identity, state.is_null(), diags);
    Outcome { state, identity, private }
}

/// A resource with an identity schema returns an identity with every object;
/// one without has none to return.
fn checked_identity<D: Send + Sync + 'static>(
    t: &Target<'_, D>,
    identity: Option<Value>,
    state_null: bool,
    diags: &mut Diagnostics,
) -> Option<Value> {
    if !t.has_identity {
        return None;
    }
    if identity.is_none() && !state_null {
        diags.error(
            "Missing resource identity",
            format!("The provider returned no identity for {}. This is a bug in the provider.", t.imp.type_name()),
        );
    }
    identity
}

/// Replaces unknowns a provider left in a result with nulls, with an error
/// naming each path (also used for data sources and ephemeral results).
pub fn reject_unknowns(v: &mut Value, what: &str, diags: &mut Diagnostics) {
    for p in plan::take_unknowns(v) {
        diags.push(
            Diagnostic::error(
                format!("Provider returned an unknown value after {what}"),
                "Every value must be known once the operation has run. This is a bug in the provider; please report it.",
            )
            .at(p),
        );
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;

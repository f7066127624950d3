//! `proxtalos_pool` (resource): a PVE resource pool (`/pools`), the group
//! VMs join with `proxtalos_vm.pool` so that permissions and backup jobs
//! can name the cluster once. The id is the pool (a new id is a new pool);
//! the comment changes in place and is read back for drift. PVE refuses to
//! delete a pool that still has members: Terraform destroys the VMs that
//! name the pool first, and a VM put there by hand is named in the error.
//! Import by id: `terraform import proxtalos_pool.talos talos`.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{
    ApplyResponse, Attribute, AttributePath, Context, CreateRequest, DeleteRequest, Diagnostics, IdentityAttribute,
    IdentitySchema, ImportRequest, ImportResponse, ReadRequest, ReadResponse, Resource, Schema, Type, UpdateRequest,
    ValidateRequest, Value,
};
use crate::proxmox::pools::{self, Pool};
use crate::proxmox::{Client, Error};
use crate::resources::shared::common::null_object;
use crate::resources::shared::pve::{client, err, set_text, timed};

/// Default time for each operation (each is one or two API calls).
const TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// The resource.
#[derive(Debug, Default)]
pub struct PoolResource;

fn schema() -> Schema {
    Schema::new(
        "A Proxmox VE resource pool. VMs join it with `proxtalos_vm`'s `pool`; PVE's permissions (`/pool/<id>`) \
and backup jobs can then name the whole cluster. Destroying it needs it empty: Terraform removes the VMs that name \
it first.",
        vec![
            Attribute::string("pool_id").required().requires_replace().description(
                "The pool id: up to three `/`-separated levels (`lab/talos`; the parent must exist) of letters, \
digits, `.`, `-` and `_`. A new id is a new pool; PVE deletes only an empty one, so with VMs in it add \
`lifecycle { create_before_destroy = true }` (the VMs move to the new pool first).",
            ),
            Attribute::string("comment").optional().description("PVE's comment on the pool. In place."),
        ],
    )
    .blocks(vec![timeouts::block(&[
        (Operation::Create, TIMEOUT),
        (Operation::Read, TIMEOUT),
        (Operation::Update, TIMEOUT),
        (Operation::Delete, TIMEOUT),
    ])])
}

fn identity(pool_id: &str) -> Value {
    Value::object([("pool_id", Value::string(pool_id))])
}

/// The pool, or `None` when PVE has no pool of that id.
async fn fetch(c: &Client, pool_id: &str) -> Result<Option<Pool>, Error> {
    match c.execute_as::<Vec<Pool>>(&pools::get(pool_id)).await {
        Ok(list) => Ok(list.into_iter().next()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Resource<ProxtalosData> for PoolResource {
    fn type_name(&self) -> &'static str {
        "proxtalos_pool"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema {
            version: 0,
            attributes: vec![IdentityAttribute::required("pool_id", Type::String, "The pool id.")],
        })
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        timeouts::validate(&req.config, diags);
        if let Some(why) = req.config.attr("pool_id").as_str().and_then(pools::id_problem) {
            diags.error_at(
                AttributePath::attr("pool_id"),
                "Invalid pool id",
                format!("{why}, as PVE would refuse it."),
            );
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        resp.state = Value::Null;
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some(id) = req.planned.attr("pool_id").as_str().map(str::to_string) else {
            return resp.diags.error("Missing pool id", "`pool_id` is known at apply.");
        };
        let comment = req.planned.attr("comment").as_str().filter(|c| !c.is_empty()).map(str::to_string);
        let made = timed(
            &req.planned,
            Operation::Create,
            TIMEOUT,
            "create the pool",
            c.execute(&pools::create(&id, comment.as_deref())),
        )
        .await;
        match made {
            Ok(_) => {}
            Err(e) if e.api_kind() == Some(crate::proxmox::ApiErrorKind::Conflict) => {
                return resp.diags.error(
                    "The pool already exists",
                    format!(
                        "{}. To manage it here: `terraform import {} {id}`.",
                        crate::plugin::diag::error_chain(&e),
                        "proxtalos_pool.<name>"
                    ),
                );
            }
            Err(e) => return err(&mut resp.diags, "Cannot create the pool", &e),
        }
        resp.identity = Some(identity(&id));
        resp.state = req.planned;
    }

    async fn read(&self, ctx: &Context<ProxtalosData>, req: ReadRequest, resp: &mut ReadResponse) {
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some(id) = req.state.attr("pool_id").as_str().map(str::to_string) else {
            return resp.diags.error("Incomplete state", "The state has no pool_id.");
        };
        match timed(&req.state, Operation::Read, TIMEOUT, "read the pool", fetch(&c, &id)).await {
            Ok(Some(pool)) => {
                let mut state = req.state.clone();
                set_text(&mut state, "comment", pool.comment.as_deref());
                resp.identity = Some(identity(&id));
                resp.state = state;
            }
            Ok(None) => resp.state = Value::Null,
            Err(e) => err(&mut resp.diags, "Cannot read the pool", &e),
        }
    }

    async fn update(&self, ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        resp.state = req.prior.clone();
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some(id) = req.planned.attr("pool_id").as_str().map(str::to_string) else { return };
        resp.identity = Some(identity(&id));
        if req.prior.attr("comment") != req.planned.attr("comment") {
            let comment = req.planned.attr("comment").as_str().unwrap_or("").to_string();
            let set = pools::set_comment(&id, &comment);
            if let Err(e) = timed(&req.planned, Operation::Update, TIMEOUT, "change the comment", c.execute(&set)).await
            {
                return err(&mut resp.diags, "Cannot change the pool's comment", &e);
            }
        }
        resp.state = req.planned;
    }

    async fn delete(&self, ctx: &Context<ProxtalosData>, req: DeleteRequest, diags: &mut Diagnostics) {
        let Some(c) = client(ctx, diags) else { return };
        let Some(id) = req.prior.attr("pool_id").as_str().map(str::to_string) else { return };
        match timed(&req.prior, Operation::Delete, TIMEOUT, "delete the pool", c.execute(&pools::delete(&id))).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                let members = match fetch(&c, &id).await {
                    Ok(Some(p)) => p.members.iter().filter_map(|m| m.vmid).map(|v| v.to_string()).collect(),
                    _ => Vec::new(),
                };
                let mut detail = crate::plugin::diag::error_chain(&e);
                if !members.is_empty() {
                    detail.push_str(&format!(
                        "\nVMs still in the pool: {}. Take them out (`pool = \"\"` on their `proxtalos_vm`, or in \
PVE) or destroy them, then destroy the pool again.",
                        members.join(", ")
                    ));
                }
                diags.error("Cannot delete the pool", detail);
            }
        }
    }

    async fn import(&self, ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        let id = match &req.identity {
            Some(i) => i.attr("pool_id").as_str().unwrap_or_default().to_string(),
            None => req.id.trim().to_string(),
        };
        if let Some(why) = pools::id_problem(&id) {
            return resp.diags.error("Invalid import id", format!("The import id is a pool id: {why}."));
        }
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        match fetch(&c, &id).await {
            Ok(Some(pool)) => {
                let mut state = null_object(&schema().value_type());
                state.set_attr("pool_id", Value::string(id.clone()));
                set_text(&mut state, "comment", pool.comment.as_deref());
                resp.identity = Some(identity(&id));
                resp.state = state;
            }
            Ok(None) => resp.diags.error("Cannot import", format!("PVE has no pool {id:?}.")),
            Err(e) => err(&mut resp.diags, "Cannot import", &e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_consistent() {
        assert!(schema().check().is_empty(), "{:?}", schema().check());
    }

    #[test]
    fn comments_empty_and_none_are_one() {
        let mut s = null_object(&schema().value_type());
        s.set_attr("comment", Value::string(""));
        set_text(&mut s, "comment", None);
        assert_eq!(s.attr("comment").as_str(), Some(""));
        set_text(&mut s, "comment", Some("k8s"));
        assert_eq!(s.attr("comment").as_str(), Some("k8s"));
        set_text(&mut s, "comment", Some(""));
        assert!(s.attr("comment").is_null());
    }

    #[test]
    fn bad_ids_name_the_attribute() {
        let mut c = null_object(&schema().value_type());
        c.set_attr("pool_id", Value::string("a/b/c/d"));
        let mut d = Diagnostics::new();
        PoolResource.validate_config(&ValidateRequest { config: c }, &mut d);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].path.as_ref().map(ToString::to_string).as_deref(), Some("pool_id"));
        assert!(d.0[0].detail.contains("nested too deeply"), "{}", d.0[0].detail);
    }
}

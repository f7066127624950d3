//! List resources (protocol 6.10, Terraform ≥ 1.14): `terraform query`
//! reads `list "<type>" "<name>" { provider = …; config { … } }` blocks from
//! `.tfquery.hcl` files and asks the provider for the existing objects of a
//! managed resource type. Each result carries the resource's identity (so
//! `terraform query -generate-config-out=FILE` can write an `import` block),
//! a display name, and, when asked (`include_resource = true`), the full
//! object as an import and a read would give it.
//!
//! Facts from Terraform 1.14–1.15 (`internal/plugin6/grpc_provider.go`
//! `ListResource`, `internal/plugin6/convert/schema.go`
//! `ProtoToListSchema`): the list schema's attributes are the `config`
//! block's (Terraform adds the block itself); `limit` (default 100) and
//! `include_resource` are Terraform's, not ours; the managed resource of
//! the same name must have an identity schema; every event must carry an
//! identity; an error diagnostic ends the whole list; and Terraform stops
//! reading once it has `limit` results.

use async_trait::async_trait;

use super::diag::Diagnostics;
use super::resource::StopSignal;
use super::schema::Schema;
use super::value::Value;

/// One object found.
#[derive(Debug)]
pub struct ListItem {
    /// Its identity, in the managed resource's identity schema.
    pub identity: Value,
    /// A name for people (`terraform query` prints it beside the identity).
    pub display_name: String,
    /// The object in the managed resource's schema (only when Terraform
    /// asked for it).
    pub object: Option<Value>,
    /// Warnings about this object.
    pub diags: Diagnostics,
}

/// What Terraform asked for.
pub struct ListRequest {
    /// The `config` block.
    pub config: Value,
    /// Whether each item should carry the full object.
    pub include_resource: bool,
    /// How many items Terraform reads at most.
    pub limit: usize,
    /// Ctrl-C.
    pub stop: StopSignal,
}

/// Where a list sends its items, one at a time (Terraform shows them as
/// they come).
pub struct ListSink {
    tx: tokio::sync::mpsc::Sender<ListItem>,
}

impl ListSink {
    /// A sink and the receiving end the server streams from.
    pub fn channel() -> (ListSink, tokio::sync::mpsc::Receiver<ListItem>) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        (ListSink { tx }, rx)
    }

    /// Sends one item. False once Terraform stopped reading (it has enough):
    /// the list should end.
    pub async fn send(&self, item: ListItem) -> bool {
        self.tx.send(item).await.is_ok()
    }
}

/// A list resource type (named like the managed resource it lists).
#[async_trait]
pub trait ListResource<D: Send + Sync + 'static>: Send + Sync {
    /// The type name: the managed resource's.
    fn type_name(&self) -> &'static str;
    /// The attributes of the `config` block.
    fn schema(&self) -> Schema;
    /// Checks the `config` block without I/O; values may be unknown.
    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        let _ = (config, diags);
    }
    /// Finds the objects, sending each to `out` until it says stop;
    /// `diags` end the list (an error fails it).
    async fn list(&self, data: &D, req: &ListRequest, out: &ListSink, diags: &mut Diagnostics);
}

/// A configuration for an existing object (`GenerateResourceConfig`): its
/// state with what a configuration cannot set taken out: computed-only
/// attributes, write-only ones, and optional attributes whose value is the
/// schema's default (writing it would only add noise). Nested attributes
/// and blocks are walked the same way. Terraform renders the result as HCL
/// beside an `import` block.
pub fn config_from_state(block: &super::schema::Block, state: &Value) -> Value {
    use super::schema::AttributeType;
    let Value::Object(fields) = state else { return state.clone() };
    let mut out = fields.clone();
    for a in &block.attributes {
        let v = fields.get(&a.name).cloned().unwrap_or(Value::Null);
        let keep = (a.required || a.optional) && !a.write_only && a.default.as_ref() != Some(&v);
        let v = match (&a.ty, keep) {
            (_, false) => Value::Null,
            (AttributeType::Nested { attributes, .. }, true) => {
                let inner = super::schema::Block { attributes: attributes.clone(), ..Default::default() };
                map_objects(&v, &|o| config_from_state(&inner, o))
            }
            (AttributeType::Type(_), true) => v,
        };
        out.insert(a.name.clone(), v);
    }
    for b in &block.blocks {
        if let Some(v) = fields.get(&b.type_name) {
            out.insert(b.type_name.clone(), map_objects(v, &|o| config_from_state(&b.block, o)));
        }
    }
    Value::Object(out)
}

/// `f` applied to an object, or to each object of a collection.
fn map_objects(v: &Value, f: &dyn Fn(&Value) -> Value) -> Value {
    match v {
        Value::Object(_) => f(v),
        Value::List(items) => Value::List(items.iter().map(f).collect()),
        Value::Set(items) => Value::Set(items.iter().map(f).collect()),
        Value::Map(items) => Value::Map(items.iter().map(|(k, o)| (k.clone(), f(o))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plugin::schema::{Attribute, NestedBlock, Nesting};

    #[test]
    fn config_keeps_what_a_configuration_sets() {
        let mut schema = Schema::new(
            "t",
            vec![
                Attribute::string("name").required(),
                Attribute::number("size").optional().default(Value::int(8)),
                Attribute::string("id").computed(),
                Attribute::string("note").optional().computed(),
                Attribute::string("password").optional().write_only(),
                Attribute::nested(
                    "disks",
                    Nesting::List,
                    vec![Attribute::string("iface").required(), Attribute::string("path").computed()],
                )
                .optional(),
            ],
        );
        schema.block.blocks.push(NestedBlock {
            type_name: "timeouts".into(),
            block: crate::plugin::schema::Block {
                attributes: vec![Attribute::string("create").optional()],
                ..Default::default()
            },
            nesting: Nesting::Single,
            min_items: 0,
            max_items: 0,
        });
        let disk = |i: &str| Value::object([("iface", Value::string(i)), ("path", Value::string("/dev/x"))]);
        let state = Value::object([
            ("name", Value::string("a")),
            ("size", Value::int(8)),
            ("id", Value::string("pve1/100")),
            ("note", Value::string("kept")),
            ("password", Value::Null),
            ("disks", Value::List(vec![disk("scsi0")])),
            ("timeouts", Value::Null),
        ]);
        let c = config_from_state(&schema.block, &state);
        assert_eq!(c.attr("name").as_str(), Some("a"));
        assert_eq!(c.attr("size"), &Value::Null, "the default is not written");
        assert_eq!(c.attr("id"), &Value::Null, "computed only");
        assert_eq!(c.attr("note").as_str(), Some("kept"), "optional and computed: kept");
        assert_eq!(c.attr("disks").as_elements().unwrap()[0].attr("path"), &Value::Null);
        assert_eq!(c.attr("disks").as_elements().unwrap()[0].attr("iface").as_str(), Some("scsi0"));
        assert_eq!(c.attr("timeouts"), &Value::Null);
    }
}

//! The Terraform side of proxtalos: our own tfplugin6 layer.
//!
//! - [`value`], [`codec`]: Terraform values and their wire encodings.
//! - [`schema`], [`diag`]: schemas, diagnostics and attribute paths.
//! - [`resource`]: the contracts a provider, resource, data source and
//!   ephemeral resource implement (modelled on terraform-plugin-framework).
//! - [`plan`]: the plan pipeline in the framework's order.
//! - [`lifecycle`]: the protocol's rules for managed resources, on values.
//! - [`server`]: the tonic service, one method per RPC (wire conversion).
//! - [`serve`]: process hygiene: handshake, TLS, unix socket, signals, logging.

pub mod action;
pub mod codec;
pub mod convert;
pub mod diag;
pub mod docs;
pub mod function;
pub mod lifecycle;
pub mod list;
pub mod log;
pub mod plan;
pub mod proto;
pub mod resource;
pub mod schema;
pub mod serve;
pub mod server;
pub mod timeouts;
pub mod value;

pub use action::{Action, Progress};
pub use diag::{AttributePath, Diagnostic, Diagnostics};
pub use function::{Function, FunctionError, Param};
pub use list::{ListItem, ListRequest, ListResource, ListSink};
pub use resource::*;
pub use schema::{Attribute, Block, IdentityAttribute, IdentitySchema, NestedBlock, Nesting, PlanModifier, Schema};
pub use value::{Number, Type, Value};

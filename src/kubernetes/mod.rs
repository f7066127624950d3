//! The provider's Kubernetes client (issue 13 §3): requests built by
//! kube-rs's sans-IO builder (`kube-core`) at the paths of the
//! `k8s-openapi` types, sent by one thin executor ([`Client`]) over reqwest
//! with rustls (ring) and the client certificate of an admin kubeconfig,
//! decoded into [`objects`]: the fields the provider reads.
//!
//! - [`Kubeconfig`]: the parts of a kubeconfig (server, CA, client
//!   certificate and key); errors never echo its content.
//! - [`Client`]: TLS from those parts, `get`/`list` with deadlines, API
//!   errors as Kubernetes `Status` (code, reason, message), and
//!   server-side apply of any object ([`apply_request`]).
//! - [`drain`]: cordon, drain (eviction API, budgets respected) and
//!   uncordon of a Node, as talosctl does around a v1.13+ upgrade.
//! - [`health`]: what `talosctl health` checks on the Kubernetes side, as
//!   pure functions over a [`health::Snapshot`] (table-tested), and the
//!   calls that take one.

mod apply;
mod client;
pub mod drain;
mod error;
pub mod health;
mod kubeconfig;
pub mod objects;

pub use apply::{Discovered, Placement, apply_request, apply_request_at, placement_in};
pub use client::{Client, Timeouts};
pub use drain::DrainOptions;
pub use error::Error;
pub use kubeconfig::{Kubeconfig, KubeconfigError};

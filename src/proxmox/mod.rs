//! A typed Proxmox VE API client. It knows nothing of Terraform.
//!
//! Shape (style-anchors.md §A, §D):
//! - sans-IO request builders per API area ([`qemu`], [`cluster`],
//!   [`tasks`], [`storage`], [`access`], [`pools`], [`mapping`], [`ha`]) return [`Request`] values that unit
//!   tests inspect without a network;
//! - one executor, [`Client`], sends them through a [`Transport`]
//!   ([`ReqwestTransport`]: rustls, explicit CA or `insecure`), adds the API
//!   token or ticket + CSRF (renewed before the 2 h expiry), reads PVE's
//!   envelope and errors, and retries only what is transient;
//! - tasks are awaited with [`Client::wait_task`] (the provider's one
//!   polling helper, [`crate::wait::until`]: a deadline, and an early end
//!   on Terraform's stop request, [`Client::stopping_on`]);
//! - property strings and indexed keys are types ([`propstring`]).

pub mod access;
pub mod ca_pem;
pub mod client;
pub mod cluster;
pub mod error;
pub mod ha;
pub mod lenient;
pub mod mapping;
pub mod pools;
pub mod propstring;
pub mod qemu;
pub mod request;
pub mod storage;
pub mod tasks;
pub mod transport;
pub mod upid;

pub use client::{Client, ClientOptions, Credentials, RetryPolicy, Secret, TaskOutcome};
pub use error::{ApiError, ApiErrorKind, Error, ParseError, Result};
pub use request::{Effect, Method, Request};
pub use transport::{HttpRequest, HttpResponse, ReqwestTransport, TlsSettings, Transport};
pub use upid::Upid;

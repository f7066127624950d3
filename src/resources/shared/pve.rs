//! What the resources for PVE objects share: the configured client (with
//! Terraform's stop request), an API error as a diagnostic (PVE's
//! per-parameter errors included), and one call bounded by an operation's
//! timeout.

use std::future::Future;
use std::time::Duration;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{Context, Diagnostics, Value};
use crate::proxmox::{Client, Error};

/// The PVE client, stopping on Terraform's stop request; an error
/// diagnostic when the provider has no `proxmox` settings.
pub fn client(ctx: &Context<ProxtalosData>, diags: &mut Diagnostics) -> Option<Client> {
    match ctx.data.pve() {
        Ok(c) => Some(c.stopping_on(&ctx.stop)),
        Err(m) => {
            diags.error("Proxmox not configured", m.to_string());
            None
        }
    }
}

/// The error's chain as the detail, then each parameter PVE refused.
pub fn error_detail(e: &Error) -> String {
    let mut detail = crate::plugin::diag::error_chain(e);
    for (field, why) in e.field_errors() {
        detail.push_str(&format!("\nPVE parameter `{field}`: {why}"));
    }
    detail
}

/// An error diagnostic for `e`.
pub fn err(d: &mut Diagnostics, summary: &str, e: &Error) {
    d.error(summary, error_detail(e));
}

/// Runs `f` within `op`'s timeout from `state` (`default` when unset).
pub async fn timed<T>(
    state: &Value,
    op: Operation,
    default: Duration,
    what: &str,
    f: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let limit = timeouts::get(state, op, default);
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| Err(Error::Timeout { what: what.to_string(), secs: limit.as_secs() }))
}

/// Records PVE's text `pve` (a comment, a description) in attribute `key`
/// of `state`: PVE keeps an empty one as none, so the state's `""` or null
/// stays as the configuration wrote it while PVE agrees.
pub fn set_text(state: &mut Value, key: &str, pve: Option<&str>) {
    let pve = pve.filter(|t| !t.is_empty());
    if state.attr(key).as_str().filter(|t| !t.is_empty()) != pve {
        state.set_attr(key, pve.map(Value::string).unwrap_or(Value::Null));
    }
}

/// The attribute paths of `d`'s diagnostics, for tests.
#[cfg(test)]
pub fn paths(d: &Diagnostics) -> Vec<String> {
    d.0.iter().filter_map(|x| x.path.as_ref().map(ToString::to_string)).collect()
}

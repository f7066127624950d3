//! `proxtalos_vm`: a QEMU VM on Proxmox VE. Schema in [`schema`], value ↔
//! config mapping in [`model`], plan-time address handling in [`plan`] and
//! checks in [`validate`]; this file holds the CRUD against the PVE client.

pub mod list;
pub mod model;
pub mod pci;
pub mod placement;
pub mod plan;
pub mod schema;
pub mod validate;

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::plan::take_unknowns;
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::*;
use crate::proxmox::propstring::Drive;
use crate::proxmox::qemu::{self, CloneOptions, Power, VMID_MAX, VMID_MIN};
use crate::proxmox::{Client, Error};
use crate::resources::shared::common::strings;
use crate::resources::shared::preflight;
use crate::resources::shared::pve::client;
use crate::wait::{self, Backoff, Ended, Probe, Wait};
use model::VmSpec;

/// The resource.
#[derive(Debug, Default)]
pub struct VmResource;

/// What an interrupted create left: the VM is in state, tainted.
const CREATE_INTERRUPTED: &str = "The VM exists and is recorded in state as tainted: the next `terraform apply` \
replaces it. To keep it instead, run `terraform untaint` on it and then `terraform apply`.";

fn err(d: &mut Diagnostics, summary: &str, e: &Error) {
    err_then(d, summary, e, "What was done is recorded in state: run `terraform apply` again to finish.")
}

/// [`err`], with what to do next when the error is Terraform's stop request.
fn err_then(d: &mut Diagnostics, summary: &str, e: &Error, next_after_stop: &str) {
    if e.is_stopped() {
        let what = format!("{summary}: {}.", crate::plugin::diag::error_chain(e));
        return d.push(crate::resources::shared::common::interrupted(&what, next_after_stop));
    }
    d.error(summary, crate::resources::shared::pve::error_detail(e));
}

fn identity(node: &str, vmid: i64) -> Value {
    Value::object([("node", Value::string(node)), ("vm_id", Value::int(vmid))])
}

fn ids(state: &Value) -> Option<(String, u32)> {
    let node = state.attr("node").as_str()?.to_string();
    let vmid = u32::try_from(state.attr("vm_id").as_i64()?).ok()?;
    Some((node, vmid))
}

fn list(v: Vec<String>) -> Value {
    Value::List(v.into_iter().map(Value::string).collect())
}

/// Refreshes `state` from PVE: the config with pending changes applied
/// (`/pending`) and the status, two requests (the node is known from state;
/// no cluster listing). Returns false when the VM no longer exists.
async fn refresh(c: &Client, node: &str, vmid: u32, state: &mut Value) -> Result<bool, Error> {
    let (cfg, _pending) = match c.vm_effective_config(node, vmid).await {
        Ok(cfg) => cfg,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e),
    };
    let status = c.vm_status(node, vmid).await?;
    let prior = VmSpec::from_value(state);
    let spec = VmSpec::from_config(&cfg, &prior);
    spec.write(state);
    state.set_attr("started", Value::Bool(status.status == "running"));
    // Addresses: keep what the agent reported at the last apply (a refresh
    // never waits for the agent); else the static cloud-init addresses.
    let from_agent = spec.agent && state.attr("ipv4_addresses").as_elements().is_some_and(|e| !e.is_empty());
    if !from_agent {
        let (v4, v6) = spec.static_addresses();
        state.set_attr("ipv4_addresses", list(v4));
        state.set_attr("ipv6_addresses", list(v6));
    }
    Ok(true)
}

fn skip_address(ip: &str) -> bool {
    let l = ip.to_ascii_lowercase();
    l.starts_with("169.254.") || l.starts_with("fe80") || l.starts_with("127.") || l == "::1"
}

/// What the guest agent said.
enum AgentAddresses {
    /// Addresses on our NICs (IPv4, IPv6).
    Found(Vec<String>, Vec<String>),
    /// None within the wait.
    None,
    /// Terraform asked the provider to stop first.
    Stopped,
}

/// Waits (bounded by `wait`; zero: asks once) for the guest agent to report
/// addresses on our NICs (matched by MAC; loopback and link-local skipped).
async fn agent_addresses(c: &Client, node: &str, vmid: u32, macs: &[String], wait: Duration) -> AgentAddresses {
    let w = Wait::new("guest agent addresses", wait, Backoff::slow(), c.stop());
    let found = wait::until(&w, || async {
        match c.vm_agent_interfaces(node, vmid).await {
            Ok(ifs) => {
                let (mut v4, mut v6) = (Vec::new(), Vec::new());
                for i in ifs {
                    let ours = i.mac.as_ref().is_some_and(|m| macs.iter().any(|x| x.eq_ignore_ascii_case(m)));
                    if !ours {
                        continue;
                    }
                    for a in i.addresses.into_iter().filter(|a| !skip_address(&a.ip)) {
                        if a.kind == "ipv6" {
                            v6.push(a.ip);
                        } else {
                            v4.push(a.ip);
                        }
                    }
                }
                Ok(if v4.is_empty() && v6.is_empty() {
                    Probe::NotYet("no address on the VM's NICs yet".to_string())
                } else {
                    Probe::Ready((v4, v6))
                })
            }
            // Not running yet, agent not up yet: keep trying until the deadline.
            Err(Error::Api(e)) => Ok(Probe::NotYet(e.to_string())),
            Err(e) => Err(e),
        }
    })
    .await;
    match found {
        Ok((v4, v6)) => AgentAddresses::Found(v4, v6),
        Err(Ended::Stopped(_)) => AgentAddresses::Stopped,
        Err(_) => AgentAddresses::None,
    }
}

/// How long a refresh's one look at the guest agent may take.
const AGENT_ONCE: Duration = Duration::from_secs(5);

/// Whether the guest agent can answer: it is on and the VM runs.
fn agent_on(state: &Value) -> bool {
    state.attr("agent").as_bool() == Some(true) && state.attr("started").as_bool() == Some(true)
}

/// A refresh never waits for the agent, but a running VM with the agent on
/// and no address recorded (an apply stopped before the agent answered)
/// asks it once.
async fn agent_addresses_once(c: &Client, node: &str, vmid: u32, state: &mut Value) {
    let empty = |k: &str| state.attr(k).as_elements().is_none_or(<[Value]>::is_empty);
    if !agent_on(state) || !empty("ipv4_addresses") || !empty("ipv6_addresses") {
        return;
    }
    let macs = strings(state.attr("mac_addresses"));
    // One look, bounded: a refresh must not wait out the agent's retries.
    let once = tokio::time::timeout(AGENT_ONCE, agent_addresses(c, node, vmid, &macs, Duration::ZERO)).await;
    if let Ok(AgentAddresses::Found(v4, v6)) = once {
        state.set_attr("ipv4_addresses", list(v4));
        state.set_attr("ipv6_addresses", list(v6));
    }
}

async fn set_agent_ips(c: &Client, node: &str, vmid: u32, state: &mut Value, diags: &mut Diagnostics) {
    let wait = state
        .attr("agent_wait")
        .as_str()
        .and_then(|s| timeouts::parse_duration(s).ok())
        .unwrap_or(Duration::from_secs(60));
    if !agent_on(state) || wait.is_zero() {
        return;
    }
    let macs = strings(state.attr("mac_addresses"));
    match agent_addresses(c, node, vmid, &macs, wait).await {
        AgentAddresses::Found(v4, v6) => {
            state.set_attr("ipv4_addresses", list(v4));
            state.set_attr("ipv6_addresses", list(v6));
        }
        AgentAddresses::Stopped => diags.warning(
            "Stopped before the guest agent reported addresses",
            format!(
                "Terraform asked the provider to stop while it waited for the guest agent of VM {vmid}. The VM is \
                 recorded in state; its agent addresses are read at the next refresh."
            ),
        ),
        AgentAddresses::None => diags.warning(
            "No address from the guest agent",
            format!(
                "The guest agent of VM {vmid} reported no address within agent_wait ({}). Talos needs the qemu-guest-agent system extension; the addresses fall back to the static cloud-init ones.",
                timeouts::format_duration(wait)
            ),
        ),
    }
}

/// Keys an update may delete: only keys this resource manages.
fn deletable(prior: &VmSpec, desired: &VmSpec) -> Vec<String> {
    let mut k: Vec<String> = [
        "description",
        "tags",
        "balloon",
        "nameserver",
        "searchdomain",
        "serial0",
        "protection",
        "startup",
        "numa",
        "hugepages",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let want_nics = desired.nics.as_ref().map_or(0, Vec::len);
    let had_nics = prior.nics.as_ref().map_or(0, Vec::len);
    for i in want_nics..had_nics.max(want_nics) {
        k.push(format!("net{i}"));
    }
    let want_pci = desired.pci.as_ref().map_or(0, Vec::len);
    let had_pci = prior.pci.as_ref().map_or(0, Vec::len);
    for i in want_pci..had_pci.max(want_pci) {
        k.push(format!("hostpci{i}"));
    }
    let want_ips = desired.cloud_init.as_ref().and_then(|c| c.ip_configs.as_ref()).map_or(0, Vec::len);
    for i in want_ips..8 {
        k.push(format!("ipconfig{i}"));
    }
    k.extend(prior.disks.iter().flatten().map(|d| d.interface.clone()));
    if let Some((i, _)) = &prior.cdrom {
        k.push(i.clone());
    }
    k
}

/// Brings an existing VM to `desired`: one config update with the digest,
/// disk growth, power state. Returns whether changes were left pending on a
/// running VM.
async fn converge(
    c: &Client,
    node: &str,
    vmid: u32,
    prior: &VmSpec,
    desired: &VmSpec,
    start: bool,
    timeout: Duration,
) -> Result<bool, Error> {
    // The digest from `config`; the comparison against the config as it
    // will be once pending changes apply (what a refresh shows), so drift
    // that waits in `/pending` on a running VM is seen and undone.
    let cfg = c.vm_config(node, vmid).await?;
    let entries = c.vm_pending(node, vmid).await?;
    let (effective, _) = qemu::effective_config(entries.clone());
    let params = desired.to_params(&effective.values);
    let managed = deletable(prior, desired);
    let (mut set, mut delete) = model::diff(&effective, &params, &managed);
    let (undo_set, undo_delete) = model::undo_pending(&entries, &params, &managed);
    set.retain(|(k, _)| !undo_set.iter().any(|(u, _)| u == k) && !undo_delete.contains(k));
    delete.retain(|k| !undo_delete.contains(k) && !undo_set.iter().any(|(u, _)| u == k));
    // Left pending until a reboot: what is set anew, not what is undone.
    let pending = set.iter().any(|(k, _)| model::is_pending_key(k));
    set.extend(undo_set);
    delete.extend(undo_delete);
    if !set.is_empty() || !delete.is_empty() {
        c.run_task(&qemu::update(node, vmid, &set, &delete, cfg.digest()), timeout).await?;
    }
    // Disks grow, never shrink (a shrink is refused at plan time).
    let mut grown = false;
    for d in desired.disks.iter().flatten() {
        let cur = cfg.get(&d.interface).and_then(|s| s.parse::<Drive>().ok()).and_then(|d| d.size_bytes());
        let (Some(want), Some(cur)) = (d.size, cur) else { continue };
        let want_bytes = u64::try_from(want).unwrap_or(0) << 30;
        if cur > 0 && want_bytes > cur {
            c.run_task(&qemu::resize(node, vmid, &d.interface, &format!("{want}G")), timeout).await?;
            grown = true;
        }
    }
    let _ = grown;
    let running = c.vm_status(node, vmid).await?.status == "running";
    match (running, start) {
        (false, true) => c.vm_power(node, vmid, Power::Start, timeout).await?,
        (true, false) => shutdown(c, node, vmid, Duration::from_secs(60)).await?,
        _ => {}
    }
    Ok(pending && running && start)
}

/// The create request got no clear answer: look whether PVE made the VM.
/// One that exists with our name, or is still being created (`lock:
/// create`, as while a disk import runs), is recorded (tainted, so the next
/// apply replaces it) rather than left behind as an orphan.
async fn maybe_created(
    c: &Client,
    node: &str,
    vmid: u32,
    spec: &VmSpec,
    planned: &Value,
    cause: Error,
    resp: &mut ApplyResponse,
) {
    // A create that did arrive writes its config within moments: look
    // until it shows (or 5 s pass), then take the last answer.
    // Not cut short by stop: this look decides whether a VM is recorded.
    let never = crate::wait::Stop::never();
    let w = Wait::new("the VM's config to appear", Duration::from_secs(5), Backoff::task(), &never);
    let seen = wait::until(&w, || async {
        match c.vm_config(node, vmid).await {
            Err(e) if e.is_not_found() => Ok(Probe::NotYet(e.to_string())),
            other => Ok::<_, Error>(Probe::Ready(other)),
        }
    })
    .await;
    let answer = match seen {
        Ok(answer) => answer,
        // Not seen within 5 s: one last look decides.
        Err(_) => c.vm_config(node, vmid).await,
    };
    match answer {
        Ok(cfg)
            if cfg.values.get("name") == spec.name.as_ref()
                || cfg.values.get("lock").is_some_and(|l| l == "create") =>
        {
            let mut state = planned.clone();
            state.set_attr("vm_id", Value::int(i64::from(vmid)));
            take_unknowns(&mut state);
            resp.identity = Some(identity(node, i64::from(vmid)));
            resp.state = state;
            err(&mut resp.diags, &format!("VM {vmid} was created, but the create request got no clear answer"), &cause);
        }
        Ok(_) => err(
            &mut resp.diags,
            &format!(
                "The create request for VM {vmid} got no clear answer, and VM {vmid} now belongs to something else"
            ),
            &cause,
        ),
        Err(e) if e.is_not_found() => err(&mut resp.diags, "Cannot create the VM (PVE did not create it)", &cause),
        Err(_) => err(
            &mut resp.diags,
            &format!(
                "The create request for VM {vmid} got no clear answer, and PVE cannot say whether the VM exists: check VM {vmid} on node {node}; if it is this one, `terraform import` it"
            ),
            &cause,
        ),
    }
}

/// Before a create (or a change of node, storage or bridge): the names
/// exist on PVE, so a typo is a plan error on its attribute.
async fn preflight_names(data: &ProxtalosData, prior: &Value, plan: &Value, diags: &mut Diagnostics) {
    let Some(node) = plan.attr("node").as_str() else { return };
    let Ok(c) = data.pve() else { return };
    let new_node = prior.is_null() || prior.attr("node") != plan.attr("node");
    if new_node && !preflight::node(data, &c, node, AttributePath::attr("node"), diags).await {
        return;
    }
    let prior_disks = prior.attr("disks").as_elements().unwrap_or_default();
    for (i, d) in plan.attr("disks").as_elements().unwrap_or_default().iter().enumerate() {
        let Some(st) = d.attr("storage").as_str() else { continue };
        let same = prior_disks
            .iter()
            .any(|o| o.attr("interface") == d.attr("interface") && o.attr("storage") == d.attr("storage"));
        if new_node || !same {
            let path = AttributePath::attr("disks").and_index(i as i64).and_attr("storage");
            preflight::storage(data, &c, node, st, "images", path, diags).await;
        }
    }
    if let Some(st) = plan.attr("cloud_init").attr("storage").as_str()
        && (new_node || prior.attr("cloud_init").attr("storage") != plan.attr("cloud_init").attr("storage"))
    {
        let path = AttributePath::attr("cloud_init").and_attr("storage");
        preflight::storage(data, &c, node, st, "images", path, diags).await;
    }
    for attr in ["efi_disk_storage", "tpm_state_storage"] {
        if let Some(st) = plan.attr(attr).as_str()
            && (new_node || prior.attr(attr) != plan.attr(attr))
        {
            preflight::storage(data, &c, node, st, "images", AttributePath::attr(attr), diags).await;
        }
    }
    let prior_nics = prior.attr("network_devices").as_elements().unwrap_or_default();
    for (i, n) in plan.attr("network_devices").as_elements().unwrap_or_default().iter().enumerate() {
        let Some(bridge) = n.attr("bridge").as_str() else { continue };
        if new_node || prior_nics.get(i).map(|o| o.attr("bridge")) != Some(n.attr("bridge")) {
            let path = AttributePath::attr("network_devices").and_index(i as i64).and_attr("bridge");
            preflight::bridge(data, &c, node, bridge, path, diags).await;
        }
    }
}

/// At plan time, a VM left to `placement` has somewhere to go: its
/// candidates exist and one has room (the node itself is chosen at create,
/// with what other creates of the same apply took).
async fn check_placement(data: &ProxtalosData, plan: &Value, diags: &mut Diagnostics) {
    let Some(wanted) = placement::wanted(plan) else { return };
    let Ok(c) = data.pve() else { return };
    let Ok(resources) = data.lookup(&c, &crate::proxmox::cluster::resources()).await else { return };
    if let Err(e) = placement::choose(&resources, &wanted, &[]) {
        diags.push(placement_diag(&e));
    }
}

/// Mapped PCI devices exist on the VM's node ([`pci::mapping_problems`]),
/// from one mapping listing per run; no listing, no check.
async fn check_mappings(data: &ProxtalosData, prior: &Value, plan: &Value, diags: &mut Diagnostics) {
    let mapped =
        plan.attr("pci_devices").as_elements().unwrap_or_default().iter().any(|d| d.attr("mapping").as_str().is_some());
    if !mapped {
        return;
    }
    let Ok(c) = data.pve() else { return };
    let Ok(listing) = data.lookup(&c, &crate::proxmox::mapping::list()).await else { return };
    for (i, why) in pci::mapping_problems(prior, plan, &listing) {
        diags.error_at(
            AttributePath::attr("pci_devices").and_index(i as i64).and_attr("mapping"),
            "PCI mapping not usable on this node",
            why,
        );
    }
}

fn placement_diag(e: &placement::PlacementError) -> crate::plugin::Diagnostic {
    let base = AttributePath::attr("placement");
    let (path, summary) = match e {
        placement::PlacementError::UnknownNode { index, .. } => {
            (base.and_attr("nodes").and_index(*index as i64), "Unknown Proxmox node")
        }
        placement::PlacementError::NoRoom { .. } => (base, "No node has the memory free"),
    };
    crate::plugin::Diagnostic::error(summary, format!("{}: {e}.", path)).at(path)
}

/// At create, the node for a VM left to `placement`: chosen from a fresh
/// `/cluster/resources` and what this process placed, and recorded there
/// (returns the index of the record, to fill in its VMID).
async fn place(
    data: &ProxtalosData,
    c: &Client,
    planned: &Value,
) -> Result<(String, usize), crate::plugin::Diagnostic> {
    let Some(wanted) = placement::wanted(planned) else {
        return Err(crate::plugin::Diagnostic::error(
            "No node",
            "`node` is unknown at create and `placement` is not complete.",
        ));
    };
    let resources = c
        .execute(&crate::proxmox::cluster::resources())
        .await
        .map_err(|e| crate::plugin::Diagnostic::from_error("Cannot read the cluster to place the VM", &e))?;
    let mut placed = data.placements.lock().unwrap_or_else(|e| e.into_inner());
    let node = placement::choose(&resources, &wanted, &placed).map_err(|e| placement_diag(&e))?;
    let written = VmSpec::from_value(planned).tags.unwrap_or_default().join(";");
    let tags = crate::proxmox::propstring::normalize_tags(Some(written.as_str()));
    placed.push(placement::Placed { node: node.clone(), memory_mib: wanted.memory_mib, tags, vmid: None });
    tracing::info!(node = %node, strategy = ?wanted.strategy, "placed the VM");
    Ok((node, placed.len() - 1))
}

/// Before a create or a cdrom change: the ISO is on its storage, else an
/// error on `cdrom.file` instead of PVE's task error half-way through.
/// Checked at apply, not at plan: a `proxtalos_image` plans its id before
/// it downloads the file, so at plan a missing ISO may be one this very
/// apply brings.
async fn iso_present(c: &Client, node: &str, prior: &Value, planned: &Value, diags: &mut Diagnostics) -> bool {
    let file = planned.attr("cdrom").attr("file");
    let Some(volid) = file.as_str() else { return true };
    if prior.attr("cdrom").attr("file") == file {
        return true;
    }
    let mut found = Diagnostics::new();
    preflight::iso(c, node, volid, AttributePath::attr("cdrom").and_attr("file"), &mut found).await;
    let ok = !found.has_errors();
    diags.extend(found);
    ok
}

/// Shutdown with a timeout, then a hard stop if the guest did not go down.
async fn shutdown(c: &Client, node: &str, vmid: u32, timeout: Duration) -> Result<(), Error> {
    match c.vm_power(node, vmid, Power::Shutdown, timeout).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() || e.is_stopped() => Err(e),
        Err(e) => {
            tracing::debug!(vmid, error = %e, "shutdown failed; stopping");
            c.vm_power(node, vmid, Power::Stop, timeout).await
        }
    }
}

/// The pool PVE lists VM `vmid` in (`Value::Null` for none), from the
/// cluster listing this process reads once (a VM's config does not name its
/// pool); `None` when the listing cannot say.
async fn listed_pool(data: &ProxtalosData, c: &Client, vmid: u32) -> Option<Value> {
    let listing = match data.lookup(c, &crate::proxmox::cluster::vm_resources()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(vmid, error = %crate::plugin::diag::error_chain(&e), "no cluster listing: the pool is kept as it was");
            return None;
        }
    };
    use crate::proxmox::lenient::text;
    let item = listing.as_array()?.iter().find(|v| text(&v["vmid"]).and_then(|t| t.parse().ok()) == Some(vmid))?;
    Some(text(&item["pool"]).filter(|p| !p.is_empty()).map(Value::string).unwrap_or(Value::Null))
}

/// Records the listed pool; "in none" stays `""` where the state said so
/// (the configuration's way to ask for no pool), else null.
fn set_pool(state: &mut Value, listed: Value) {
    if listed.is_null() && state.attr("pool").as_str() == Some("") {
        return;
    }
    state.set_attr("pool", listed);
}

/// Moves VM `vmid` from pool `from` to `to` (`""` or none: out of its pool).
/// An answer that it is already so (a plan made without a refresh) is success.
async fn move_pool(c: &Client, vmid: u32, from: Option<&str>, to: Option<&str>) -> Result<(), Error> {
    let (from, to) = (from.filter(|p| !p.is_empty()), to.filter(|p| !p.is_empty()));
    let req = match (from, to) {
        (Some(from), None) => crate::proxmox::pools::remove_vm(from, vmid),
        (_, Some(to)) if from != Some(to) => crate::proxmox::pools::add_vm(to, vmid),
        _ => return Ok(()),
    };
    match c.execute(&req).await {
        Ok(_) => Ok(()),
        Err(Error::Api(e))
            if e.message.contains("is already a pool member") || e.message.contains("is not a pool member") =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Resource<ProxtalosData> for VmResource {
    fn type_name(&self) -> &'static str {
        "proxtalos_vm"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(schema::identity_schema())
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        validate::validate(&req.config, diags);
    }

    async fn modify_plan(&self, ctx: &Context<ProxtalosData>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.plan.is_null() {
            return;
        }
        preflight_names(&ctx.data, &req.prior, &resp.plan, &mut resp.diags).await;
        if req.prior.is_null() {
            check_placement(&ctx.data, &resp.plan, &mut resp.diags).await;
        }
        pci::check_credentials(&req.prior, &resp.plan, ctx.data.proxmox.as_ref().map(|s| &s.auth), &mut resp.diags);
        check_mappings(&ctx.data, &req.prior, &resp.plan, &mut resp.diags).await;
        validate::check_secure_boot(&resp.plan, &mut resp.diags);
        plan::plan_addresses(&req.prior, &mut resp.plan);
        if req.prior.is_null() {
            // A new VM joins only the pool it names, and its EFI disk has
            // no keys unless asked (Talos enrolls its own).
            if req.config.attr("pool").is_null() {
                resp.plan.set_attr("pool", Value::Null);
            }
            // A clone keeps its template's EFI disk: known after apply.
            if req.config.attr("efi_pre_enrolled_keys").is_null() && resp.plan.attr("clone").is_null() {
                resp.plan.set_attr("efi_pre_enrolled_keys", Value::Bool(false));
            }
            return;
        }
        // Only the `timeouts` block changed (e.g. after an import): nothing
        // on PVE changes, so computed values stay known.
        let mut only_timeouts = resp.plan.clone();
        only_timeouts.set_attr("timeouts", req.prior.attr("timeouts").clone());
        if let (Some(p), Some(prior)) = (only_timeouts.attrs_mut(), req.prior.as_map()) {
            for (k, v) in p.iter_mut() {
                if v.is_unknown() {
                    *v = prior.get(k).cloned().unwrap_or(Value::Null);
                }
            }
        }
        if only_timeouts.semantically_equal(&req.prior) {
            let timeouts = resp.plan.attr("timeouts").clone();
            resp.plan = req.prior.clone();
            resp.plan.set_attr("timeouts", timeouts);
            return;
        }
        let prior = req.prior.attr("disks").as_elements().unwrap_or_default().to_vec();
        let planned = resp.plan.attr("disks").as_elements().unwrap_or_default().to_vec();
        for (i, p) in planned.iter().enumerate() {
            let base = AttributePath::attr("disks").and_index(i as i64);
            let Some(old) = prior.iter().find(|o| o.attr("interface") == p.attr("interface")) else { continue };
            if let (Some(a), Some(b)) = (old.attr("size").as_i64(), p.attr("size").as_i64())
                && b < a
            {
                resp.diags.error_at(
                        base.and_attr("size"),
                        "Disks cannot shrink",
                        format!(
                            "{} is {a} GiB; PVE cannot shrink it to {b} GiB. Keep the size, or replace the VM (`terraform apply -replace=...`).",
                            p.attr("interface").as_str().unwrap_or("?")
                        ),
                    );
            }
            if p.attr("size").is_unknown() {
                // Size left to PVE: keep the known one.
                let mut plan_disks = planned.clone();
                if let Some(d) = plan_disks.get_mut(i) {
                    d.set_attr("size", old.attr("size").clone());
                }
                resp.plan.set_attr("disks", Value::List(plan_disks));
            }
            for k in ["storage", "import_from"] {
                let (a, b) = (old.attr(k), p.attr(k));
                if !b.is_unknown() && a != b {
                    resp.requires_replace.push(base.and_attr(k));
                }
            }
        }
        for k in ["storage", "interface"] {
            let (a, b) = (req.prior.attr("cloud_init").attr(k), resp.plan.attr("cloud_init").attr(k));
            if !a.is_null() && !b.is_null() && !b.is_unknown() && a != b {
                resp.requires_replace.push(AttributePath::attr("cloud_init").and_attr(k));
            }
        }
        for k in ["source_vm_id", "full", "storage"] {
            let (a, b) = (req.prior.attr("clone").attr(k), resp.plan.attr("clone").attr(k));
            if !b.is_unknown() && a != b {
                resp.requires_replace.push(AttributePath::attr("clone").and_attr(k));
            }
        }
        // The EFI vars and the TPM state live on their disks: moving them
        // would lose keys and sealed secrets, so a new storage is a new VM.
        for attr in ["efi_disk_storage", "efi_pre_enrolled_keys", "tpm_state_storage"] {
            let (a, b) = (req.prior.attr(attr), resp.plan.attr(attr));
            // An EFI disk's keys matter only where there is an EFI disk.
            let no_efi = attr == "efi_pre_enrolled_keys" && req.prior.attr("efi_disk_storage").is_null();
            if !a.is_null() && !b.is_unknown() && a != b && !no_efi {
                resp.requires_replace.push(AttributePath::attr(attr));
            }
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let mut planned = req.planned.clone();
        let timeout = timeouts::get(&planned, Operation::Create, schema::CREATE_TIMEOUT);
        let mut placed = None;
        let node = match planned.attr("node").as_str() {
            Some(n) => n.to_string(),
            None => match place(&ctx.data, &c, &planned).await {
                Ok((n, i)) => {
                    planned.set_attr("node", Value::string(n.clone()));
                    placed = Some(i);
                    n
                }
                Err(d) => return resp.diags.push(d),
            },
        };
        let fixed = planned.attr("vm_id").as_i64().and_then(|v| u32::try_from(v).ok());
        let spec = VmSpec::from_value(&planned);
        let clone = planned.attr("clone").clone();
        if !iso_present(&c, &node, &Value::Null, &planned, &mut resp.diags).await {
            return;
        }
        let pool = planned.attr("pool").as_str().filter(|p| !p.is_empty()).map(str::to_string);
        let created = if clone.is_null() {
            let mut params: Vec<(String, String)> = spec.to_params(&Default::default()).into_iter().collect();
            if let Some(p) = &pool {
                params.push(("pool".into(), p.clone()));
            }
            c.create_with_vmid(fixed, |id| qemu::create(&node, id, &params)).await
        } else {
            let src = u32::try_from(clone.attr("source_vm_id").as_i64().unwrap_or(0)).unwrap_or(0);
            let opts = CloneOptions {
                name: spec.name.clone(),
                full: clone.attr("full").as_bool(),
                storage: clone.attr("storage").as_str().map(str::to_string),
                target: None,
                pool,
            };
            c.create_with_vmid(fixed, |id| qemu::clone(&node, src, id, &opts)).await
        };
        if let Some(i) = placed
            && let Some(p) = ctx.data.placements.lock().unwrap_or_else(|e| e.into_inner()).get_mut(i)
        {
            p.vmid = match &created {
                Ok((vmid, _)) | Err(Error::MaybeApplied { vmid, .. }) => Some(*vmid),
                // Not created: nothing to hold room for.
                Err(_) => {
                    p.memory_mib = 0;
                    p.tags.clear();
                    None
                }
            };
        }
        let (vmid, upid) = match created {
            Ok(x) => x,
            Err(Error::MaybeApplied { vmid, source }) => {
                return maybe_created(&c, &node, vmid, &spec, &planned, *source, resp).await;
            }
            Err(e) => return err(&mut resp.diags, "Cannot create the VM", &e),
        };
        // From here on the VM may exist: record it before any later step.
        let mut state = planned.clone();
        state.set_attr("vm_id", Value::int(i64::from(vmid)));
        resp.identity = Some(identity(&node, i64::from(vmid)));
        let mut partial = state.clone();
        take_unknowns(&mut partial);
        if let Err(e) = c.wait_task(&upid, timeout).await {
            // A failed create task removes its VM; forget it only when PVE
            // says it is gone. Any other answer (timeout, 5xx) keeps it in
            // state (tainted) rather than risk an orphan.
            let gone = matches!(c.vm_config(&node, vmid).await, Err(ref e) if e.is_not_found());
            resp.state = if gone { Value::Null } else { partial };
            return err_then(&mut resp.diags, "The VM create task failed", &e, CREATE_INTERRUPTED);
        }
        resp.state = partial;
        let start = planned.attr("started").as_bool().unwrap_or(true);
        if let Err(e) = converge(&c, &node, vmid, &spec, &spec, start, timeout).await {
            let _ = refresh(&c, &node, vmid, &mut resp.state).await;
            return err_then(
                &mut resp.diags,
                "The VM exists but could not be configured or started",
                &e,
                CREATE_INTERRUPTED,
            );
        }
        match refresh(&c, &node, vmid, &mut state).await {
            Ok(true) => {}
            Ok(false) => {
                return resp.diags.error("The VM vanished", format!("VM {vmid} disappeared right after create."));
            }
            Err(e) => return err(&mut resp.diags, "Cannot read the new VM", &e),
        }
        // A clone's EFI disk is its template's: PVE cannot change its keys.
        if let Some(want) = planned.attr("efi_pre_enrolled_keys").as_bool()
            && state.attr("efi_pre_enrolled_keys").as_bool() != Some(want)
        {
            resp.diags.error_at(
                AttributePath::attr("efi_pre_enrolled_keys"),
                "The clone's EFI disk has other keys",
                format!(
                    "VM {vmid} was cloned with its template's EFI disk, whose keys are{} pre-enrolled; PVE cannot \
change that on an existing disk. Leave `efi_pre_enrolled_keys` unset to take the template's, or use a template \
whose EFI disk matches. The VM is recorded (tainted): the next apply replaces it.",
                    if want { " not" } else { "" }
                ),
            );
        }
        set_agent_ips(&c, &node, vmid, &mut state, &mut resp.diags).await;
        take_unknowns(&mut state);
        resp.state = state;
    }

    async fn read(&self, ctx: &Context<ProxtalosData>, req: ReadRequest, resp: &mut ReadResponse) {
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some((node, vmid)) = ids(&req.state) else {
            return resp.diags.error("Incomplete state", "The state has no node or vm_id.");
        };
        let mut state = req.state.clone();
        match refresh(&c, &node, vmid, &mut state).await {
            Ok(true) => {
                resp.identity = Some(identity(&node, i64::from(vmid)));
                // Only for a VM whose pool is managed: others cost no listing.
                if !state.attr("pool").is_null()
                    && let Some(pool) = listed_pool(&ctx.data, &c, vmid).await
                {
                    set_pool(&mut state, pool);
                }
                agent_addresses_once(&c, &node, vmid, &mut state).await;
                resp.state = state;
            }
            Ok(false) => resp.state = Value::Null,
            Err(e) => err(&mut resp.diags, "Cannot read the VM", &e),
        }
    }

    async fn update(&self, ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some((node, vmid)) = ids(&req.prior) else {
            return resp.diags.error("Incomplete state", "The state has no node or vm_id.");
        };
        resp.identity = Some(identity(&node, i64::from(vmid)));
        let timeout = timeouts::get(&req.planned, Operation::Update, schema::UPDATE_TIMEOUT);
        let prior = VmSpec::from_value(&req.prior);
        let desired = VmSpec::from_value(&req.planned);
        let start = req.planned.attr("started").as_bool().unwrap_or(true);
        let mut state = req.planned.clone();
        if !iso_present(&c, &node, &req.prior, &req.planned, &mut resp.diags).await {
            resp.state = req.prior;
            return;
        }
        // No pool in state (never read: unset until now) and `""` asked: the
        // VM may still be in one, which only the listing says.
        let mut from = req.prior.attr("pool").as_str().map(str::to_string);
        if from.is_none() && req.planned.attr("pool").as_str() == Some("") {
            from = listed_pool(&ctx.data, &c, vmid).await.and_then(|v| v.as_str().map(str::to_string));
        }
        if let Err(e) = move_pool(&c, vmid, from.as_deref(), req.planned.attr("pool").as_str()).await {
            resp.state = req.prior;
            return err(&mut resp.diags, "Cannot move the VM to its pool", &e);
        }
        match converge(&c, &node, vmid, &prior, &desired, start, timeout).await {
            Ok(true) if req.planned.attr("reboot_after_update").as_bool() == Some(true) => {
                if let Err(e) = c.vm_power(&node, vmid, Power::Reboot, timeout).await {
                    err(&mut resp.diags, "The reboot to apply pending changes failed", &e);
                }
            }
            Ok(true) => resp.diags.warning(
                "Changes pending until the VM reboots",
                format!(
                    "VM {vmid} is running; CPU, memory, machine or controller changes apply at its next reboot. Set `reboot_after_update = true` to reboot automatically."
                ),
            ),
            Ok(false) => {}
            Err(e) => {
                let mut prior_state = req.prior.clone();
                let _ = refresh(&c, &node, vmid, &mut prior_state).await;
                resp.state = prior_state;
                return err(&mut resp.diags, "Cannot update the VM", &e);
            }
        }
        match refresh(&c, &node, vmid, &mut state).await {
            Ok(true) => {}
            Ok(false) => {
                return resp.diags.error("The VM vanished", format!("VM {vmid} disappeared during the update."));
            }
            Err(e) => return err(&mut resp.diags, "Cannot read the VM", &e),
        }
        if req.planned.attr("ipv4_addresses").is_unknown() {
            set_agent_ips(&c, &node, vmid, &mut state, &mut resp.diags).await;
        }
        take_unknowns(&mut state);
        resp.state = state;
    }

    async fn delete(&self, ctx: &Context<ProxtalosData>, req: DeleteRequest, diags: &mut Diagnostics) {
        let Some(c) = client(ctx, diags) else { return };
        let Some((node, vmid)) = ids(&req.prior) else { return };
        let timeout = timeouts::get(&req.prior, Operation::Delete, schema::DELETE_TIMEOUT);
        let result = async {
            let status = c.vm_status(&node, vmid).await?;
            if status.status == "running" {
                shutdown(&c, &node, vmid, (timeout / 4).min(Duration::from_secs(120))).await?;
            }
            c.run_task(&qemu::destroy(&node, vmid), timeout).await.map(|_| ())
        }
        .await;
        match result {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => err_then(
                diags,
                "Cannot delete the VM",
                &e,
                "The VM stays in state: run `terraform destroy` (or `apply`) again to finish deleting it.",
            ),
        }
    }

    async fn import(&self, ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        let (node, vmid) = match &req.identity {
            Some(i) => (i.attr("node").as_str().map(str::to_string), i.attr("vm_id").as_i64()),
            None => match req.id.split_once('/') {
                Some((n, v)) => (Some(n.to_string()), v.parse::<i64>().ok()),
                None => (None, None),
            },
        };
        let (Some(node), Some(vmid)) = (node, vmid) else {
            return resp
                .diags
                .error("Invalid import id", format!("Expected `node/vmid`, e.g. `pve1/100`; got {:?}.", req.id));
        };
        if !validate::valid_node(&node) {
            return resp.diags.error(
                "Invalid import id",
                format!("Expected `node/vmid`, e.g. `pve1/100`; {node:?} in {:?} is not a PVE node name.", req.id),
            );
        }
        let vmid32 = u32::try_from(vmid).ok().filter(|_| validate::valid_vmid(vmid));
        let Some(vmid32) = vmid32 else {
            return resp.diags.error(
                "Invalid import id",
                format!("{vmid} is not a VMID (an integer from {VMID_MIN} to {VMID_MAX})."),
            );
        };
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        if let Some(why) = preflight::node_problem(&ctx.data, &c, &node).await {
            return resp.diags.error("Cannot import", format!("{why} (import id {:?})", req.id));
        }
        let pool = listed_pool(&ctx.data, &c, vmid32).await.and_then(|p| p.as_str().map(str::to_string));
        match imported_state(&c, &node, vmid32, pool).await {
            Ok(Some(state)) => {
                resp.identity = Some(identity(&node, vmid));
                resp.state = state;
            }
            Ok(None) => {
                let elsewhere = match preflight::vm_node(&c, vmid32).await {
                    Some(other) if other != node => format!(" It is on node {other}: import `{other}/{vmid}`."),
                    _ => String::new(),
                };
                return resp
                    .diags
                    .error("Cannot import", format!("VM {vmid} does not exist on node {node}.{elsewhere}"));
            }
            Err(e) => err(&mut resp.diags, "Cannot import", &e),
        }
    }
}

/// The state an import of VM `vmid` on `node` gives (what `terraform
/// import` and a list with `include_resource` show); `None` when there is no
/// such VM.
pub(crate) async fn imported_state(
    c: &Client,
    node: &str,
    vmid: u32,
    pool: Option<String>,
) -> Result<Option<Value>, Error> {
    let mut state = crate::resources::shared::common::null_object(&schema::schema().value_type());
    state.set_attr("node", Value::string(node));
    state.set_attr("pool", pool.map(Value::string).unwrap_or(Value::Null));
    state.set_attr("vm_id", Value::int(i64::from(vmid)));
    // Settings PVE does not store take their defaults, so the next plan is empty.
    state.set_attr("agent_wait", Value::string("60s"));
    state.set_attr("reboot_after_update", Value::Bool(false));
    Ok(refresh(c, node, vmid, &mut state).await?.then_some(state))
}

//! `proxtalos_image`: a Talos image on a PVE storage, fetched by PVE's
//! `download-url` from a URL or from the Talos Image Factory (schematic,
//! version, platform, arch). Every input forces a new image; PVE's limits
//! (no xz, decompression only for `iso`, `import` content needs PVE 8.4 and
//! must be enabled on the storage, file-based storages only) are reported
//! at plan time.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::*;
use crate::proxmox::storage::{self, Download, Volume};
use crate::proxmox::{Client, Error};
use crate::resources::shared::preflight;

/// The resource.
#[derive(Debug, Default)]
pub struct ImageResource;

const CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

fn p(name: &str) -> AttributePath {
    AttributePath::attr(name)
}

fn was_set(prior: &Value, _planned: &Value) -> bool {
    !prior.is_null()
}

/// Source arguments force a new image, except when the prior value is null:
/// an import cannot recover how the file was fetched, and filling those in
/// must not replace the file.
fn replace_if_was_set() -> PlanModifier {
    PlanModifier::RequiresReplaceIf {
        description: "Changing it forces a new image (not when it was unknown after an import).",
        check: was_set,
    }
}

fn schema() -> Schema {
    Schema::new(
        "A Talos image on a Proxmox VE storage, downloaded by PVE itself (`download-url`) from a URL or from the Talos Image Factory. Use its `id` as a VM's `cdrom.file` (content `iso`) or a disk's `import_from` (content `import`). Every argument forces a new image. An existing file with the same name is reused only when `checksum` is given (PVE verifies it); without a checksum it is never adopted.",
        vec![
            Attribute::string("node").required().requires_replace().description("PVE node that downloads the image."),
            Attribute::string("storage").required().requires_replace().description("File-based storage id (e.g. `local`) with the content type enabled."),
            Attribute::string("content")
                .required()
                .requires_replace()
                .description("`iso` (a bootable ISO, for `cdrom`) or `import` (a disk image for `import_from`; needs PVE 8.4+ and `import` in the storage's content types)."),
            Attribute::string("url")
                .optional()
                .computed()
                .modifier(replace_if_was_set())
                .description("Source URL (`http(s)://`). Computed from the Image Factory arguments when those are used instead."),
            Attribute::string("schematic_id").optional().modifier(replace_if_was_set()).description("Image Factory schematic id (64 hex characters)."),
            Attribute::string("talos_version").optional().modifier(replace_if_was_set()).description("Talos version for the Image Factory, e.g. `v1.11.2`."),
            Attribute::string("factory_url").optional().modifier(replace_if_was_set()).description("The Image Factory to download from, e.g. a self-hosted one (`http(s)://host[:port]`); not set: `https://factory.talos.dev`. Usually `proxtalos_image_factory_schematic.<name>.factory_url`."),
            Attribute::string("platform").optional().default("nocloud").modifier(replace_if_was_set()).description("Image Factory platform: `nocloud` (recommended on Proxmox) or `metal`."),
            Attribute::string("arch").optional().default("amd64").modifier(replace_if_was_set()).description("`amd64` or `arm64`."),
            Attribute::bool("secureboot").optional().modifier(replace_if_was_set()).description("With the Image Factory arguments, `true` takes the factory's secure-boot image (`nocloud-amd64-secureboot.iso`): boots only on a VM with `bios = \"ovmf\"` and an EFI disk without pre-enrolled keys (Talos enrolls its own), which `proxtalos_vm` checks at plan time."),
            Attribute::string("file_name")
                .optional()
                .computed()
                .use_state_for_unknown()
                .requires_replace()
                .description("File name on the storage; derived from the URL or the factory arguments when unset. `iso` names end in `.iso`/`.img`; `import` names end in `.raw`, `.qcow2`, `.vmdk` or `.ova`."),
            Attribute::string("checksum").optional().modifier(replace_if_was_set()).description("Expected checksum; PVE verifies it, and an existing file with this checksum is reused."),
            Attribute::string("checksum_algorithm")
                .optional()
                .default("sha256")
                .modifier(replace_if_was_set())
                .description("`md5`, `sha1`, `sha224`, `sha256`, `sha384` or `sha512`."),
            Attribute::string("compression")
                .optional()
                .modifier(replace_if_was_set())
                .description("Decompress after download: `gz`, `lzo`, `zst` or `bz2`; PVE decompresses only `iso` content and has no `xz`."),
            Attribute::bool("verify_certificates").optional().default(true).modifier(replace_if_was_set()).description("Verify the source's TLS certificate."),
            Attribute::string("id").computed().use_state_for_unknown().description("Volume id, e.g. `local:import/talos-v1.11.2-nocloud-amd64.qcow2`."),
            Attribute::number("size").computed().use_state_for_unknown().description("Size in bytes."),
        ],
    )
    .blocks(vec![timeouts::block(&[(Operation::Create, CREATE_TIMEOUT), (Operation::Delete, DELETE_TIMEOUT)])])
}

/// The URL and file name an image resolves to (None where unknown).
fn source(v: &Value) -> (Option<String>, Option<String>) {
    let content = v.attr("content").as_str().unwrap_or("iso");
    let url = v.attr("url").as_str().map(str::to_string).or_else(|| {
        let (s, ver) = (v.attr("schematic_id").as_str()?, v.attr("talos_version").as_str()?);
        let platform = v.attr("platform").as_str().unwrap_or("nocloud");
        let arch = v.attr("arch").as_str().unwrap_or("amd64");
        let ext = if content == "import" { "qcow2" } else { "iso" };
        let base = v.attr("factory_url").as_str().unwrap_or(crate::image_factory::PUBLIC_URL);
        let sb = v.attr("secureboot").as_bool() == Some(true);
        Some(crate::image_factory::image_url(base, s, ver, platform, arch, sb, ext))
    });
    let name = v.attr("file_name").as_str().map(str::to_string).or_else(|| {
        if let (Some(s), Some(ver)) = (v.attr("schematic_id").as_str(), v.attr("talos_version").as_str()) {
            let platform = v.attr("platform").as_str().unwrap_or("nocloud");
            let arch = v.attr("arch").as_str().unwrap_or("amd64");
            let ext = if content == "import" { "qcow2" } else { "iso" };
            let short: String = s.chars().take(8).collect();
            let sb = if v.attr("secureboot").as_bool() == Some(true) { "-secureboot" } else { "" };
            return Some(format!("talos-{ver}-{platform}-{arch}{sb}-{short}.{ext}"));
        }
        let u = url.as_deref()?;
        let last = u.split(['?', '#']).next()?.rsplit('/').next()?;
        let clean: String =
            last.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).collect();
        (!clean.is_empty()).then_some(clean)
    });
    (url, name)
}

fn name_ok(content: &str, name: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".xz") {
        return Err(format!(
            "{name:?} is xz-compressed; PVE cannot decompress xz. Use the uncompressed `.raw`/`.qcow2` (content `import`) or an `.iso`."
        ));
    }
    match content {
        "iso" if !(lower.ends_with(".iso") || lower.ends_with(".img")) => {
            Err(format!("{name:?}: PVE stores `iso` content only as `.iso` or `.img`."))
        }
        "import"
            if !(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+=_".contains(&b))
                && [".raw", ".qcow2", ".vmdk", ".ova"].iter().any(|e| lower.ends_with(e))) =>
        {
            Err(format!(
                "{name:?}: `import` names are `[A-Za-z0-9-.+=_]` ending in `.raw`, `.qcow2`, `.vmdk` or `.ova`."
            ))
        }
        _ => Ok(()),
    }
}

fn validate(c: &Value, d: &mut Diagnostics) {
    timeouts::validate(c, d);
    let content = c.attr("content").as_str();
    if let Some(ct) = content
        && !matches!(ct, "iso" | "import")
    {
        d.error_at(p("content"), "Invalid content type", format!("Use `iso` or `import`; got {ct:?}."));
    }
    let has_url = !c.attr("url").is_null();
    let has_factory = !c.attr("schematic_id").is_null() || !c.attr("talos_version").is_null();
    match (has_url, has_factory) {
        (true, true) => d.error_at(
            p("url"),
            "Conflicting sources",
            "Set either `url` or the Image Factory arguments (`schematic_id`, `talos_version`), not both.",
        ),
        (false, false) => {
            d.error("Missing source", "Set `url`, or `schematic_id` and `talos_version` for the Talos Image Factory.")
        }
        (false, true) => {
            for k in ["schematic_id", "talos_version"] {
                if c.attr(k).is_null() {
                    d.error_at(
                        p(k),
                        "Missing Image Factory argument",
                        "The Image Factory needs both `schematic_id` and `talos_version`.",
                    );
                }
            }
        }
        _ => {}
    }
    if let Some(u) = c.attr("url").as_str() {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            d.error_at(p("url"), "Invalid URL", format!("PVE downloads only `http(s)://` URLs; got {u:?}."));
        } else if u.to_ascii_lowercase().split('?').next().is_some_and(|x| x.ends_with(".xz")) {
            d.error_at(p("url"), "xz is not supported by PVE", "PVE's download-url cannot decompress xz (Image Factory `.raw.xz`). Use the factory's `.qcow2` with content `import`, or the `.iso`.");
        }
    }
    if let Some(s) = c.attr("schematic_id").as_str()
        && (s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        d.error_at(p("schematic_id"), "Invalid schematic id", "An Image Factory schematic id is 64 hex characters.");
    }
    if let Some(v) = c.attr("talos_version").as_str()
        && let Err(e) = crate::resources::shared::talos_node::check_version_tag(v)
    {
        d.error_at(p("talos_version"), "Invalid Talos version", e);
    }
    if let Some(u) = c.attr("factory_url").as_str() {
        if let Err(e) = crate::image_factory::base_url(u) {
            d.error_at(p("factory_url"), "Invalid Image Factory URL", e.to_string());
        } else if !c.attr("url").is_null() {
            d.error_at(
                p("factory_url"),
                "Conflicting source",
                "`factory_url` goes with `schematic_id` and `talos_version`, not with `url`.",
            );
        }
    }
    if c.attr("secureboot").as_bool() == Some(true) && !c.attr("url").is_null() {
        d.error_at(p("secureboot"), "Conflicting source", "`secureboot` picks among the Image Factory's images; with `url`, name the secure-boot image in the URL instead.");
    }
    if let Some(pl) = c.attr("platform").as_str()
        && !matches!(pl, "nocloud" | "metal")
    {
        d.error_at(p("platform"), "Invalid platform", format!("Use `nocloud` or `metal`; got {pl:?}."));
    }
    if let Some(a) = c.attr("arch").as_str()
        && !matches!(a, "amd64" | "arm64")
    {
        d.error_at(p("arch"), "Invalid arch", format!("Use `amd64` or `arm64`; got {a:?}."));
    }
    if let Some(a) = c.attr("checksum_algorithm").as_str()
        && !matches!(a, "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512")
    {
        d.error_at(p("checksum_algorithm"), "Invalid checksum algorithm", format!("{a:?} is not one PVE knows."));
    }
    if let Some(cmp) = c.attr("compression").as_str() {
        if cmp == "xz" {
            d.error_at(
                p("compression"),
                "xz is not supported by PVE",
                "PVE decompresses `gz`, `lzo`, `zst` and `bz2` only.",
            );
        } else if !matches!(cmp, "gz" | "lzo" | "zst" | "bz2") {
            d.error_at(
                p("compression"),
                "Invalid compression",
                format!("Use `gz`, `lzo`, `zst` or `bz2`; got {cmp:?}."),
            );
        }
        if content == Some("import") {
            d.error_at(
                p("compression"),
                "No decompression for import",
                "PVE decompresses only `iso` content; download an uncompressed image for `import`.",
            );
        }
    }
    if let (Some(ct), (_, Some(name))) = (content, source(c))
        && c.attr("url").is_known_or_null()
        && c.attr("file_name").is_known_or_null()
        && let Err(why) = name_ok(ct, &name)
    {
        let at = if c.attr("file_name").is_null() { "url" } else { "file_name" };
        d.error_at(p(at), "Unusable file name", why);
    }
}

trait KnownOrNull {
    fn is_known_or_null(&self) -> bool;
}

impl KnownOrNull for Value {
    fn is_known_or_null(&self) -> bool {
        !self.is_unknown()
    }
}

fn volid(storage: &str, content: &str, name: &str) -> String {
    format!("{storage}:{content}/{name}")
}

async fn find(c: &Client, node: &str, storage_id: &str, content: &str, id: &str) -> Result<Option<Volume>, Error> {
    let vols: Vec<Volume> = c.execute_as(&storage::content(node, storage_id, Some(content))).await?;
    Ok(vols.into_iter().find(|v| v.volid == id))
}

fn err(d: &mut Diagnostics, summary: &str, e: &Error) {
    let mut detail = crate::plugin::diag::error_chain(e);
    for (field, why) in e.field_errors() {
        detail.push_str(&format!("\nPVE parameter `{field}`: {why}"));
    }
    d.error(summary, detail);
}

#[async_trait]
impl Resource<ProxtalosData> for ImageResource {
    fn type_name(&self) -> &'static str {
        "proxtalos_image"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        validate(&req.config, diags);
    }

    async fn modify_plan(&self, ctx: &Context<ProxtalosData>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.plan.is_null() {
            return;
        }
        let (url, name) = source(&resp.plan);
        if resp.plan.attr("url").is_unknown()
            && let Some(u) = url
        {
            resp.plan.set_attr("url", Value::string(u));
        }
        if resp.plan.attr("file_name").is_unknown()
            && let Some(n) = &name
        {
            resp.plan.set_attr("file_name", Value::string(n.clone()));
        }
        if !req.prior.is_null() {
            return;
        }
        // Before create: PVE's limits as diagnostics now, not a failed task later.
        let field = |k: &str| resp.plan.attr(k).as_str().map(str::to_string);
        let (Some(node), Some(st), Some(content)) = (field("node"), field("storage"), field("content")) else {
            return;
        };
        let (node, st, content) = (node.as_str(), st.as_str(), content.as_str());
        if let Some(n) = &name {
            resp.plan.set_attr("id", Value::string(volid(st, content, n)));
        }
        let Ok(c) = ctx.data.pve() else { return };
        if !preflight::node(&ctx.data, &c, node, p("node"), &mut resp.diags).await {
            return;
        }
        if content == "import"
            && let Ok(v) = ctx.data.pve_version(&c).await
            && v.major_minor().is_some_and(|mm| mm < (8, 4))
        {
            resp.diags.error_at(p("content"), "`import` content needs PVE 8.4", format!("Node {node} runs PVE {}; disk images can be downloaded as `import` only since PVE 8.4. Use content `iso` with an `.img` name, or upgrade.", v.version));
        }
        if let Some(s) = preflight::storage(&ctx.data, &c, node, st, content, p("storage"), &mut resp.diags).await
            && matches!(s.kind.as_str(), "lvmthin" | "lvm" | "rbd" | "zfspool" | "iscsi" | "iscsidirect")
        {
            resp.diags.error_at(
                p("storage"),
                "Not a file-based storage",
                format!("{st:?} is `{}`; images need a file-based storage such as `local`.", s.kind),
            );
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        let c = match ctx.data.pve() {
            Ok(c) => c.stopping_on(&ctx.stop),
            Err(m) => return resp.diags.error("Proxmox not configured", m.to_string()),
        };
        let v = &req.planned;
        let (Some(url), Some(name)) = source(v) else {
            return resp.diags.error("Missing source", "No URL or file name could be derived.");
        };
        let node = v.attr("node").as_str().unwrap_or_default().to_string();
        let st = v.attr("storage").as_str().unwrap_or_default().to_string();
        let content = v.attr("content").as_str().unwrap_or_default().to_string();
        let id = volid(&st, &content, &name);
        let timeout = timeouts::get(v, Operation::Create, CREATE_TIMEOUT);
        let checksum = v.attr("checksum").as_str().map(str::to_string);
        match find(&c, &node, &st, &content, &id).await {
            Ok(Some(_)) if checksum.is_none() => {
                return resp.diags.error_at(
                    p("file_name"),
                    "The file already exists",
                    format!("{id} exists and no `checksum` was given, so it is not adopted (it may be someone else's). Set `checksum` to reuse it after PVE verifies it, choose another `file_name`, or delete the file."),
                );
            }
            Ok(_) => {}
            Err(e) => return err(&mut resp.diags, "Cannot list the storage", &e),
        }
        let d = Download {
            url: url.clone(),
            content: content.clone(),
            filename: name.clone(),
            checksum_algorithm: checksum
                .as_ref()
                .map(|_| v.attr("checksum_algorithm").as_str().unwrap_or("sha256").to_string()),
            checksum,
            compression: v.attr("compression").as_str().map(str::to_string),
            verify_certificates: v.attr("verify_certificates").as_bool(),
        };
        let mut state = v.clone();
        state.set_attr("url", Value::string(url));
        state.set_attr("file_name", Value::string(name));
        state.set_attr("id", Value::string(&id));
        if let Err(e) = c.run_task(&storage::download_url(&node, &st, &d), timeout).await {
            if e.is_stopped() {
                // PVE goes on downloading: the file will exist, so it is
                // recorded (tainted) rather than left behind.
                let mut partial = state;
                crate::plugin::plan::take_unknowns(&mut partial);
                resp.state = partial;
                return resp.diags.push(crate::resources::shared::common::interrupted(
                    &format!("The download was still running: {}.", crate::plugin::diag::error_chain(&e)),
                    &format!("PVE finishes it in the background. {id} is recorded in state as tainted: the next `terraform apply` deletes it and downloads it again."),
                ));
            }
            return err(&mut resp.diags, "The download failed", &e);
        }
        match find(&c, &node, &st, &content, &id).await {
            Ok(Some(vol)) => {
                state.set_attr(
                    "size",
                    vol.size.and_then(|s| s.parse::<i64>().ok()).map(Value::int).unwrap_or(Value::Null),
                );
            }
            Ok(None) => {
                return resp
                    .diags
                    .error("The image is missing", format!("The download finished but {id} is not listed."));
            }
            Err(e) => return err(&mut resp.diags, "Cannot list the storage", &e),
        }
        resp.state = state;
    }

    async fn read(&self, ctx: &Context<ProxtalosData>, req: ReadRequest, resp: &mut ReadResponse) {
        let c = match ctx.data.pve() {
            Ok(c) => c.stopping_on(&ctx.stop),
            Err(m) => return resp.diags.error("Proxmox not configured", m.to_string()),
        };
        let s = &req.state;
        let (Some(node), Some(st), Some(content), Some(id)) =
            (s.attr("node").as_str(), s.attr("storage").as_str(), s.attr("content").as_str(), s.attr("id").as_str())
        else {
            return resp.diags.error("Incomplete state", "The state has no node, storage, content or id.");
        };
        match find(&c, node, st, content, id).await {
            Ok(Some(vol)) => {
                let mut state = req.state.clone();
                state.set_attr(
                    "size",
                    vol.size.and_then(|s| s.parse::<i64>().ok()).map(Value::int).unwrap_or(Value::Null),
                );
                resp.state = state;
            }
            Ok(None) => resp.state = Value::Null,
            Err(e) if e.is_not_found() => resp.state = Value::Null,
            Err(e) => err(&mut resp.diags, "Cannot read the image", &e),
        }
    }

    async fn update(&self, _ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        // Every argument forces replacement; only `timeouts` can change here.
        resp.state = req.planned;
    }

    async fn delete(&self, ctx: &Context<ProxtalosData>, req: DeleteRequest, diags: &mut Diagnostics) {
        let c = match ctx.data.pve() {
            Ok(c) => c.stopping_on(&ctx.stop),
            Err(m) => return diags.error("Proxmox not configured", m.to_string()),
        };
        let s = &req.prior;
        let (Some(node), Some(st), Some(id)) =
            (s.attr("node").as_str(), s.attr("storage").as_str(), s.attr("id").as_str())
        else {
            return;
        };
        let timeout = timeouts::get(s, Operation::Delete, DELETE_TIMEOUT);
        let result = async {
            let data = c.execute(&storage::delete_volume(node, st, id)).await?;
            if let Some(upid) = data.as_str() {
                c.wait_task(&upid.parse()?, timeout).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        match result {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => err(diags, "Cannot delete the image", &e),
        }
    }

    async fn import(&self, ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        // `node/storage:content/file`
        let parsed = req.id.split_once('/').and_then(|(node, vol)| {
            let (st, rest) = vol.split_once(':')?;
            let (content, file) = rest.split_once('/')?;
            Some((node.to_string(), st.to_string(), content.to_string(), file.to_string()))
        });
        let Some((node, st, content, file)) = parsed else {
            return resp.diags.error(
                "Invalid import id",
                format!("Expected `node/storage:content/file`, e.g. `pve1/local:iso/talos.iso`; got {:?}.", req.id),
            );
        };
        let c = match ctx.data.pve() {
            Ok(c) => c.stopping_on(&ctx.stop),
            Err(m) => return resp.diags.error("Proxmox not configured", m.to_string()),
        };
        if node.is_empty() || st.is_empty() || file.is_empty() {
            return resp.diags.error(
                "Invalid import id",
                format!("Expected `node/storage:content/file`, e.g. `pve1/local:iso/talos.iso`; got {:?}.", req.id),
            );
        }
        if let Some(why) = crate::resources::shared::preflight::node_problem(&ctx.data, &c, &node).await {
            return resp.diags.error("Cannot import", format!("{why} (import id {:?})", req.id));
        }
        let id = volid(&st, &content, &file);
        let vol = match find(&c, &node, &st, &content, &id).await {
            Ok(Some(v)) => v,
            Ok(None) => return resp.diags.error("Cannot import", format!("{id} does not exist on node {node}.")),
            Err(e) => return err(&mut resp.diags, "Cannot import", &e),
        };
        let mut state = Value::Object(Default::default());
        if let Type::Object(attrs) = schema().value_type() {
            for k in attrs.keys() {
                state.set_attr(k, Value::Null);
            }
        }
        for (k, v) in [("node", &node), ("storage", &st), ("content", &content), ("file_name", &file), ("id", &id)] {
            state.set_attr(k, Value::string(v.clone()));
        }
        state.set_attr("size", vol.size.and_then(|s| s.parse::<i64>().ok()).map(Value::int).unwrap_or(Value::Null));
        state.set_attr("checksum_algorithm", Value::string("sha256"));
        state.set_attr("verify_certificates", Value::Bool(true));
        state.set_attr("platform", Value::string("nocloud"));
        state.set_attr("arch", Value::string("amd64"));
        resp.state = state;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, Value)]) -> Vec<String> {
        let mut d = Diagnostics::new();
        validate(&Value::object(pairs.iter().map(|(k, v)| (*k, v.clone()))), &mut d);
        d.0.iter()
            .map(|x| format!("{}: {}", x.path.as_ref().map(ToString::to_string).unwrap_or_default(), x.summary))
            .collect()
    }

    const S: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[test]
    fn factory_source_and_names() {
        let v = Value::object([
            ("content", "import".into()),
            ("schematic_id", S.into()),
            ("talos_version", "v1.11.2".into()),
            ("platform", "nocloud".into()),
            ("arch", "amd64".into()),
        ]);
        let (url, name) = source(&v);
        assert_eq!(url.unwrap(), format!("https://factory.talos.dev/image/{S}/v1.11.2/nocloud-amd64.qcow2"));
        assert_eq!(name.unwrap(), "talos-v1.11.2-nocloud-amd64-37656798.qcow2");
        let v = Value::object([
            ("content", "iso".into()),
            ("schematic_id", S.into()),
            ("talos_version", "v1.11.2".into()),
            ("factory_url", "http://127.0.0.1:8080/".into()),
        ]);
        assert_eq!(source(&v).0.unwrap(), format!("http://127.0.0.1:8080/image/{S}/v1.11.2/nocloud-amd64.iso"));
        let mut sb = v.clone();
        sb.set_attr("secureboot", Value::Bool(true));
        let (url, name) = source(&sb);
        assert_eq!(url.unwrap(), format!("http://127.0.0.1:8080/image/{S}/v1.11.2/nocloud-amd64-secureboot.iso"));
        assert_eq!(name.unwrap(), "talos-v1.11.2-nocloud-amd64-secureboot-37656798.iso");
        let v = Value::object([("content", "iso".into()), ("url", "https://x/y/metal%20amd64.iso?a=1".into())]);
        assert_eq!(source(&v).1.unwrap(), "metal_20amd64.iso");
    }

    #[test]
    fn pve_limits_are_plan_errors() {
        let xz = check(&[("content", "import".into()), ("url", "https://f/nocloud-amd64.raw.xz".into())]);
        assert!(xz.iter().any(|e| e.starts_with("url: xz is not supported")), "{xz:?}");
        let iso_name = check(&[("content", "iso".into()), ("url", "https://f/talos.raw".into())]);
        assert!(iso_name.iter().any(|e| e.starts_with("url: Unusable file name")), "{iso_name:?}");
        let dec =
            check(&[("content", "import".into()), ("url", "https://f/t.raw".into()), ("compression", "zst".into())]);
        assert!(dec.iter().any(|e| e.starts_with("compression: No decompression")), "{dec:?}");
        let both =
            check(&[("content", "iso".into()), ("url", "https://f/t.iso".into()), ("talos_version", "v1.11.2".into())]);
        assert!(both.iter().any(|e| e.starts_with("url: Conflicting")), "{both:?}");
        let bad =
            check(&[("content", "disk".into()), ("schematic_id", "xyz".into()), ("talos_version", "1.11".into())]);
        assert!(
            bad.iter().any(|e| e.starts_with("content:"))
                && bad.iter().any(|e| e.starts_with("schematic_id:"))
                && bad.iter().any(|e| e.starts_with("talos_version:")),
            "{bad:?}"
        );
        assert!(check(&[("content", "iso".into()), ("url", "https://f/t.iso".into())]).is_empty());
    }

    #[test]
    fn schema_is_consistent() {
        assert!(schema().check().is_empty(), "{:?}", schema().check());
    }
}

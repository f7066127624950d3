//! Provider functions: `provider::proxtalos::schematic_id`,
//! `installer_image` and `image_url`, the Image Factory references a
//! configuration otherwise copies from the factory's web page. Pure: no
//! request leaves the machine (the factory itself gives the same id for
//! the same schematic, see `talos::schematic`).

use std::sync::Arc;

use crate::image_factory::{PUBLIC_HOST, PUBLIC_URL, image_url, installer_repository};
use crate::plugin::{Function, FunctionError, Param, Type, Value};
use crate::talos::schematic;

/// Every function this provider serves.
pub fn all() -> Vec<Arc<dyn Function>> {
    vec![Arc::new(SchematicId), Arc::new(InstallerImage), Arc::new(ImageUrl)]
}

fn text(args: &[Value], i: usize) -> &str {
    args.get(i).and_then(Value::as_str).unwrap_or_default()
}

fn id_arg(args: &[Value], i: usize) -> Result<String, FunctionError> {
    let id = text(args, i);
    if !schematic::valid_id(id) {
        return Err(FunctionError::argument(i, "schematic_id must be an Image Factory schematic id: 64 hex digits."));
    }
    Ok(id.to_ascii_lowercase())
}

/// `v1.13.9` (a leading `v` is added when missing); pre-releases pass.
fn version_arg(args: &[Value], i: usize) -> Result<String, FunctionError> {
    let v = text(args, i).trim();
    let bare = v.strip_prefix('v').unwrap_or(v);
    let core = bare.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(FunctionError::argument(i, "talos_version must be a Talos release such as \"v1.13.9\"."));
    }
    Ok(format!("v{bare}"))
}

/// `schematic_id(schematic)`.
struct SchematicId;

impl Function for SchematicId {
    fn name(&self) -> &'static str {
        "schematic_id"
    }
    fn summary(&self) -> &'static str {
        "The Image Factory id of a schematic, computed locally"
    }
    fn description(&self) -> &'static str {
        "Returns the id the Talos Image Factory gives `schematic` (a YAML or JSON document, e.g. from `yamlencode`): \
the SHA-256 of the schematic as the factory marshals it, so that the same extensions, kernel arguments, META \
values, overlay and secure-boot options give the same id however they are written. Unknown fields are errors, \
as the factory refuses them. Not computed locally yet (an error says so): overlay `options` with names other than \
plain letters, or fractional numbers."
    }
    fn params(&self) -> Vec<Param> {
        vec![Param {
            name: "schematic",
            ty: Type::String,
            description: "The schematic document: `customization` (`extraKernelArgs`, `meta`, \
`systemExtensions.officialExtensions`, `secureboot`, …) and `overlay`.",
        }]
    }
    fn returns(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        schematic::id(text(args, 0)).map(Value::string).map_err(|e| FunctionError::argument(0, e.to_string()))
    }
}

/// `installer_image(schematic_id, talos_version, secureboot)`.
struct InstallerImage;

impl Function for InstallerImage {
    fn name(&self) -> &'static str {
        "installer_image"
    }
    fn summary(&self) -> &'static str {
        "The Image Factory installer image for a schematic and Talos version"
    }
    fn description(&self) -> &'static str {
        "Returns `factory.talos.dev/installer/<schematic_id>:<talos_version>`, or `installer-secureboot` with \
`secureboot`: the installer a machine configuration's `machine.install.image` (or `proxtalos_cluster`'s \
`installer_image`, without the tag) names, which the factory serves for every release."
    }
    fn params(&self) -> Vec<Param> {
        vec![
            Param { name: "schematic_id", ty: Type::String, description: "A schematic id (64 hex digits)." },
            Param { name: "talos_version", ty: Type::String, description: "A Talos release, e.g. `v1.13.9`." },
            Param { name: "secureboot", ty: Type::Bool, description: "The secure-boot installer." },
        ]
    }
    fn returns(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let id = id_arg(args, 0)?;
        let version = version_arg(args, 1)?;
        let repo = installer_repository(PUBLIC_HOST, &id, args.get(2).and_then(Value::as_bool) == Some(true));
        Ok(Value::string(format!("{repo}:{version}")))
    }
}

/// `image_url(schematic_id, talos_version, platform, arch, secureboot, format)`.
struct ImageUrl;

impl Function for ImageUrl {
    fn name(&self) -> &'static str {
        "image_url"
    }
    fn summary(&self) -> &'static str {
        "The Image Factory download URL of a boot image"
    }
    fn description(&self) -> &'static str {
        "Returns `https://factory.talos.dev/image/<schematic_id>/<talos_version>/<platform>-<arch>[-secureboot].<format>`, \
e.g. the `nocloud-amd64.iso` a Proxmox VM boots or the `nocloud-amd64.qcow2` it imports (`proxtalos_image` takes \
the schematic and version itself; this is for other tools)."
    }
    fn params(&self) -> Vec<Param> {
        vec![
            Param { name: "schematic_id", ty: Type::String, description: "A schematic id (64 hex digits)." },
            Param { name: "talos_version", ty: Type::String, description: "A Talos release, e.g. `v1.13.9`." },
            Param { name: "platform", ty: Type::String, description: "`nocloud`, `metal`, …" },
            Param { name: "arch", ty: Type::String, description: "`amd64` or `arm64`." },
            Param { name: "secureboot", ty: Type::Bool, description: "The secure-boot variant." },
            Param { name: "format", ty: Type::String, description: "`iso`, `qcow2`, `raw.xz`, `raw.zst`, …" },
        ]
    }
    fn returns(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let id = id_arg(args, 0)?;
        let version = version_arg(args, 1)?;
        let token = |i: usize, what: &str, extra: &[u8]| {
            let t = text(args, i);
            let ok = !t.is_empty()
                && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
                && !t.starts_with(['-', '.']);
            if ok { Ok(t.to_string()) } else { Err(FunctionError::argument(i, what.to_string())) }
        };
        let platform = token(2, "platform must be a platform name such as \"nocloud\" or \"metal\".", b"-")?;
        let arch = text(args, 3);
        if arch != "amd64" && arch != "arm64" {
            return Err(FunctionError::argument(3, "arch must be \"amd64\" or \"arm64\"."));
        }
        let format = token(5, "format must be a file format such as \"iso\", \"qcow2\" or \"raw.xz\".", b".")?;
        let sb = args.get(4).and_then(Value::as_bool) == Some(true);
        Ok(Value::string(image_url(PUBLIC_URL, &id, &version, &platform, arch, sb, &format)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    fn call(name: &str, args: &[Value]) -> Result<Value, FunctionError> {
        all().into_iter().find(|f| f.name() == name).unwrap().call(args)
    }

    #[test]
    fn the_functions_compute_the_factorys_references() {
        let s = |v: &str| Value::string(v);
        assert_eq!(call("schematic_id", &[s("customization: {}")]), Ok(s(EMPTY)));
        assert_eq!(
            call("installer_image", &[s(EMPTY), s("1.13.9"), Value::Bool(false)]),
            Ok(s(&format!("factory.talos.dev/installer/{EMPTY}:v1.13.9")))
        );
        assert_eq!(
            call("installer_image", &[s(EMPTY), s("v1.14.0"), Value::Bool(true)]),
            Ok(s(&format!("factory.talos.dev/installer-secureboot/{EMPTY}:v1.14.0")))
        );
        assert_eq!(
            call("image_url", &[s(EMPTY), s("v1.13.9"), s("nocloud"), s("amd64"), Value::Bool(false), s("iso")]),
            Ok(s(&format!("https://factory.talos.dev/image/{EMPTY}/v1.13.9/nocloud-amd64.iso")))
        );
        assert_eq!(
            call("image_url", &[s(EMPTY), s("v1.13.9"), s("metal"), s("arm64"), Value::Bool(true), s("raw.xz")]),
            Ok(s(&format!("https://factory.talos.dev/image/{EMPTY}/v1.13.9/metal-arm64-secureboot.raw.xz")))
        );
    }

    #[test]
    fn errors_name_the_argument() {
        let s = |v: &str| Value::string(v);
        assert_eq!(call("schematic_id", &[s("customization: {foo: 1}")]).unwrap_err().argument, Some(0));
        assert_eq!(
            call("installer_image", &[s("abc"), s("v1.13.9"), Value::Bool(false)]).unwrap_err().argument,
            Some(0)
        );
        assert_eq!(
            call("installer_image", &[s(EMPTY), s("latest"), Value::Bool(false)]).unwrap_err().argument,
            Some(1)
        );
        let args = |arch: &str, format: &str| {
            vec![s(EMPTY), s("v1.13.9"), s("nocloud"), s(arch), Value::Bool(false), s(format)]
        };
        assert_eq!(call("image_url", &args("x86", "iso")).unwrap_err().argument, Some(3));
        assert_eq!(call("image_url", &args("amd64", "../x")).unwrap_err().argument, Some(5));
    }
}

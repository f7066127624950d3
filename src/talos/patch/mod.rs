//! Config patches (behaviour.md §12): strategic-merge patches (YAML, any
//! document kind, multi-document, `$patch: delete`) and RFC 6902 JSON
//! patches (single-document configs only), applied in order.

mod json6902;
mod strategic;

use serde_yaml_ng::Value;

use super::yaml;

pub use json6902::apply_json_patch;
pub use strategic::merge_documents;

/// A patch could not be read or applied. `patch` is its zero-based index in
/// the list given to [`apply_patches`].
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch is neither YAML/JSON nor a list of JSON-patch operations.
    #[error("config patch {patch}: not valid YAML/JSON")]
    Parse {
        /// Patch index.
        patch: usize,
        /// Parser error.
        #[source]
        source: yaml::ParseError,
    },
    /// JSON patches need a single-document config (Talos refuses them too).
    #[error(
        "config patch {patch}: JSON6902 patches are not supported for multi-document machine configuration ({documents} documents); use a strategic merge patch"
    )]
    JsonPatchMultiDocument {
        /// Patch index.
        patch: usize,
        /// How many documents the config has.
        documents: usize,
    },
    /// An operation failed (missing path, failed `test`, bad operation).
    #[error("config patch {patch}: operation {op} at {path:?}: {message}")]
    JsonPatchOp {
        /// Patch index.
        patch: usize,
        /// Operation index inside the patch.
        op: usize,
        /// JSON pointer of the operation.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The patch text is YAML, but neither mapping documents (a strategic
    /// merge patch) nor one list (JSON-patch operations), e.g. a scalar or
    /// a mapping document next to a list.
    #[error(
        "config patch {patch}: not a patch: give YAML mapping documents (a strategic merge patch) or one list of JSON-patch operations"
    )]
    Format {
        /// Patch index.
        patch: usize,
    },
    /// A strategic merge patch could not be applied.
    #[error("config patch {patch}: at {path}: {message}")]
    Strategic {
        /// Patch index.
        patch: usize,
        /// Dotted path (document kind first).
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// What a patch text is. Its `Debug` shows the kind and size only (a
/// patch may carry secrets: registry credentials, tokens).
#[derive(Clone, PartialEq)]
pub enum Patch {
    /// Strategic merge: one or more YAML documents.
    Strategic(Vec<Value>),
    /// RFC 6902 operations.
    JsonPatch(Vec<Value>),
}

impl std::fmt::Debug for Patch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Patch::Strategic(d) => write!(f, "Strategic(<{} documents redacted>)", d.len()),
            Patch::JsonPatch(o) => write!(f, "JsonPatch(<{} operations redacted>)", o.len()),
        }
    }
}

/// Detects the patch format as Talos does: a (multi-)document YAML mapping
/// stream is a strategic merge patch; a list (or nothing at all) is a JSON patch.
pub fn parse_patch(index: usize, text: &str) -> Result<Patch, PatchError> {
    let docs = yaml::parse_documents(text).map_err(|source| PatchError::Parse { patch: index, source })?;
    match docs.as_slice() {
        [] => Ok(Patch::JsonPatch(Vec::new())),
        [Value::Sequence(ops)] => Ok(Patch::JsonPatch(ops.clone())),
        docs if docs.iter().all(Value::is_mapping) => Ok(Patch::Strategic(docs.to_vec())),
        _ => Err(PatchError::Format { patch: index }),
    }
}

/// Applies `patches` in order to the documents of a config.
pub fn apply_patches(docs: &mut Vec<Value>, patches: &[String]) -> Result<(), PatchError> {
    for (index, text) in patches.iter().enumerate() {
        match parse_patch(index, text)? {
            Patch::Strategic(patch_docs) => merge_documents(index, docs, &patch_docs)?,
            Patch::JsonPatch(ops) => {
                if docs.len() != 1 {
                    return Err(PatchError::JsonPatchMultiDocument { patch: index, documents: docs.len() });
                }
                apply_json_patch(index, &mut docs[0], &ops)?;
            }
        }
    }
    Ok(())
}

//! Machine configuration generation for controlplane and worker machines,
//! version contracts v1.10–v1.15 (behaviour.md §10, §11), matching Talos's
//! own generator document for document (see the goldens under
//! `tests/fixtures/talos/golden/`).

mod build;
mod documents;
mod input;
mod legacy;
mod shared;

pub use input::{Cni, ConfigInput, MachineType};

use serde_yaml_ng::Value;

use super::patch::{self, PatchError};
use super::redact;
use super::schema::{self, SchemaError};
use super::secrets::SecretsBundle;
use super::version::VersionContract;
use super::yaml;

/// Generating, parsing, patching or validating a machine config failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An input is invalid; `field` is the input's (Terraform attribute) name.
    #[error("invalid {field}: {message}")]
    Input {
        /// Input name, e.g. `endpoint`, `kubernetes_version`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The secrets bundle lacks a part this machine type needs.
    #[error("secrets bundle lacks {0}, required for this machine config")]
    MissingSecret(&'static str),
    /// A config patch failed.
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// The text is not YAML.
    #[error("machine config is not valid YAML")]
    Yaml(#[source] yaml::ParseError),
    /// Schema violation or a document Talos would not recognise.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// A machine configuration: an ordered list of YAML documents (the legacy
/// `version: v1alpha1` one first, then typed documents) for a contract.
/// Its `Debug` shows the contract and the number of documents only: the
/// documents hold the cluster's keys and tokens.
#[derive(Clone, PartialEq)]
pub struct MachineConfig {
    contract: VersionContract,
    documents: Vec<Value>,
}

impl std::fmt::Debug for MachineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineConfig")
            .field("contract", &self.contract)
            .field("documents", &format_args!("<{} documents redacted>", self.documents.len()))
            .finish()
    }
}

impl MachineConfig {
    /// Parses a (multi-document) config and checks every document is a
    /// Talos document of `contract`'s schema.
    pub fn parse(contract: VersionContract, text: &str) -> Result<Self, ConfigError> {
        let documents = yaml::parse_documents(text).map_err(ConfigError::Yaml)?;
        let config = MachineConfig { contract, documents };
        config.validate()?;
        Ok(config)
    }

    /// Wraps documents without checking them.
    pub fn from_documents(contract: VersionContract, documents: Vec<Value>) -> Self {
        MachineConfig { contract, documents }
    }

    /// The version contract.
    pub fn contract(&self) -> VersionContract {
        self.contract
    }

    /// The documents, in order.
    pub fn documents(&self) -> &[Value] {
        &self.documents
    }

    /// YAML as Talos writes it: 4-space indentation, documents joined with `---`.
    pub fn to_yaml(&self) -> String {
        yaml::emit_documents(&self.documents)
    }

    /// The same YAML with every secret replaced by [`redact::REDACTED`].
    pub fn to_redacted_yaml(&self) -> String {
        yaml::emit_documents(&redact::redact(&self.documents))
    }

    /// Applies patches in order, then re-orders keys as Talos re-encodes them.
    pub fn apply_patches(&mut self, patches: &[String]) -> Result<(), ConfigError> {
        if patches.is_empty() {
            return Ok(());
        }
        patch::apply_patches(&mut self.documents, patches)?;
        for doc in &mut self.documents {
            schema::canonicalize(self.contract, doc)?;
        }
        Ok(())
    }

    /// The deprecated fields this config sets, with Talos's note naming
    /// the replacement document (Talos accepts them; see [`schema::deprecations`]).
    pub fn deprecations(&self) -> Result<Vec<schema::Deprecation>, ConfigError> {
        Ok(schema::deprecations(self.contract, &self.documents)?)
    }

    /// Validates every document against the contract's JSON schema.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.documents.is_empty() {
            return Err(ConfigError::Input {
                field: "machine_configuration",
                message: "the config has no documents".to_string(),
            });
        }
        schema::validate(self.contract, &self.documents)?;
        Ok(())
    }
}

/// Generates the config for `input` from `secrets`, applies
/// `input.config_patches`, and validates the result against the schema.
pub fn generate(input: &ConfigInput, secrets: &SecretsBundle) -> Result<MachineConfig, ConfigError> {
    let checked = input::Checked::new(input)?;
    if checked.cp {
        if secrets.certs.os.key.trim().is_empty() {
            return Err(ConfigError::MissingSecret("certs.os.key"));
        }
        if secrets.certs.etcd.is_none() {
            return Err(ConfigError::MissingSecret("certs.etcd"));
        }
    }
    if secrets.certs.k8s.is_none() {
        return Err(ConfigError::MissingSecret("certs.k8s"));
    }
    let mut documents = vec![legacy::document(&checked, secrets)];
    match input.contract.minor() {
        12 | 13 => documents.extend(documents::v1_12(&checked)),
        // v1.15 generates what v1.14 does (identical upstream goldens).
        14 | 15 => documents.extend(documents::v1_14(&checked, secrets)),
        _ => {}
    }
    let mut config = MachineConfig { contract: input.contract, documents };
    config.apply_patches(&input.config_patches)?;
    config.validate()?;
    Ok(config)
}

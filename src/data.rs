//! The configured provider's data: the Proxmox settings after environment
//! fallbacks and the clients built from them, shared by every object of one
//! provider process. A leaf for the resources: they import this module,
//! never [`crate::provider`] (which holds the registry of resources).

use std::sync::Arc;

/// Why there is no PVE client.
#[derive(Debug, thiserror::Error)]
pub enum PveUnavailable {
    /// No `proxmox` block and no `PROXMOX_VE_*` variables.
    #[error(
        "The provider has no Proxmox settings: set the `proxmox` block (endpoint and credentials) or the PROXMOX_VE_* environment variables."
    )]
    NotConfigured,
    /// The settings cannot make a client (a bad CA, a bad endpoint).
    #[error("{0}")]
    Invalid(#[source] crate::proxmox::Error),
}

/// Proxmox VE connection settings after env fallbacks.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxmoxSettings {
    /// API base URL, e.g. `https://pve:8006/`.
    pub endpoint: String,
    /// How to authenticate.
    pub auth: ProxmoxAuth,
    /// Skip TLS verification (only when asked).
    pub insecure: bool,
    /// Extra CA (PEM) to trust.
    pub ca_certificate: Option<String>,
    /// Where each setting came from, for diagnostics.
    pub origin: SettingsOrigin,
    /// Do not call the API at configure time.
    pub skip_connection_check: bool,
}

/// Where the endpoint and the credentials came from: the block attribute
/// or the environment variable (named in diagnostics so the user fixes
/// the right one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingsOrigin {
    /// `"the provider's \`endpoint\`"` or `"PROXMOX_VE_ENDPOINT"`.
    pub endpoint: &'static str,
    /// Where the token or the username/password came from.
    pub credentials: &'static str,
}

impl std::fmt::Debug for ProxmoxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxmoxSettings")
            .field("endpoint", &self.endpoint)
            .field("auth", &self.auth)
            .field("insecure", &self.insecure)
            .field("ca_certificate", &self.ca_certificate.as_ref().map(|_| "<pem>"))
            .field("origin", &self.origin)
            .field("skip_connection_check", &self.skip_connection_check)
            .finish()
    }
}

/// Proxmox credentials. `Debug` never shows secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum ProxmoxAuth {
    /// `USER@REALM!TOKENID=SECRET`
    ApiToken(String),
    /// Ticket login.
    Password {
        /// `user@realm`
        username: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for ProxmoxAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxmoxAuth::ApiToken(t) => {
                let id = t.split('=').next().unwrap_or("");
                write!(f, "ApiToken({id}=<redacted>)")
            }
            ProxmoxAuth::Password { username, .. } => write!(f, "Password({username}, <redacted>)"),
        }
    }
}

/// A VM placed by this provider process (see `proxtalos_vm`'s
/// `placement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedVm {
    /// Its node.
    pub node: String,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Its tags, lower case.
    pub tags: Vec<String>,
    /// Its VMID once created.
    pub vmid: Option<u32>,
}

/// What every proxtalos object receives once the provider is configured.
#[derive(Debug, Default)]
pub struct ProxtalosData {
    /// Proxmox settings, when configured (block or environment).
    pub proxmox: Option<ProxmoxSettings>,
    /// The PVE client, built on first use from `proxmox` (one per process,
    /// so VMID allocation and the ticket are shared by every resource).
    pub pve: std::sync::OnceLock<crate::proxmox::Client>,
    /// The PVE version read by the connection check.
    pub version: std::sync::OnceLock<crate::proxmox::cluster::PveVersion>,
    /// The Image Factory schematics are registered with (the provider's
    /// `image_factory_url` or `PROXTALOS_IMAGE_FACTORY_URL`); None: the
    /// public one.
    pub image_factory_url: Option<String>,
    /// The VMs this process placed on a node of its choosing
    /// (`proxtalos_vm`'s `placement`), which PVE may not list yet.
    pub placements: std::sync::Mutex<Vec<PlacedVm>>,
    /// Plan-time lookups (nodes, storages, bridges) by request, read once
    /// per provider process however many resources ask.
    lookups: tokio::sync::Mutex<std::collections::HashMap<String, Arc<serde_json::Value>>>,
}

impl ProxtalosData {
    /// The data for `proxmox` settings (None: Talos-only).
    pub fn new(proxmox: Option<ProxmoxSettings>) -> ProxtalosData {
        ProxtalosData { proxmox, ..ProxtalosData::default() }
    }

    /// The Image Factory URL resources use unless they name their own.
    pub fn image_factory_url(&self) -> &str {
        self.image_factory_url.as_deref().unwrap_or(crate::image_factory::PUBLIC_URL)
    }

    /// Remembers the version the connection check read.
    pub fn remember_version(&self, v: crate::proxmox::cluster::PveVersion) {
        let _ = self.version.set(v);
    }

    /// The PVE version: the one the connection check read, else asked now.
    pub async fn pve_version(
        &self,
        c: &crate::proxmox::Client,
    ) -> Result<crate::proxmox::cluster::PveVersion, crate::proxmox::Error> {
        if let Some(v) = self.version.get() {
            return Ok(v.clone());
        }
        let v: crate::proxmox::cluster::PveVersion = c.execute_as(&crate::proxmox::cluster::version()).await?;
        self.remember_version(v.clone());
        Ok(v)
    }

    /// `GET` answers that do not change during a run (the node list, a
    /// node's storages and bridges), asked once per process. Errors are
    /// not kept.
    pub async fn lookup(
        &self,
        c: &crate::proxmox::Client,
        req: &crate::proxmox::Request,
    ) -> Result<Arc<serde_json::Value>, crate::proxmox::Error> {
        let key = req.path_and_query();
        let mut cache = self.lookups.lock().await;
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        let v = Arc::new(c.execute(req).await?);
        cache.insert(key, v.clone());
        Ok(v)
    }

    /// The PVE client, or why there is none.
    pub fn pve(&self) -> Result<crate::proxmox::Client, PveUnavailable> {
        if let Some(c) = self.pve.get() {
            return Ok(c.clone());
        }
        let Some(s) = &self.proxmox else {
            return Err(PveUnavailable::NotConfigured);
        };
        let transport = crate::proxmox::ReqwestTransport::new(&crate::proxmox::TlsSettings {
            endpoint: s.endpoint.clone(),
            insecure: s.insecure,
            ca_pem: s.ca_certificate.clone(),
            timeout: std::time::Duration::from_secs(120),
        })
        .map_err(PveUnavailable::Invalid)?;
        let creds = match &s.auth {
            ProxmoxAuth::ApiToken(t) => crate::proxmox::Credentials::ApiToken(crate::proxmox::Secret::new(t.clone())),
            ProxmoxAuth::Password { username, password } => crate::proxmox::Credentials::Password {
                username: username.clone(),
                password: crate::proxmox::Secret::new(password.clone()),
            },
        };
        let c = crate::proxmox::Client::new(Box::new(transport), creds, crate::proxmox::ClientOptions::default());
        Ok(self.pve.get_or_init(|| c).clone())
    }
}

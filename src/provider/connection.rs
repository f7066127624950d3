//! The configure-time connection check: one `GET /version`, sent once
//! (no retries), turned into a diagnostic on the attribute to fix.
//!
//! Terraform shows a provider diagnostic with the source line of its
//! attribute (`api_token = var.proxmox_api_token`), so the user sees the
//! variable to fix; the detail also names where the value came from (the
//! block or a `PROXMOX_VE_*` variable). Secrets are never part of it.

use crate::plugin::diag::error_chain;
use crate::plugin::{AttributePath, Diagnostics};
use crate::proxmox::{ApiErrorKind, Error, cluster};

use super::{ProxmoxAuth, ProxmoxSettings, ProxtalosData};

/// Oldest PVE the provider is built for (`Sys.AccessNetwork` for
/// download-url; disk-image `import` content needs 8.4, checked where used).
const OLDEST_SUPPORTED: (u32, u32) = (8, 1);

fn path(attr: &str) -> AttributePath {
    AttributePath::attr("proxmox").and_index(0).and_attr(attr)
}

/// Which attribute a failure belongs to, and what to say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// `endpoint`, `api_token`, `password` or `ca_certificate`.
    pub attr: &'static str,
    pub summary: String,
    pub detail: String,
}

/// Checks that the endpoint answers as Proxmox VE and accepts the
/// credentials. Errors go to `diags`; the version is remembered in `data`.
pub async fn check(data: &ProxtalosData, s: &ProxmoxSettings, diags: &mut Diagnostics) {
    let client = match data.pve() {
        Ok(c) => c,
        Err(e) => {
            let attr = match e {
                crate::data::PveUnavailable::Invalid(crate::proxmox::Error::CaCertificate(_)) => "ca_certificate",
                _ => "endpoint",
            };
            diags.error_at(path(attr), "Invalid Proxmox settings", e.to_string());
            return;
        }
    };
    let result = client.execute_once(&cluster::version()).await;
    match result {
        Ok(v) => match serde_json::from_value::<cluster::PveVersion>(v) {
            Ok(v) => {
                tracing::debug!(version = %v.version, "proxmox connection checked");
                if v.major_minor().is_some_and(|mm| mm < OLDEST_SUPPORTED) {
                    diags.warning_at(
                        path("endpoint"),
                        "Old Proxmox VE",
                        format!(
                            "{} runs Proxmox VE {}; proxtalos supports 8.1 and later (9.x recommended). Some objects may fail.",
                            s.endpoint, v.version
                        ),
                    );
                }
                data.remember_version(v);
            }
            Err(_) => {
                let f = not_pve(s, "answered `GET /api2/json/version` without a Proxmox VE version");
                diags.error_at(path(f.attr), f.summary, f.detail);
            }
        },
        Err(e) => {
            tracing::warn!(endpoint = %s.endpoint, error = %error_chain(&e), "proxmox connection check failed");
            let f = finding(s, &e);
            diags.error_at(path(f.attr), f.summary, f.detail);
        }
    }
}

fn not_pve(s: &ProxmoxSettings, what: &str) -> Finding {
    Finding {
        attr: "endpoint",
        summary: "Not a Proxmox VE API".into(),
        detail: format!(
            "{} (from {}) {what}. Is this the Proxmox VE address, usually `https://HOST:8006/`?",
            s.endpoint, s.origin.endpoint
        ),
    }
}

/// What a failed check means for the user.
pub(crate) fn finding(s: &ProxmoxSettings, e: &Error) -> Finding {
    let skip = "If Proxmox is meant to be unreachable now (only Talos objects are planned), set `skip_connection_check = true`.";
    match e {
        Error::Connect(_) | Error::Transport(_) if error_chain(e).to_ascii_lowercase().contains("certificate") => {
            let fix = if s.ca_certificate.is_some() {
                "`ca_certificate` does not hold the CA that signed it"
            } else {
                "no `ca_certificate` is set and the built-in roots do not trust it"
            };
            Finding {
                attr: "ca_certificate",
                summary: "Proxmox VE certificate not trusted".into(),
                detail: format!(
                    "The TLS certificate of {} (from {}) could not be verified: {fix}.\n\nSet `ca_certificate` to the PEM of the CA that signed it (on the node: /etc/pve/pve-root-ca.pem), or, for a throwaway lab only, `insecure = true`.\n\nCause: {}",
                    s.endpoint,
                    s.origin.endpoint,
                    error_chain(e)
                ),
            }
        }
        Error::Connect(_) | Error::Transport(_) => Finding {
            attr: "endpoint",
            summary: "Cannot reach the Proxmox VE API".into(),
            detail: format!(
                "No answer from {} (from {}). Check the host and port (usually 8006) and that this machine can reach it.\n\nCause: {}\n\n{skip}",
                s.endpoint,
                s.origin.endpoint,
                error_chain(e)
            ),
        },
        Error::Api(api) => match api.kind() {
            ApiErrorKind::Unauthorized => {
                let (attr, who) = match &s.auth {
                    ProxmoxAuth::ApiToken(t) => {
                        ("api_token", format!("The API token {}", t.split('=').next().unwrap_or("")))
                    }
                    ProxmoxAuth::Password { username, .. } => ("password", format!("The login of {username}")),
                };
                Finding {
                    attr,
                    summary: "Proxmox VE refused the credentials".into(),
                    detail: format!(
                        "{who} (from {}) was refused by {}: {} {}.\n\nCheck the token id and secret (written `USER@REALM!TOKENID=SECRET`), and that the token has not expired or been removed (`pveum user token list USER`).",
                        s.origin.credentials, s.endpoint, api.status, api.message
                    ),
                }
            }
            ApiErrorKind::NotFound => not_pve(s, &format!("answered `GET /api2/json/version` with {}", api.status)),
            _ => Finding {
                attr: "endpoint",
                summary: "Proxmox VE API error".into(),
                detail: format!(
                    "{} (from {}) answered `GET /api2/json/version` with {} {}.\n\n{skip}",
                    s.endpoint, s.origin.endpoint, api.status, api.message
                ),
            },
        },
        other => not_pve(s, &format!("could not be read: {other}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::provider::SettingsOrigin;
    use crate::proxmox::ApiError;

    fn settings(auth: ProxmoxAuth, ca: bool) -> ProxmoxSettings {
        ProxmoxSettings {
            endpoint: "https://pve.lan:8006/".into(),
            auth,
            insecure: false,
            ca_certificate: ca.then(|| "-----BEGIN CERTIFICATE-----".into()),
            origin: SettingsOrigin { endpoint: "PROXMOX_VE_ENDPOINT", credentials: "the provider's `api_token`" },
            skip_connection_check: false,
        }
    }

    fn api(status: u16, message: &str) -> Error {
        Error::Api(ApiError {
            request: "GET /version".into(),
            status,
            message: message.into(),
            errors: BTreeMap::new(),
        })
    }

    #[test]
    fn each_failure_names_its_attribute_and_origin() {
        let token = ProxmoxAuth::ApiToken("tf@pve!ci=very-secret".into());
        let f = finding(&settings(token.clone(), false), &api(401, "authentication failure"));
        assert_eq!(f.attr, "api_token");
        assert!(f.detail.contains("tf@pve!ci") && f.detail.contains("the provider's `api_token`"), "{}", f.detail);
        assert!(!f.detail.contains("very-secret"), "the secret never appears");

        let pw = ProxmoxAuth::Password { username: "root@pam".into(), password: "hunter2".into() };
        let f = finding(&settings(pw, false), &api(401, "authentication failure"));
        assert_eq!(f.attr, "password");
        assert!(!f.detail.contains("hunter2"));

        let refused = Error::Connect(Box::new(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused")));
        let f = finding(&settings(token.clone(), false), &refused);
        assert_eq!((f.attr, f.summary.as_str()), ("endpoint", "Cannot reach the Proxmox VE API"));
        assert!(f.detail.contains("PROXMOX_VE_ENDPOINT") && f.detail.contains("refused"), "{}", f.detail);

        let cert = Error::Connect(Box::new(std::io::Error::other("invalid peer certificate: UnknownIssuer")));
        assert_eq!(finding(&settings(token.clone(), true), &cert).attr, "ca_certificate");
        let f = finding(&settings(token.clone(), false), &cert);
        assert_eq!(f.attr, "ca_certificate");
        assert!(f.detail.contains("no `ca_certificate` is set"), "{}", f.detail);

        let f = finding(&settings(token, false), &api(404, "Not Found"));
        assert_eq!(f.summary, "Not a Proxmox VE API");
    }
}

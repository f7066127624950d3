//! What is wrong with a `ca_certificate` PEM bundle, said before the TLS
//! client is built (reqwest only answers `builder error`). The checks are
//! the ones the client applies, no stricter: `CERTIFICATE` blocks are
//! base64-decoded and each is added to a rustls root store (webpki's
//! trust-anchor parse, what reqwest does with it); other blocks and text
//! between blocks are ignored, as reqwest's PEM reader ignores them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const BEGIN: &str = "-----BEGIN ";
const DASHES: &str = "-----";

/// `None` when the bundle holds at least one usable certificate, else a
/// sentence for the user naming the block and what is wrong with it.
pub fn problem(pem: &str) -> Option<String> {
    let mut certs = 0usize;
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(label_len) = after.find(DASHES) else {
            return Some(format!("block {}: the `-----BEGIN` line does not end in `-----`.", certs + 1));
        };
        let label = &after[..label_len];
        let body = &after[label_len + DASHES.len()..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body.find(&end_marker) else {
            return Some(format!("the `-----BEGIN {label}-----` block has no `{end_marker}` line."));
        };
        if label == "CERTIFICATE" {
            certs += 1;
            let text: String = body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let der = match STANDARD.decode(text.as_bytes()) {
                Ok(der) => der,
                Err(e) => return Some(format!("certificate {certs}: its text is not valid base64 ({e}).")),
            };
            let mut store = rustls::RootCertStore::empty();
            if let Err(e) = store.add(rustls::pki_types::CertificateDer::from(der)) {
                return Some(format!("certificate {certs}: not an X.509 certificate ({e})."));
            }
        }
        rest = &body[end + end_marker.len()..];
    }
    (certs == 0).then(|| {
        "no `-----BEGIN CERTIFICATE-----` block: give the PEM text of the CA (on a PVE node: /etc/pve/pve-root-ca.pem)."
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        rcgen::CertificateParams::new(vec!["pve".into()]).expect("params").self_signed(&key).expect("cert").pem()
    }

    #[test]
    fn a_good_bundle_passes_with_keys_and_comments_around() {
        let pem =
            format!("# PVE root CA\n{}\n-----BEGIN PRIVATE KEY-----\nzz\n-----END PRIVATE KEY-----\n", cert_pem());
        assert_eq!(problem(&pem), None);
        assert_eq!(problem(&format!("{}{}", cert_pem(), cert_pem())), None);
    }

    #[test]
    fn each_defect_is_named() {
        let good = cert_pem();
        let cases = [
            ("not a pem", "no `-----BEGIN CERTIFICATE-----` block"),
            ("-----BEGIN CERTIFICATE-----\nAAAA", "has no `-----END CERTIFICATE-----` line"),
            (
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "certificate 1: its text is not valid base64",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate 1: not an X.509 certificate",
            ),
        ];
        for (pem, want) in cases {
            let got = problem(pem).unwrap_or_default();
            assert!(got.contains(want), "{pem:?}: {got}");
        }
        let second_bad = format!("{good}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert!(problem(&second_bad).unwrap_or_default().starts_with("certificate 2:"));
    }
}

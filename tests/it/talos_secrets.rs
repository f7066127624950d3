//! Secrets bundle and client configuration tests (behaviour.md §3, §9).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use ed25519_dalek::Verifier;
use proxtalos::talos::VersionContract;
use proxtalos::talos::client_config::{self, ClientConfiguration};
use proxtalos::talos::pki::{self, KeyAlgorithm};
use proxtalos::talos::secrets::{SecretsBundle, SecretsError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

const GOLDEN_SECRETS: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/talos/golden/secrets.yaml"));

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_760_000_000)
}

fn label(pem: &str) -> String {
    pki::pem_decode(pem).unwrap().0
}

fn ext<T: for<'a> Decode<'a> + x509_cert::der::oid::AssociatedOid>(cert: &x509_cert::Certificate) -> Option<(bool, T)> {
    let e = cert.tbs_certificate().extensions()?.iter().find(|e| e.extn_id == T::OID)?;
    Some((e.critical, T::from_der(e.extn_value.as_bytes()).unwrap()))
}

/// §9: algorithms, PEM labels, 10-year CAs, token format, deterministic with a seeded RNG.
#[test]
fn generated_bundle_matches_upstream_shape() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let b = SecretsBundle::generate(VersionContract::V1_13, &mut rng, now()).unwrap();
    b.validate().unwrap();
    assert!(b.secrets.aescbc_encryption_secret.is_none());
    assert_eq!(b.secrets.bootstrap_token.len(), 23);
    assert_eq!(label(&b.certs.os.key), "ED25519 PRIVATE KEY");
    assert_eq!(pki::private_key_algorithm(&b.certs.os.key).unwrap(), KeyAlgorithm::Ed25519);
    for p in [&b.certs.etcd, &b.certs.k8s, &b.certs.k8s_aggregator] {
        let p = p.as_ref().unwrap();
        assert_eq!(label(&p.key), "EC PRIVATE KEY");
        assert_eq!(label(&p.crt), "CERTIFICATE");
    }
    let sa = b.certs.k8s_service_account_key.as_ref().unwrap();
    assert_eq!(label(sa), "RSA PRIVATE KEY");
    assert_eq!(pki::private_key_algorithm(sa).unwrap(), KeyAlgorithm::Rsa);

    let os = pki::parse_certificate(&b.certs.os.crt).unwrap();
    assert_eq!(pki::not_before(&os), now());
    assert_eq!(pki::not_after(&os), now() + Duration::from_secs(87_600 * 3600));
    assert_eq!(os.tbs_certificate().subject().to_string(), "O=talos");
    let (crit, bc) = ext::<BasicConstraints>(&os).unwrap();
    assert!(crit && bc.ca);
    let (_, ku) = ext::<KeyUsage>(&os).unwrap();
    assert!(ku.0.contains(KeyUsages::KeyCertSign));
    let agg = pki::parse_certificate(&b.certs.k8s_aggregator.as_ref().unwrap().crt).unwrap();
    assert_eq!(agg.tbs_certificate().subject().to_string(), "CN=front-proxy");

    // Same seed, same bundle (injectable RNG and clock).
    let again = SecretsBundle::generate(VersionContract::V1_13, &mut ChaCha20Rng::seed_from_u64(7), now()).unwrap();
    assert_eq!(b, again);
    // Round trip through secrets.yaml.
    assert_eq!(SecretsBundle::from_yaml(&b.to_yaml()).unwrap(), b);
    // Cluster ID alphabet: std base64 from v1.14 (§9) — 32 bytes either way.
    assert_eq!(b.cluster.id.len(), 44);
}

/// §9: parsing talosctl's secrets.yaml and re-serializing round-trips.
#[test]
fn golden_secrets_yaml_round_trips() {
    let b = SecretsBundle::from_yaml(GOLDEN_SECRETS).unwrap();
    let body: String = GOLDEN_SECRETS.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    assert_eq!(b.to_yaml(), body);
    assert_eq!(pki::private_key_algorithm(&b.certs.os.key).unwrap(), KeyAlgorithm::Ed25519);
}

#[test]
fn malformed_bundle_names_the_field() {
    let bad = GOLDEN_SECRETS.replace("inn7ol.u4ehnti8qyls9ymo", "not-a-token");
    match SecretsBundle::from_yaml(&bad) {
        Err(SecretsError::Field { field, .. }) => assert_eq!(field, "secrets.bootstraptoken"),
        other => panic!("unexpected {other:?}"),
    }
    let bad = GOLDEN_SECRETS.replace("key: LS0tLS1CRUdJTiBFRDI1NTE5", "key: !!!");
    match SecretsBundle::from_yaml(&bad) {
        Err(SecretsError::Field { field, .. }) => assert_eq!(field, "certs.os.key"),
        other => panic!("unexpected {other:?}"),
    }
    let missing = GOLDEN_SECRETS.replace("trustdinfo:", "trustd:");
    let err = SecretsBundle::from_yaml(&missing).unwrap_err().to_string();
    assert!(err.contains("trustd"), "{err}");
}

/// §3/§9: client cert signed by the OS CA, O=os:admin, EKU ClientAuth only, Ed25519.
#[test]
fn client_certificate_verifies_against_os_ca() {
    let b = SecretsBundle::from_yaml(GOLDEN_SECRETS).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let validity = Duration::from_secs(3600 * 24 * 30);
    let c = ClientConfiguration::generate(&b.certs.os, &["os:admin"], validity, &mut rng, now()).unwrap();
    assert_eq!(c.ca, b.certs.os.crt);
    assert_eq!(label(&c.key), "ED25519 PRIVATE KEY");
    let cert = pki::parse_certificate(&c.crt).unwrap();
    let ca = pki::parse_certificate(&b.certs.os.crt).unwrap();
    assert_eq!(cert.tbs_certificate().subject().to_string(), "O=os:admin");
    assert_eq!(cert.tbs_certificate().issuer(), ca.tbs_certificate().subject());
    let (_, eku) = ext::<ExtendedKeyUsage>(&cert).unwrap();
    assert_eq!(eku.0, vec![x509_cert::der::oid::db::rfc5280::ID_KP_CLIENT_AUTH]);
    let (_, ku) = ext::<KeyUsage>(&cert).unwrap();
    assert!(ku.0.contains(KeyUsages::DigitalSignature) && !ku.0.contains(KeyUsages::KeyCertSign));

    // Signature check with the CA's Ed25519 public key.
    let ca_pub = ca.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(ca_pub.try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(cert.signature().raw_bytes()).unwrap();
    vk.verify(&cert.tbs_certificate().to_der().unwrap(), &sig).unwrap();

    // Expiry accessors for renewal planning.
    assert_eq!(c.valid_from().unwrap(), now());
    assert_eq!(c.expires_at().unwrap(), now() + validity);
    assert!(!c.needs_renewal(now(), Duration::from_secs(3600 * 24)).unwrap());
    assert!(c.needs_renewal(now() + Duration::from_secs(3600 * 24 * 29 + 1), Duration::from_secs(3600 * 24)).unwrap());

    // talosconfig: base64 PEM, context named after the cluster.
    let tc = client_config::talosconfig("base", &["10.0.0.2".into()], &[], &c);
    assert!(tc.starts_with(
        "context: base\ncontexts:\n    base:\n        endpoints:\n            - 10.0.0.2\n        ca: LS0t"
    ));
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&tc).unwrap();
    assert!(parsed["contexts"]["base"].get("nodes").is_none());
}

#[test]
fn worker_style_os_ca_cannot_sign() {
    let mut b = SecretsBundle::from_yaml(GOLDEN_SECRETS).unwrap();
    b.certs.os.key.clear();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    assert!(
        ClientConfiguration::generate(&b.certs.os, &["os:admin"], client_config::DEFAULT_VALIDITY, &mut rng, now())
            .is_err()
    );
}

//! A seeded Talos secrets bundle with what tests derive from it: an
//! `os:admin` client configuration and a control-plane machine
//! configuration (install disk `/dev/sda`). Same seed, same secrets.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use proxtalos::talos::client_config::ClientConfiguration;
use proxtalos::talos::config::{ConfigInput, MachineType, generate};
use proxtalos::talos::secrets::SecretsBundle;
use proxtalos::talos::version::VersionContract;
use rand_chacha::rand_core::SeedableRng;

/// Secrets for one test binary's simulated cluster.
pub struct TalosFixture {
    /// The bundle (Talos v1.13 contract).
    pub bundle: SecretsBundle,
    seed: u64,
    cluster: &'static str,
}

impl TalosFixture {
    /// Secrets from `seed`; `cluster` names the cluster in the configs.
    pub fn new(seed: u64, cluster: &'static str) -> TalosFixture {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let bundle = SecretsBundle::generate(VersionContract::V1_13, &mut rng, SystemTime::now()).unwrap();
        TalosFixture { bundle, seed, cluster }
    }

    /// An `os:admin` talosconfig valid for an hour.
    pub fn admin(&self) -> ClientConfiguration {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(self.seed + 1);
        ClientConfiguration::generate(
            &self.bundle.certs.os,
            &["os:admin"],
            Duration::from_secs(3600),
            &mut rng,
            SystemTime::now(),
        )
        .unwrap()
    }

    /// A control-plane machine configuration (YAML) that installs to `/dev/sda`.
    pub fn controlplane_config(&self) -> Vec<u8> {
        let mut input = ConfigInput::new(
            self.cluster,
            "https://127.0.0.1:6443",
            MachineType::Controlplane,
            VersionContract::V1_13,
            "1.31.0",
        );
        input.install_disk = Some("/dev/sda".to_string());
        generate(&input, &self.bundle).unwrap().to_yaml().into_bytes()
    }
}

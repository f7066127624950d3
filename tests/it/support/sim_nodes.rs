//! Simulated Talos nodes on their own tokio runtime, for tests that run
//! real Terraform (which blocks the test's thread): `127.<base>.<slot>.<n>`,
//! where `base` depends on the test process so that parallel test binaries
//! do not collide, and `slot` is per test.

use std::net::IpAddr;

use proxtalos::talos::sim::{NodeSpec, Phase, SimCluster, SimOptions};

/// Simulated nodes on their own runtime (Terraform runs block this thread).
pub struct Sim {
    /// The runtime the nodes run on.
    pub rt: tokio::runtime::Runtime,
    cluster: Option<SimCluster>,
    /// The nodes' addresses.
    pub ips: Vec<String>,
}

impl Sim {
    /// `n` metal nodes with the fast options of `version`.
    pub fn start(version: &str, slot: u8, n: usize) -> Sim {
        Sim::start_with(SimOptions::fast(version), slot, n)
    }

    /// `n` metal nodes with `options`.
    pub fn start_with(options: SimOptions, slot: u8, n: usize) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let base = 200 + (std::process::id() % 50) as u8;
        let addrs: Vec<IpAddr> = (0..n).map(|i| IpAddr::from([127, base, slot, i as u8 + 1])).collect();
        let cluster =
            rt.block_on(SimCluster::start(options, addrs.iter().map(|a| NodeSpec::metal(*a)).collect())).unwrap();
        Sim { rt, cluster: Some(cluster), ips: addrs.iter().map(ToString::to_string).collect() }
    }

    /// The cluster.
    pub fn c(&self) -> &SimCluster {
        self.cluster.as_ref().unwrap()
    }

    /// Each node's phase.
    pub fn phases(&self) -> Vec<Phase> {
        (0..self.ips.len()).map(|i| self.c().phase(i).unwrap()).collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        self.cluster.take();
    }
}

//! Runs simulated Talos nodes until Ctrl-C (needs the `sim` feature):
//!
//! ```text
//! cargo run --example talos-sim --features sim -- --version v1.13.9 \
//!     --time-scale 0.1 [--port 50000] [--nocloud] 127.0.10.1 127.0.10.2
//! ```
//! Prints each node's endpoint and maintenance fingerprint.

use proxtalos::talos::sim::{NodeSpec, SimCluster, SimOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut options = SimOptions::new("v1.13.9");
    let mut nocloud = false;
    let mut addrs = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--version" => options.talos_version = args.next().ok_or("--version needs a value")?,
            "--time-scale" => options.time_scale = args.next().ok_or("--time-scale needs a value")?.parse()?,
            "--port" => options.port = args.next().ok_or("--port needs a value")?.parse()?,
            "--nocloud" => nocloud = true,
            other => addrs.push(other.parse::<std::net::IpAddr>()?),
        }
    }
    if addrs.is_empty() {
        addrs.push("127.0.10.1".parse()?);
    }
    let specs = addrs.into_iter().map(|a| if nocloud { NodeSpec::nocloud(a) } else { NodeSpec::metal(a) }).collect();
    let cluster = SimCluster::start(options.clone(), specs).await?;
    for i in 0..cluster.len() {
        println!(
            "{} {} fingerprint={}",
            options.talos_version,
            cluster.endpoint(i),
            cluster.maintenance_fingerprint(i)?
        );
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}

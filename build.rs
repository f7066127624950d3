//! Compiles our own .proto text (tfplugin6 subset, go-plugin's controller,
//! and the Talos API subset under `proto/talos/`) with tonic-prost-build. protoc comes from `protoc-bin-vendored` unless the
//! caller sets `PROTOC`, so a fresh machine needs no system package.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    compress_schemas()?;
    // The `sim` feature (tests, the lab) also needs the Talos servers (the
    // node simulator) and the tfplugin6 client (tests drive the provider
    // over gRPC); the provider users get is built without either.
    let sim = std::env::var_os("CARGO_FEATURE_SIM").is_some();
    println!("cargo:rerun-if-env-changed=PROTOC");
    let mut config = prost_build::Config::new();
    match std::env::var_os("PROTOC") {
        Some(p) => config.protoc_executable(p),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    // google.protobuf.Timestamp comes from prost-types; the include path for its
    // .proto text ships with protoc-bin-vendored.
    let include = protoc_bin_vendored::include_path()?;
    tonic_prost_build::configure().build_client(sim).build_server(true).compile_with_config(
        config,
        &[std::path::PathBuf::from("proto/tfplugin6.proto"), std::path::PathBuf::from("proto/plugin.proto")],
        &[std::path::PathBuf::from("proto"), include.clone()],
    )?;
    // Talos API subset: its import root is `proto/talos` (as upstream's is
    // `api/`), so it is a separate invocation.
    let mut config = prost_build::Config::new();
    match std::env::var_os("PROTOC") {
        Some(p) => config.protoc_executable(p),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    let talos = std::path::PathBuf::from("proto/talos");
    tonic_prost_build::configure().build_client(true).build_server(sim).compile_with_config(
        config,
        &[
            talos.join("machine/machine.proto"),
            talos.join("machine/lifecycle.proto"),
            talos.join("machine/image.proto"),
            talos.join("storage/storage.proto"),
            talos.join("cosi/resource.proto"),
        ],
        &[talos, include],
    )?;
    // etcd v3 API subset: the lab's client for the real etcd members behind
    // the simulated control planes (sim only).
    if sim {
        let mut config = prost_build::Config::new();
        match std::env::var_os("PROTOC") {
            Some(p) => config.protoc_executable(p),
            None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
        };
        tonic_prost_build::configure().build_client(true).build_server(false).compile_with_config(
            config,
            &[std::path::PathBuf::from("proto/etcd/rpc.proto")],
            &[std::path::PathBuf::from("proto/etcd")],
        )?;
    }
    Ok(())
}

/// The embedded Talos JSON schemas (`src/talos/schemas/*.json`, 228 KB) go
/// into the binary raw-DEFLATE compressed (~30 KB); `talos::schema` inflates
/// one the first time a contract is validated. Issue 12 §5: the release
/// binary's size.
fn compress_schemas() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("schemas");
    std::fs::create_dir_all(&out)?;
    for name in ["v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "nodoc"] {
        let src = format!("src/talos/schemas/{name}.json");
        println!("cargo:rerun-if-changed={src}");
        let text = std::fs::read(&src)?;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&text)?;
        std::fs::write(out.join(format!("{name}.json.deflate")), enc.finish()?)?;
    }
    Ok(())
}

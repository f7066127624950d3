//! Generated protobuf code for our .proto text (see `proto/`).
#![allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]

/// tfplugin6 (protocol 6.10 subset).
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller service.
pub mod plugin {
    tonic::include_proto!("plugin");
}

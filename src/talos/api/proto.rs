//! Generated code for our Talos API .proto text (`proto/talos/`). Modules
//! follow the proto packages, so `storage::storage_service_client` (the
//! legacy Disks call) never clashes with `machine`'s services (api.md §1).
#![allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]

/// Talos `common` package: envelope metadata and byte-stream chunks.
pub mod common {
    tonic::include_proto!("common");
}

/// Talos `machine` package: `machine.MachineService`.
pub mod machine {
    tonic::include_proto!("machine");
}

/// Talos `storage` package: `storage.StorageService` (Disks).
pub mod storage {
    tonic::include_proto!("storage");
}

/// COSI `cosi.resource` package: `State/Get` and the machine config spec.
pub mod cosi {
    tonic::include_proto!("cosi.resource");
}

/// `google.rpc.Status`, referenced by `common.Metadata`.
pub mod google {
    /// The `google.rpc` package.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

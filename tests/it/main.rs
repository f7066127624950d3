//! Every integration test in one binary (issue 12 §6): each former
//! `tests/*.rs` file is a module here, so `cargo test` links tonic, rustls,
//! the RustCrypto keys and the simulator once instead of once per file.
//!
//! Run one file's tests with its module name as the filter, for example
//! `cargo test --test it e2e_vm::` or
//! `cargo test --test it acc_talos::ctrl_c_during_talos_waits_returns_within_5_s`.

mod support;
#[path = "../tftest/mod.rs"]
mod tftest;

mod acc_cluster;
mod acc_kube_health;
mod acc_talos;
mod acc_talos_cluster;
mod acc_upgrade_in_place;
mod actions;
mod change_stories;
mod codec_props;
mod diag_paths;
mod docs;
mod e2e_ha;
mod e2e_image;
mod e2e_pci;
mod e2e_placement;
mod e2e_pool;
mod e2e_protocol;
mod e2e_schematic;
mod e2e_vm;
mod etcd_real;
mod examples_apply;
mod examples_validate;
mod functions;
mod kube_lab;
mod lab;
mod list_query;
mod process;
mod proxmox_client;
mod quickstart;
mod quickstart_bad_input;
mod release;
mod release_layout;
mod rpc;
mod standalone;
mod talos_api;
mod talos_day2;
mod talos_deprecated;
mod talos_golden;
mod talos_patches;
mod talos_real_etcd;
mod talos_secrets;
mod talos_sim_runtime;
mod talos_vip;

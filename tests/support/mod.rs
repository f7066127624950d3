//! Shared helpers for integration tests.
pub mod fakepve;
pub mod real_lab;
pub mod talos_fixture;
pub mod terraform;

//! Shared helpers for integration tests.
pub mod fakepve;
pub mod terraform;

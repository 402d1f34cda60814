//! Integration tests of gatehouse-core: one binary, one module per area.

mod console;
mod ipc_drift;
mod keychain;
mod support;

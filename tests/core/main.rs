//! Integration tests of gatehouse-core: one binary, one module per area.

mod console;
mod fleet;
mod ipc_drift;
mod keychain;
mod lab;
mod support;
mod timeline;

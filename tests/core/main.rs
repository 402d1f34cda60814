//! Integration tests of gatehouse-core: one binary, one module per area.

mod analytics;
mod console;
mod fleet;
mod ipc_drift;
mod keychain;
mod lab;
mod notify;
mod rotation;
mod support;
mod timeline;

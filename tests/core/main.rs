//! Integration tests of gatehouse-core: one binary, one module per area.

mod alerts;
mod analytics;
mod audit;
mod compliance;
mod console;
mod fleet;
mod guides;
mod incidents;
mod ipc_drift;
mod keychain;
mod lab;
mod notify;
mod protection;
#[allow(
    dead_code,
    reason = "shared with the other test binaries, which use all of it"
)]
use gatehouse_testkit::ports;
mod rotation;
mod schedule;
mod support;
mod timeline;

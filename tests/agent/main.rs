//! The agent, run as an operator would (its binary) and served on loopback to real TLS
//! clients (its library), one module per area.

mod anchor;
mod checks;
mod cli;
mod database;
mod exposure;
mod files;
mod firewall;
mod journal;
mod layering;
mod mtls;
use gatehouse_testkit::ports;
mod rotate;
mod support;
mod tail;

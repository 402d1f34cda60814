//! The kernel's socket tables, as the agent reads them to tell the service's own process from
//! another local user's on the service's port. The parser is included as it is (it uses only
//! std): building the whole agent with sanitizers would make CI slow for one small parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/agent/src/service/netstat.rs"]
#[allow(dead_code)]
mod netstat;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for socket in netstat::parse(text) {
            // Whatever parses is an address a socket can have, and takes connections to itself.
            assert!(netstat::takes(socket.local, socket.local));
            assert!(netstat::takes(socket.remote, socket.remote));
        }
    }
});

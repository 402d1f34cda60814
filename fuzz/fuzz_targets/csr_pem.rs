//! A certificate signing request as an agent sends it to the console.
#![no_main]

use std::sync::OnceLock;

use gatehouse_pki::{FleetCa, Serial, Validity};
use libfuzzer_sys::fuzz_target;

fn ca() -> &'static FleetCa {
    static CA: OnceLock<FleetCa> = OnceLock::new();
    CA.get_or_init(|| {
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        FleetCa::generate(Validity::starting(now, time::Duration::days(365)), Serial::from_random([7; 16]))
            .expect("CA")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let _ = ca().sign_agent_csr(text, "alpha", Validity::starting(now, time::Duration::days(30)), Serial::from_random([9; 16]));
    }
});

//! Certificates received from the network (agent certificate and CA at enrollment), and the
//! revocation list text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gatehouse_pki::cert_info(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = gatehouse_pki::parse_cert(text);
        let _ = gatehouse_pki::RevocationList::from_text(text);
        if let Some((a, b)) = text.split_once("\n\n") {
            let _ = gatehouse_pki::verify_issued_by(a, b);
        }
    }
});

//! Every body that crosses the wire between console and agent, in both directions.
#![no_main]

use gatehouse_protocol as p;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<p::Info>(data);
    let _ = serde_json::from_slice::<p::ErrorBody>(data);
    let _ = serde_json::from_slice::<p::EnrollCsrRequest>(data);
    let _ = serde_json::from_slice::<p::EnrollCsrResponse>(data);
    let _ = serde_json::from_slice::<p::EnrollCompleteRequest>(data);
    let _ = serde_json::from_slice::<p::RenewCsrResponse>(data);
    let _ = serde_json::from_slice::<p::InstallCertRequest>(data);
    let _ = serde_json::from_slice::<p::FingerprintKeyReply>(data);
    if let Ok(request) = serde_json::from_slice::<p::FingerprintKeyRequest>(data) {
        let _ = gatehouse_pki::FingerprintKey::from_hex(&request.key);
    }
    if let Ok(list) = serde_json::from_slice::<p::Revocations>(data) {
        for serial in list.serials {
            let _ = serial.parse::<gatehouse_pki::Serial>();
        }
    }
});

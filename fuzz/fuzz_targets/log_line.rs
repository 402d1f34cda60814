//! Every log format the agent parses: lines come from files anyone on the host may write to.
#![no_main]

use gatehouse_events::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in Format::ALL {
        if let Ok(parsed) = format.parse(data) {
            // A parsed line never claims more than it had.
            if let Some(path) = parsed.path {
                assert!(path.len() <= data.len() + 4 * data.len());
            }
        }
    }
});

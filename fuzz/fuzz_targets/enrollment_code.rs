//! The enrollment code, as pasted by an operator or read from a file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(code) = text.parse::<gatehouse_protocol::EnrollmentCode>() {
            // Whatever parses must print back to something that parses to the same code.
            let again: gatehouse_protocol::EnrollmentCode =
                code.to_string().parse().expect("a printed code parses");
            assert_eq!(again, code);
        }
    }
});

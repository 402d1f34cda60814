//! Every log format the agent parses: lines come from files anyone on the host may write to.
#![no_main]

use std::sync::OnceLock;

use gatehouse_events::{Format, LineFormat};
use libfuzzer_sys::fuzz_target;

/// A `format = "pattern"` source with every capture, as an operator's profile would give it.
fn pattern() -> &'static LineFormat {
    static PATTERN: OnceLock<LineFormat> = OnceLock::new();
    PATTERN.get_or_init(|| {
        LineFormat::from_parts(
            "pattern",
            Some(
                r#"^(?P<time>\S+) (?P<ip>\S+) (?P<user>\S+) (?P<key_prefix>\S+) "(?P<method>\S+) (?P<path>\S+)" (?P<status>\S+) (?P<outcome>\S+)(?: (?P<message>.*))?$"#,
            ),
            None,
        )
        .expect("the fuzz pattern compiles")
    })
}

fuzz_target!(|data: &[u8]| {
    let formats = Format::ALL
        .into_iter()
        .map(LineFormat::from)
        .chain([pattern().clone()]);
    for format in formats {
        if let Ok(parsed) = format.parse(data) {
            // A parsed line never claims more than it had.
            if let Some(path) = parsed.path {
                assert!(path.len() <= data.len() + 4 * data.len());
            }
        }
    }
});

//! Standard output of the command line.

use std::io::Write as _;

/// Write `line` and a line break to standard output. A reader that went away (`| head`) ends
/// the program quietly, with the status SIGPIPE gives (141), instead of a panic; any other
/// failure to write is said on standard error and ends it with status 1.
pub fn say(line: std::fmt::Arguments<'_>) {
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

// The app's IPC command names, from the core's command list (the one declaration of the IPC
// surface), shared by build.rs (which generates an ACL permission per command) and the tests
// (which check the main window's capability grants exactly these).
include!("../crates/core/src/ipc/commands.rs");

macro_rules! command_names {
    ($( $kind:ident $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $(= |$c:ident| $body:expr)? ; )*) => {
        &[$(stringify!($name)),*]
    };
}

pub const COMMANDS: &[&str] = with_commands!(command_names);

// The app's IPC commands, shared by build.rs (which generates an ACL permission per command)
// and the tests (which check the main window's capability grants exactly these).
pub const COMMANDS: &[&str] = &[
    "app_info",
    "keychain_status",
    "overview",
    "settings",
    "set_theme",
    "first_paint",
    "instances",
    "add_instance",
    "refresh_instance",
    "refresh_all",
    "revoke_instance",
    "remove_instance",
    "events",
    "event_raw",
    "sync_states",
    "sync_now",
    "export_events",
];

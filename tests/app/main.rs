//! Checks of the desktop shell's security baseline that need no display.

include!("../../src-tauri/command_names.rs");

use serde_json::Value;

fn read_json(path: &str) -> Value {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full).expect("config file readable");
    serde_json::from_str(&text).expect("config file is JSON")
}

#[test]
fn the_main_window_capability_grants_exactly_the_app_commands() {
    let capability = read_json("src-tauri/capabilities/main.json");
    assert_eq!(
        capability["windows"],
        serde_json::json!(["main"]),
        "one capability, main window only"
    );
    let mut granted: Vec<String> = capability["permissions"]
        .as_array()
        .expect("permissions list")
        .iter()
        .map(|p| {
            p.as_str()
                .expect("permission identifiers are strings")
                .to_owned()
        })
        .collect();
    let mut expected: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    granted.sort();
    expected.sort();
    assert_eq!(
        granted, expected,
        "the webview may call our commands and nothing else (no core or plugin permissions)"
    );
}

#[test]
fn the_content_security_policy_is_strict() {
    let config = read_json("tauri.conf.json");
    let csp = &config["app"]["security"]["csp"];
    assert_eq!(
        csp["default-src"], "'self'",
        "everything defaults to the app's own files"
    );
    assert_eq!(
        csp["connect-src"], "ipc: http://ipc.localhost",
        "the webview reaches no network, only IPC"
    );
    let all = csp.as_object().expect("csp is an object of directives");
    for (directive, value) in all {
        let value = value.as_str().expect("directive values are strings");
        assert!(
            !value.contains("unsafe-eval"),
            "{directive} must not allow eval"
        );
        if directive == "script-src" {
            assert!(!value.contains("unsafe-inline"), "no inline scripts");
        }
    }
    assert_eq!(
        config["app"]["withGlobalTauri"], false,
        "no global Tauri object in the page"
    );
    assert_eq!(
        config["app"]["security"]["freezePrototype"], true,
        "prototype frozen"
    );
}

#[test]
fn every_bundler_icon_exists_and_is_not_empty() {
    let config = read_json("tauri.conf.json");
    for icon in config["bundle"]["icon"].as_array().expect("icon list") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(icon.as_str().expect("icon paths are strings"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 100, "{} must be a real icon file", path.display());
    }
}

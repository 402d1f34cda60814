//! A secret on the clipboard for a while, then gone.

use std::time::Duration;

use gatehouse_core::Sensitive;

/// What the clipboard holds, read into a wiping string.
pub fn read_secret() -> Result<Sensitive<String>, String> {
    let mut clipboard = arboard::Clipboard::new().map_err(|e| e.to_string())?;
    clipboard
        .get_text()
        .map(Sensitive::new)
        .map_err(|e| match e {
            arboard::Error::ContentNotAvailable => "it holds no text".to_owned(),
            other => other.to_string(),
        })
}

/// Clear the clipboard if it still holds `secret`.
pub fn clear_if(secret: &Sensitive<String>) {
    let Ok(mut clipboard) = arboard::Clipboard::new() else {
        return;
    };
    let ours = clipboard
        .get_text()
        .map(Sensitive::new)
        .is_ok_and(|text| text.expose() == secret.expose());
    if ours {
        let _ = clipboard.clear();
    }
}

/// Put `secret` on the clipboard and clear it after `keep` (unless something else was copied
/// meanwhile). On X11 the clipboard is served by its owner, so the owner lives exactly that
/// long.
pub fn copy_for(secret: Sensitive<String>, keep: Duration) -> Result<(), String> {
    let mut clipboard = arboard::Clipboard::new().map_err(|e| e.to_string())?;
    let set = clipboard.set();
    // Kept out of clipboard managers' history and cloud sync where the platform allows.
    #[cfg(all(unix, not(target_os = "macos")))]
    let set = arboard::SetExtLinux::exclude_from_history(set);
    #[cfg(target_os = "macos")]
    let set = arboard::SetExtApple::exclude_from_history(set);
    #[cfg(windows)]
    let set = arboard::SetExtWindows::exclude_from_history(set);
    // Borrowed, so no copy of ours outlives `secret` (which wipes itself when dropped).
    set.text(secret.expose().as_str())
        .map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        std::thread::sleep(keep);
        // What the clipboard holds is read back into a wiping string too.
        let still_ours = clipboard
            .get_text()
            .map(Sensitive::new)
            .is_ok_and(|text| text.expose() == secret.expose());
        if still_ours {
            let _ = clipboard.clear();
        }
        tracing::info!(cleared = still_ours, "rotated key clipboard time is over");
    });
    Ok(())
}

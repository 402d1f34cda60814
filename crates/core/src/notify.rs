//! Desktop notifications for new alerts, through notify-rust: the freedesktop notification
//! service over D-Bus on Linux and the BSDs, the native centres on macOS and Windows.

use crate::{AlertNotice, Error, Result};

/// The words of a notification: a summary line and a body.
pub fn notice_text(notice: &AlertNotice) -> (String, String) {
    let a = &notice.alert;
    let summary = format!(
        "Gatehouse: {} on {} ({} severity)",
        a.rule_name,
        a.instance,
        a.severity.as_str()
    );
    let mut body = a.detail.clone();
    if notice.held_back > 0 {
        body.push_str(&format!(
            " {} more alert{} arrived in the last minute; see the Alerts list.",
            notice.held_back,
            if notice.held_back == 1 { "" } else { "s" }
        ));
    }
    (summary, body)
}

/// Show a notification for a new alert. `on_open` runs with the alert's id when the operator
/// clicks it (where the platform reports clicks).
pub fn show_alert(notice: &AlertNotice, on_open: impl FnOnce(i64) + Send + 'static) -> Result<()> {
    let (summary, body) = notice_text(notice);
    let mut notification = notify_rust::Notification::new();
    notification
        .appname("Gatehouse")
        .summary(&summary)
        .body(&body)
        .icon("dialog-warning")
        .timeout(notify_rust::Timeout::Milliseconds(15_000));
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        notification
            .action("default", "Open the alert")
            .hint(notify_rust::Hint::Category("security".into()));
        let handle = notification.show().map_err(|e| Error::Notification {
            detail: e.to_string(),
        })?;
        let id = notice.alert.id;
        // Blocks until the notification is clicked, dismissed or expires; the rate limit
        // bounds how many wait at once.
        std::thread::Builder::new()
            .name("alert-notification".into())
            .spawn(move || {
                let mut on_open = Some(on_open);
                handle.wait_for_action(|action| {
                    if action == "default" {
                        if let Some(open) = on_open.take() {
                            open(id);
                        }
                    }
                });
            })
            .map_err(|e| Error::Notification {
                detail: format!("cannot wait for the click: {e}"),
            })?;
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        // Clicking brings the app forward on these platforms; the alert list is one step away.
        let _ = on_open;
        notification.show().map_err(|e| Error::Notification {
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

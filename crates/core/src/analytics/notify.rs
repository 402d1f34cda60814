//! Desktop notifications for new alerts, through notify-rust: the freedesktop notification
//! service over D-Bus on Linux and the BSDs, the native centres on macOS and Windows.

use crate::{AlertNotice, Error, Result};

/// The words of a notification: a summary line and a body.
pub fn notice_text(notice: &AlertNotice) -> (String, String) {
    let a = &notice.alert;
    let summary = format!(
        "Gatehouse: {} on {} ({} severity)",
        crate::escape::visible(&a.rule_name),
        crate::escape::visible(&a.instance),
        a.severity.as_str()
    );
    // Notification servers read the body as markup, and an address can come from a header a
    // client chose (Jelmore's X-Forwarded-For): escape it.
    let mut body = crate::escape::notification_body(&a.detail);
    if notice.held_back > 0 {
        body.push_str(&format!(
            " {} more alert{} arrived in the last minute; see the Alerts list.",
            notice.held_back,
            if notice.held_back == 1 { "" } else { "s" }
        ));
    }
    (summary, body)
}

/// Notifications whose click is still awaited; past this, new ones are shown without waiting
/// (servers that keep notifications forever would otherwise collect threads).
const MAX_WAITING: usize = 16;
static WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
        use std::sync::atomic::Ordering;
        let id = notice.alert.id;
        if WAITING.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            WAITING.fetch_sub(1, Ordering::SeqCst);
            return Ok(());
        }
        // Blocks until the notification is clicked, dismissed or expires.
        let spawned = std::thread::Builder::new()
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
                WAITING.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            WAITING.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Notification {
                detail: format!("cannot wait for the click: {e}"),
            });
        }
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

/// The words of a due-date warning.
pub fn due_text(notice: &crate::DueNotice) -> (String, String) {
    let c = &notice.credential;
    let on = c
        .instance
        .as_deref()
        .map(|i| format!(" on {}", crate::escape::visible(i)))
        .unwrap_or_default();
    let summary = if notice.days == 0 {
        format!(
            "Gatehouse: {}{on} is overdue for rotation",
            crate::escape::visible(&c.name)
        )
    } else {
        format!(
            "Gatehouse: {}{on} is due in {} day{}",
            crate::escape::visible(&c.name),
            notice.days,
            if notice.days == 1 { "" } else { "s" }
        )
    };
    let body = crate::escape::notification_body(&format!(
        "{} ({}). Policy: {}. See the Rotation view.",
        c.status_text, c.location, c.policy
    ));
    (summary, body)
}

/// Show a warning that a credential is due for rotation or renewal.
pub fn show_due(notice: &crate::DueNotice) -> Result<()> {
    let (summary, body) = due_text(notice);
    notify_rust::Notification::new()
        .appname("Gatehouse")
        .summary(&summary)
        .body(&body)
        .icon("dialog-information")
        .show()
        .map(|_| ())
        .map_err(|e| Error::Notification {
            detail: e.to_string(),
        })
}

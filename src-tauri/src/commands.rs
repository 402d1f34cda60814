//! IPC commands. Each one is declared once, in the core's command list
//! (`crates/core/src/ipc/commands.rs`); the handlers of the console's commands are generated
//! from it here: extract the console, make the declared call, convert the error. The few
//! `shell` commands, which hold state of the window, are written below by hand with exactly
//! the declared signature.

use gatehouse_core::*;
use std::time::Instant;

use tauri::State;

use crate::AppState;

macro_rules! tauri_commands {
    ($( $kind:ident $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $(= |$c:ident| $body:expr)? ; )*) => {
        $( tauri_command!($kind $name ($($arg : $ty),*) -> $ret $(= |$c| $body)?); )*
    };
}

macro_rules! tauri_command {
    (sync $name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty = |$c:ident| $body:expr) => {
        #[tauri::command(async)]
        #[tracing::instrument(skip_all)]
        pub fn $name(state: State<'_, AppState>, $($arg: $ty),*) -> Result<$ret, IpcError> {
            let $c = state.console()?;
            let result: gatehouse_core::Result<$ret> = $body;
            Ok(result?)
        }
    };
    (async $name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty = |$c:ident| $body:expr) => {
        #[tauri::command]
        #[tracing::instrument(skip_all)]
        pub async fn $name(state: State<'_, AppState>, $($arg: $ty),*) -> Result<$ret, IpcError> {
            let $c = state.console()?;
            let result: gatehouse_core::Result<$ret> = $body;
            Ok(result?)
        }
    };
    (shell $name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty) => {};
}

gatehouse_core::with_commands!(tauri_commands);

/// Called once by the UI after its first frame is on screen.
#[tauri::command]
pub fn first_paint(state: State<'_, AppState>) {
    state.record_first_paint();
}

/// Resolves with the id of an alert whose desktop notification was clicked. The window keeps
/// one call waiting; events would need core permissions the window does not have.
#[tauri::command]
pub async fn next_opened_alert(state: State<'_, AppState>) -> Result<i64, IpcError> {
    Ok(state.next_opened_alert().await)
}

/// Enroll with the code on the clipboard, read here so it never passes through the webview;
/// once it is spent, the clipboard is cleared if it still holds it.
#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn add_instance_from_clipboard(
    state: State<'_, AppState>,
    name: String,
    address: String,
    profile: String,
) -> Result<InstanceView, IpcError> {
    let console = state.console()?;
    let code = crate::clipboard::read_secret().map_err(|detail| {
        IpcError::from(Error::InvalidInput {
            field: "enrollment code",
            reason: format!(
                "the clipboard cannot be read ({detail}); paste the code into the form instead"
            ),
        })
    })?;
    let request = AddInstance {
        name,
        address,
        // Line breaks from a wrapped terminal are not part of the code.
        code: code.expose().split_whitespace().collect(),
        profile,
    };
    let added = console.fleet.add_instance(request).await;
    if added.is_ok() {
        crate::clipboard::clear_if(&code);
    }
    Ok(added?)
}

/// Rotate a key. The new key stays in the shell (and the keychain), never in the webview,
/// until `copy_rotated_key` puts it on the clipboard once.
#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn rotate_key(
    state: State<'_, AppState>,
    instance: String,
    name: String,
) -> Result<RotationResult, IpcError> {
    let (result, key) = state
        .console()?
        .rotation
        .rotate_key(&instance, &name)
        .await?;
    if let Some(key) = key {
        state
            .rotated_keys
            .keep(format!("{name} on {instance}"), key, Instant::now());
    }
    Ok(result)
}

/// Copy a rotated key (by its label, `NAME on INSTANCE`, or the latest) to the clipboard,
/// once; it is cleared after 30 seconds.
#[tauri::command]
pub async fn copy_rotated_key(
    state: State<'_, AppState>,
    label: Option<String>,
) -> Result<String, IpcError> {
    let Some((label, key)) = state.rotated_keys.take(label.as_deref(), Instant::now()) else {
        return Err(IpcError::from(Error::InvalidInput {
            field: "key",
            reason: format!(
                "a new key is copied once, within {} minutes of its rotation; this one is no \
                 longer held here, but it is in the OS keychain",
                crate::rotated::KEPT_FOR.as_secs() / 60
            ),
        }));
    };
    crate::clipboard::copy_for(key, std::time::Duration::from_secs(30)).map_err(|detail| {
        IpcError::from(Error::InvalidInput {
            field: "clipboard",
            reason: format!(
                "the clipboard cannot be used: {detail}; the key is in the OS keychain"
            ),
        })
    })?;
    Ok(format!(
        "The new key for {label} is on the clipboard for 30 seconds."
    ))
}

/// Rotate several keys, four at a time; `bulk_progress` says how far it got.
#[tauri::command]
#[tracing::instrument(skip_all, fields(keys = targets.len()))]
pub async fn rotate_many(
    state: State<'_, AppState>,
    targets: Vec<(String, String)>,
) -> Result<Vec<BulkItem>, IpcError> {
    let console = state.console()?;
    state.set_bulk(0, targets.len() as u32);
    let (items, keys) = console
        .rotation
        .rotate_many(&targets, BULK_CONCURRENCY, |done, total| {
            state.set_bulk(done as u32, total as u32)
        })
        .await;
    for (label, key) in keys {
        state.rotated_keys.keep(label, key, Instant::now());
    }
    Ok(items)
}

/// `[done, total]` of the bulk rotation under way (or the last one).
#[tauri::command]
pub fn bulk_progress(state: State<'_, AppState>) -> (u32, u32) {
    state.bulk()
}

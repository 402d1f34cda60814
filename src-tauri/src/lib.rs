//! The desktop shell: window setup, state, and the IPC commands. Logic lives in
//! `gatehouse-core`; this crate only wires it to Tauri.

mod clipboard;
mod commands;
mod rotated;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Once};
use std::time::Instant;

use gatehouse_core::{logging, Console, DataDir, IpcError, Vault};

/// Set to print `first-paint` on stdout when the UI reports its first frame (bench/startup.py).
const REPORT_FIRST_PAINT_ENV: &str = "GATEHOUSE_REPORT_FIRST_PAINT";

/// What every command reaches through `State`.
#[derive(Debug)]
pub struct AppState {
    /// The console, or why it could not open (the UI shows the message instead of a view).
    console: Result<Arc<Console>, IpcError>,
    started: Instant,
    first_paint: Once,
    /// Keys of committed rotations by label (`NAME on INSTANCE`), until each is copied once
    /// or its time is over.
    rotated_keys: rotated::RotatedKeys,
    /// A bulk rotation's progress: keys done, keys in all.
    bulk: std::sync::Mutex<(u32, u32)>,
    /// Alerts whose notification was clicked, for the window to open.
    opened_tx: tokio::sync::mpsc::UnboundedSender<i64>,
    opened_rx: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<i64>>,
}

impl AppState {
    pub fn new(console: Result<Arc<Console>, IpcError>) -> Self {
        let (opened_tx, opened_rx) = tokio::sync::mpsc::unbounded_channel();
        AppState {
            console,
            started: Instant::now(),
            first_paint: Once::new(),
            opened_tx,
            opened_rx: tokio::sync::Mutex::new(opened_rx),
            rotated_keys: rotated::RotatedKeys::default(),
            bulk: std::sync::Mutex::new((0, 0)),
        }
    }

    fn set_bulk(&self, done: u32, total: u32) {
        *self
            .bulk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (done, total);
    }

    fn bulk(&self) -> (u32, u32) {
        *self
            .bulk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next alert to open because its notification was clicked.
    async fn next_opened_alert(&self) -> i64 {
        match self.opened_rx.lock().await.recv().await {
            Some(id) => id,
            // The sender lives as long as the state: never closed while the window runs.
            None => std::future::pending().await,
        }
    }

    fn console(&self) -> Result<&Console, IpcError> {
        self.console.as_deref().map_err(Clone::clone)
    }

    fn record_first_paint(&self) {
        self.first_paint.call_once(|| {
            let ms = self.started.elapsed().as_millis();
            tracing::info!(ms, "first paint");
            if std::env::var_os(REPORT_FIRST_PAINT_ENV).is_some() {
                println!("first-paint {ms}");
            }
        });
    }
}

/// `--data-dir DIR` or `--data-dir=DIR` from the command line, if given.
fn data_dir_arg() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--data-dir" {
            return args.next().map(PathBuf::from);
        }
        if let Some(value) = text.strip_prefix("--data-dir=") {
            return Some(PathBuf::from(value));
        }
    }
    None
}

/// `tauri::generate_handler!` over every command of the core's list.
macro_rules! handlers {
    ($( $kind:ident $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $(= |$c:ident| $body:expr)? ; )*) => {
        tauri::generate_handler![$(commands::$name),*]
    };
}

/// Open the console and run the window until it closes.
pub fn run() -> ExitCode {
    // First, while this is the only thread: the environment is read by WebKit later.
    let renderer = choose_renderer();
    gatehouse_core::install_crypto_provider();
    let opened = DataDir::resolve(data_dir_arg().as_deref()).and_then(|dir| {
        dir.ensure()?;
        let guard = logging::init(&dir, "console")?;
        Ok((Console::open(dir, Vault::from_env()), guard))
    });
    let (console, _log_guard) = match opened {
        Ok((console, guard)) => (console.map(Arc::new).map_err(IpcError::from), Some(guard)),
        // Without a data directory there is no log file either: say it on stderr, and still
        // open the window so the operator sees the reason.
        Err(error) => {
            eprintln!("gatehouse: {error}");
            (Err(IpcError::from(error)), None)
        }
    };
    if let Err(error) = &console {
        tracing::error!(code = error.code.as_str(), %error.message, "console failed to open");
    }
    if let Some(why) = renderer {
        tracing::info!("{why}");
    }
    build(AppState::new(console))
}

/// Where no GPU renders (no DRM render node: a virtual machine, a remote desktop, Xvfb),
/// WebKitGTK's DMA-BUF renderer composites every frame of the whole window in Mesa's software
/// rasteriser, about 150 ms of CPU for any change at all: the Timeline following live events
/// cost 9 % of a core. Its shared-memory renderer costs under 1 % there (`bench/follow.mjs`).
/// A value the operator set, either way, is kept.
#[cfg(target_os = "linux")]
fn choose_renderer() -> Option<&'static str> {
    const DMABUF_OFF: &str = "WEBKIT_DISABLE_DMABUF_RENDERER";
    if std::env::var_os(DMABUF_OFF).is_some() {
        return None;
    }
    let gpu = std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    if gpu {
        return None;
    }
    // Called before any other thread exists (the top of `run`).
    std::env::set_var(DMABUF_OFF, "1");
    Some("no GPU render node (/dev/dri/renderD*): WebKit's shared-memory renderer is used, as compositing every frame in software would cost a tenth of a core")
}

#[cfg(not(target_os = "linux"))]
fn choose_renderer() -> Option<&'static str> {
    None
}

/// Run the console's jobs (sync, refresh, renewal, due warnings, checks) while the window is
/// open; due credentials become desktop notifications.
fn spawn_schedule(console: Arc<Console>) {
    let console = (*console).clone();
    tauri::async_runtime::spawn(gatehouse_core::schedule::run(
        console,
        gatehouse_core::schedule::Intervals::default(),
        |notice| {
            // D-Bus calls block: not on the schedule's task.
            std::thread::spawn(move || {
                if let Err(e) = gatehouse_core::notify::show_due(&notice) {
                    tracing::warn!(error = %e, "no desktop notification for a due credential");
                }
            });
        },
    ));
}

/// New alerts become desktop notifications; a click brings the window forward and opens the
/// alert.
fn notify_alerts(
    console: &Console,
    app: tauri::AppHandle,
    opened: tokio::sync::mpsc::UnboundedSender<i64>,
) {
    console.analytics.on_alert(move |notice| {
        let app = app.clone();
        let opened = opened.clone();
        // D-Bus calls block: never on the sync task that raised the alert.
        std::thread::spawn(move || {
            let shown = gatehouse_core::notify::show_alert(&notice, move |id| {
                if let Some(window) = tauri::Manager::get_webview_window(&app, "main") {
                    let _ = window.unminimize();
                    let _ = window.show();
                    let _ = window.set_focus();
                }
                let _ = opened.send(id);
            });
            if let Err(e) = shown {
                tracing::warn!(error = %e, alert = notice.alert.id, "no desktop notification");
            }
        });
    });
}

fn build(state: AppState) -> ExitCode {
    let scheduled = state.console.as_ref().ok().cloned();
    let opened = state.opened_tx.clone();
    let result = tauri::Builder::default()
        .setup(move |app| {
            if let Some(console) = scheduled {
                notify_alerts(&console, app.handle().clone(), opened);
                spawn_schedule(console);
            }
            Ok(())
        })
        .manage(state)
        .invoke_handler(gatehouse_core::with_commands!(handlers))
        .run(tauri::generate_context!());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the window could not start");
            eprintln!("gatehouse: the window could not start: {error}");
            ExitCode::FAILURE
        }
    }
}

//! The desktop shell: window setup, state, and the IPC commands. Logic lives in
//! `gatehouse-core`; this crate only wires it to Tauri.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

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
}

impl AppState {
    pub fn new(console: Result<Arc<Console>, IpcError>) -> Self {
        AppState {
            console,
            started: Instant::now(),
            first_paint: Once::new(),
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

/// Where the window's exports go: the user's Downloads folder, or `exports/` in the data
/// directory on a system without one.
fn downloads_dir(console: &Console) -> PathBuf {
    directories::UserDirs::new()
        .and_then(|dirs| dirs.download_dir().map(PathBuf::from))
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            let dir = console.data_dir().root().join("exports");
            let _ = std::fs::create_dir_all(&dir);
            dir
        })
}

/// Open the console and run the window until it closes.
pub fn run() -> ExitCode {
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
    build(AppState::new(console))
}

/// How often every agent is contacted, how often new events are pulled, and how often
/// certificates are checked for renewal.
const REFRESH_EVERY: Duration = Duration::from_secs(60);
const SYNC_EVERY: Duration = Duration::from_secs(2);
const RENEW_CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// Contact the fleet and renew certificates on a clock, whether or not anyone is looking.
fn spawn_schedule(console: Arc<Console>) {
    tauri::async_runtime::spawn(async move {
        let mut refresh = tokio::time::interval(REFRESH_EVERY);
        let mut sync = tokio::time::interval(SYNC_EVERY);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renew = tokio::time::interval(RENEW_CHECK_EVERY);
        loop {
            tokio::select! {
                _ = sync.tick() => {
                    if let Err(e) = console.sync_all().await {
                        tracing::warn!(error = %e, "scheduled sync failed");
                    }
                }
                _ = refresh.tick() => {
                    if let Err(e) = console.refresh_all().await {
                        tracing::warn!(error = %e, "scheduled refresh failed");
                    }
                }
                _ = renew.tick() => {
                    match console.renew_due().await {
                        Ok(renewed) if !renewed.is_empty() => tracing::info!(?renewed, "certificates renewed"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "scheduled renewal failed"),
                    }
                }
            }
        }
    });
}

fn build(state: AppState) -> ExitCode {
    let scheduled = state.console.as_ref().ok().cloned();
    let result = tauri::Builder::default()
        .setup(move |_app| {
            if let Some(console) = scheduled {
                spawn_schedule(console);
            }
            Ok(())
        })
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::keychain_status,
            commands::overview,
            commands::settings,
            commands::set_theme,
            commands::first_paint,
            commands::instances,
            commands::add_instance,
            commands::refresh_instance,
            commands::refresh_all,
            commands::revoke_instance,
            commands::remove_instance,
            commands::events,
            commands::event_raw,
            commands::sync_states,
            commands::sync_now,
            commands::export_events,
        ])
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

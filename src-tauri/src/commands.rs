//! IPC commands: extract state, make one call into core, convert the error. Nothing else.

use gatehouse_core::{AppInfo, IpcError, KeychainStatus, Overview, Settings, Theme};
use tauri::State;

use crate::AppState;

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn app_info(state: State<'_, AppState>) -> Result<AppInfo, IpcError> {
    Ok(state.console()?.app_info()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn keychain_status(state: State<'_, AppState>) -> Result<KeychainStatus, IpcError> {
    Ok(state.console()?.keychain_status())
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn overview(state: State<'_, AppState>) -> Result<Overview, IpcError> {
    Ok(state.console()?.overview()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn settings(state: State<'_, AppState>) -> Result<Settings, IpcError> {
    Ok(state.console()?.settings()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, fields(theme = ?theme))]
pub fn set_theme(state: State<'_, AppState>, theme: Theme) -> Result<Settings, IpcError> {
    Ok(state.console()?.set_theme(theme)?)
}

/// Called once by the UI after its first frame is on screen.
#[tauri::command]
pub fn first_paint(state: State<'_, AppState>) {
    state.record_first_paint();
}

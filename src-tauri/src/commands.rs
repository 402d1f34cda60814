//! IPC commands: extract state, make one call into core, convert the error. Nothing else.

use gatehouse_core::{
    AddInstance, AppInfo, InstanceView, IpcError, KeychainStatus, Overview, RefreshSummary,
    Settings, Theme,
};
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

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn instances(state: State<'_, AppState>) -> Result<Vec<InstanceView>, IpcError> {
    Ok(state.console()?.instances()?)
}

#[tauri::command]
#[tracing::instrument(skip_all, fields(name = %request.name, address = %request.address))]
pub async fn add_instance(
    state: State<'_, AppState>,
    request: AddInstance,
) -> Result<InstanceView, IpcError> {
    Ok(state.console()?.add_instance(request).await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn refresh_instance(
    state: State<'_, AppState>,
    name: String,
) -> Result<InstanceView, IpcError> {
    Ok(state.console()?.refresh_instance(&name).await?)
}

#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn refresh_all(state: State<'_, AppState>) -> Result<RefreshSummary, IpcError> {
    Ok(state.console()?.refresh_all().await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn revoke_instance(
    state: State<'_, AppState>,
    name: String,
) -> Result<InstanceView, IpcError> {
    Ok(state.console()?.revoke_instance(&name).await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn remove_instance(state: State<'_, AppState>, name: String) -> Result<(), IpcError> {
    Ok(state.console()?.remove_instance(&name).await?)
}

//! IPC commands: extract state, make one call into core, convert the error. Nothing else.

use gatehouse_core::{
    AddInstance, AppInfo, Cursor, EventFilter, EventPage, ExportFormat, ExportResult, InstanceView,
    IpcError, KeychainStatus, Overview, RefreshSummary, Settings, SyncState, Theme,
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

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn events(
    state: State<'_, AppState>,
    filter: EventFilter,
    before: Option<Cursor>,
    limit: u32,
) -> Result<EventPage, IpcError> {
    Ok(state.console()?.events(&filter, before.as_ref(), limit)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn event_raw(
    state: State<'_, AppState>,
    instance: String,
    seq: i64,
) -> Result<Option<String>, IpcError> {
    Ok(state.console()?.event_raw(&instance, seq)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn sync_states(state: State<'_, AppState>) -> Result<Vec<SyncState>, IpcError> {
    Ok(state.console()?.sync_states()?)
}

#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn sync_now(state: State<'_, AppState>) -> Result<u64, IpcError> {
    Ok(state.console()?.sync_all().await?)
}

/// Export to the Downloads folder (the data directory's `exports/` if there is none).
#[tauri::command(async)]
#[tracing::instrument(skip(state, filter))]
pub fn export_events(
    state: State<'_, AppState>,
    filter: EventFilter,
    format: ExportFormat,
) -> Result<ExportResult, IpcError> {
    let console = state.console()?;
    let dir = crate::downloads_dir(console);
    Ok(console.export_to_dir(&filter, format, &dir)?)
}

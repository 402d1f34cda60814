//! IPC commands: extract state, make one call into core, convert the error. Nothing else.

use gatehouse_core::{
    AddInstance, Alert, AlertFilter, AlertState, AppInfo, BulkItem, CredentialInventory, Cursor,
    DetectionSettings, EventFilter, EventPage, ExportFormat, ExportResult, Heatmap, HeatmapQuery,
    ImageFormat, InstanceView, IpcError, KeychainStatus, Offender, OffenderQuery, Overview,
    RefreshSummary, RotationPreview, RotationRecord, RotationResult, Settings, SyncState, Theme,
};
use gatehouse_core::{
    AuditEntry, AuditVerdict, BundleResult, Incident, IncidentStatus, IncidentView, OpenIncident,
    TimelineEvent,
};
use gatehouse_core::{
    Burst, CheckRun, ComplianceQuery, ComplianceView, EvidenceInput, HistoryEntry, ItemView,
    ReportFormat, WaiverInput,
};
use tauri::State;

use crate::AppState;

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn app_info(state: State<'_, AppState>) -> Result<AppInfo, IpcError> {
    Ok(state.console()?.preferences.app_info()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn keychain_status(state: State<'_, AppState>) -> Result<KeychainStatus, IpcError> {
    Ok(state.console()?.preferences.keychain_status())
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn overview(state: State<'_, AppState>) -> Result<Overview, IpcError> {
    Ok(state.console()?.overview()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn settings(state: State<'_, AppState>) -> Result<Settings, IpcError> {
    Ok(state.console()?.preferences.settings()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, fields(theme = ?theme))]
pub fn set_theme(state: State<'_, AppState>, theme: Theme) -> Result<Settings, IpcError> {
    Ok(state.console()?.preferences.set_theme(theme)?)
}

/// Called once by the UI after its first frame is on screen.
#[tauri::command]
pub fn first_paint(state: State<'_, AppState>) {
    state.record_first_paint();
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn instances(state: State<'_, AppState>) -> Result<Vec<InstanceView>, IpcError> {
    Ok(state.console()?.fleet.instances()?)
}

#[tauri::command]
#[tracing::instrument(skip_all, fields(name = %request.name, address = %request.address))]
pub async fn add_instance(
    state: State<'_, AppState>,
    request: AddInstance,
) -> Result<InstanceView, IpcError> {
    Ok(state.console()?.fleet.add_instance(request).await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn refresh_instance(
    state: State<'_, AppState>,
    name: String,
) -> Result<InstanceView, IpcError> {
    Ok(state.console()?.fleet.refresh_instance(&name).await?)
}

#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn refresh_all(state: State<'_, AppState>) -> Result<RefreshSummary, IpcError> {
    Ok(state.console()?.fleet.refresh_all().await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn revoke_instance(
    state: State<'_, AppState>,
    name: String,
) -> Result<InstanceView, IpcError> {
    Ok(state.console()?.fleet.revoke_instance(&name).await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn remove_instance(state: State<'_, AppState>, name: String) -> Result<(), IpcError> {
    Ok(state.console()?.fleet.remove_instance(&name).await?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn events(
    state: State<'_, AppState>,
    filter: EventFilter,
    before: Option<Cursor>,
    limit: u32,
) -> Result<EventPage, IpcError> {
    Ok(state
        .console()?
        .timeline
        .events(&filter, before.as_ref(), limit)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn event_raw(
    state: State<'_, AppState>,
    instance: String,
    seq: i64,
) -> Result<Option<String>, IpcError> {
    Ok(state.console()?.timeline.raw(&instance, seq)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn sync_states(state: State<'_, AppState>) -> Result<Vec<SyncState>, IpcError> {
    Ok(state.console()?.timeline.sync_states()?)
}

#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn sync_now(state: State<'_, AppState>) -> Result<u64, IpcError> {
    Ok(state.console()?.timeline.sync_all().await?)
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
    Ok(console.timeline.export_to_dir(&filter, format, &dir)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, fields(zone = ?zone))]
pub fn set_time_zone(
    state: State<'_, AppState>,
    zone: Option<String>,
) -> Result<Settings, IpcError> {
    Ok(state
        .console()?
        .preferences
        .set_time_zone(zone.as_deref())?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, fields(kind = ?query.kind, window = ?query.window))]
pub fn heatmap(state: State<'_, AppState>, query: HeatmapQuery) -> Result<Heatmap, IpcError> {
    Ok(state.console()?.analytics.heatmap(&query)?)
}

/// Save a heatmap picture to the Downloads folder; returns its path.
#[tauri::command(async)]
#[tracing::instrument(skip(state, query))]
pub fn export_heatmap(
    state: State<'_, AppState>,
    query: HeatmapQuery,
    format: ImageFormat,
) -> Result<String, IpcError> {
    let console = state.console()?;
    let dir = crate::downloads_dir(console);
    Ok(console
        .analytics
        .export_heatmap_to_dir(&query, format, &dir)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn offenders(
    state: State<'_, AppState>,
    query: OffenderQuery,
) -> Result<Vec<Offender>, IpcError> {
    Ok(state.console()?.analytics.offenders(&query)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn alerts(state: State<'_, AppState>, filter: AlertFilter) -> Result<Vec<Alert>, IpcError> {
    Ok(state.console()?.analytics.alerts(&filter)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn set_alert_state(
    state: State<'_, AppState>,
    id: i64,
    alert_state: AlertState,
) -> Result<Alert, IpcError> {
    Ok(state
        .console()?
        .analytics
        .set_alert_state(id, alert_state)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn detection(state: State<'_, AppState>) -> Result<DetectionSettings, IpcError> {
    Ok(state.console()?.analytics.detection()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn set_detection(
    state: State<'_, AppState>,
    detection: DetectionSettings,
) -> Result<DetectionSettings, IpcError> {
    Ok(state.console()?.analytics.set_detection(&detection)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn reset_detection(state: State<'_, AppState>) -> Result<DetectionSettings, IpcError> {
    Ok(state.console()?.analytics.reset_detection()?)
}

/// Resolves with the id of an alert whose desktop notification was clicked. The window keeps
/// one call waiting; events would need core permissions the window does not have.
#[tauri::command]
pub async fn next_opened_alert(state: State<'_, AppState>) -> Result<i64, IpcError> {
    Ok(state.next_opened_alert().await)
}

/// Every credential known, read from the agents now.
#[tauri::command]
#[tracing::instrument(skip_all)]
pub async fn credentials(state: State<'_, AppState>) -> Result<CredentialInventory, IpcError> {
    Ok(state.console()?.rotation.credentials().await?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn set_key_rotation_days(
    state: State<'_, AppState>,
    instance: String,
    days: Option<u32>,
) -> Result<(), IpcError> {
    Ok(state
        .console()?
        .rotation
        .set_key_rotation_days(&instance, days)?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn rotation_preview(
    state: State<'_, AppState>,
    instance: String,
    name: String,
) -> Result<RotationPreview, IpcError> {
    Ok(state
        .console()?
        .rotation
        .rotation_preview(&instance, &name)
        .await?)
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
        state.keep_rotated_key(format!("{name} on {instance}"), key);
    }
    Ok(result)
}

/// Copy a rotated key (by its label, `NAME on INSTANCE`, or the latest) to the clipboard,
/// once; it is cleared after 30 seconds.
#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn copy_rotated_key(
    state: State<'_, AppState>,
    label: Option<String>,
) -> Result<String, IpcError> {
    let Some((label, key)) = state.take_rotated_key(label.as_deref()) else {
        return Err(IpcError::from(gatehouse_core::Error::InvalidInput {
            field: "key",
            reason: "the new key was already copied once; it is in the OS keychain".into(),
        }));
    };
    crate::clipboard::copy_for(key, std::time::Duration::from_secs(30)).map_err(|detail| {
        IpcError::from(gatehouse_core::Error::InvalidInput {
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
        .rotate_many(&targets, gatehouse_core::BULK_CONCURRENCY, |done, total| {
            state.set_bulk(done as u32, total as u32)
        })
        .await;
    for (label, key) in keys {
        state.keep_rotated_key(label, key);
    }
    Ok(items)
}

/// `[done, total]` of the bulk rotation under way (or the last one).
#[tauri::command]
pub fn bulk_progress(state: State<'_, AppState>) -> (u32, u32) {
    state.bulk()
}

/// Rotations run from this console, newest first.
#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn rotation_history(
    state: State<'_, AppState>,
    limit: u32,
) -> Result<Vec<RotationRecord>, IpcError> {
    Ok(state.console()?.rotation.rotation_history(limit)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn compliance(
    state: State<'_, AppState>,
    query: ComplianceQuery,
) -> Result<ComplianceView, IpcError> {
    Ok(state.console()?.compliance.compliance(&query)?)
}

/// Run every automated check now, the rate-limit burst included.
#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn run_checks(
    state: State<'_, AppState>,
    instance: Option<String>,
) -> Result<CheckRun, IpcError> {
    Ok(state
        .console()?
        .compliance
        .run_checks(instance.as_deref(), Burst::Always)
        .await?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn item_history(
    state: State<'_, AppState>,
    instance: String,
    item: String,
) -> Result<Vec<HistoryEntry>, IpcError> {
    Ok(state.console()?.compliance.item_history(&instance, &item)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn assign_item(
    state: State<'_, AppState>,
    instance: String,
    item: String,
    owner: Option<String>,
    due_at: Option<i64>,
) -> Result<ItemView, IpcError> {
    Ok(state
        .console()?
        .compliance
        .assign_item(&instance, &item, owner.as_deref(), due_at)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state, note))]
pub fn sign_off_item(
    state: State<'_, AppState>,
    instance: String,
    item: String,
    note: String,
) -> Result<ItemView, IpcError> {
    Ok(state
        .console()?
        .compliance
        .sign_off_item(&instance, &item, &note)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state, evidence))]
pub fn add_item_evidence(
    state: State<'_, AppState>,
    instance: String,
    item: String,
    evidence: EvidenceInput,
) -> Result<ItemView, IpcError> {
    Ok(state
        .console()?
        .compliance
        .add_item_evidence(&instance, &item, &evidence)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state, waiver))]
pub fn waive_item(
    state: State<'_, AppState>,
    instance: String,
    item: String,
    waiver: WaiverInput,
) -> Result<ItemView, IpcError> {
    Ok(state
        .console()?
        .compliance
        .waive_item(&instance, &item, &waiver)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn end_waiver(
    state: State<'_, AppState>,
    instance: String,
    item: String,
) -> Result<ItemView, IpcError> {
    Ok(state.console()?.compliance.end_waiver(&instance, &item)?)
}

/// Save the compliance report (HTML or JSON) to the Downloads folder; returns its path.
#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn export_compliance(
    state: State<'_, AppState>,
    format: ReportFormat,
) -> Result<String, IpcError> {
    let console = state.console()?;
    let dir = crate::downloads_dir(console);
    Ok(console.reports.compliance_to_dir(format, &dir)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn set_tls_minimum(
    state: State<'_, AppState>,
    version: String,
) -> Result<ComplianceView, IpcError> {
    let console = state.console()?;
    console.compliance.set_tls_minimum(&version)?;
    Ok(console.compliance.compliance(&ComplianceQuery::default())?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn incidents(state: State<'_, AppState>) -> Result<Vec<Incident>, IpcError> {
    Ok(state.console()?.incidents.incidents()?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn incident(state: State<'_, AppState>, id: i64) -> Result<IncidentView, IpcError> {
    Ok(state.console()?.incidents.incident(id)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all)]
pub fn open_incident(
    state: State<'_, AppState>,
    input: OpenIncident,
) -> Result<IncidentView, IpcError> {
    let console = state.console()?;
    let incident = console.incidents.open_incident(&input)?;
    Ok(console.incidents.incident(incident.id)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn incident_from_alert(
    state: State<'_, AppState>,
    alert: i64,
) -> Result<IncidentView, IpcError> {
    let console = state.console()?;
    let incident = console.incidents.incident_from_alert(alert)?;
    Ok(console.incidents.incident(incident.id)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state, text))]
pub fn incident_note(
    state: State<'_, AppState>,
    id: i64,
    decision: bool,
    text: String,
) -> Result<IncidentView, IpcError> {
    Ok(state
        .console()?
        .incidents
        .incident_note(id, decision, &text)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn update_incident(
    state: State<'_, AppState>,
    id: i64,
    status: Option<IncidentStatus>,
    owner: Option<String>,
    step: Option<String>,
) -> Result<IncidentView, IpcError> {
    Ok(state
        .console()?
        .incidents
        .update_incident(id, status, owner.as_deref(), step.as_deref())?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn incident_block(
    state: State<'_, AppState>,
    id: i64,
    instance: String,
    ip: String,
    ttl_secs: u64,
) -> Result<IncidentView, IpcError> {
    Ok(state
        .console()?
        .incidents
        .incident_block(id, &instance, &ip, ttl_secs)
        .await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn incident_unblock(
    state: State<'_, AppState>,
    id: i64,
    instance: String,
    ip: String,
) -> Result<IncidentView, IpcError> {
    Ok(state
        .console()?
        .incidents
        .incident_unblock(id, &instance, &ip)
        .await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn incident_restart(
    state: State<'_, AppState>,
    id: i64,
    instance: String,
) -> Result<IncidentView, IpcError> {
    Ok(state
        .console()?
        .incidents
        .incident_restart(id, &instance)
        .await?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn incident_writes(
    state: State<'_, AppState>,
    id: i64,
) -> Result<Vec<TimelineEvent>, IpcError> {
    Ok(state.console()?.incidents.incident_writes(id)?)
}

/// Collect the evidence bundle into the Downloads folder.
#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn evidence_bundle(
    state: State<'_, AppState>,
    id: i64,
) -> Result<BundleResult, IpcError> {
    let console = state.console()?;
    let dir = crate::downloads_dir(console);
    Ok(console.incidents.evidence_bundle(id, &dir).await?)
}

/// Save the post-incident report (Markdown or HTML) to the Downloads folder.
#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn export_incident_report(
    state: State<'_, AppState>,
    id: i64,
    markdown: bool,
) -> Result<String, IpcError> {
    let console = state.console()?;
    let text = console.reports.incident(id, markdown)?;
    let path = crate::downloads_dir(console).join(format!(
        "gatehouse-incident-{id}.{}",
        if markdown { "md" } else { "html" }
    ));
    std::fs::write(&path, text).map_err(|e| {
        IpcError::from(gatehouse_core::Error::InvalidInput {
            field: "report",
            reason: format!("cannot write {}: {e}", path.display()),
        })
    })?;
    Ok(path.display().to_string())
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn audit_log(state: State<'_, AppState>, limit: u32) -> Result<Vec<AuditEntry>, IpcError> {
    Ok(state.console()?.audit.entries(limit)?)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state))]
pub fn verify_audit(state: State<'_, AppState>) -> Result<AuditVerdict, IpcError> {
    Ok(state.console()?.audit.verify()?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn incident_snapshot(
    state: State<'_, AppState>,
    id: i64,
    instance: String,
) -> Result<IncidentView, IpcError> {
    Ok(state
        .console()?
        .incidents
        .incident_snapshot(id, &instance)
        .await?)
}

#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn incident_restore(
    state: State<'_, AppState>,
    id: i64,
    instance: String,
    name: String,
) -> Result<IncidentView, IpcError> {
    Ok(state
        .console()?
        .incidents
        .incident_restore(id, &instance, &name)
        .await?)
}

/// The database snapshots kept on an instance's host, as names, newest first.
#[tauri::command]
#[tracing::instrument(skip(state))]
pub async fn snapshots(
    state: State<'_, AppState>,
    instance: String,
) -> Result<Vec<String>, IpcError> {
    Ok(state
        .console()?
        .incidents
        .snapshots(&instance)
        .await?
        .snapshots
        .into_iter()
        .map(|s| s.name)
        .collect())
}

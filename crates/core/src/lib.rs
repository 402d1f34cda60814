//! Gatehouse's console logic, with no dependency on Tauri or a display.
//!
//! The desktop app (`src-tauri/`) and the `gatehouse` CLI are thin shells over [`Console`].
//! Time and randomness are passed in by callers wherever results depend on them, so tests are
//! deterministic.

pub mod analytics;
mod audit;
mod clock;
pub mod compliance;
mod console;
mod context;
mod error;
pub mod fleet;
pub mod incidents;
pub mod logging;
mod paths;
pub mod preferences;
pub mod report;
pub mod rotation;
pub mod schedule;
mod sensitive;
pub mod timeline;
mod vault;

pub use analytics::detect;
pub use analytics::notify;
pub use analytics::{
    allowlisted, build_heatmap, render_png, time_zone, Alert, AlertFilter, AlertNotice, AlertState,
    Analytics, ChartTheme, DetectionSettings, GridBox, HeatCell, Heatmap, HeatmapKind,
    HeatmapQuery, ImageFormat, NotificationGate, Offender, OffenderQuery, Rule, Severity, Window,
    NOTIFICATIONS_PER_MINUTE,
};
pub use audit::{AuditEntry, AuditLog, AuditVerdict};
pub use clock::Clock;
pub use compliance::{
    Burst, Cadence, CheckRun, CheckState, CheckView, Compliance, ComplianceQuery, ComplianceView,
    Evidence, EvidenceInput, EvidenceKind, HistoryEntry, HistoryKind, InstanceCompliance,
    ItemFilter, ItemState, ItemView, Scorecard, Waiver, WaiverInput, WaiverKind,
};
pub use console::{Attention, Console, Overview, Status, View};
pub use error::{Error, ErrorCode, IpcError, Result, ALL_CODES};
pub use fleet::{AddInstance, Fleet, InstanceView, RefreshSummary, REFRESH_CONCURRENCY};
pub use gatehouse_store::events;
pub use gatehouse_store::events::{Cursor, EventFilter, EventPage, SyncState, TimelineEvent};
pub use gatehouse_store::incidents::EntryKind;
pub use gatehouse_store::instances::{Contact, InstanceRecord};
pub use gatehouse_store::{Db, SCHEMA_VERSION};
pub use incidents::{
    ActionKind, BundleResult, Incident, IncidentEntry, IncidentStatus, IncidentView, Incidents,
    OpenIncident, Playbook, PlaybookStep,
};
pub use paths::{DataDir, DATA_DIR_ENV};
pub use preferences::{AppInfo, Preferences, Settings, Theme};
pub use report::{ReportFormat, Reports};
pub use rotation::{
    BulkItem, Credential, CredentialInventory, CredentialKind, DueNotice, InventoryProblem,
    Rotation, RotationPreview, RotationRecord, RotationResult, RotationState, BULK_CONCURRENCY,
    DEFAULT_KEY_DAYS,
};
pub use sensitive::Sensitive;
pub use timeline::{utc, ExportFormat, ExportResult, Timeline};
pub use vault::{KeychainState, KeychainStatus, Vault, DEFAULT_SERVICE, SERVICE_ENV};

/// A hash map with a fast, randomly seeded hasher: keys come from hosts (addresses, paths,
/// key prefixes), which must not be able to force collisions, and hashing them is hot.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Make ring rustls's process-wide crypto provider. Call once at start-up.
pub fn install_crypto_provider() {
    gatehouse_pki::install_provider();
}

/// Every type that crosses IPC, rendered as TypeScript. `ui/src/gen/` holds exactly these
/// files; the test suite fails when they drift from the Rust types.
pub fn ipc_typescript() -> Vec<(String, String)> {
    use ts_rs::{Config, TS};
    fn one<T: TS + 'static + ?Sized>(cfg: &Config, out: &mut Vec<(String, String)>) {
        let text = T::export_to_string(cfg).unwrap_or_else(|e| {
            // Only fails for types without a name, which the derive never produces.
            panic!("ts-rs cannot render {}: {e}", T::name(cfg))
        });
        out.push((format!("{}.ts", T::name(cfg)), text));
    }
    let cfg = Config::default();
    let mut out = Vec::new();
    one::<AddInstance>(&cfg, &mut out);
    one::<Alert>(&cfg, &mut out);
    one::<AlertFilter>(&cfg, &mut out);
    one::<AlertState>(&cfg, &mut out);
    one::<BulkItem>(&cfg, &mut out);
    one::<ChartTheme>(&cfg, &mut out);
    one::<DetectionSettings>(&cfg, &mut out);
    one::<detect::Detection>(&cfg, &mut out);
    one::<GridBox>(&cfg, &mut out);
    one::<HeatCell>(&cfg, &mut out);
    one::<Heatmap>(&cfg, &mut out);
    one::<HeatmapKind>(&cfg, &mut out);
    one::<HeatmapQuery>(&cfg, &mut out);
    one::<ImageFormat>(&cfg, &mut out);
    one::<Offender>(&cfg, &mut out);
    one::<OffenderQuery>(&cfg, &mut out);
    one::<RotationPreview>(&cfg, &mut out);
    one::<RotationRecord>(&cfg, &mut out);
    one::<RotationResult>(&cfg, &mut out);
    one::<Rule>(&cfg, &mut out);
    one::<Severity>(&cfg, &mut out);
    one::<Window>(&cfg, &mut out);
    one::<AppInfo>(&cfg, &mut out);
    one::<AuditEntry>(&cfg, &mut out);
    one::<AuditVerdict>(&cfg, &mut out);
    one::<Cadence>(&cfg, &mut out);
    one::<ActionKind>(&cfg, &mut out);
    one::<BundleResult>(&cfg, &mut out);
    one::<Incident>(&cfg, &mut out);
    one::<IncidentEntry>(&cfg, &mut out);
    one::<IncidentStatus>(&cfg, &mut out);
    one::<IncidentView>(&cfg, &mut out);
    one::<OpenIncident>(&cfg, &mut out);
    one::<Playbook>(&cfg, &mut out);
    one::<PlaybookStep>(&cfg, &mut out);
    one::<CheckRun>(&cfg, &mut out);
    one::<CheckView>(&cfg, &mut out);
    one::<ComplianceQuery>(&cfg, &mut out);
    one::<ComplianceView>(&cfg, &mut out);
    one::<Evidence>(&cfg, &mut out);
    one::<EvidenceInput>(&cfg, &mut out);
    one::<EvidenceKind>(&cfg, &mut out);
    one::<HistoryEntry>(&cfg, &mut out);
    one::<InstanceCompliance>(&cfg, &mut out);
    one::<ItemFilter>(&cfg, &mut out);
    one::<ItemState>(&cfg, &mut out);
    one::<ItemView>(&cfg, &mut out);
    one::<Scorecard>(&cfg, &mut out);
    one::<ReportFormat>(&cfg, &mut out);
    one::<Waiver>(&cfg, &mut out);
    one::<WaiverInput>(&cfg, &mut out);
    one::<WaiverKind>(&cfg, &mut out);
    one::<Attention>(&cfg, &mut out);
    one::<Credential>(&cfg, &mut out);
    one::<CredentialInventory>(&cfg, &mut out);
    one::<CredentialKind>(&cfg, &mut out);
    one::<Cursor>(&cfg, &mut out);
    one::<InventoryProblem>(&cfg, &mut out);
    one::<ErrorCode>(&cfg, &mut out);
    one::<EventFilter>(&cfg, &mut out);
    one::<EventPage>(&cfg, &mut out);
    one::<ExportFormat>(&cfg, &mut out);
    one::<ExportResult>(&cfg, &mut out);
    one::<InstanceView>(&cfg, &mut out);
    one::<IpcError>(&cfg, &mut out);
    one::<KeychainState>(&cfg, &mut out);
    one::<KeychainStatus>(&cfg, &mut out);
    one::<Overview>(&cfg, &mut out);
    one::<RefreshSummary>(&cfg, &mut out);
    one::<Settings>(&cfg, &mut out);
    one::<Status>(&cfg, &mut out);
    one::<SyncState>(&cfg, &mut out);
    one::<Theme>(&cfg, &mut out);
    one::<TimelineEvent>(&cfg, &mut out);
    one::<View>(&cfg, &mut out);
    one::<RotationState>(&cfg, &mut out);
    one::<CheckState>(&cfg, &mut out);
    one::<HistoryKind>(&cfg, &mut out);
    one::<EntryKind>(&cfg, &mut out);
    one::<gatehouse_events::Kind>(&cfg, &mut out);
    one::<gatehouse_events::Outcome>(&cfg, &mut out);
    out
}

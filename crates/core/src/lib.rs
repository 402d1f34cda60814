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
pub mod escape;
pub mod fleet;
pub mod guides;
pub mod incidents;
pub mod ipc;
pub mod logging;
mod paths;
pub mod preferences;
pub mod protection;
pub mod report;
pub mod rotation;
pub mod schedule;
mod sensitive;
pub mod timeline;
mod vault;

pub use analytics::detect;
pub use analytics::notify;
pub use analytics::{
    allowlisted, build_heatmap, render_png, time_zone, Alert, AlertFacet, AlertFilter, AlertNotice,
    AlertState, AlertsMarked, Analytics, ChartTheme, ColourScale, DetectionSettings, GridBox,
    HeatCell, Heatmap, HeatmapKind, HeatmapQuery, ImageFormat, NotificationGate, Offender,
    OffenderPage, OffenderQuery, Rule, Severity, Snooze, SnoozeRequest, Window, HISTORY_KIND,
    LATE_US, MAX_MARKED, MAX_SNOOZE_HOURS, NOTIFICATIONS_PER_MINUTE, STALE_KEY_KIND,
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
pub use gatehouse_store::decisions::DecisionRecord;
pub use gatehouse_store::events;
pub use gatehouse_store::events::{Cursor, EventFilter, EventPage, SyncState, TimelineEvent};
pub use gatehouse_store::incidents::EntryKind;
pub use gatehouse_store::instances::{Contact, InstanceRecord};
pub use gatehouse_store::{Db, SCHEMA_VERSION};
pub use incidents::{
    ActionKind, BundleResult, Incident, IncidentEntry, IncidentOrigin, IncidentStatus,
    IncidentView, Incidents, OpenIncident, Playbook, PlaybookStep,
};
pub use paths::{DataDir, DATA_DIR_ENV};
pub use preferences::{AppInfo, Preferences, Settings, Theme};
pub use protection::{
    AgentPolicy, AllowReplay, BlockedHere, FleetBlockRequest, InstanceOutcome, PolicyOverview,
    Protection, ReplayExample, ReplayReport, ReplayRequest, RuleReplay, TemporaryAllow,
    UnblockAddress, WhyBlocked,
};
pub use report::{ReportFormat, Reports};
pub use rotation::{
    BulkItem, Credential, CredentialInventory, CredentialKind, DueNotice, InventoryProblem,
    Rotation, RotationPreview, RotationRecord, RotationResult, RotationState, BULK_CONCURRENCY,
    DEFAULT_KEY_DAYS,
};
pub use sensitive::Sensitive;
pub use timeline::{utc, ExportFormat, ExportResult, SyncFailure, SyncReport, Timeline};
pub use vault::{KeychainState, KeychainStatus, Vault, DEFAULT_SERVICE, SERVICE_ENV};

/// Make ring rustls's process-wide crypto provider. Call once at start-up.
pub fn install_crypto_provider() {
    gatehouse_pki::install_provider();
}

/// A mutex's guard, also when a thread panicked while holding it: every mutex here guards
/// plain data that a panic cannot leave half-written.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

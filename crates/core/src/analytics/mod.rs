//! What the failed sign-ins say: the detection rules and the streaming detector ([`detect`]),
//! alerts with their notification gate ([`alerts`], [`notify`]), heatmaps ([`heatmap`]) and
//! offenders ([`offenders`]), all read from the failed-authentication rollups.

pub(crate) mod alerts;
pub mod detect;
pub(crate) mod heatmap;
pub mod notify;
pub(crate) mod offenders;
pub(crate) mod stale;

use std::sync::Arc;

pub use alerts::{
    allowlisted, Alert, AlertFilter, AlertNotice, AlertState, AlertsMarked, DetectionSettings,
    NotificationGate, Snooze, SnoozeRequest, HISTORY_KIND, LATE_US, MAX_MARKED, MAX_SNOOZE_HOURS,
    NOTIFICATIONS_PER_MINUTE, STALE_KEY_KIND,
};
pub use detect::{Rule, Severity};
pub use gatehouse_store::alerts::AlertFacet;
pub use heatmap::{
    build as build_heatmap, render_png, time_zone, zone_name, ChartTheme, ColourScale, GridBox,
    HeatCell, Heatmap, HeatmapKind, HeatmapQuery, ImageFormat, Window,
};
pub use offenders::{Offender, OffenderPage, OffenderQuery};

use crate::context::Ctx;

#[derive(Debug, Clone)]
pub struct Analytics {
    ctx: Ctx,
    /// The detector's windows, the notification gate and the desktop hook.
    alerting: Arc<alerts::Alerting>,
}

impl Analytics {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Analytics {
            ctx,
            alerting: Arc::default(),
        }
    }
}

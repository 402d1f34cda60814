//! The timeline: every instance's events pulled from its agent ([`sync`]), paged newest first
//! with the window's filters, the raw line of each, and exports ([`export`]).

mod export;
mod sync;
pub use sync::{SyncFailure, SyncReport};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gatehouse_store::events::{Cursor, EventFilter, EventPage, SyncState};

pub use export::{utc, ExportFormat, ExportResult};

use crate::analytics::Analytics;
use crate::context::Ctx;
use crate::Result;

#[derive(Debug, Clone)]
pub struct Timeline {
    ctx: Ctx,
    /// New events go through the detection rules.
    analytics: Analytics,
    /// When each failing instance may be tried again.
    backoff: Arc<Mutex<sync::Backoff>>,
    /// One pull per instance at a time.
    pulling: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Timeline {
    pub(crate) fn new(ctx: Ctx, analytics: Analytics) -> Self {
        Timeline {
            ctx,
            analytics,
            backoff: Arc::default(),
            pulling: Arc::default(),
        }
    }

    /// A page of the timeline, newest first.
    pub fn events(
        &self,
        filter: &EventFilter,
        before: Option<&Cursor>,
        limit: u32,
    ) -> Result<EventPage> {
        let instances_of_service: Vec<String> = match &filter.service {
            Some(service) => self
                .ctx
                .db()
                .instances()
                .all()?
                .into_iter()
                .filter(|r| &r.profile == service)
                .map(|r| r.name)
                .collect(),
            None => Vec::new(),
        };
        Ok(self
            .ctx
            .events()
            .page(filter, &instances_of_service, before, limit)?)
    }

    /// The raw line of an event, shown as text in the detail panel.
    pub fn raw(&self, instance: &str, seq: i64) -> Result<Option<String>> {
        Ok(self.ctx.events().raw(instance, seq)?)
    }

    pub fn sync_states(&self) -> Result<Vec<SyncState>> {
        Ok(self.ctx.events().sync_states()?)
    }

    /// How many events match `filter` (counting up to a million).
    pub fn count(&self, filter: &EventFilter) -> Result<u64> {
        let mut cursor = None;
        let mut n = 0u64;
        loop {
            let page = self.events(filter, cursor.as_ref(), 1000)?;
            n += page.events.len() as u64;
            match page.next {
                Some(next) if n < 1_000_000 => cursor = Some(next),
                _ => return Ok(n),
            }
        }
    }
}

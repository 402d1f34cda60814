//! [`Console`]: the operations the window and the CLI expose, one method each.
//!
//! The Tauri commands and the CLI subcommands are thin wrappers over these methods, so every
//! capability can be scripted and tested without a display.

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use gatehouse_store::{Db, EventStore};

use crate::fleet::Links;
use crate::vault::{KeychainState, KeychainStatus};
use crate::{Clock, DataDir, Error, Result, Vault};

/// The console: its data directory, database and keychain.
#[derive(Debug)]
pub struct Console {
    data_dir: DataDir,
    vault: Vault,
    // rusqlite's Connection is Send but not Sync; calls are short, so one lock suffices.
    // Never held across an await.
    store: Mutex<Db>,
    /// The timeline's events, in a database of their own.
    events: Mutex<EventStore>,
    pub(crate) clock: Clock,
    pub(crate) links: Links,
    pub(crate) alerting: crate::alerts::Alerting,
    /// The last credential inventory, for the first screen (reading it asks every agent).
    pub(crate) last_inventory: Mutex<Option<crate::CredentialInventory>>,
    /// The audit log's HMAC key, read from the keychain once.
    pub(crate) audit_key: Mutex<Option<ring::hmac::Key>>,
}

/// What the About panel and `gatehouse info` show.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    pub version: String,
    pub data_dir: String,
    pub database: String,
    pub log_dir: String,
    pub schema_version: u32,
    pub platform: String,
}

/// The operator's preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Settings {
    pub theme: Theme,
    /// IANA time zone for charts and times; `None` follows the system.
    pub time_zone: Option<String>,
    /// The zone in effect (the system's when `time_zone` is `None`).
    pub effective_time_zone: String,
}

/// Colour theme. `System` follows the OS and is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

impl FromStr for Theme {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "system" => Ok(Theme::System),
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            other => Err(Error::InvalidInput {
                field: "theme",
                reason: format!("\"{other}\" is not one of system, light, dark"),
            }),
        }
    }
}

/// The console's views, as the UI and the overview name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Fleet,
    Timeline,
    Heatmaps,
    Rotation,
    Compliance,
    Incidents,
    Settings,
}

/// The one status vocabulary used everywhere; the UI pairs each with a word and an icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warning,
    Failing,
    Unknown,
}

impl Status {
    /// The word shown next to the status icon, and in the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failing => "failing",
            Status::Unknown => "unknown",
        }
    }
}

/// One thing that needs the operator's attention, shown on the first screen.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Attention {
    pub view: View,
    pub status: Status,
    pub title: String,
    pub detail: String,
}

/// The first screen's summary across all views.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Overview {
    pub instances: u32,
    pub keychain: KeychainStatus,
    pub attention: Vec<Attention>,
}

impl Console {
    /// Create the data directory if needed and open the database.
    pub fn open(data_dir: DataDir, vault: Vault) -> Result<Self> {
        Console::open_with_clock(data_dir, vault, Clock::system())
    }

    /// [`Console::open`] with a clock of the caller's choosing.
    pub fn open_with_clock(data_dir: DataDir, vault: Vault, clock: Clock) -> Result<Self> {
        data_dir.ensure()?;
        let store = Db::open(&data_dir.database())?;
        let events = EventStore::open(&data_dir.events_database())?;
        let console = Console {
            data_dir,
            vault,
            store: Mutex::new(store),
            events: Mutex::new(events),
            clock,
            links: Links::default(),
            alerting: Default::default(),
            last_inventory: Mutex::new(None),
            audit_key: Mutex::new(None),
        };
        console.reload_revocations()?;
        Ok(console)
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn app_info(&self) -> Result<AppInfo> {
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            data_dir: self.data_dir.root().display().to_string(),
            database: self.data_dir.database().display().to_string(),
            log_dir: self.data_dir.logs().display().to_string(),
            schema_version: self.store().schema_version()?,
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        })
    }

    pub fn keychain_status(&self) -> KeychainStatus {
        self.vault.status()
    }

    pub fn settings(&self) -> Result<Settings> {
        let theme = match self.store().settings().get("theme")? {
            Some(value) => value.parse().unwrap_or_else(|_: Error| {
                tracing::warn!(%value, "unknown stored theme, using system");
                Theme::System
            }),
            None => Theme::System,
        };
        let time_zone = self.store().settings().get("time_zone")?;
        let tz = crate::heatmap::time_zone(time_zone.as_deref());
        let effective_time_zone = crate::heatmap::zone_name(&tz, jiff::Timestamp::now());
        Ok(Settings {
            theme,
            time_zone,
            effective_time_zone,
        })
    }

    /// Set the time zone for charts (an IANA name such as `Europe/Berlin`), or follow the
    /// system's with `None`.
    pub fn set_time_zone(&self, name: Option<&str>) -> Result<Settings> {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => {
                jiff::tz::TimeZone::get(name).map_err(|e| Error::InvalidInput {
                    field: "time_zone",
                    reason: format!("\"{name}\" is not a known time zone ({e}); use an IANA name such as Europe/Berlin"),
                })?;
                self.store().settings().set("time_zone", name)?;
            }
            None => self.store().settings().delete("time_zone")?,
        }
        self.settings()
    }

    pub fn set_theme(&self, theme: Theme) -> Result<Settings> {
        self.store().settings().set("theme", theme.as_str())?;
        tracing::info!(theme = theme.as_str(), "theme changed");
        self.settings()
    }

    /// What needs attention across every view, worst first.
    pub fn overview(&self) -> Result<Overview> {
        let instances = self.store().instances().count()?;
        let keychain = self.keychain_status();
        let mut attention = Vec::new();
        match keychain.state {
            KeychainState::Available => {}
            KeychainState::Locked => attention.push(Attention {
                view: View::Settings,
                status: Status::Warning,
                title: "The OS keychain is locked".into(),
                detail: keychain.message.clone(),
            }),
            KeychainState::Unavailable => attention.push(Attention {
                view: View::Settings,
                status: Status::Failing,
                title: "No OS keychain is reachable".into(),
                detail: keychain.message.clone(),
            }),
        }
        for instance in self.instances()? {
            if matches!(instance.status, Status::Failing | Status::Warning) {
                attention.push(Attention {
                    view: View::Fleet,
                    status: instance.status,
                    title: format!("{} needs attention", instance.name),
                    detail: instance.status_text,
                });
            }
        }
        let open = self.alerts(&crate::AlertFilter {
            state: Some(crate::AlertState::New),
            ..Default::default()
        })?;
        if let Some(latest) = open.first() {
            let high = open.iter().any(|a| a.severity == crate::Severity::High);
            attention.push(Attention {
                view: View::Heatmaps,
                status: if high {
                    Status::Failing
                } else {
                    Status::Warning
                },
                title: if open.len() == 1 {
                    format!("New alert: {} on {}", latest.rule_name, latest.instance)
                } else {
                    format!("{} new alerts", open.len())
                },
                detail: latest.detail.clone(),
            });
        }
        let inventory = self
            .last_inventory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(inventory) = inventory {
            let failing: Vec<&crate::Credential> = inventory
                .credentials
                .iter()
                .filter(|c| c.status == Status::Failing)
                .collect();
            if let Some(first) = failing.first() {
                attention.push(Attention {
                    view: View::Rotation,
                    status: Status::Failing,
                    title: if failing.len() == 1 {
                        format!(
                            "{}{} needs rotating",
                            first.name,
                            first
                                .instance
                                .as_deref()
                                .map(|i| format!(" on {i}"))
                                .unwrap_or_default()
                        )
                    } else {
                        format!("{} credentials need rotating", failing.len())
                    },
                    detail: first.status_text.clone(),
                });
            }
        }
        let failing = self.compliance(&crate::ComplianceQuery {
            instance: None,
            filter: Some(crate::ItemFilter::Failing),
        })?;
        let items: Vec<&crate::ItemView> = failing
            .instances
            .iter()
            .flat_map(|i| i.items.iter())
            .collect();
        if let Some(first) = items.iter().find(|i| i.reopened).or(items.first()) {
            let reopened = items.iter().filter(|i| i.reopened).count();
            attention.push(Attention {
                view: View::Compliance,
                status: if reopened > 0 {
                    Status::Failing
                } else {
                    Status::Warning
                },
                title: match (reopened, items.len()) {
                    (0, 1) => format!("\"{}\" fails on {}", first.text, first.instance),
                    (0, n) => format!("{n} checklist items fail"),
                    (1, _) => format!("\"{}\" re-opened on {}", first.text, first.instance),
                    (r, _) => format!("{r} checklist items re-opened"),
                },
                detail: first.state_text.clone(),
            });
        }
        if instances == 0 {
            attention.push(Attention {
                view: View::Fleet,
                status: Status::Unknown,
                title: "No instances enrolled yet".into(),
                detail: "Enroll an instance from the Fleet view, or start the demo fleet to \
                         see Gatehouse at work."
                    .into(),
            });
        }
        attention.sort_by_key(|a| severity_rank(a.status));
        Ok(Overview {
            instances,
            keychain,
            attention,
        })
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave the store half-written: every write is a
        // single statement or a transaction, which SQLite rolls back.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn event_store(&self) -> MutexGuard<'_, EventStore> {
        // Ingest is one transaction per page; a panic mid-way is rolled back by SQLite.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn severity_rank(status: Status) -> u8 {
    match status {
        Status::Failing => 0,
        Status::Warning => 1,
        Status::Unknown => 2,
        Status::Ok => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_parse_rejects_unknown_values_with_the_choices() {
        let err = "purple"
            .parse::<Theme>()
            .expect_err("purple is not a theme");
        assert_eq!(
            err.code(),
            crate::ErrorCode::InvalidInput,
            "an unknown theme is invalid input"
        );
        assert!(
            err.to_string().contains("system, light, dark"),
            "the message must list the valid choices: {err}"
        );
        for theme in [Theme::System, Theme::Light, Theme::Dark] {
            assert_eq!(
                theme.as_str().parse::<Theme>().expect("round trip"),
                theme,
                "as_str and FromStr must agree"
            );
        }
    }

    #[test]
    fn severity_orders_failing_first() {
        let mut statuses = [
            Status::Ok,
            Status::Unknown,
            Status::Failing,
            Status::Warning,
        ];
        statuses.sort_by_key(|s| severity_rank(*s));
        assert_eq!(
            statuses,
            [
                Status::Failing,
                Status::Warning,
                Status::Unknown,
                Status::Ok
            ],
            "the first screen lists the worst first"
        );
    }
}

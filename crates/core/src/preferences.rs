//! The operator's preferences (theme, time zone) and what the About panel shows.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::context::Ctx;
use crate::vault::KeychainStatus;
use crate::{Error, Result};

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

#[derive(Debug, Clone)]
pub struct Preferences {
    ctx: Ctx,
}

/// The time zone charts and times are shown in: the operator's choice, or the system's.
pub(crate) fn time_zone(ctx: &Ctx) -> Result<jiff::tz::TimeZone> {
    let name = ctx.db().settings().get("time_zone")?;
    Ok(crate::analytics::time_zone(name.as_deref()))
}

impl Preferences {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Preferences { ctx }
    }

    pub fn app_info(&self) -> Result<AppInfo> {
        let dir = &self.ctx.data_dir;
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            data_dir: dir.root().display().to_string(),
            database: dir.database().display().to_string(),
            log_dir: dir.logs().display().to_string(),
            schema_version: self.ctx.db().schema_version()?,
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        })
    }

    pub fn keychain_status(&self) -> KeychainStatus {
        self.ctx.vault.status()
    }

    pub fn settings(&self) -> Result<Settings> {
        let theme = match self.ctx.db().settings().get("theme")? {
            Some(value) => value.parse().unwrap_or_else(|_: Error| {
                tracing::warn!(%value, "unknown stored theme, using system");
                Theme::System
            }),
            None => Theme::System,
        };
        let time_zone = self.ctx.db().settings().get("time_zone")?;
        let tz = crate::analytics::time_zone(time_zone.as_deref());
        let effective_time_zone = crate::analytics::zone_name(&tz, self.ctx.clock.now());
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
                self.ctx.db().settings().set("time_zone", name)?;
            }
            None => self.ctx.db().settings().delete("time_zone")?,
        }
        self.settings()
    }

    pub fn set_theme(&self, theme: Theme) -> Result<Settings> {
        self.ctx.db().settings().set("theme", theme.as_str())?;
        tracing::info!(theme = theme.as_str(), "theme changed");
        self.settings()
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
}

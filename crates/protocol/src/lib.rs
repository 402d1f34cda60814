//! The agent API's wire types.
//!
//! Versioned by path (`/v1/...`): a breaking change is a new version module, never an edit to
//! a released one. No I/O here; the agent and the console both depend on this crate and nothing
//! else crosses the wire.

use serde::{Deserialize, Serialize};

/// The API version this build speaks, as it appears in paths.
pub const API_VERSION: &str = "v1";

/// The health words used on the wire and in the UI: never colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Warning,
    Failing,
    Unknown,
}

/// The body of every non-2xx answer from the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// Errors decoding what an agent sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the agent speaks API {found}, this console speaks {API_VERSION}")]
    VersionMismatch { found: String },
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::VersionMismatch { .. } => "version_mismatch",
        }
    }
}

/// Path of an API endpoint under the current version, e.g. `path("info")` is `/v1/info`.
pub fn path(endpoint: &str) -> String {
    format!("/{API_VERSION}/{}", endpoint.trim_start_matches('/'))
}

/// Check the version an agent reports before trusting anything else it says.
pub fn check_version(found: &str) -> Result<(), Error> {
    if found == API_VERSION {
        Ok(())
    } else {
        Err(Error::VersionMismatch {
            found: found.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_wire_spelling_is_stable() {
        let json = serde_json::to_string(&[
            Health::Ok,
            Health::Warning,
            Health::Failing,
            Health::Unknown,
        ])
        .expect("serializes");
        assert_eq!(
            json, r#"["ok","warning","failing","unknown"]"#,
            "agents and consoles of different builds must agree on these words"
        );
    }

    #[test]
    fn paths_are_versioned() {
        assert_eq!(path("info"), "/v1/info", "every endpoint lives under /v1");
        assert_eq!(
            path("/events"),
            "/v1/events",
            "a leading slash must not double up"
        );
    }

    #[test]
    fn other_versions_are_refused() {
        assert!(check_version("v1").is_ok(), "our own version is accepted");
        let err = check_version("v2").expect_err("v2 must be refused");
        assert_eq!(err.code(), "version_mismatch");
    }
}

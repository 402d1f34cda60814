//! The agent's errors: [`ApiError`], what the console is answered (an HTTP status, a stable
//! code from `gatehouse_protocol::codes` and a message that says what to do), and
//! [`ConfigError`], what `check-config`, `init` and `run` say about a config file.

use std::path::PathBuf;

use gatehouse_protocol::codes;

/// An error answered to the console: an HTTP status, a stable code and a message.
///
/// The code is the wire contract (`gatehouse_protocol::codes`); the status is chosen where the
/// error is made, because one code can come with two statuses (a wrong token is 401, a token
/// this agent cannot check is 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, codes::BAD_REQUEST, message)
    }

    /// 409: the request is understood but this host refuses it as things stand.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(409, code, message)
    }

    /// 500: something failed on the agent; logged here, and said to the console.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, context, "internal error");
        ApiError::new(
            500,
            codes::INTERNAL,
            format!("{context} failed on the agent: {e}"),
        )
    }
}

/// A config file that cannot be used, or a profile that cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid agent config: {detail}", path.display())]
    Parse { path: PathBuf, detail: String },
    #[error("{}: profile must be a name of letters, digits, '-' or '_', got {profile:?}", path.display())]
    BadProfile { path: PathBuf, profile: String },
    #[error(
        "profile {profile:?} is neither built in (sekha, rae, jelmore, jupyter) nor a file in profiles_dir, \
         and the config lists no [[logs]]: {detail}"
    )]
    UnknownProfile { profile: String, detail: String },
    #[error("{}: the profile cannot be read: {detail}", path.display())]
    ProfileFile { path: PathBuf, detail: String },
}

impl ConfigError {
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_unreadable",
            ConfigError::Parse { .. } => "config_invalid",
            ConfigError::BadProfile { .. } => "config_bad_profile",
            ConfigError::UnknownProfile { .. } => "config_unknown_profile",
            ConfigError::ProfileFile { .. } => "config_invalid",
        }
    }
}

/// The innermost error of a chain: for a failed request, the refused connection or the
/// timeout rather than "error sending request".
pub fn root_cause(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_cause_is_the_innermost_error() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let chain = Outer(std::io::Error::other("connection refused"));
        assert_eq!(
            root_cause(&chain),
            "connection refused",
            "the cause that says what to fix"
        );
        assert_eq!(
            root_cause(&std::io::Error::other("alone")),
            "alone",
            "an error without a source is its own cause"
        );
    }
}

//! The console's error model.
//!
//! Every failure the operator can see is an [`Error`] variant. Its [`Error::code`] is a
//! stable, machine-readable [`ErrorCode`] the UI branches on; its `Display` is the message a
//! person reads, written to say what to do next. Over IPC both travel as an [`IpcError`].

use std::path::PathBuf;

use serde::Serialize;
use ts_rs::TS;

/// Result alias for the console's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the console's core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Secret Service / Keychain / Credential Manager could be reached at all.
    #[error(
        "The OS keychain is not reachable ({detail}). Gatehouse keeps every secret there and \
         never falls back to a file. {hint}"
    )]
    KeychainUnavailable { detail: String, hint: &'static str },

    /// The keychain answered but refused access, usually because it is locked.
    #[error("The OS keychain is locked or refused access ({detail}). Unlock it and try again.")]
    KeychainLocked { detail: String },

    /// A named secret is not in the keychain.
    #[error("The keychain holds no secret named \"{name}\".")]
    SecretNotFound { name: String },

    /// Any other keychain failure.
    #[error("The OS keychain failed: {detail}")]
    Keychain { detail: String },

    /// The data directory could not be created or used.
    #[error("Cannot use the data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The data directory could not be determined (no home directory).
    #[error(
        "Cannot determine where to keep Gatehouse's data on this system. \
         Set GATEHOUSE_DATA_DIR or pass --data-dir."
    )]
    NoDataDir,

    /// SQLite failed.
    #[error("The console's database failed: {0}")]
    Database(#[from] rusqlite::Error),

    /// The database was written by a newer Gatehouse.
    #[error(
        "The database at {} has schema version {found}, but this Gatehouse understands up to \
         {supported}. Use a newer Gatehouse, or point --data-dir elsewhere.",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// A value supplied by the operator (or a script) is not acceptable.
    #[error("Invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    /// Logging could not be set up.
    #[error("Cannot write the log in {}: {detail}", path.display())]
    Logging { path: PathBuf, detail: String },
}

/// The stable code of an [`Error`]; the UI and scripts branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    KeychainUnavailable,
    KeychainLocked,
    SecretNotFound,
    KeychainFailed,
    DataDir,
    Database,
    SchemaTooNew,
    InvalidInput,
    Logging,
}

impl ErrorCode {
    /// The wire spelling, as in the JSON and the generated TypeScript union.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::KeychainUnavailable => "keychain_unavailable",
            ErrorCode::KeychainLocked => "keychain_locked",
            ErrorCode::SecretNotFound => "secret_not_found",
            ErrorCode::KeychainFailed => "keychain_failed",
            ErrorCode::DataDir => "data_dir",
            ErrorCode::Database => "database",
            ErrorCode::SchemaTooNew => "schema_too_new",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Logging => "logging",
        }
    }
}

impl Error {
    /// The stable code for this error. Exhaustive on purpose: a new variant must pick a code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::KeychainUnavailable { .. } => ErrorCode::KeychainUnavailable,
            Error::KeychainLocked { .. } => ErrorCode::KeychainLocked,
            Error::SecretNotFound { .. } => ErrorCode::SecretNotFound,
            Error::Keychain { .. } => ErrorCode::KeychainFailed,
            Error::DataDir { .. } | Error::NoDataDir => ErrorCode::DataDir,
            Error::Database(_) => ErrorCode::Database,
            Error::SchemaTooNew { .. } => ErrorCode::SchemaTooNew,
            Error::InvalidInput { .. } => ErrorCode::InvalidInput,
            Error::Logging { .. } => ErrorCode::Logging,
        }
    }
}

/// An error as it crosses IPC: `{code, message}`.
#[derive(Debug, Clone, Serialize, TS)]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<Error> for IpcError {
    fn from(error: Error) -> Self {
        IpcError {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipc_error_serializes_as_code_and_message() {
        let ipc = IpcError::from(Error::InvalidInput {
            field: "theme",
            reason: "expected system, light or dark".into(),
        });
        let json = serde_json::to_value(&ipc).expect("IpcError serializes");
        assert_eq!(
            json,
            serde_json::json!({"code": "invalid_input", "message": "Invalid theme: expected system, light or dark"}),
            "the UI relies on exactly these two fields"
        );
    }

    #[test]
    fn as_str_matches_serde_spelling() {
        for code in [
            ErrorCode::KeychainUnavailable,
            ErrorCode::KeychainLocked,
            ErrorCode::SecretNotFound,
            ErrorCode::KeychainFailed,
            ErrorCode::DataDir,
            ErrorCode::Database,
            ErrorCode::SchemaTooNew,
            ErrorCode::InvalidInput,
            ErrorCode::Logging,
        ] {
            let json = serde_json::to_value(code).expect("code serializes");
            assert_eq!(
                json.as_str(),
                Some(code.as_str()),
                "CLI output and IPC must spell {code:?} the same way"
            );
        }
    }
}

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
    #[error(
        "The OS keychain is locked or refused access ({detail}). Unlock it (on Linux: log in to \
         your desktop session, or unlock the \"Login\" keyring in Passwords and Keys), then try \
         again. Nothing was changed."
    )]
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

    /// The console's database failed (a full disk, a locked or damaged file).
    #[error("The console's database failed: {0}")]
    Database(gatehouse_store::Error),

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

    /// Talking to an agent failed: unreachable, too slow, refused, not the agent it should
    /// be, or it refused this console's certificate. The message names the cause and the fix.
    #[error(transparent)]
    Agent(#[from] gatehouse_agent_client::Error),

    /// No instance by that name.
    #[error("No instance named \"{0}\" is enrolled.")]
    InstanceNotFound(String),

    /// An instance by that name exists already.
    #[error("An instance named \"{0}\" is already enrolled. Choose another name, or remove the old one first.")]
    InstanceExists(String),

    /// The instance was revoked; the console will not talk to it.
    #[error("The instance \"{0}\" has been revoked; the console no longer talks to it. Remove it, then enroll the host again.")]
    InstanceRevoked(String),

    /// Certificate handling failed.
    #[error("Certificate handling failed: {0}")]
    Pki(#[from] gatehouse_pki::Error),

    /// A chart could not be drawn.
    #[error("The chart could not be drawn: {detail}")]
    Chart { detail: String },

    /// The desktop notification could not be shown.
    #[error("The desktop notification could not be shown: {detail}. Alerts are still listed in the Heatmaps view.")]
    Notification { detail: String },

    /// Something named does not exist: an incident, a checklist item, a key on an instance.
    #[error("There is no {what} {name}.")]
    NotFound { what: &'static str, name: String },

    /// A file the operator asked for could not be written (an export, a report, evidence).
    #[error("Cannot write {}: {source}. Nothing else was changed.", path.display())]
    WriteFailed {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The audit log cannot be written, so the action was not taken (every operator action
    /// is written to the log before it acts).
    #[error(
        "The audit log cannot be written ({detail}), so nothing was done: every action is \
         recorded before it is taken. Fix the cause (unlock the keychain, free disk space), then \
         try again."
    )]
    AuditUnavailable { detail: String },

    /// A block of an address known only from a header a client chose, not yet confirmed twice.
    #[error(
        "{ip} reached {instance} only as the service's report of X-Forwarded-For, a header any \
         client can set: it may be an innocent address an attacker wrote there, and blocking it \
         cuts that address off every service on the host. Block it only if other evidence says \
         it is the attacker, by confirming a second time."
    )]
    SpoofableAddress { ip: String, instance: String },

    /// A key whose previous rotation is not settled yet: its agent has not said what became of
    /// the key it was sent.
    #[error(
        "The rotation of {name} on {instance} begun {since} is not settled: its agent has not \
         said yet what became of the key it was sent, so no other key is made for it. Gatehouse \
         asks the agent again before every rotation and inventory; try again once it answers."
    )]
    RotationPending {
        instance: String,
        name: String,
        since: String,
    },

    /// The disk holding the data directory has no room left.
    #[error(
        "The disk holding {dir} is full, so Gatehouse cannot use its database there. Free some \
         space on it, then try again; nothing was changed."
    )]
    DiskFull { dir: String },

    /// No alert with that id.
    #[error("There is no alert number {0}; it may have been removed with its instance.")]
    AlertNotFound(i64),
}

impl From<gatehouse_events::UnknownWord> for Error {
    fn from(error: gatehouse_events::UnknownWord) -> Self {
        let field = match error.what {
            "Kind" => "kind",
            "Outcome" => "outcome",
            "Source" => "source",
            "Severity" => "severity",
            _ => "state",
        };
        Error::InvalidInput {
            field,
            reason: error.to_string(),
        }
    }
}

impl Error {
    /// A database failure on a disk with no room left is said as that: SQLite reports it as
    /// "disk I/O error" when it cannot even make its shared-memory file.
    pub fn explain_disk(self, dir: &std::path::Path) -> Error {
        match self {
            Error::Database(_) | Error::Logging { .. } if crate::paths::disk_is_full(dir) => {
                Error::DiskFull {
                    dir: dir.display().to_string(),
                }
            }
            other => other,
        }
    }
}

impl From<gatehouse_store::Error> for Error {
    fn from(error: gatehouse_store::Error) -> Self {
        match error {
            gatehouse_store::Error::SchemaTooNew {
                path,
                found,
                supported,
            } => Error::SchemaTooNew {
                path,
                found,
                supported,
            },
            other => Error::Database(other),
        }
    }
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
    AgentUnreachable,
    AgentTimeout,
    AgentBadResponse,
    AgentRefused,
    FingerprintMismatch,
    EnrollmentExpired,
    EnrollmentUsed,
    EnrollmentInvalid,
    AgentCertificate,
    ClientCertificateRefused,
    InstanceNotFound,
    InstanceExists,
    InstanceRevoked,
    Pki,
    Chart,
    AlertNotFound,
    Notification,
    NotFound,
    WriteFailed,
    AuditUnavailable,
    SpoofableAddress,
    RotationPending,
    DiskFull,
}

/// Every code, for tests and documentation.
pub const ALL_CODES: &[ErrorCode] = &[
    ErrorCode::KeychainUnavailable,
    ErrorCode::KeychainLocked,
    ErrorCode::SecretNotFound,
    ErrorCode::KeychainFailed,
    ErrorCode::DataDir,
    ErrorCode::Database,
    ErrorCode::SchemaTooNew,
    ErrorCode::InvalidInput,
    ErrorCode::Logging,
    ErrorCode::AgentUnreachable,
    ErrorCode::AgentTimeout,
    ErrorCode::AgentBadResponse,
    ErrorCode::AgentRefused,
    ErrorCode::FingerprintMismatch,
    ErrorCode::EnrollmentExpired,
    ErrorCode::EnrollmentUsed,
    ErrorCode::EnrollmentInvalid,
    ErrorCode::AgentCertificate,
    ErrorCode::ClientCertificateRefused,
    ErrorCode::InstanceNotFound,
    ErrorCode::InstanceExists,
    ErrorCode::InstanceRevoked,
    ErrorCode::Pki,
    ErrorCode::Chart,
    ErrorCode::AlertNotFound,
    ErrorCode::Notification,
    ErrorCode::NotFound,
    ErrorCode::WriteFailed,
    ErrorCode::AuditUnavailable,
    ErrorCode::SpoofableAddress,
    ErrorCode::RotationPending,
    ErrorCode::DiskFull,
];

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
            ErrorCode::AgentUnreachable => "agent_unreachable",
            ErrorCode::AgentTimeout => "agent_timeout",
            ErrorCode::AgentBadResponse => "agent_bad_response",
            ErrorCode::AgentRefused => "agent_refused",
            ErrorCode::FingerprintMismatch => "fingerprint_mismatch",
            ErrorCode::EnrollmentExpired => "enrollment_expired",
            ErrorCode::EnrollmentUsed => "enrollment_used",
            ErrorCode::EnrollmentInvalid => "enrollment_invalid",
            ErrorCode::AgentCertificate => "agent_certificate",
            ErrorCode::ClientCertificateRefused => "client_certificate_refused",
            ErrorCode::InstanceNotFound => "instance_not_found",
            ErrorCode::InstanceExists => "instance_exists",
            ErrorCode::InstanceRevoked => "instance_revoked",
            ErrorCode::Pki => "pki",
            ErrorCode::Chart => "chart",
            ErrorCode::AlertNotFound => "alert_not_found",
            ErrorCode::Notification => "notification",
            ErrorCode::NotFound => "not_found",
            ErrorCode::WriteFailed => "write_failed",
            ErrorCode::AuditUnavailable => "audit_unavailable",
            ErrorCode::SpoofableAddress => "spoofable_address",
            ErrorCode::RotationPending => "rotation_pending",
            ErrorCode::DiskFull => "disk_full",
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
            Error::Agent(e) => {
                use gatehouse_agent_client::Error as E;
                match e {
                    E::InvalidAddress { .. } => ErrorCode::InvalidInput,
                    E::Unreachable { .. } => ErrorCode::AgentUnreachable,
                    E::Timeout { .. } => ErrorCode::AgentTimeout,
                    E::BadResponse { .. } => ErrorCode::AgentBadResponse,
                    E::Refused { .. } => ErrorCode::AgentRefused,
                    E::FingerprintMismatch { .. } => ErrorCode::FingerprintMismatch,
                    E::EnrollmentExpired { .. } => ErrorCode::EnrollmentExpired,
                    E::EnrollmentUsed { .. } => ErrorCode::EnrollmentUsed,
                    E::EnrollmentInvalid { .. } => ErrorCode::EnrollmentInvalid,
                    E::Certificate { .. } => ErrorCode::AgentCertificate,
                    E::ClientCertificateRefused { .. } => ErrorCode::ClientCertificateRefused,
                    E::Pki(_) => ErrorCode::Pki,
                }
            }
            Error::InstanceNotFound(_) => ErrorCode::InstanceNotFound,
            Error::InstanceExists(_) => ErrorCode::InstanceExists,
            Error::InstanceRevoked(_) => ErrorCode::InstanceRevoked,
            Error::Pki(e) => match e {
                gatehouse_pki::Error::BadName(_) | gatehouse_pki::Error::BadFingerprint { .. } => {
                    ErrorCode::InvalidInput
                }
                _ => ErrorCode::Pki,
            },
            Error::Chart { .. } => ErrorCode::Chart,
            Error::AlertNotFound(_) => ErrorCode::AlertNotFound,
            Error::Notification { .. } => ErrorCode::Notification,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::WriteFailed { .. } => ErrorCode::WriteFailed,
            Error::AuditUnavailable { .. } => ErrorCode::AuditUnavailable,
            Error::SpoofableAddress { .. } => ErrorCode::SpoofableAddress,
            Error::RotationPending { .. } => ErrorCode::RotationPending,
            Error::DiskFull { .. } => ErrorCode::DiskFull,
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
        for &code in ALL_CODES {
            let json = serde_json::to_value(code).expect("code serializes");
            assert_eq!(
                json.as_str(),
                Some(code.as_str()),
                "CLI output and IPC must spell {code:?} the same way"
            );
        }
    }
}

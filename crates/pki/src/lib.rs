//! The fleet's certificates: the fleet CA, issuing agent and console certificates, SHA-256
//! fingerprints, revocation by serial number, and the rustls configs that trust only the
//! fleet CA (never the system roots). ring is the only crypto provider.
//!
//! Names: an agent enrolled as instance `alpha` holds a server certificate for
//! `alpha.gatehouse.invalid`; the console talks to it with a client certificate for
//! `console.alpha.gatehouse.invalid`, issued for that instance only. The agent accepts a
//! client certificate only if it chains to the fleet CA, is not revoked and names its own
//! instance, so a console key stolen for one instance opens no other.

mod ca;
mod fingerprint;
mod policy;
mod revocation;
mod tls;

pub use ca::{
    agent_name, cert_info, cert_matches_key, console_name, parse_cert, verify_issued_by, CertInfo,
    FleetCa, Issued, KeyPem, Validity, CERT_LIFETIME, CERT_LIFETIME_SECS, ENROLLMENT_NAME,
};
pub use fingerprint::{secret_fingerprint, Fingerprint, FingerprintKey, Fingerprints};
pub use policy::{verify_policy, PolicyKey};
pub use revocation::{RevocationList, Serial};
pub use tls::{
    agent_server_config, console_client_config, enrollment_client_config, enrollment_server_config,
    install_provider, probe_client_config, provider, ProbeVersions,
};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the policy's signature is not valid: {reason}")]
    BadSignature { reason: &'static str },
    #[error("not a SHA-256 fingerprint: {reason}")]
    BadFingerprint { reason: &'static str },
    #[error("not a valid {what}: {detail}")]
    BadPem { what: &'static str, detail: String },
    #[error("instance names are 1 to 40 lower-case letters, digits or '-', not starting with '-': got {0:?}")]
    BadName(String),
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("the certificate does not match the agent's key")]
    KeyMismatch,
    #[error("TLS configuration failed: {0}")]
    Tls(String),
}

impl Error {
    /// Stable code for each variant.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadSignature { .. } => "bad_signature",
            Error::BadFingerprint { .. } => "bad_fingerprint",
            Error::BadPem { .. } => "bad_pem",
            Error::BadName(_) => "bad_name",
            Error::Generate(_) => "generate_failed",
            Error::KeyMismatch => "key_mismatch",
            Error::Tls(_) => "tls_config",
        }
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Generate(e.to_string())
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

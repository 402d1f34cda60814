//! The agent's files in its state directory (mode 0700):
//!
//! - `enroll.key`, `enroll.crt`, `enrollment.json`: written by `init`; the temporary
//!   self-signed certificate the console pins, and the hash of the one-time token. The key
//!   and certificate are deleted once the agent is enrolled (`identity.rs`).
//! - `fleet.json`: instance name, fleet CA, certificate and key, written at enrollment and
//!   renewal as one file, so a crash can never pair a certificate with the wrong key.
//! - `revoked.txt`: serials the console revoked, one per line.
//! - `events.sqlite3`: the event buffer (`buffer.rs`).
//! - `rotation.json`: the journal of a rotation under way; `rotation-outcomes.json`: the
//!   last outcomes; `rotation-backups/`: the configs as they were before a rotation, which the
//!   service's account can neither read nor swap (`ops/rotate.rs`).
//! - `snapshots/`: the service's database snapshots (`ops/database.rs`).
//! - `policy.json`: the last good policy as the console signed it; `policy.key`: the
//!   console's policy key, pinned when the first policy arrived (`policy.rs`).
//! - `decisions.sqlite3`: what the agent decided on its own (`decisions.rs`).
//!
//! Every write goes through `fsutil::write_atomic`: a reader sees the old content or the new,
//! never half. Every read goes through `fsutil::read_optional`: regular files only, no link
//! followed, at most `fsutil::STATE_MAX` bytes.

use std::path::{Path, PathBuf};

use gatehouse_pki::{self as pki, KeyPem, RevocationList};
use gatehouse_protocol as protocol;
use serde::{Deserialize, Serialize};

pub use crate::fsutil::write_atomic;
use crate::fsutil::{ensure_private_dir, read_optional, remove_if_present, Dir};

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// The hash of the one-time token and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// SHA-256 of the token, hex. The token itself is never stored.
    pub token_sha256: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub used: bool,
}

/// What enrollment gave the agent. The key never leaves this file.
#[derive(Clone, Serialize, Deserialize)]
pub struct FleetIdentity {
    pub instance: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for FleetIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetIdentity")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn ensure(&self) -> std::io::Result<()> {
        ensure_private_dir(&self.root)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The event buffer's database.
    pub fn events(&self) -> PathBuf {
        self.path("events.sqlite3")
    }

    /// Present while a rotation is under way.
    pub fn rotation_journal(&self) -> PathBuf {
        self.path("rotation.json")
    }

    /// Present while the service's restart command runs: its process, so an agent started
    /// again after being killed mid-restart waits for it (or ends it) before its own.
    pub fn restart_running(&self) -> PathBuf {
        self.path("restart-running.json")
    }

    /// The blocks the agent made, with their ends, and the allowlist last sent.
    pub fn firewall_blocks(&self) -> PathBuf {
        self.path("blocks.json")
    }

    pub fn rotation_outcomes(&self) -> PathBuf {
        self.path("rotation-outcomes.json")
    }

    /// Rotations a console cancelled as never received (their new keys' fingerprints).
    pub fn rotation_cancelled(&self) -> PathBuf {
        self.path("rotation-cancelled.json")
    }

    /// The configs as they were before each rotation (mode 0700, created when first needed).
    pub fn rotation_backups(&self) -> std::io::Result<Dir> {
        Dir::open(&self.root)?.private_subdir("rotation-backups")
    }

    pub fn snapshots(&self) -> PathBuf {
        self.path("snapshots")
    }

    /// What the agent decided on its own.
    pub fn decisions(&self) -> PathBuf {
        self.path("decisions.sqlite3")
    }

    /// The last good policy, as signed.
    pub fn policy(&self) -> std::io::Result<Option<protocol::SignedPolicy>> {
        read_json(&self.path("policy.json"))
    }

    pub fn write_policy(&self, policy: &protocol::SignedPolicy) -> std::io::Result<()> {
        write_atomic(&self.path("policy.json"), &serde_json::to_vec(policy)?)
    }

    /// The console's policy key (hex), pinned with the first policy.
    pub fn policy_key(&self) -> std::io::Result<Option<String>> {
        Ok(read_optional(&self.path("policy.key"))?.map(|k| k.trim().to_owned()))
    }

    pub fn write_policy_key(&self, key: &str) -> std::io::Result<()> {
        write_atomic(&self.path("policy.key"), key.as_bytes())
    }

    /// The highest audit row a console anchored here.
    pub fn audit_anchor(&self) -> std::io::Result<Option<protocol::AuditAnchor>> {
        read_json(&self.path("audit-anchor.json"))
    }

    pub fn write_audit_anchor(&self, anchor: &protocol::AuditAnchor) -> std::io::Result<()> {
        write_atomic(
            &self.path("audit-anchor.json"),
            &serde_json::to_vec_pretty(anchor)?,
        )
    }

    /// The fleet's key for fingerprints of secrets, once a console has sent it.
    pub fn fingerprint_key(&self) -> std::io::Result<Option<pki::FingerprintKey>> {
        match read_optional(&self.path("fingerprint.key"))? {
            Some(text) => pki::FingerprintKey::from_hex(&text)
                .map(Some)
                .map_err(|e| std::io::Error::other(format!("fingerprint.key: {e}"))),
            None => Ok(None),
        }
    }

    pub fn write_fingerprint_key(&self, key: &pki::FingerprintKey) -> std::io::Result<()> {
        write_atomic(&self.path("fingerprint.key"), key.to_hex().as_bytes())
    }

    pub fn enroll_key(&self) -> std::io::Result<Option<KeyPem>> {
        match read_optional(&self.path("enroll.key"))? {
            Some(pem) => KeyPem::from_pem(pem)
                .map(Some)
                .map_err(std::io::Error::other),
            None => Ok(None),
        }
    }

    pub fn enroll_cert(&self) -> std::io::Result<Option<String>> {
        read_optional(&self.path("enroll.crt"))
    }

    pub fn enrollment(&self) -> std::io::Result<Option<Enrollment>> {
        read_json(&self.path("enrollment.json"))
    }

    pub fn fleet(&self) -> std::io::Result<Option<FleetIdentity>> {
        read_json(&self.path("fleet.json"))
    }

    pub fn revoked(&self) -> std::io::Result<RevocationList> {
        match read_optional(&self.path("revoked.txt"))? {
            Some(text) => RevocationList::from_text(&text).map_err(std::io::Error::other),
            None => Ok(RevocationList::new()),
        }
    }

    /// Everything `init` writes, replacing a previous enrollment if any.
    pub fn write_init(
        &self,
        key: &KeyPem,
        cert_pem: &str,
        enrollment: &Enrollment,
    ) -> std::io::Result<()> {
        write_atomic(&self.path("enroll.key"), key.expose().as_bytes())?;
        write_atomic(&self.path("enroll.crt"), cert_pem.as_bytes())?;
        self.write_enrollment(enrollment)?;
        remove_if_present(&self.path("fleet.json"))?;
        // A new enrollment may be another console, with a log of its own.
        remove_if_present(&self.path("audit-anchor.json"))?;
        // And another fleet, whose fingerprints are keyed differently.
        remove_if_present(&self.path("fingerprint.key"))?;
        // Whose policies are signed by a key of its own.
        remove_if_present(&self.path("policy.key"))?;
        remove_if_present(&self.path("policy.json"))?;
        remove_if_present(&self.path("revoked.txt"))
    }

    /// Forget the temporary key and certificate, once enrolled: the enrollment name is no
    /// longer served.
    pub fn remove_enrollment_identity(&self) -> std::io::Result<()> {
        remove_if_present(&self.path("enroll.key"))?;
        remove_if_present(&self.path("enroll.crt"))
    }

    pub fn write_enrollment(&self, enrollment: &Enrollment) -> std::io::Result<()> {
        write_atomic(
            &self.path("enrollment.json"),
            &serde_json::to_vec_pretty(enrollment)?,
        )
    }

    pub fn write_fleet(&self, identity: &FleetIdentity) -> std::io::Result<()> {
        write_atomic(
            &self.path("fleet.json"),
            &serde_json::to_vec_pretty(identity)?,
        )
    }

    pub fn write_revoked(&self, list: &RevocationList) -> std::io::Result<()> {
        write_atomic(&self.path("revoked.txt"), list.to_text().as_bytes())
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Option<T>> {
    match read_optional(path)? {
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        None => Ok(None),
    }
}

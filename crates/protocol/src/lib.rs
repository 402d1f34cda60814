//! The agent API's wire types.
//!
//! Versioned by path (`/v1/...`): a breaking change is a new version, never an edit to a
//! released one. No I/O here; the agent and the console both depend on this crate and nothing
//! else crosses the wire. Every decoder of bytes from the network lives here or in `pki`, and
//! each has a fuzz target under `fuzz/`.

use serde::{Deserialize, Serialize};

mod enrollment;

pub use enrollment::{EnrollmentCode, ENROLLMENT_CODE_PREFIX};

/// The API version this build speaks, as it appears in paths.
pub const API_VERSION: &str = "v1";

/// Largest request or response body either side accepts, in bytes.
pub const MAX_BODY: usize = 1 << 20;

/// Endpoint paths.
pub mod paths {
    /// POST [`crate::EnrollCsrRequest`] → [`crate::EnrollCsrResponse`]; pinned TLS, before enrollment.
    pub const ENROLL_CSR: &str = "/v1/enroll/csr";
    /// POST [`crate::EnrollCompleteRequest`] → [`crate::Info`]; pinned TLS, before enrollment.
    pub const ENROLL_COMPLETE: &str = "/v1/enroll/complete";
    /// GET → [`crate::Info`]; mutual TLS.
    pub const INFO: &str = "/v1/info";
    /// POST → [`crate::RenewCsrResponse`]: the agent makes a new key and a CSR for it.
    pub const RENEW_CSR: &str = "/v1/certificate/csr";
    /// POST [`crate::InstallCertRequest`] → [`crate::Info`]: install the renewed certificate.
    pub const RENEW_INSTALL: &str = "/v1/certificate";
    /// PUT [`crate::Revocations`] → [`crate::Revocations`]: replace the revocation list.
    pub const REVOCATIONS: &str = "/v1/revocations";
    /// GET `?after=<seq>&limit=<n>` → [`crate::EventsPage`].
    pub const EVENTS: &str = "/v1/events";
    /// GET → [`crate::CredentialsReport`]: the service's credentials, by fingerprint.
    pub const CREDENTIALS: &str = "/v1/credentials";
    /// POST [`crate::RotateRequest`] → [`crate::RotateOutcome`]: replace a key in the
    /// service's config, restart it, verify, or roll back. GET → the last outcome, if any.
    /// `POST` a rotation; `GET ?fingerprint=` what became of one; `DELETE ?fingerprint=`
    /// cancel one the agent has no record of (it refuses it from then on).
    pub const ROTATE: &str = "/v1/credentials/rotate";
    /// POST [`crate::ChecksRequest`] → [`crate::ChecksReport`]: run compliance checks on the
    /// host and against the service.
    pub const CHECKS: &str = "/v1/checks";
    /// GET → [`crate::BlockList`]: addresses blocked on the host firewall.
    pub const FIREWALL: &str = "/v1/firewall";
    /// POST [`crate::BlockRequest`] → [`crate::BlockResult`]: block an address, with a TTL.
    pub const FIREWALL_BLOCK: &str = "/v1/firewall/block";
    /// POST [`crate::UnblockRequest`] → [`crate::BlockResult`].
    pub const FIREWALL_UNBLOCK: &str = "/v1/firewall/unblock";
    /// POST → [`crate::RestartResult`]: restart the service and wait for it to answer.
    pub const RESTART: &str = "/v1/service/restart";
    /// GET `?lines=<n>` → [`crate::EvidenceReport`]: recent log lines, config file facts.
    pub const EVIDENCE: &str = "/v1/evidence";
    /// GET → [`crate::Snapshots`]; POST → [`crate::Snapshot`]: take a snapshot of the
    /// service's database now.
    pub const SNAPSHOTS: &str = "/v1/database/snapshots";
    /// POST [`crate::RestoreRequest`] → [`crate::RestoreResult`].
    pub const RESTORE: &str = "/v1/database/restore";
    /// POST [`crate::AuditAnchor`] → [`crate::AnchorReply`]: the console's newest audit row,
    /// kept beside the instance, so a console whose log was cut back can be told so.
    pub const AUDIT_ANCHOR: &str = "/v1/audit/anchor";
    /// PUT [`crate::FingerprintKeyRequest`] → [`crate::FingerprintKeyReply`]: the fleet's key
    /// for fingerprints of secrets, kept by the agent; the reply renames what the console knew.
    pub const FINGERPRINT_KEY: &str = "/v1/fingerprint-key";
    /// PUT [`crate::SignedPolicy`] → [`crate::PolicyStatus`]: the rules, responses and
    /// allowlist the agent enforces on its own; GET → the [`crate::PolicyStatus`] it runs.
    pub const POLICY: &str = "/v1/policy";
    /// GET `?after=<id>&limit=<n>` → [`crate::DecisionsPage`]: what the agent decided on its
    /// own (blocks, alerts, drift), oldest first.
    pub const DECISIONS: &str = "/v1/decisions";
}

/// Most events one page carries.
pub const MAX_EVENTS_PAGE: u32 = 5000;

/// The longest a console may ask an agent to hold `GET /v1/events` for new events
/// (`wait_ms`).
pub const MAX_EVENTS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `GET /v1/events?after=<seq>&limit=<n>[&wait_ms=<ms>]`: events with `seq > after`, oldest
/// first; with `wait_ms`, the agent holds the request until there are any (or that long).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsPage {
    pub events: Vec<WireEvent>,
    /// The highest sequence number the agent has assigned.
    pub head: u64,
    /// The lowest it still holds. If `oldest > after + 1`, events in between were dropped
    /// (the agent's buffer is bounded) and the console records a gap.
    pub oldest: u64,
}

/// A normalized event, from the line the agent read to the console's store: the agent makes
/// one from each line (`gatehouse_events::Parsed` is the borrowed form a parser returns),
/// buffers it, and sends it in an [`EventsPage`]; the console ingests it as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    /// The agent's sequence number, assigned when the event is buffered (0 before).
    pub seq: u64,
    /// Microseconds since the epoch: the line's own time, or when it was read if it had none.
    pub time_us: i64,
    /// Which log: `service`, `access`, `proxy`, or `agent` for the agent's own markers. A word
    /// an older agent took from its config (before configs were held to these) is read as
    /// `service`: its lines are not lost over a word.
    #[serde(deserialize_with = "lenient_source")]
    pub source: gatehouse_events::Source,
    pub kind: gatehouse_events::Kind,
    pub outcome: gatehouse_events::Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The line as read (invalid UTF-8 replaced, so see `flags`).
    pub raw: String,
    /// [`flags`] bits.
    #[serde(default)]
    pub flags: u32,
}

/// A source word, or `service` for one no vocabulary word names.
fn lenient_source<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<gatehouse_events::Source, D::Error> {
    let word = std::borrow::Cow::<str>::deserialize(deserializer)?;
    Ok(gatehouse_events::Source::from_word(&word).unwrap_or(gatehouse_events::Source::Service))
}

/// Bits of [`WireEvent::flags`].
pub mod flags {
    /// The line was not valid UTF-8; `raw` has replacement characters.
    pub const INVALID_UTF8: u32 = 1;
    /// The line was longer than the limit and was cut.
    pub const TRUNCATED: u32 = 1 << 1;
    /// The line's time is more than five minutes ahead of the agent's clock.
    pub const FROM_THE_FUTURE: u32 = 1 << 2;
    /// The line carried no time; `time_us` is when the agent read it.
    pub const TIME_FROM_AGENT: u32 = 1 << 3;
    /// The client address is the service's own report of X-Forwarded-For: spoofable.
    pub const IP_SPOOFABLE: u32 = 1 << 4;
    /// The line is about a request the agent itself sent (a compliance probe, a key check, a
    /// health check after a restart): Gatehouse's own traffic, never an attack. The console
    /// keeps such events out of its rollups, offenders and detection, and shows them on the
    /// timeline as its own.
    pub const PROBE: u32 = 1 << 5;
    /// The line names a client, but what it names is not an IP address (`999.999.999.999`,
    /// markup): `ip` is left empty, so it reaches no offender list, alert or block; the text
    /// stays in `raw`.
    pub const ADDRESS_UNREADABLE: u32 = 1 << 6;
}

/// The health words used on the wire and in the UI: never colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Warning,
    Failing,
    Unknown,
}

/// `GET /v1/credentials`: the service's credentials as its config files hold them. Values
/// never leave the host: each is described by a fingerprint, its length and its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsReport {
    pub credentials: Vec<HostCredential>,
    /// What could not be read, for a person: a missing file, a key inside a TOML table.
    pub problems: Vec<String>,
}

/// One credential in a service's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCredential {
    /// `api_key` or `jwt_secret` (the profile's role).
    pub role: String,
    /// The variable or key that holds it: `mcp_api_key`, `API_KEY`, `API_KEY_ADMIN`.
    pub name: String,
    /// The config file, as an absolute path on the host.
    pub file: String,
    /// The first 16 hex digits of the value's SHA-256.
    pub fingerprint: String,
    pub length: u32,
    /// Unix seconds when the file last changed: the key was set then or earlier.
    pub file_modified: i64,
    /// A known default or published value, or shorter than the profile's minimum.
    pub weak: bool,
    /// The first 16 hex digits of the whole file's SHA-256: a rotation refuses a file that
    /// changed since the console read it.
    pub file_digest: String,
}

/// Replace one key of the service. The new value travels once, over mutual TLS.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// The variable or key, as in [`HostCredential::name`].
    pub name: String,
    /// The value the console last saw, by fingerprint.
    pub expected_fingerprint: String,
    /// The file as the console last saw it, by digest.
    pub expected_file_digest: String,
    pub new_key: String,
}

impl std::fmt::Debug for RotateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotateRequest")
            .field("name", &self.name)
            .field("expected_fingerprint", &self.expected_fingerprint)
            .field("new_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What a rotation did, step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateOutcome {
    pub name: String,
    /// The new key is in place, the service accepts it and refuses the old one.
    pub committed: bool,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    /// What happened, in order, for a person.
    pub steps: Vec<String>,
    /// Why it did not commit.
    pub error: Option<String>,
    /// The previous config was put back and the service restarted with it.
    pub rolled_back: bool,
    /// After a rollback: whether the old key works again.
    pub old_key_works: Option<bool>,
    /// The backup of the previous config, kept on the host.
    pub backup: Option<String>,
    /// Unix seconds when it finished.
    pub finished_at: i64,
    /// Milliseconds spent restarting the service and waiting for it to answer.
    #[serde(default)]
    pub restart_ms: u64,
    /// The service itself was shown to accept the new key and refuse the old one (a signing
    /// secret can only be shown to come back healthy).
    #[serde(default)]
    pub verified: bool,
}

/// `GET /v1/credentials/rotate?fingerprint=<new>`: what became of a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationStatus {
    /// A rotation to that fingerprint is running now.
    pub in_progress: bool,
    /// Its outcome, once finished.
    pub outcome: Option<RotateOutcome>,
    /// The answer to a cancellation (`DELETE`): the agent had no record of the rotation and
    /// now refuses it should its request still arrive, so it will never happen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

/// The body of every non-2xx answer from the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Info {
    pub api_version: String,
    pub agent_version: String,
    pub host: String,
    pub instance: String,
    pub profile: String,
    pub service: ServiceHealth,
    /// Unix seconds when the agent's certificate expires.
    pub cert_not_after: i64,
    /// Serial (hex) of the agent's certificate.
    pub cert_serial: String,
    /// What the agent can and cannot do on its host, each found by trying it (its process's
    /// own user, groups, capabilities and sandbox): reading each log, the service's config
    /// and database, replacing them, restarting the service, blocking addresses. Absent from
    /// agents older than this field (an empty list: nothing is known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    /// Why the agent cannot store what it reads right now (its disk is full), if it cannot.
    /// Nothing is lost meanwhile: reading resumes from the last stored position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_problem: Option<String>,
    /// The profile the agent resolved (built in, or an operator's file in its
    /// `profiles_dir`): the facts the console acts on, whatever it was told at enrollment.
    /// Absent from agents older than this field, and when the agent has no valid profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_profile: Option<ProfileFacts>,
}

/// What the console needs of the agent's service profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileFacts {
    pub display_name: String,
    /// Whether the service accepts several keys at once (a rotation leaves the others).
    pub multiple_keys: bool,
    /// The checklist and playbook the profile names (`[guides]`), if it names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checklist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    /// What a restart destroys, if anything (RAE in lite mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loses_data: Option<String>,
    /// How a new key must be written (`base64url` or `hex`) and its least length: the agent
    /// refuses any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_encoding: Option<String>,
    #[serde(default)]
    pub key_min_length: u32,
}

/// One thing the agent can or cannot do, as `/v1/info` and `gatehouse-agent check-config`
/// report it: "restart sekha.service: no, because polkit refused it (…)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// A stable word for the capability, with what it is about after a colon where there are
    /// several: `read_log:journal:sekha.service`, `read_config`, `rotate`, `restart`,
    /// `snapshot`, `restore`, `block`, `service_environment`.
    pub name: String,
    pub ok: bool,
    /// For a person: what was tried and what it gave; when it failed, the grant missing.
    pub why: String,
}

/// The managed service as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceHealth {
    pub health: Health,
    /// What was checked and what it answered, for a person to read.
    pub detail: String,
}

/// First enrollment step: the token proves the console holds the one-time code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollCsrRequest {
    pub token: String,
    /// The name the instance is enrolled under (its certificate's name).
    pub instance: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollCsrResponse {
    pub csr_pem: String,
    pub agent_version: String,
}

/// Second enrollment step: the signed certificate and the CA the agent will trust from now on.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollCompleteRequest {
    pub token: String,
    pub cert_pem: String,
    pub ca_pem: String,
    /// Serials (hex) the agent must refuse from the start.
    pub revoked: Vec<String>,
}

// The token is a secret until used: Debug never prints it.
impl std::fmt::Debug for EnrollCsrRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollCsrRequest")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for EnrollCompleteRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollCompleteRequest")
            .field("revoked", &self.revoked.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewCsrResponse {
    pub csr_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallCertRequest {
    pub cert_pem: String,
}

/// The full list of revoked serials (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocations {
    pub serials: Vec<String>,
}

/// The newest row of the console's audit log: its id and its MAC (64 hex digits). A MAC, not
/// the key: it proves nothing to whoever holds it, but the console can compare it with its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditAnchor {
    pub id: i64,
    pub mac: String,
}

/// What the agent held before an anchor was sent: the highest row any console sent it since
/// it was enrolled. It keeps the higher of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorReply {
    pub held: Option<AuditAnchor>,
}

/// The fleet's key for fingerprints of secrets, as 64 hex digits. From then on the agent
/// reports every secret by its keyed fingerprint (HMAC-SHA256), which nobody without the key
/// can recompute for a guessed secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintKeyRequest {
    pub key: String,
}

impl std::fmt::Debug for FingerprintKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKeyRequest { key: <redacted> }")
    }
}

/// Each credential's fingerprint before and after the key was taken, read in one pass over
/// the config files, so the console can carry what it knew of each key over to the new form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintKeyReply {
    pub renamed: Vec<RenamedFingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenamedFingerprint {
    /// The credential's name (`mcp_api_key`).
    pub name: String,
    pub before: String,
    pub after: String,
}

/// A compliance check the agent runs on its host or against its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// The service's config and env files are mode 0600 and owned by the service user.
    ConfigFileMode,
    /// Every key is long enough and random-looking.
    KeyStrength,
    /// No built-in default or published key is in use.
    DefaultKey,
    /// The public endpoint offers only the TLS versions the policy allows.
    TlsVersions,
    /// The public endpoint's certificate is valid for a while yet.
    TlsCertificate,
    /// The public endpoint sends `Strict-Transport-Security`.
    Hsts,
    /// The public endpoint does not answer CORS with `*` or echo any origin.
    Cors,
    /// The protected endpoint refuses a missing and a wrong key.
    AuthRefuses,
    /// No arbitrary `Authorization: Bearer` token is accepted.
    BearerBypass,
    /// Data endpoints that should be protected do not answer without a key.
    DataEndpointsProtected,
    /// A short, bounded burst is answered with 429.
    RateLimit,
    /// Access logging is on and has written recently.
    AccessLogRecent,
    /// Backups exist, are recent and are encrypted.
    Backups,
    /// The host firewall's default policy drops incoming traffic.
    Firewall,
}

impl CheckId {
    pub const ALL: [CheckId; 14] = [
        CheckId::ConfigFileMode,
        CheckId::KeyStrength,
        CheckId::DefaultKey,
        CheckId::TlsVersions,
        CheckId::TlsCertificate,
        CheckId::Hsts,
        CheckId::Cors,
        CheckId::AuthRefuses,
        CheckId::BearerBypass,
        CheckId::DataEndpointsProtected,
        CheckId::RateLimit,
        CheckId::AccessLogRecent,
        CheckId::Backups,
        CheckId::Firewall,
    ];
}

/// The oldest TLS version a public endpoint may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMinimum {
    Tls12,
    #[default]
    Tls13,
}

/// `POST /v1/checks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksRequest {
    pub checks: Vec<CheckId>,
    #[serde(default)]
    pub tls_minimum: TlsMinimum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// The check could not be run (nothing configured to check, no permission): says why.
    Unknown,
}

/// One check's answer, with evidence a person can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    pub check: CheckId,
    pub status: CheckStatus,
    /// One sentence: what was found.
    pub summary: String,
    /// What was looked at and seen, line by line (never a secret).
    pub evidence: Vec<String>,
    /// The keys (by name, as the inventory lists them) whose rotation fixes what failed: a
    /// weak or published key in a file, or one the service falls back to because its file
    /// does not set it where it reads it (the rotation writes it there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksReport {
    pub results: Vec<CheckResult>,
    /// Unix seconds when the checks finished.
    pub checked_at: i64,
}

/// `POST /v1/firewall/block`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    pub ip: String,
    /// How long the block lasts; the kernel lifts it then.
    pub ttl_secs: u64,
    /// Addresses and networks that must never be blocked (the console's allowlist).
    #[serde(default)]
    pub never: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnblockRequest {
    pub ip: String,
}

/// What a block or unblock did, verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockResult {
    pub ip: String,
    /// Whether the address is blocked now.
    pub blocked: bool,
    pub expires_in_secs: Option<u64>,
    /// What was done and checked, in order.
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blocked {
    pub ip: String,
    pub expires_in_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockList {
    pub blocked: Vec<Blocked>,
}

/// A policy as the console signed it: the policy's JSON text exactly as signed
/// (`gatehouse_detect::Policy`), the console's public key and the signature, both hex
/// (`gatehouse_pki::verify_policy`). Newer consoles may add fields; they are read as absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPolicy {
    pub policy: String,
    pub key: String,
    pub signature: String,
}

/// The policy an agent runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// None until a console sent one.
    pub version: Option<u64>,
    /// When the console issued it (Unix seconds).
    pub issued_at: Option<i64>,
    /// The key the agent pinned: only policies it signed are taken.
    pub key: Option<String>,
    /// Rules that apply to this agent's service.
    pub rules: u32,
    /// Of those, rules that block.
    pub blocking_rules: u32,
    /// Why a rule that blocks cannot block here (no firewall grant), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cannot_block: Option<String>,
}

/// What an agent decided on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// A rule fired and the address was blocked (see `enforced`).
    Block,
    /// A rule fired and its response is to record it.
    Alert,
    /// A rule fired for an allowlisted address: nothing was done, and this says so.
    Allowlisted,
    /// A block the agent made went missing from the firewall and was put back.
    Drift,
}

impl DecisionKind {
    /// Its word, as stored on both sides and written in the wire form.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecisionKind::Block => "block",
            DecisionKind::Alert => "alert",
            DecisionKind::Allowlisted => "allowlisted",
            DecisionKind::Drift => "drift",
        }
    }

    /// The kind a word names; a word no build writes is read as a record, the mildest.
    pub fn from_word(word: &str) -> Self {
        match word {
            "block" => DecisionKind::Block,
            "allowlisted" => DecisionKind::Allowlisted,
            "drift" => DecisionKind::Drift,
            _ => DecisionKind::Alert,
        }
    }
}

/// Where a block bites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforced {
    /// In the host firewall (nftables): the address is this host's TCP peer.
    Firewall,
    /// Nowhere: the note says why (no grant, or an address only forwarded to this host).
    Nowhere,
}

impl Enforced {
    /// Its word, as stored on both sides and written in the wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforced::Firewall => "firewall",
            Enforced::Nowhere => "nowhere",
        }
    }
}

/// One decision, with the lines that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The agent's sequence number for decisions.
    pub id: u64,
    /// When it was decided (microseconds since the epoch).
    pub time_us: i64,
    pub kind: DecisionKind,
    pub rule_id: String,
    pub rule_name: String,
    pub ip: String,
    /// The policy version that made it.
    pub policy_version: u64,
    /// Failed sign-ins in the rule's window when it fired.
    pub count: u64,
    /// For blocks: how long, and until when (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Earlier blocks of this address the length took into account.
    #[serde(default)]
    pub previous_blocks: u32,
    pub enforced: Enforced,
    /// Whether the block was read back from the firewall after it was made.
    pub verified: bool,
    /// In words: what was done, what was checked, or why nothing could be.
    pub note: String,
    /// The last log lines that made the rule fire (at most [`MAX_DECISION_LINES`]).
    pub lines: Vec<String>,
}

/// Lines a decision keeps.
pub const MAX_DECISION_LINES: usize = 20;
/// Most decisions one page carries.
pub const MAX_DECISIONS_PAGE: u32 = 500;

/// `GET /v1/decisions?after=<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionsPage {
    pub decisions: Vec<Decision>,
    /// The highest id the agent has given.
    pub head: u64,
}

/// What a restart did: the service answered its health check again, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartResult {
    pub ok: bool,
    pub steps: Vec<String>,
    pub error: Option<String>,
    pub restart_ms: u64,
}

/// The host's side of an evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceReport {
    pub logs: Vec<LogTail>,
    pub files: Vec<FileFacts>,
    /// Unix seconds.
    pub collected_at: i64,
}

/// The last lines of one followed log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogTail {
    pub path: String,
    pub source: String,
    pub lines: Vec<String>,
    pub error: Option<String>,
}

/// A config file described by its hash and mode, never its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFacts {
    pub path: String,
    pub sha256: Option<String>,
    pub mode: Option<u32>,
    pub size: Option<u64>,
    pub modified: Option<i64>,
    pub error: Option<String>,
}

/// A snapshot of the service's database, kept on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshots {
    /// Newest first.
    pub snapshots: Vec<Snapshot>,
    /// Where the database is, or why there is none to snapshot.
    pub database: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    pub name: String,
}

/// What a restore did: a safety snapshot first, the chosen one restored, the service
/// restarted and answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreResult {
    pub ok: bool,
    /// Taken before anything changed, so the restore itself can be undone.
    pub safety_snapshot: Option<String>,
    pub steps: Vec<String>,
    pub error: Option<String>,
}

/// Most log lines an evidence request returns per log.
pub const MAX_EVIDENCE_LINES: u32 = 5000;

/// Error codes the agent answers with.
pub mod codes {
    pub const TOKEN_INVALID: &str = "token_invalid";
    pub const TOKEN_EXPIRED: &str = "token_expired";
    pub const TOKEN_USED: &str = "token_used";
    pub const ALREADY_ENROLLED: &str = "already_enrolled";
    pub const NOT_ENROLLED: &str = "not_enrolled";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const REVOKED: &str = "revoked";
    /// The client certificate's validity ended while its connection was open (answered on a
    /// kept-alive connection; a new handshake is refused with TLS's own alert).
    pub const CERTIFICATE_EXPIRED: &str = "certificate_expired";
    pub const NOT_FOUND: &str = "not_found";
    pub const INTERNAL: &str = "internal";
    /// The config changed since the console read it, or the key is not where it was.
    pub const CONFIG_CHANGED: &str = "config_changed";
    /// The agent cannot rotate this key (no service_dir, unknown key, another rotation).
    pub const CANNOT_ROTATE: &str = "cannot_rotate";
    /// A console settled this rotation as never received and cancelled it: it never runs.
    pub const ROTATION_CANCELLED: &str = "rotation_cancelled";
    /// A block or unblock was refused or did not take; the message says why.
    pub const CANNOT_BLOCK: &str = "cannot_block";
    /// No database to snapshot or restore, or the snapshot asked for does not exist.
    pub const CANNOT_RESTORE: &str = "cannot_restore";
    /// A policy that is not signed by the pinned key, not newer than the one running, or not
    /// valid; the message says which.
    pub const POLICY_REFUSED: &str = "policy_refused";
}

/// Errors decoding what the other side sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the agent speaks API {found}, this console speaks {API_VERSION}")]
    VersionMismatch { found: String },
    #[error("not a Gatehouse enrollment code: {reason}")]
    BadEnrollmentCode { reason: &'static str },
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::VersionMismatch { .. } => "version_mismatch",
            Error::BadEnrollmentCode { .. } => "bad_enrollment_code",
        }
    }
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
    fn a_source_word_an_older_agent_sent_is_read_as_the_service_s() {
        let page = r#"{"events":[{"seq":1,"time_us":1,"source":"app","kind":"auth","outcome":"failure","raw":"x","flags":0}],"head":1,"oldest":1}"#;
        let page: EventsPage =
            serde_json::from_str(page).expect("an older agent's page still reads");
        assert_eq!(
            page.events[0].source,
            gatehouse_events::Source::Service,
            "its lines are not refused over a word its config allowed"
        );
        let bad = page_with_kind("attack");
        assert!(
            serde_json::from_str::<EventsPage>(&bad).is_err(),
            "a kind no build writes is still refused"
        );
    }

    fn page_with_kind(kind: &str) -> String {
        format!(
            r#"{{"events":[{{"seq":1,"time_us":1,"source":"proxy","kind":"{kind}","outcome":"failure","raw":"x","flags":0}}],"head":1,"oldest":1}}"#
        )
    }

    #[test]
    fn info_wire_form_is_stable() {
        let info = Info {
            api_version: "v1".into(),
            agent_version: "0.1.0".into(),
            host: "db-1".into(),
            instance: "alpha".into(),
            profile: "sekha".into(),
            service: ServiceHealth {
                health: Health::Ok,
                detail: "GET http://127.0.0.1:8080/health answered 200".into(),
            },
            cert_not_after: 1_800_000_000,
            cert_serial: "1a2b".into(),
            capabilities: Vec::new(),
            storage_problem: None,
            service_profile: None,
        };
        let json = serde_json::to_value(&info).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "api_version": "v1", "agent_version": "0.1.0", "host": "db-1",
                "instance": "alpha", "profile": "sekha",
                "service": {"health": "ok", "detail": "GET http://127.0.0.1:8080/health answered 200"},
                "cert_not_after": 1_800_000_000, "cert_serial": "1a2b"
            }),
            "a change here breaks deployed agents: add a field in a new version instead"
        );
    }

    #[test]
    fn an_older_agent_s_info_reads_with_no_capabilities_and_a_newer_one_s_with_them() {
        let old = r#"{"api_version":"v1","agent_version":"0.1.0","host":"db-1","instance":"alpha",
            "profile":"sekha","service":{"health":"ok","detail":"x"},"cert_not_after":1,
            "cert_serial":"1a"}"#;
        let info: Info = serde_json::from_str(old).expect("an older agent's info still reads");
        assert!(
            info.capabilities.is_empty(),
            "an agent that says nothing reports no capability"
        );
        let new = old.replace(
            r#""cert_serial":"1a""#,
            r#""cert_serial":"1a","capabilities":[{"name":"restart","ok":false,"why":"polkit refused"}]"#,
        );
        let info: Info = serde_json::from_str(&new).expect("a newer agent's info reads");
        assert_eq!(
            info.capabilities,
            [Capability {
                name: "restart".into(),
                ok: false,
                why: "polkit refused".into()
            }],
            "each capability with its answer and reason"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Revocations>(r#"{"serials":[],"extra":1}"#)
            .expect_err("unknown fields must not be silently dropped");
        assert!(
            err.to_string().contains("extra"),
            "unknown fields are refused: {err}"
        );
    }

    #[test]
    fn other_versions_are_refused() {
        assert!(check_version("v1").is_ok(), "our own version is accepted");
        let err = check_version("v2").expect_err("v2 must be refused");
        assert_eq!(
            err.code(),
            "version_mismatch",
            "the error names the version mismatch"
        );
    }
}

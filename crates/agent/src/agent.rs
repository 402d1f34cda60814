//! The agent's state and operations, apart from HTTP: enrollment, renewal, revocation, info.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use gatehouse_pki::{self as pki, KeyPem, RevocationList, Serial};
use gatehouse_protocol::{self as protocol, codes, Health, Info, ServiceHealth};
use rustls::ServerConfig;
use time::OffsetDateTime;

use crate::buffer::Buffer;
use crate::error::root_cause;
pub use crate::error::ApiError;
use crate::fsutil::sha256_hex;
use crate::state::{Enrollment, FleetIdentity, StateDir};
use crate::tail::Tailer;
use crate::AgentConfig;

/// How often the followed logs are read.
const TAIL_EVERY: Duration = Duration::from_millis(250);

/// The enrolled identity with its ready TLS config.
struct Fleet {
    identity: FleetIdentity,
    cert: pki::CertInfo,
    tls: Arc<ServerConfig>,
}

/// Which TLS identity a connection was served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// The temporary certificate: only the enrollment endpoints answer.
    Enrollment,
    /// The fleet certificate; the console's client certificate serial.
    Fleet { peer: Serial },
}

pub struct Agent {
    config: AgentConfig,
    state: StateDir,
    enroll_tls: Option<Arc<ServerConfig>>,
    enroll_key: Option<KeyPem>,
    enrollment: Mutex<Option<Enrollment>>,
    pending_instance: Mutex<Option<String>>,
    pending_key: Mutex<Option<KeyPem>>,
    fleet: RwLock<Option<Fleet>>,
    revoked: Arc<RwLock<RevocationList>>,
    probe: reqwest::Client,
    buffer: Mutex<Buffer>,
    /// One rotation at a time.
    rotating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("profile", &self.config.profile)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Load the state directory. Fails if the agent was never initialised.
    pub fn load(config: AgentConfig) -> anyhow::Result<Self> {
        let state = StateDir::new(&config.state_dir);
        let revoked = Arc::new(RwLock::new(state.revoked()?));
        let enroll_key = state.enroll_key()?;
        let enroll_tls = match (&enroll_key, state.enroll_cert()?) {
            (Some(key), Some(cert)) => Some(Arc::new(pki::enrollment_server_config(&cert, key)?)),
            _ => None,
        };
        let fleet = match state.fleet()? {
            Some(identity) => Some(build_fleet(identity, revoked.clone())?),
            None => None,
        };
        if enroll_tls.is_none() && fleet.is_none() {
            anyhow::bail!(
                "this agent has not been initialised: run `gatehouse-agent init --config <file>` first"
            );
        }
        let buffer = Buffer::open(&state.root().join("events.sqlite3"), config.buffer_capacity)?;
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .no_proxy()
            .build()?;
        Ok(Agent {
            enrollment: Mutex::new(state.enrollment()?),
            config,
            state,
            enroll_tls,
            enroll_key,
            pending_instance: Mutex::new(None),
            pending_key: Mutex::new(None),
            fleet: RwLock::new(fleet),
            revoked,
            probe,
            buffer: Mutex::new(buffer),
            rotating: tokio::sync::Mutex::new(()),
        })
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        // SQLite rolls back a transaction interrupted by a panic; the buffer stays usable.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `GET /v1/events`.
    pub fn events(&self, after: u64, limit: u32) -> Result<protocol::EventsPage, ApiError> {
        let limit = limit.clamp(1, protocol::MAX_EVENTS_PAGE);
        self.buffer()
            .page(after, limit)
            .map_err(|e| ApiError::internal("reading the event buffer", e))
    }

    /// Follow the configured logs until `stop` is set. Blocking: run it on its own thread.
    pub fn tail_until(&self, stop: &AtomicBool) {
        let mut tailers: Vec<Tailer> = Vec::new();
        let logs = match self.config.effective_logs() {
            Ok(logs) => logs,
            Err(e) => {
                tracing::error!(error = %e, "no logs to follow");
                Vec::new()
            }
        };
        for log in &logs {
            match Tailer::new(log.clone(), &self.buffer()) {
                Ok(t) => tailers.push(t),
                Err(e) => {
                    tracing::error!(path = %log.path.display(), error = %e, "cannot follow log")
                }
            }
        }
        while !stop.load(Ordering::Relaxed) {
            let now_us = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
            for tailer in &mut tailers {
                if let Err(e) = tailer.poll(&mut self.buffer(), now_us) {
                    tracing::warn!(error = %e, "reading a log failed; retrying");
                }
            }
            std::thread::sleep(TAIL_EVERY);
        }
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    pub fn is_enrolled(&self) -> bool {
        self.fleet
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    pub fn is_revoked(&self, serial: &Serial) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(serial)
    }

    /// The TLS config for a connection that asked for `sni`: the enrollment name gets the
    /// temporary certificate; anything else the fleet certificate once enrolled.
    pub fn tls_for(&self, sni: Option<&str>) -> Option<(Arc<ServerConfig>, bool)> {
        let fleet = self.fleet.read().unwrap_or_else(PoisonError::into_inner);
        match (
            sni == Some(pki::ENROLLMENT_NAME),
            fleet.as_ref(),
            &self.enroll_tls,
        ) {
            (true, _, Some(enroll)) => Some((enroll.clone(), true)),
            (_, Some(fleet), _) => Some((fleet.tls.clone(), false)),
            (_, None, Some(enroll)) => Some((enroll.clone(), true)),
            (_, None, None) => None,
        }
    }

    /// `POST /v1/enroll/csr`.
    pub fn enroll_csr(
        &self,
        request: protocol::EnrollCsrRequest,
        now: i64,
    ) -> Result<protocol::EnrollCsrResponse, ApiError> {
        self.check_token(&request.token, now)?;
        pki::agent_name(&request.instance).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let key = self.enroll_key.as_ref().ok_or_else(|| {
            ApiError::new(
                409,
                codes::TOKEN_INVALID,
                "this agent has no enrollment key",
            )
        })?;
        let csr_pem = key
            .agent_csr(&request.instance)
            .map_err(|e| ApiError::internal("making the CSR", e))?;
        *self
            .pending_instance
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(request.instance);
        Ok(protocol::EnrollCsrResponse {
            csr_pem,
            agent_version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    /// `POST /v1/enroll/complete`: verify, persist, switch to mutual TLS.
    pub async fn enroll_complete(
        &self,
        request: protocol::EnrollCompleteRequest,
        now: i64,
    ) -> Result<Info, ApiError> {
        self.check_token(&request.token, now)?;
        let instance = self
            .pending_instance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| ApiError::bad_request("ask for a CSR (/v1/enroll/csr) first"))?;
        let key = self.enroll_key.clone().ok_or_else(|| {
            ApiError::new(
                409,
                codes::TOKEN_INVALID,
                "this agent has no enrollment key",
            )
        })?;
        let revoked: RevocationList = request
            .revoked
            .iter()
            .map(|s| s.parse::<Serial>())
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let identity = FleetIdentity {
            instance,
            ca_pem: request.ca_pem,
            cert_pem: request.cert_pem,
            key_pem: key.expose().to_owned(),
        };
        check_identity(&identity, &key)?;
        self.install_revocations(revoked)?;
        let fleet = build_fleet(identity.clone(), self.revoked.clone())
            .map_err(|e| ApiError::bad_request(format!("unusable certificate: {e}")))?;
        // Persist the identity before burning the token: after a crash in between, the agent
        // comes back enrolled and the token is refused as used.
        self.state
            .write_fleet(&identity)
            .map_err(|e| ApiError::internal("saving the certificate", e))?;
        self.burn_token()?;
        *self.fleet.write().unwrap_or_else(PoisonError::into_inner) = Some(fleet);
        tracing::info!(instance = %identity.instance, "enrolled");
        Ok(self.info().await)
    }

    /// `POST /v1/certificate/csr`: a new key for renewal, kept pending until its certificate
    /// arrives.
    pub fn renew_csr(&self) -> Result<protocol::RenewCsrResponse, ApiError> {
        let instance = self.instance().ok_or_else(not_enrolled)?;
        let key = KeyPem::generate().map_err(|e| ApiError::internal("making a key", e))?;
        let csr_pem = key
            .agent_csr(&instance)
            .map_err(|e| ApiError::internal("making the CSR", e))?;
        *self
            .pending_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(key);
        Ok(protocol::RenewCsrResponse { csr_pem })
    }

    /// `POST /v1/certificate`: install a renewed certificate for the pending key.
    pub async fn renew_install(
        &self,
        request: protocol::InstallCertRequest,
    ) -> Result<Info, ApiError> {
        let current = self.identity().ok_or_else(not_enrolled)?;
        let key = self
            .pending_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| ApiError::bad_request("ask for a renewal CSR first"))?;
        let identity = FleetIdentity {
            cert_pem: request.cert_pem,
            key_pem: key.expose().to_owned(),
            ..current
        };
        check_identity(&identity, &key)?;
        let fleet = build_fleet(identity.clone(), self.revoked.clone())
            .map_err(|e| ApiError::bad_request(format!("unusable certificate: {e}")))?;
        self.state
            .write_fleet(&identity)
            .map_err(|e| ApiError::internal("saving the certificate", e))?;
        *self.fleet.write().unwrap_or_else(PoisonError::into_inner) = Some(fleet);
        *self
            .pending_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        tracing::info!("certificate renewed");
        Ok(self.info().await)
    }

    /// `PUT /v1/revocations`: replace the list; takes effect on the next handshake and the
    /// next request, including on connections already open.
    pub fn set_revocations(
        &self,
        request: protocol::Revocations,
    ) -> Result<protocol::Revocations, ApiError> {
        let list: RevocationList = request
            .serials
            .iter()
            .map(|s| s.parse::<Serial>())
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        self.install_revocations(list)?;
        let serials = self
            .revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(count = request.serials.len(), "revocation list replaced");
        Ok(protocol::Revocations { serials })
    }

    fn service(&self) -> Result<crate::rotate::Service<'_>, ApiError> {
        let profile = self
            .config
            .service_profile()
            .map_err(|e| ApiError::new(409, codes::CANNOT_ROTATE, e.to_string()))?;
        Ok(crate::rotate::Service {
            config: &self.config,
            profile,
            http: &self.probe,
        })
    }

    /// `POST /v1/credentials/rotate`.
    pub async fn rotate(
        &self,
        request: protocol::RotateRequest,
    ) -> Result<protocol::RotateOutcome, ApiError> {
        let _one = self.rotating.lock().await;
        // Taken after the wait, so queued rotations never share a backup name.
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.service()?
            .rotate(self.state.root(), &request, now)
            .await
    }

    /// `GET /v1/credentials/rotate?fingerprint=`: what became of a rotation.
    pub fn rotation_status(&self, fingerprint: Option<&str>) -> protocol::RotationStatus {
        crate::rotate::status(self.state.root(), fingerprint)
    }

    /// The last rotation's outcome, if any.
    pub fn last_rotation(&self) -> Option<protocol::RotateOutcome> {
        self.rotation_status(None).outcome
    }

    /// At start: roll back a rotation the agent was stopped in the middle of.
    pub async fn recover_rotation(&self, now: i64) {
        let _one = self.rotating.lock().await;
        if let Ok(service) = self.service() {
            service.recover(self.state.root(), now).await;
        }
    }

    fn nft(&self) -> crate::firewall::Nft {
        crate::firewall::Nft {
            command: self
                .config
                .firewall
                .nft_command
                .clone()
                .unwrap_or_else(|| vec!["nft".into()]),
        }
    }

    /// `POST /v1/firewall/block`; `console` is the address the request came from.
    pub async fn block(
        &self,
        mut request: protocol::BlockRequest,
        console: Option<std::net::IpAddr>,
    ) -> Result<protocol::BlockResult, ApiError> {
        request
            .never
            .extend(self.config.firewall.never_block.iter().cloned());
        self.nft().block(&request, console).await
    }

    /// `POST /v1/firewall/unblock`.
    pub async fn unblock(&self, ip: &str) -> Result<protocol::BlockResult, ApiError> {
        self.nft().unblock(ip).await
    }

    /// `GET /v1/firewall`.
    pub async fn blocked(&self) -> Result<protocol::BlockList, ApiError> {
        self.nft()
            .list()
            .await
            .map_err(|e| ApiError::new(409, codes::CANNOT_BLOCK, e))
    }

    /// `POST /v1/service/restart`: restart the service and wait for its health check.
    /// Not while a rotation runs (it restarts the service itself).
    pub async fn restart_service(&self) -> Result<protocol::RestartResult, ApiError> {
        let _one = self.rotating.lock().await;
        let service = self.service()?;
        let started = std::time::Instant::now();
        let outcome = service.restart().await;
        let restart_ms = started.elapsed().as_millis() as u64;
        let mut steps = vec!["ran the restart command".to_owned()];
        Ok(match outcome {
            Ok(()) => {
                steps.push(format!(
                    "verified: the service answers its health check ({restart_ms} ms)"
                ));
                tracing::warn!(restart_ms, "service restarted");
                protocol::RestartResult {
                    ok: true,
                    steps,
                    error: None,
                    restart_ms,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "service restart failed");
                protocol::RestartResult {
                    ok: false,
                    steps,
                    error: Some(e),
                    restart_ms,
                }
            }
        })
    }

    /// `POST /v1/database/snapshots`: snapshot the service's database now.
    pub async fn snapshot(&self) -> Result<protocol::Snapshot, ApiError> {
        let _one = self.rotating.lock().await;
        let (config, state) = (self.config.clone(), self.state.root().to_owned());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let snapshot = tokio::task::spawn_blocking(move || {
            crate::database::take(&config, &state, now, "snapshot", None)
        })
        .await
        .map_err(|e| ApiError::internal("the snapshot task", e))??;
        tracing::info!(name = %snapshot.name, size = snapshot.size, "database snapshot taken");
        Ok(snapshot)
    }

    /// `GET /v1/database/snapshots`.
    pub fn snapshots(&self) -> protocol::Snapshots {
        crate::database::list(&self.config, self.state.root())
    }

    /// `POST /v1/database/restore`: a safety snapshot, the chosen one copied in, the service
    /// restarted and its health checked. Not while a rotation or a restart runs.
    pub async fn restore(
        &self,
        request: protocol::RestoreRequest,
    ) -> Result<protocol::RestoreResult, ApiError> {
        let _one = self.rotating.lock().await;
        let (config, state) = (self.config.clone(), self.state.root().to_owned());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let name = request.name.clone();
        let (safety, restored) = tokio::task::spawn_blocking(move || {
            // Nothing is touched for a snapshot that is not there.
            crate::database::existing(&state, &name)?;
            crate::database::database(&config)?;
            let safety =
                crate::database::take(&config, &state, now, "before-restore", Some(&name))?;
            let restored = crate::database::restore_into(&config, &state, &name);
            Ok::<_, ApiError>((safety, restored))
        })
        .await
        .map_err(|e| ApiError::internal("the restore task", e))??;
        let mut steps = vec![format!(
            "safety snapshot {} ({} bytes)",
            safety.name, safety.size
        )];
        if let Err(e) = restored {
            return Ok(protocol::RestoreResult {
                ok: false,
                safety_snapshot: Some(safety.name),
                steps,
                error: Some(format!("the database was left as it was: {}", e.message)),
            });
        }
        steps.push(format!(
            "{} copied into the database (SQLite online backup)",
            request.name
        ));
        let outcome = self.service()?.restart().await;
        Ok(match outcome {
            Ok(()) => {
                steps.push("verified: the service restarted and answers its health check".into());
                tracing::warn!(snapshot = %request.name, "database restored");
                protocol::RestoreResult {
                    ok: true,
                    safety_snapshot: Some(safety.name),
                    steps,
                    error: None,
                }
            }
            Err(e) => protocol::RestoreResult {
                ok: false,
                safety_snapshot: Some(safety.name.clone()),
                steps,
                error: Some(format!(
                    "{e}; the database before the restore is in {}",
                    safety.name
                )),
            },
        })
    }

    /// `GET /v1/evidence?lines=`: recent log lines and config file facts.
    pub fn evidence(&self, lines: u32) -> protocol::EvidenceReport {
        crate::evidence::collect(
            &self.config,
            lines.min(protocol::MAX_EVIDENCE_LINES) as usize,
            OffsetDateTime::now_utc().unix_timestamp(),
        )
    }

    /// `POST /v1/checks`: run compliance checks on the host and against the service.
    pub async fn checks(
        &self,
        request: protocol::ChecksRequest,
    ) -> Result<protocol::ChecksReport, ApiError> {
        let profile = self
            .config
            .service_profile()
            .map_err(|e| ApiError::new(409, codes::INTERNAL, e.to_string()))?;
        let host = crate::checks::Host {
            config: &self.config,
            profile,
            http: &self.probe,
        };
        let report = host
            .run(&request, OffsetDateTime::now_utc().unix_timestamp())
            .await;
        tracing::info!(checks = report.results.len(), "compliance checks run");
        Ok(report)
    }

    /// `GET /v1/credentials`: read the service's config files now.
    pub fn credentials(&self) -> protocol::CredentialsReport {
        match self.config.service_profile() {
            Ok(profile) => {
                crate::credentials::inventory(&profile, self.config.service_dir.as_deref())
            }
            Err(e) => protocol::CredentialsReport {
                credentials: Vec::new(),
                problems: vec![e.to_string()],
            },
        }
    }

    /// `GET /v1/info`.
    pub async fn info(&self) -> Info {
        let (instance, not_after, serial) = {
            let fleet = self.fleet.read().unwrap_or_else(PoisonError::into_inner);
            match fleet.as_ref() {
                Some(f) => (
                    f.identity.instance.clone(),
                    f.cert.validity.not_after.unix_timestamp(),
                    f.cert.serial.to_string(),
                ),
                None => (String::new(), 0, String::new()),
            }
        };
        Info {
            api_version: protocol::API_VERSION.into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            host: hostname(),
            instance,
            profile: self.config.profile.clone(),
            service: self.service_health().await,
            cert_not_after: not_after,
            cert_serial: serial,
        }
    }

    async fn service_health(&self) -> ServiceHealth {
        let Some(url) = &self.config.service_url else {
            return ServiceHealth {
                health: Health::Unknown,
                detail: "no service_url is configured for this agent".into(),
            };
        };
        match self.probe.get(url).send().await {
            Ok(response) if response.status().is_success() => ServiceHealth {
                health: Health::Ok,
                detail: format!("GET {url} answered {}", response.status().as_u16()),
            },
            Ok(response) => ServiceHealth {
                health: Health::Failing,
                detail: format!("GET {url} answered {}", response.status().as_u16()),
            },
            Err(e) => ServiceHealth {
                health: Health::Failing,
                detail: format!("GET {url} failed: {}", root_cause(&e)),
            },
        }
    }

    fn instance(&self) -> Option<String> {
        self.identity().map(|i| i.instance)
    }

    fn identity(&self) -> Option<FleetIdentity> {
        self.fleet
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|f| f.identity.clone())
    }

    fn check_token(&self, token: &str, now: i64) -> Result<(), ApiError> {
        if self.is_enrolled() {
            return Err(ApiError::new(
                409,
                codes::TOKEN_USED,
                "this agent is already enrolled; its enrollment code was used. To enroll it \
                 again, run `gatehouse-agent init --force` on the host for a new code.",
            ));
        }
        let guard = self
            .enrollment
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(enrollment) = guard.as_ref() else {
            return Err(ApiError::new(
                409,
                codes::TOKEN_INVALID,
                "this agent has no enrollment code",
            ));
        };
        let presented = sha256_hex(token.as_bytes());
        if !constant_time_eq(presented.as_bytes(), enrollment.token_sha256.as_bytes()) {
            return Err(ApiError::new(
                401,
                codes::TOKEN_INVALID,
                "the enrollment code's token is wrong for this agent",
            ));
        }
        if enrollment.used {
            return Err(ApiError::new(
                409,
                codes::TOKEN_USED,
                "this enrollment code was already used",
            ));
        }
        if now >= enrollment.expires_at {
            return Err(ApiError::new(
                401,
                codes::TOKEN_EXPIRED,
                "this enrollment code has expired; run `gatehouse-agent init --force` on the \
                 host for a new one",
            ));
        }
        Ok(())
    }

    fn burn_token(&self) -> Result<(), ApiError> {
        let mut guard = self
            .enrollment
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(enrollment) = guard.as_mut() {
            enrollment.used = true;
            self.state
                .write_enrollment(enrollment)
                .map_err(|e| ApiError::internal("recording the used token", e))?;
        }
        Ok(())
    }

    fn install_revocations(&self, list: RevocationList) -> Result<(), ApiError> {
        self.state
            .write_revoked(&list)
            .map_err(|e| ApiError::internal("saving the revocation list", e))?;
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) = list;
        Ok(())
    }
}

fn not_enrolled() -> ApiError {
    ApiError::new(409, codes::NOT_ENROLLED, "this agent is not enrolled yet")
}

/// The certificate must certify our key, name our instance and chain to the CA it came with.
fn check_identity(identity: &FleetIdentity, key: &KeyPem) -> Result<(), ApiError> {
    let info =
        pki::parse_cert(&identity.cert_pem).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if info.public_key
        != key
            .public_key_der()
            .map_err(|e| ApiError::internal("reading the key", e))?
    {
        return Err(ApiError::bad_request(
            "the certificate is not for this agent's key",
        ));
    }
    let name =
        pki::agent_name(&identity.instance).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !info.dns_names.contains(&name) {
        return Err(ApiError::bad_request(format!(
            "the certificate does not name {name}"
        )));
    }
    pki::verify_issued_by(&identity.cert_pem, &identity.ca_pem).map_err(|e| {
        ApiError::bad_request(format!(
            "the certificate does not chain to the CA sent: {e}"
        ))
    })
}

fn build_fleet(
    identity: FleetIdentity,
    revoked: Arc<RwLock<RevocationList>>,
) -> anyhow::Result<Fleet> {
    let key = KeyPem::from_pem(identity.key_pem.clone())?;
    let cert = pki::parse_cert(&identity.cert_pem)?;
    let tls = pki::agent_server_config(
        &identity.ca_pem,
        &identity.cert_pem,
        &key,
        &identity.instance,
        revoked,
    )?;
    Ok(Fleet {
        identity,
        cert,
        tls: Arc::new(tls),
    })
}

/// `gatehouse-agent init`: a new key, a temporary self-signed certificate and a one-time
/// code, replacing any previous identity. Returns the code and the certificate's fingerprint.
pub fn initialise(
    state: &StateDir,
    now: OffsetDateTime,
    ttl: Duration,
    random: [u8; 20],
) -> anyhow::Result<(protocol::EnrollmentCode, pki::Fingerprint)> {
    state.ensure()?;
    let key = KeyPem::generate()?;
    let cert = key.enrollment_cert(pki::Validity::starting(now, time::Duration::days(1)))?;
    let fingerprint = pki::parse_cert(&cert)?.fingerprint;
    let (code, record) = new_enrollment(random, *fingerprint.as_bytes(), now, ttl);
    state.write_init(&key, &cert, &record)?;
    Ok((code, fingerprint))
}

/// A new one-time enrollment: the token (to print once) and its record (to store).
pub fn new_enrollment(
    random: [u8; 20],
    fingerprint: [u8; 32],
    now: OffsetDateTime,
    ttl: Duration,
) -> (protocol::EnrollmentCode, Enrollment) {
    let code = protocol::EnrollmentCode::new(random, fingerprint);
    let record = Enrollment {
        token_sha256: sha256_hex(code.token.as_bytes()),
        expires_at: now.unix_timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        used: false,
    };
    (code, record)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hostname() -> String {
    #[cfg(target_os = "linux")]
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        return name.trim().to_owned();
    }
    std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into())
}

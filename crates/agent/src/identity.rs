//! The agent's TLS identity: the temporary enrollment certificate and its one-time token,
//! the fleet certificate enrollment gives it (renewed on the console's clock), the revoked
//! serials, and which certificate a connection gets by the name it asks for.
//!
//! The enrollment name is served to anyone (that is how a console first reaches the agent),
//! so it is served only while it is needed: until enrollment, and after it only for a short
//! grace (so a console that uses the code again is told it was used), never past the code's
//! own expiry and never across a restart. Then the temporary key and certificate are deleted.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use gatehouse_pki::{self as pki, KeyPem, RevocationList, Serial};
use gatehouse_protocol::{self as protocol, codes};
use rustls::ServerConfig;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::fsutil::sha256_hex;
use crate::state::{Enrollment, FleetIdentity, StateDir};

/// How long the enrollment name is still served after enrollment, at most.
const ENROLLMENT_GRACE: Duration = Duration::from_secs(10 * 60);

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
    /// The fleet certificate; the console's client certificate serial and when that
    /// certificate ends (Unix seconds), checked again on every request.
    Fleet { peer: Serial, not_after: i64 },
}

/// The identity files of the state directory, loaded, with what enrollment and renewal keep
/// pending between their two requests.
pub struct Identity {
    state: StateDir,
    /// The enrollment name's TLS config while it is served.
    enroll_tls: RwLock<Option<Arc<ServerConfig>>>,
    /// Once enrolled: when the enrollment name stops being served.
    enroll_retires_at: Mutex<Option<Instant>>,
    enroll_key: Option<KeyPem>,
    enrollment: Mutex<Option<Enrollment>>,
    pending_instance: Mutex<Option<String>>,
    pending_key: Mutex<Option<KeyPem>>,
    fleet: RwLock<Option<Fleet>>,
    revoked: Arc<RwLock<RevocationList>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("enrolled", &self.is_enrolled())
            .finish_non_exhaustive()
    }
}

/// What `/v1/info` says about the certificate served.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Empty until enrolled.
    pub instance: String,
    pub cert_not_after: i64,
    pub cert_serial: String,
}

impl Identity {
    /// Load the identity files. Fails if the agent was never initialised.
    pub fn load(state: &StateDir) -> anyhow::Result<Self> {
        let revoked = Arc::new(RwLock::new(state.revoked()?));
        let fleet = match state.fleet()? {
            Some(identity) => Some(build_fleet(identity, revoked.clone())?),
            None => None,
        };
        if fleet.is_some() {
            // Enrolled: the temporary identity has no use left, and is not served again.
            if let Err(e) = state.remove_enrollment_identity() {
                tracing::error!(error = %e, "cannot delete the temporary enrollment key");
            }
        }
        let enroll_key = match fleet {
            Some(_) => None,
            None => state.enroll_key()?,
        };
        let enroll_tls = match (&enroll_key, state.enroll_cert()?) {
            (Some(key), Some(cert)) => Some(Arc::new(enrollment_config(&cert, key)?)),
            _ => None,
        };
        if enroll_tls.is_none() && fleet.is_none() {
            anyhow::bail!(
                "this agent has not been initialised: run `gatehouse-agent init --config <file>` first"
            );
        }
        Ok(Identity {
            state: state.clone(),
            enroll_tls: RwLock::new(enroll_tls),
            enroll_retires_at: Mutex::new(None),
            enroll_key,
            enrollment: Mutex::new(state.enrollment()?),
            pending_instance: Mutex::new(None),
            pending_key: Mutex::new(None),
            fleet: RwLock::new(fleet),
            revoked,
        })
    }

    /// The instance and certificate served, for `/v1/info`.
    pub fn summary(&self) -> Summary {
        let fleet = self.fleet.read().unwrap_or_else(PoisonError::into_inner);
        match fleet.as_ref() {
            Some(f) => Summary {
                instance: f.identity.instance.clone(),
                cert_not_after: f.cert.validity.not_after.unix_timestamp(),
                cert_serial: f.cert.serial.to_string(),
            },
            None => Summary::default(),
        }
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
    /// temporary certificate while it is served; anything else the fleet certificate once
    /// enrolled.
    pub fn tls_for(&self, sni: Option<&str>) -> Option<(Arc<ServerConfig>, bool)> {
        self.retire_enrollment_when_due();
        let fleet = self.fleet.read().unwrap_or_else(PoisonError::into_inner);
        let enroll_tls = self
            .enroll_tls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match (
            sni == Some(pki::ENROLLMENT_NAME),
            fleet.as_ref(),
            &enroll_tls,
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
    pub fn enroll_complete(
        &self,
        request: protocol::EnrollCompleteRequest,
        now: i64,
    ) -> Result<(), ApiError> {
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
        // Served a little longer, so a console that uses the code again hears it was used;
        // never past the code's own expiry.
        let left = u64::try_from(self.code_expires_at().unwrap_or(now) - now).unwrap_or(0);
        *self
            .enroll_retires_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Some(Instant::now() + ENROLLMENT_GRACE.min(Duration::from_secs(left)));
        tracing::info!(instance = %identity.instance, "enrolled");
        Ok(())
    }

    /// When the one-time code stops working (Unix seconds), if there is one.
    fn code_expires_at(&self) -> Option<i64> {
        self.enrollment
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|e| e.expires_at)
    }

    /// Once enrolled and the grace is over: stop serving the enrollment name and delete the
    /// temporary key and certificate.
    fn retire_enrollment_when_due(&self) {
        let mut due = self
            .enroll_retires_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if due.is_some_and(|at| Instant::now() >= at) {
            *due = None;
            *self
                .enroll_tls
                .write()
                .unwrap_or_else(PoisonError::into_inner) = None;
            match self.state.remove_enrollment_identity() {
                Ok(()) => tracing::info!("the enrollment name is no longer served"),
                Err(e) => tracing::error!(error = %e, "cannot delete the temporary enrollment key"),
            }
        }
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
    pub fn renew_install(&self, request: protocol::InstallCertRequest) -> Result<(), ApiError> {
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
        Ok(())
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

/// The enrollment name's TLS config: HTTP/1.1 only (no HTTP/2 streams for anyone who can
/// reach the port to hold open).
fn enrollment_config(cert_pem: &str, key: &KeyPem) -> anyhow::Result<ServerConfig> {
    let mut config = pki::enrollment_server_config(cert_pem, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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

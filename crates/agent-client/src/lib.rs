//! The console's side of the mutual-TLS link to its agents, and the only code in Gatehouse
//! that builds agent URLs.
//!
//! [`AgentClient`] keeps one HTTPS client per instance (built once per client certificate, so
//! refreshes reuse established connections) and the revocation list its verifiers consult. A
//! connected [`Agent`] has one typed method per route of the agent API (`/v1`), and
//! [`Enrollment`] the two routes of the enrollment channel. URLs carry the TLS name the agent
//! must present (its SNI picks the certificate) and DNS for that name is pinned to the
//! configured address, so identity never depends on how the agent was reached.
//!
//! An agent is not trusted beyond its certificate: every answer is read through a size limit
//! (a compromised agent cannot make the console allocate without bound) and must parse as the
//! route's type.

mod error;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use gatehouse_pki::{self as pki, Fingerprint, KeyPem, RevocationList};
use gatehouse_protocol::{self as protocol, paths, ErrorBody};
use serde::de::DeserializeOwned;
use serde::Serialize;

use error::{classify, refused, Target};
pub use error::{Error, Result};

/// How long connecting (TCP and the TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an ordinary request may take; actions pass their own.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);

/// What reaching one enrolled agent takes: its instance name (the TLS name it must present),
/// its address, and the console's client certificate for it.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub instance: &'a str,
    pub address: &'a str,
    pub client_cert_pem: &'a str,
}

/// The secret half of a link, read from the keychain only when no client is cached.
pub struct Identity {
    /// The console's private key for this instance's client certificate.
    pub key: KeyPem,
    /// The fleet CA's certificate, the only issuer trusted for the agent.
    pub ca_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// One HTTPS client per instance, and the revocation list its verifiers consult.
#[derive(Debug, Default)]
pub struct AgentClient {
    revoked: Arc<RwLock<RevocationList>>,
    /// By instance: the client certificate and address each client was built for.
    clients: Mutex<HashMap<String, (String, String, Agent)>>,
}

impl AgentClient {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replace the serials refused at every handshake (revocation takes effect at once, on
    /// open connections too).
    pub fn set_revocations(&self, list: RevocationList) {
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) = list;
    }

    /// The cached link to `link.instance`, if one was built for this client certificate and
    /// address.
    pub fn cached(&self, link: &Link<'_>) -> Option<Agent> {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(link.instance)
            .filter(|(pem, address, _)| pem == link.client_cert_pem && address == link.address)
            .map(|(_, _, agent)| agent.clone())
    }

    /// Build (and cache) the link to an agent.
    pub async fn connect(&self, link: &Link<'_>, identity: Identity) -> Result<Agent> {
        let socket = resolve(link.address).await?;
        let host = pki::agent_name(link.instance)?;
        let config = pki::console_client_config(
            &identity.ca_pem,
            link.instance,
            link.client_cert_pem,
            &identity.key,
            self.revoked.clone(),
        )?;
        let agent = Agent {
            client: http_client(config, &host, socket)?,
            base: url(&host, socket, ""),
            target: Target {
                address: link.address.to_owned(),
                instance: Some(link.instance.to_owned()),
            },
        };
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                link.instance.to_owned(),
                (
                    link.client_cert_pem.to_owned(),
                    link.address.to_owned(),
                    agent.clone(),
                ),
            );
        Ok(agent)
    }

    /// Forget the link to `instance` (its certificate changed, or it was revoked or removed).
    pub fn forget(&self, instance: &str) {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(instance);
    }
}

/// A connected agent: one typed method per route.
#[derive(Debug, Clone)]
pub struct Agent {
    client: reqwest::Client,
    base: String,
    target: Target,
}

impl Agent {
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        call(
            self.client.get(format!("{}{path}", self.base)),
            &self.target,
        )
        .await
    }

    async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T> {
        call(
            self.client
                .post(format!("{}{path}", self.base))
                .json(body)
                .timeout(timeout),
            &self.target,
        )
        .await
    }

    /// `/v1/info`, with the API version checked.
    pub async fn info(&self) -> Result<protocol::Info> {
        let info: protocol::Info = self.get(paths::INFO).await?;
        protocol::check_version(&info.api_version).map_err(|e| Error::BadResponse {
            address: self.target.address.clone(),
            detail: e.to_string(),
        })?;
        Ok(info)
    }

    /// Events after sequence `after`, at most `limit`.
    pub async fn events(&self, after: u64, limit: u32) -> Result<protocol::EventsPage> {
        self.get(&format!("{}?after={after}&limit={limit}", paths::EVENTS))
            .await
    }

    /// [`events`](Self::events), the agent holding the request until there are any after
    /// `after`, at most `wait` (an older agent answers at once).
    pub async fn events_waiting(
        &self,
        after: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<protocol::EventsPage> {
        let wait = wait.min(protocol::MAX_EVENTS_WAIT);
        call(
            self.client
                .get(format!(
                    "{}{}?after={after}&limit={limit}&wait_ms={}",
                    self.base,
                    paths::EVENTS,
                    wait.as_millis()
                ))
                .timeout(wait + Duration::from_secs(30)),
            &self.target,
        )
        .await
    }

    pub async fn credentials(&self) -> Result<protocol::CredentialsReport> {
        self.get(paths::CREDENTIALS).await
    }

    /// Rotate a key on the host: the agent writes, restarts and verifies, or rolls back.
    pub async fn rotate(
        &self,
        request: &protocol::RotateRequest,
        timeout: Duration,
    ) -> Result<protocol::RotateOutcome> {
        self.post(paths::ROTATE, request, timeout).await
    }

    /// What the agent knows of the rotation to the key with this fingerprint.
    pub async fn rotation(&self, new_fingerprint: &str) -> Result<protocol::RotationStatus> {
        let fingerprint: String = new_fingerprint
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        self.get(&format!("{}?fingerprint={fingerprint}", paths::ROTATE))
            .await
    }

    /// Cancel the rotation to `new_fingerprint` if the agent has no record of it: it then
    /// refuses that rotation should its request still arrive (`cancelled` in the answer);
    /// otherwise the answer says what became of it.
    pub async fn cancel_rotation(&self, new_fingerprint: &str) -> Result<protocol::RotationStatus> {
        let fingerprint: String = new_fingerprint
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        call(
            self.client.delete(format!(
                "{}{}?fingerprint={fingerprint}",
                self.base,
                paths::ROTATE
            )),
            &self.target,
        )
        .await
    }

    pub async fn checks(
        &self,
        request: &protocol::ChecksRequest,
        timeout: Duration,
    ) -> Result<protocol::ChecksReport> {
        self.post(paths::CHECKS, request, timeout).await
    }

    pub async fn block(&self, request: &protocol::BlockRequest) -> Result<protocol::BlockResult> {
        self.post(paths::FIREWALL_BLOCK, request, Duration::from_secs(30))
            .await
    }

    pub async fn unblock(
        &self,
        request: &protocol::UnblockRequest,
    ) -> Result<protocol::BlockResult> {
        self.post(paths::FIREWALL_UNBLOCK, request, Duration::from_secs(30))
            .await
    }

    /// Keep the console's newest audit row beside the instance; the answer is the row the
    /// agent held before.
    pub async fn audit_anchor(
        &self,
        anchor: &protocol::AuditAnchor,
    ) -> Result<protocol::AnchorReply> {
        self.post(paths::AUDIT_ANCHOR, anchor, Duration::from_secs(10))
            .await
    }

    pub async fn blocked(&self) -> Result<protocol::BlockList> {
        self.get(paths::FIREWALL).await
    }

    /// Restart the service and check it answers (the agent bounds the restart itself).
    pub async fn restart(&self) -> Result<protocol::RestartResult> {
        self.post(
            paths::RESTART,
            &serde_json::json!({}),
            Duration::from_secs(3700),
        )
        .await
    }

    pub async fn snapshot(&self) -> Result<protocol::Snapshot> {
        self.post(
            paths::SNAPSHOTS,
            &serde_json::json!({}),
            Duration::from_secs(600),
        )
        .await
    }

    pub async fn snapshots(&self) -> Result<protocol::Snapshots> {
        self.get(paths::SNAPSHOTS).await
    }

    pub async fn restore(
        &self,
        request: &protocol::RestoreRequest,
    ) -> Result<protocol::RestoreResult> {
        self.post(paths::RESTORE, request, Duration::from_secs(3700))
            .await
    }

    /// Recent log lines and config file facts (never contents).
    pub async fn evidence(&self, lines: u32) -> Result<protocol::EvidenceReport> {
        self.get(&format!("{}?lines={lines}", paths::EVIDENCE))
            .await
    }

    pub async fn set_revocations(&self, serials: Vec<String>) -> Result<()> {
        let _: protocol::Revocations = call(
            self.client
                .put(format!("{}{}", self.base, paths::REVOCATIONS))
                .json(&protocol::Revocations { serials }),
            &self.target,
        )
        .await?;
        Ok(())
    }

    /// Hand the agent the fleet's key for fingerprints of secrets; the answer renames each
    /// credential's fingerprint from the agent's former form to the keyed one.
    pub async fn set_fingerprint_key(
        &self,
        key: &gatehouse_pki::FingerprintKey,
    ) -> Result<protocol::FingerprintKeyReply> {
        call(
            self.client
                .put(format!("{}{}", self.base, paths::FINGERPRINT_KEY))
                .json(&protocol::FingerprintKeyRequest {
                    key: key.to_hex().to_string(),
                }),
            &self.target,
        )
        .await
    }

    /// The policy the agent runs.
    pub async fn policy(&self) -> Result<protocol::PolicyStatus> {
        self.get(paths::POLICY).await
    }

    /// Hand the agent a newer signed policy.
    pub async fn set_policy(
        &self,
        signed: &protocol::SignedPolicy,
    ) -> Result<protocol::PolicyStatus> {
        call(
            self.client
                .put(format!("{}{}", self.base, paths::POLICY))
                .json(signed),
            &self.target,
        )
        .await
    }

    /// What the agent decided on its own after decision `after`.
    pub async fn decisions(&self, after: u64) -> Result<protocol::DecisionsPage> {
        self.get(&format!("{}?after={after}", paths::DECISIONS))
            .await
    }

    /// A CSR for the agent's next certificate.
    pub async fn renewal_csr(&self) -> Result<protocol::RenewCsrResponse> {
        call(
            self.client
                .post(format!("{}{}", self.base, paths::RENEW_CSR)),
            &self.target,
        )
        .await
    }

    pub async fn install_certificate(&self, cert_pem: String) -> Result<protocol::Info> {
        self.post(
            paths::RENEW_INSTALL,
            &protocol::InstallCertRequest { cert_pem },
            REQUEST_TIMEOUT,
        )
        .await
    }
}

/// The enrollment channel to a new agent: TLS pinned to the fingerprint from its one-time
/// code, under the enrollment name.
#[derive(Debug)]
pub struct Enrollment {
    client: reqwest::Client,
    base: String,
    target: Target,
}

impl Enrollment {
    pub async fn connect(address: &str, pin: Fingerprint) -> Result<Self> {
        let socket = resolve(address).await?;
        let client = http_client(
            pki::enrollment_client_config(pin)?,
            pki::ENROLLMENT_NAME,
            socket,
        )?;
        Ok(Enrollment {
            client,
            base: url(pki::ENROLLMENT_NAME, socket, ""),
            target: Target {
                address: address.to_owned(),
                instance: None,
            },
        })
    }

    /// Trade the token for a CSR for `instance`.
    pub async fn csr(
        &self,
        request: &protocol::EnrollCsrRequest,
    ) -> Result<protocol::EnrollCsrResponse> {
        call(
            self.client
                .post(format!("{}{}", self.base, paths::ENROLL_CSR))
                .json(request),
            &self.target,
        )
        .await
    }

    /// Hand the agent its certificate, the CA and the revocations.
    pub async fn complete(
        &self,
        request: &protocol::EnrollCompleteRequest,
    ) -> Result<protocol::Info> {
        call(
            self.client
                .post(format!("{}{}", self.base, paths::ENROLL_COMPLETE))
                .json(request),
            &self.target,
        )
        .await
    }
}

/// `host:port` to a socket address (the first the resolver gives).
pub async fn resolve(address: &str) -> Result<SocketAddr> {
    let invalid = |reason: &str| Error::InvalidAddress {
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(invalid("needs a port, like 192.0.2.10:7443"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(invalid("is not host:port"));
    }
    let mut addrs = tokio::net::lookup_host(address)
        .await
        .map_err(|e| Error::Unreachable {
            address: address.to_owned(),
            detail: format!("the name does not resolve ({e})"),
        })?;
    addrs.next().ok_or_else(|| Error::Unreachable {
        address: address.to_owned(),
        detail: "the name resolves to no address".into(),
    })
}

/// URLs carry the TLS name the agent must present (its SNI picks the certificate); DNS for
/// that name is overridden to the configured address.
fn url(host: &str, socket: SocketAddr, path: &str) -> String {
    format!("https://{host}:{}{path}", socket.port())
}

fn http_client(
    config: rustls::ClientConfig,
    host: &str,
    socket: SocketAddr,
) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .resolve(host, socket)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        // An agent never redirects; following one could carry the request elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(2)
        .build()
        .map_err(|e| Error::BadResponse {
            address: socket.to_string(),
            detail: format!("cannot build the HTTPS client: {e}"),
        })
}

async fn call<T: DeserializeOwned>(request: reqwest::RequestBuilder, target: &Target) -> Result<T> {
    let limits = (CONNECT_TIMEOUT.as_secs(), REQUEST_TIMEOUT.as_secs());
    let mut response = request
        .send()
        .await
        .map_err(|e| classify(&e, target, limits))?;
    let status = response.status();
    let too_large = |read: usize| Error::BadResponse {
        address: target.address.clone(),
        detail: format!(
            "an answer of {read} bytes or more is larger than any the API sends (at most {})",
            protocol::MAX_BODY
        ),
    };
    if let Some(length) = response.content_length() {
        if length > protocol::MAX_BODY as u64 {
            return Err(too_large(length as usize));
        }
    }
    // Read through the limit: a chunked answer has no length to check up front.
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify(&e, target, limits))?
    {
        if body.len() + chunk.len() > protocol::MAX_BODY {
            return Err(too_large(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| Error::BadResponse {
            address: target.address.clone(),
            detail: format!("HTTP {status} with an unreadable body: {e}"),
        });
    }
    let Ok(error) = serde_json::from_slice::<ErrorBody>(&body) else {
        return Err(Error::BadResponse {
            address: target.address.clone(),
            detail: format!("HTTP {status} without a Gatehouse error body"),
        });
    };
    Err(refused(status, error, target))
}

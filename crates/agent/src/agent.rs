//! The agent as the API sees it: its resolved settings, its identity, its event buffer and
//! the service beside it, with one method per operation. Each method is a few lines into
//! [`identity`](crate::identity), [`ops`], [`checks`] or the buffer; HTTP is `api`'s
//! business, start-up `app`'s.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use crate::clock::Clock;
use gatehouse_pki::{FingerprintKey, Fingerprints, Serial};
use gatehouse_protocol::{self as protocol, codes, Info};
use rustls::ServerConfig;

use crate::buffer::Buffer;
use crate::checks;
use crate::config::{AgentConfig, Settings};
use crate::decisions::Decisions;
pub use crate::error::ApiError;
use crate::error::ConfigError;
use crate::grants::{self, Action};
use crate::identity::Identity;
pub use crate::identity::{initialise, new_enrollment, Channel};
use crate::ops;
use crate::policy::{PolicyState, Running};
use crate::probes::ProbeLog;
use crate::service::htpasswd::Hashed;
use crate::service::{probe, Service};
use crate::state::StateDir;

/// How long a request to the service may take, unless a probe says otherwise.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Agent {
    settings: Settings,
    state: StateDir,
    identity: Identity,
    /// The one HTTP client for the service.
    http: reqwest::Client,
    buffer: Mutex<Buffer>,
    /// The agent's own requests to the service, so the buffer flags the lines they make.
    probes: Arc<ProbeLog>,
    /// One action on the service at a time: a rotation, a restart, a snapshot or a restore.
    one_action: tokio::sync::Mutex<()>,
    /// Actions running in tasks of their own (so a console that goes away mid-way does not
    /// cut them short), ended when the agent stops, as a process exit would end them.
    running_ops: Mutex<Vec<tokio::task::AbortHandle>>,
    clock: Clock,
    /// What the agent can do here, as `/v1/info` last found it.
    grants: grants::Reports,
    /// How secrets are fingerprinted: with the fleet's key once a console sent it.
    fingerprints: RwLock<Fingerprints>,
    /// The console's policy, which the agent enforces on its own.
    policies: PolicyState,
    /// What the agent decided on its own.
    decisions: Mutex<Decisions>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("profile", &self.settings.profile_name)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Resolve the config and load the state directory. Fails if the agent was never
    /// initialised.
    pub fn load(config: AgentConfig) -> anyhow::Result<Self> {
        let settings = Settings::resolve(&config);
        let state = StateDir::new(&settings.state_dir);
        let identity = Identity::load(&state)?;
        let fingerprints = match state.fingerprint_key()? {
            Some(key) => Fingerprints::keyed(key),
            None => Fingerprints::unkeyed(),
        };
        let probes = Arc::new(ProbeLog::new(Clock::system()));
        let mut buffer = Buffer::open(&state.events(), settings.buffer_capacity)?;
        let decisions = Decisions::open(&state.decisions())?;
        let policies = PolicyState::load(&state);
        buffer.judge_probes(probes.clone());
        // No redirects: reqwest keeps custom headers (X-API-Key) across one, and the service
        // decides where a redirect leads.
        let http = reqwest::Client::builder()
            .timeout(SERVICE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Agent {
            settings,
            state,
            identity,
            http,
            buffer: Mutex::new(buffer),
            probes,
            one_action: tokio::sync::Mutex::new(()),
            running_ops: Mutex::new(Vec::new()),
            clock: Clock::system(),
            grants: grants::Reports::default(),
            fingerprints: RwLock::new(fingerprints),
            policies,
            decisions: Mutex::new(decisions),
        })
    }

    /// The same agent reading the time from `clock` (tests move time this way).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.probes = Arc::new(ProbeLog::new(clock.clone()));
        self.buffer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .judge_probes(self.probes.clone());
        self.clock = clock;
        self
    }

    /// Where the agent reads the time.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Run an action in a task of its own: it goes on if the request that started it goes
    /// away, and ends when the agent stops ([`Agent::end_ops`]).
    pub fn spawn_op<T: Send + 'static>(
        &self,
        op: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let task = tokio::spawn(op);
        let mut running = self
            .running_ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        running.retain(|t| !t.is_finished());
        running.push(task.abort_handle());
        task
    }

    /// End the actions still running: the agent is stopping.
    pub fn end_ops(&self) {
        for task in self
            .running_ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }

    /// What the agent runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The event buffer, shared by the log tailer and `/v1/events`.
    pub(crate) fn buffer(&self) -> &Mutex<Buffer> {
        &self.buffer
    }

    fn lock_buffer(&self) -> MutexGuard<'_, Buffer> {
        // SQLite rolls back a transaction interrupted by a panic; the buffer stays usable.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `GET /v1/events`.
    pub fn events(&self, after: u64, limit: u32) -> Result<protocol::EventsPage, ApiError> {
        let limit = limit.clamp(1, protocol::MAX_EVENTS_PAGE);
        self.lock_buffer()
            .page(after, limit)
            .map_err(|e| ApiError::internal("reading the event buffer", e))
    }

    /// `GET /v1/events?after=N&wait_ms=W`: the page after `after`, as soon as it holds
    /// anything, or empty after `wait` (at most `protocol::MAX_EVENTS_WAIT`). A console
    /// following the agent learns of a line within the tailer's poll instead of at its next
    /// pull.
    pub async fn events_waiting(
        &self,
        after: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<protocol::EventsPage, ApiError> {
        let until = tokio::time::Instant::now() + wait.min(protocol::MAX_EVENTS_WAIT);
        let arrivals = self.lock_buffer().arrivals();
        loop {
            // Registered before the buffer is read, so an append in between still wakes it.
            let arrived = arrivals.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let page = self.events(after, limit)?;
            if page.head != after || tokio::time::Instant::now() >= until {
                return Ok(page);
            }
            if tokio::time::timeout_at(until, arrived).await.is_err() {
                return self.events(after, limit);
            }
        }
    }

    pub fn is_enrolled(&self) -> bool {
        self.identity.is_enrolled()
    }

    pub fn is_revoked(&self, serial: &Serial) -> bool {
        self.identity.is_revoked(serial)
    }

    /// The TLS config for a connection that asked for `sni`, and whether it is the enrollment
    /// one.
    pub fn tls_for(&self, sni: Option<&str>) -> Option<(Arc<ServerConfig>, bool)> {
        self.identity.tls_for(sni)
    }

    /// `POST /v1/enroll/csr`.
    pub fn enroll_csr(
        &self,
        request: protocol::EnrollCsrRequest,
        now: i64,
    ) -> Result<protocol::EnrollCsrResponse, ApiError> {
        self.identity.enroll_csr(request, now)
    }

    /// `POST /v1/enroll/complete`: verify, persist, switch to mutual TLS.
    pub async fn enroll_complete(
        &self,
        request: protocol::EnrollCompleteRequest,
        now: i64,
    ) -> Result<Info, ApiError> {
        self.identity.enroll_complete(request, now)?;
        Ok(self.info().await)
    }

    /// `POST /v1/certificate/csr`: a new key for renewal, kept pending until its certificate
    /// arrives.
    pub fn renew_csr(&self) -> Result<protocol::RenewCsrResponse, ApiError> {
        self.identity.renew_csr()
    }

    /// `POST /v1/certificate`: install a renewed certificate for the pending key.
    pub async fn renew_install(
        &self,
        request: protocol::InstallCertRequest,
    ) -> Result<Info, ApiError> {
        self.identity.renew_install(request)?;
        Ok(self.info().await)
    }

    /// `PUT /v1/revocations`: replace the list; takes effect on the next handshake and the
    /// next request, including on connections already open.
    pub fn set_revocations(
        &self,
        request: protocol::Revocations,
    ) -> Result<protocol::Revocations, ApiError> {
        self.identity.set_revocations(request)
    }

    /// `POST /v1/audit/anchor`: keep the console's newest audit row, answer with the one held.
    pub fn audit_anchor(
        &self,
        anchor: protocol::AuditAnchor,
    ) -> Result<protocol::AnchorReply, ApiError> {
        ops::anchor::anchor(&self.state, anchor)
    }

    /// The service beside the agent, or why it is unknown (its profile could not be found).
    fn service(&self) -> Result<Service<'_>, &ConfigError> {
        self.settings.profile().map(|profile| {
            Service::new(
                profile,
                &self.settings.service,
                &self.http,
                &self.probes,
                &self.state,
                self.fingerprints(),
            )
        })
    }

    fn fingerprints(&self) -> Fingerprints {
        self.fingerprints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `PUT /v1/fingerprint-key`: keep the fleet's key for fingerprints of secrets and report
    /// each credential's fingerprint before and after, from one reading of the files. The
    /// answer is the same when the key is handed over again (from the unkeyed form, and from
    /// the form before if that was another), so a console whose first answer was lost still
    /// learns how to carry its history over. Waits for a running action, so no rotation
    /// straddles the change.
    pub async fn set_fingerprint_key(
        &self,
        request: protocol::FingerprintKeyRequest,
    ) -> Result<protocol::FingerprintKeyReply, ApiError> {
        let key = FingerprintKey::from_hex(&request.key)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let _one = self.one_action.lock().await;
        let before = self.fingerprints();
        let after = Fingerprints::keyed(key.clone());
        let mut forms = vec![Fingerprints::unkeyed()];
        if before != after && before != Fingerprints::unkeyed() {
            forms.push(before.clone());
        }
        let known = Hashed::load(&self.state).unwrap_or_default();
        let renamed = match self.service() {
            Ok(service) => forms
                .iter()
                .flat_map(|form| ops::credentials::renamed(&service, form, &after, &known))
                .collect(),
            Err(_) => Vec::new(),
        };
        if before != after {
            self.state
                .write_fingerprint_key(&key)
                .map_err(|e| ApiError::internal("could not keep the fingerprint key", e))?;
            // The passwords behind hashes this agent wrote cannot be fingerprinted again under
            // the new key (the reply carries each over as its hash's).
            Hashed::forget(&self.state).map_err(|e| {
                ApiError::internal("could not forget the hashed passwords' fingerprints", e)
            })?;
            *self
                .fingerprints
                .write()
                .unwrap_or_else(PoisonError::into_inner) = after;
            tracing::info!(key = %key.id(), "fingerprint key set");
        }
        Ok(protocol::FingerprintKeyReply { renamed })
    }

    /// The service for an action that refuses with `code` when there is no profile.
    fn service_for(&self, code: &'static str) -> Result<Service<'_>, ApiError> {
        self.service()
            .map_err(|e| ApiError::conflict(code, e.to_string()))
    }

    /// `POST /v1/credentials/rotate`.
    pub async fn rotate(
        &self,
        request: protocol::RotateRequest,
    ) -> Result<protocol::RotateOutcome, ApiError> {
        let _one = self.one_action.lock().await;
        // A console settled this rotation as never received: it must not happen now.
        let fingerprints = [
            self.fingerprints().of(&request.new_key),
            Fingerprints::unkeyed().of(&request.new_key),
        ];
        if ops::rotate::cancelled(&self.state, &fingerprints) {
            return Err(ApiError::conflict(
                codes::ROTATION_CANCELLED,
                "a console settled this rotation as never received and cancelled it; nothing was changed",
            ));
        }
        // Taken after the wait, so queued rotations never share a backup name.
        let now = self.clock.unix();
        let service = self.service_for(codes::CANNOT_ROTATE)?;
        self.require(Action::Rotate, codes::CANNOT_ROTATE, "cannot rotate")?;
        ops::rotate::rotate(&service, &self.state, &request, now).await
    }

    /// `GET /v1/credentials/rotate?fingerprint=`: what became of a rotation.
    pub fn rotation_status(&self, fingerprint: Option<&str>) -> protocol::RotationStatus {
        ops::rotate::status(&self.state, fingerprint)
    }

    /// `DELETE /v1/credentials/rotate?fingerprint=`: a console settling a rotation whose
    /// request this agent never recorded (the console was killed before sending it, or this
    /// agent before recording it). Unless it is running or finished, the agent notes the
    /// fingerprint and refuses that rotation should its request still arrive: then the
    /// console can forget the key at once instead of waiting out any request on its way.
    /// Taken under the one-action lock, so it cannot slip between a rotation's start and its
    /// journal.
    pub async fn cancel_rotation(
        &self,
        fingerprint: &str,
    ) -> Result<protocol::RotationStatus, ApiError> {
        let _one = self.one_action.lock().await;
        ops::rotate::cancel(&self.state, fingerprint)
    }

    /// The last rotation's outcome, if any.
    pub fn last_rotation(&self) -> Option<protocol::RotateOutcome> {
        self.rotation_status(None).outcome
    }

    /// At start: roll back a rotation the agent was stopped in the middle of.
    pub async fn recover_rotation(&self, now: i64) {
        let _one = self.one_action.lock().await;
        if let Ok(service) = self.service() {
            ops::rotate::recover(&service, &self.state, now).await;
        }
    }

    /// `POST /v1/firewall/block`; `console` is the address the request came from.
    pub async fn block(
        &self,
        request: protocol::BlockRequest,
        console: Option<std::net::IpAddr>,
    ) -> Result<protocol::BlockResult, ApiError> {
        self.require(Action::Block, codes::CANNOT_BLOCK, "cannot block")?;
        ops::firewall::block(
            &self.settings.firewall,
            &self.state,
            request,
            console,
            self.clock.unix(),
        )
        .await
    }

    /// Whether a block this agent made of `ip` still stands (not lifted, not ended).
    pub fn still_blocked(&self, ip: &str) -> bool {
        ops::firewall::kept(&self.state, ip, self.clock.unix())
    }

    /// `POST /v1/firewall/unblock`.
    pub async fn unblock(&self, ip: &str) -> Result<protocol::BlockResult, ApiError> {
        ops::firewall::unblock(&self.settings.firewall, &self.state, ip).await
    }

    /// Put back the blocks this agent made that went missing from the firewall before their
    /// end; each put back is said in the agent's log and as an event on the timeline.
    pub async fn reprove_blocks(&self) -> Vec<String> {
        let said =
            ops::firewall::reprove(&self.settings.firewall, &self.state, self.clock.unix()).await;
        if !said.is_empty() {
            let now_us = self.clock.micros();
            let version = self.policy().map_or(0, |p| p.policy.version);
            for text in &said {
                self.record_decision(protocol::Decision {
                    id: 0,
                    time_us: now_us,
                    kind: protocol::DecisionKind::Drift,
                    rule_id: "firewall".into(),
                    rule_name: "Block drifted".into(),
                    ip: String::new(),
                    policy_version: version,
                    count: 0,
                    ttl_secs: None,
                    until: None,
                    previous_blocks: 0,
                    enforced: protocol::Enforced::Firewall,
                    verified: !text.contains("could not"),
                    note: text.clone(),
                    lines: Vec::new(),
                });
            }
            let events: Vec<gatehouse_protocol::WireEvent> = said
                .iter()
                .map(|text| {
                    tracing::warn!("{text}");
                    crate::logevent::marker("firewall", now_us, gatehouse_events::Kind::Log, text)
                })
                .collect();
            let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = buffer.append_marks(&events, now_us) {
                tracing::error!(error = %e, "cannot store an event");
            }
        }
        said
    }

    /// The policy running, if a console sent one.
    pub fn policy(&self) -> Option<Arc<Running>> {
        self.policies.current()
    }

    /// Changes with every policy taken.
    pub fn policy_generation(&self) -> u64 {
        self.policies.generation()
    }

    /// `PUT /v1/policy`: take a newer policy signed by the console's key.
    pub fn take_policy(
        &self,
        signed: &protocol::SignedPolicy,
    ) -> Result<protocol::PolicyStatus, ApiError> {
        self.policies
            .take(&self.state, signed)
            .map_err(|why| ApiError::conflict(codes::POLICY_REFUSED, why))?;
        Ok(self.policy_status())
    }

    /// `GET /v1/policy`.
    pub fn policy_status(&self) -> protocol::PolicyStatus {
        let Some(running) = self.policies.current() else {
            return protocol::PolicyStatus::default();
        };
        let rules = gatehouse_detect::rules_for(&running.policy.rules, &self.settings.profile_name);
        let blocking = rules
            .iter()
            .filter(|r| matches!(r.response, gatehouse_detect::Response::Block { .. }))
            .count();
        protocol::PolicyStatus {
            version: Some(running.policy.version),
            issued_at: Some(running.policy.issued_at),
            key: Some(running.key.clone()),
            rules: u32::try_from(rules.len()).unwrap_or(u32::MAX),
            blocking_rules: u32::try_from(blocking).unwrap_or(u32::MAX),
            cannot_block: if blocking > 0 || !running.policy.blocks.is_empty() {
                grants::require(&self.settings, Action::Block).err()
            } else {
                None
            },
        }
    }

    /// Keep a decision; says so in the agent's log, which a person may read on the host.
    pub fn record_decision(&self, decision: protocol::Decision) -> Option<u64> {
        tracing::warn!(kind = ?decision.kind, rule = %decision.rule_id, ip = %decision.ip, note = %decision.note, "decision");
        match self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(&decision)
        {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, "cannot keep a decision");
                None
            }
        }
    }

    /// Blocks the agent decided for `ip` since `since_us`.
    pub fn blocks_since(&self, ip: &str, since_us: i64) -> u32 {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocks_since(ip, since_us)
            .unwrap_or(0)
    }

    /// `GET /v1/decisions`.
    pub fn decisions(&self, after: u64, limit: u32) -> Result<protocol::DecisionsPage, ApiError> {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .page(after, limit.clamp(1, protocol::MAX_DECISIONS_PAGE))
            .map_err(|e| ApiError::internal("reading the decisions", e))
    }

    /// The failed sign-ins buffered after `after`, and the head to go on from.
    pub fn failures_after(&self, after: u64) -> Result<(Vec<protocol::WireEvent>, u64), ApiError> {
        self.lock_buffer()
            .failures(after)
            .map_err(|e| ApiError::internal("reading the event buffer", e))
    }

    /// What wakes after new events are buffered.
    pub fn arrivals(&self) -> Arc<tokio::sync::Notify> {
        self.lock_buffer().arrivals()
    }

    /// `GET /v1/firewall`.
    pub async fn blocked(&self) -> Result<protocol::BlockList, ApiError> {
        ops::firewall::blocked(&self.settings.firewall).await
    }

    /// `POST /v1/service/restart`: restart the service and wait for its health check.
    /// Not while a rotation runs (it restarts the service itself).
    pub async fn restart_service(&self) -> Result<protocol::RestartResult, ApiError> {
        let _one = self.one_action.lock().await;
        let service = self.service_for(codes::CANNOT_ROTATE)?;
        self.require(Action::Restart, codes::CANNOT_ROTATE, "cannot restart")?;
        Ok(ops::restart::restart(&service).await)
    }

    /// `POST /v1/database/snapshots`: snapshot the service's database now.
    pub async fn snapshot(&self) -> Result<protocol::Snapshot, ApiError> {
        let _one = self.one_action.lock().await;
        let now = self.clock.unix();
        self.require(Action::Snapshot, codes::CANNOT_RESTORE, "cannot snapshot")?;
        ops::database::snapshot(self.service(), &self.state, now).await
    }

    /// `GET /v1/database/snapshots`.
    pub fn snapshots(&self) -> protocol::Snapshots {
        ops::database::list(&ops::database::locate(&self.service()), &self.state)
    }

    /// `POST /v1/database/restore`: a safety snapshot, the chosen one copied in, the service
    /// restarted and its health checked. Not while a rotation or a restart runs.
    pub async fn restore(
        &self,
        request: protocol::RestoreRequest,
    ) -> Result<protocol::RestoreResult, ApiError> {
        let _one = self.one_action.lock().await;
        let now = self.clock.unix();
        self.require(Action::Restore, codes::CANNOT_RESTORE, "cannot restore")?;
        ops::database::restore(self.service(), &self.state, &request, now).await
    }

    /// `GET /v1/evidence?lines=`: recent log lines and config file facts.
    pub fn evidence(&self, lines: u32) -> protocol::EvidenceReport {
        let config_files = self
            .service()
            .ok()
            .and_then(|service| service.config_paths())
            .unwrap_or_default();
        ops::evidence::collect(
            self.settings.logs(),
            &config_files,
            lines.min(protocol::MAX_EVIDENCE_LINES) as usize,
            self.clock.unix(),
        )
    }

    /// `POST /v1/checks`: run compliance checks on the host and against the service.
    pub async fn checks(
        &self,
        request: protocol::ChecksRequest,
    ) -> Result<protocol::ChecksReport, ApiError> {
        let context = checks::Context {
            service: self.service_for(codes::INTERNAL)?,
            policy: &self.settings.checks,
            logs: self.settings.logs(),
        };
        let report = checks::run(&context, &request, self.clock.unix()).await;
        tracing::info!(checks = report.results.len(), "compliance checks run");
        Ok(report)
    }

    /// `GET /v1/credentials`: read the service's config files now.
    pub fn credentials(&self) -> protocol::CredentialsReport {
        match self.service() {
            Ok(service) => {
                let mut report = ops::credentials::of_service(&service);
                // A config the agent may not read: say which grant is missing.
                if !report.problems.is_empty() {
                    if let Err(why) = grants::require(&self.settings, Action::ReadConfig) {
                        report
                            .problems
                            .push(format!("the agent lacks a grant: {why}"));
                    }
                }
                report
            }
            Err(e) => protocol::CredentialsReport {
                credentials: Vec::new(),
                problems: vec![e.to_string()],
            },
        }
    }

    /// Refuse `action` before it starts if a grant it needs is missing, naming the grant.
    fn require(&self, action: Action, code: &'static str, what: &str) -> Result<(), ApiError> {
        grants::require(&self.settings, action)
            .map_err(|why| ApiError::conflict(code, format!("{what}: {why}; nothing was changed")))
    }

    /// `GET /v1/info`.
    pub async fn info(&self) -> Info {
        let certificate = self.identity.summary();
        Info {
            api_version: protocol::API_VERSION.into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            host: hostname(),
            instance: certificate.instance,
            profile: self.settings.profile_name.clone(),
            service: probe::health(
                &self.http,
                &self.probes,
                self.settings.service.liveness.as_ref(),
            )
            .await,
            cert_not_after: certificate.cert_not_after,
            cert_serial: certificate.cert_serial,
            capabilities: self.grants.current(&self.settings),
            storage_problem: self
                .buffer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_problem()
                .map(str::to_owned),
            service_profile: self
                .settings
                .profile()
                .ok()
                .map(|p| protocol::ProfileFacts {
                    display_name: p.display_name.clone(),
                    multiple_keys: p.multiple_keys,
                    checklist: p.guides.as_ref().map(|g| g.checklist.clone()),
                    playbook: p.guides.as_ref().map(|g| g.playbook.clone()),
                    loses_data: p.restart.loses_data.clone(),
                    key_encoding: Some(p.keys.encoding.clone()),
                    key_min_length: u32::try_from(p.keys.min_length).unwrap_or(u32::MAX),
                }),
        }
    }
}

fn hostname() -> String {
    #[cfg(target_os = "linux")]
    if let Ok(name) =
        crate::fsutil::read_text(std::path::Path::new("/proc/sys/kernel/hostname"), 256)
    {
        return name.trim().to_owned();
    }
    std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A console following the agent asks it to hold `GET /v1/events` until there is
    /// something new. The page answers when the event is stored, not when the wait ends: on
    /// the runtime's paused clock, no time passes.
    #[tokio::test(start_paused = true)]
    async fn a_waiting_page_answers_when_an_event_is_stored_not_when_its_wait_ends() {
        gatehouse_pki::install_provider();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("agent");
        initialise(
            &StateDir::new(&dir),
            time::OffsetDateTime::from_unix_timestamp(Clock::system().unix()).expect("now"),
            Duration::from_secs(900),
            [3; 20],
        )
        .expect("init");
        let agent = Agent::load(AgentConfig::for_test(dir)).expect("agent");
        let head = agent.events(0, 10).expect("page").head;
        let started = tokio::time::Instant::now();
        let wait = Duration::from_secs(10);
        let store = async {
            tokio::task::yield_now().await;
            let mark = crate::logevent::marker("test", 1, gatehouse_events::Kind::Log, "arrived");
            agent
                .lock_buffer()
                .append_marks(&[mark], 1)
                .expect("stored");
        };
        let (page, ()) = tokio::join!(agent.events_waiting(head, 10, wait), store);
        let page = page.expect("page");
        assert_eq!(page.events.len(), 1, "the stored event is in the page");
        assert!(
            started.elapsed() < wait,
            "the page answered when the event arrived, not at the end of its wait (paused clock: \
             {:?})",
            started.elapsed()
        );
        let quiet = agent
            .events_waiting(page.head, 10, wait)
            .await
            .expect("page");
        assert!(
            quiet.events.is_empty() && started.elapsed() >= wait,
            "with nothing new, it answers empty once the wait is over"
        );
    }
}

//! The agent's API over HTTP, and nothing else: TCP, TLS 1.3 chosen per connection by the
//! name the client asked for, then HTTP into one of two routers: the enrollment endpoints on
//! the temporary certificate, the fleet endpoints on the fleet certificate with a verified
//! client certificate. Each handler decodes, makes one call into [`Agent`], and encodes the
//! answer or the error.
//!
//! Anyone who can reach the port is untrusted, so nothing they do may hold what the console
//! needs: connections get handshake slots through [`gate`] (idle sockets give way, a console
//! that speaks gets through), a whole ClientHello within [`CLIENT_HELLO_TIMEOUT`] and a whole
//! handshake within [`HANDSHAKE_TIMEOUT`]; mutual-TLS connections are counted apart from
//! enrollment ones. The enrollment name speaks HTTP/1.1 only, with small bodies, a deadline
//! per request and per connection; the fleet name picks HTTP/2 or HTTP/1.1 by ALPN (never by
//! sniffing, which has no timer), with few streams per connection. Every request has a
//! deadline. The client certificate's revocation and expiry are checked on every request.

mod gate;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use gatehouse_pki as pki;
use gatehouse_protocol::{self as protocol, codes, paths, ErrorBody};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::agent::Agent;
use crate::error::ApiError;
use crate::identity::Channel;
use gate::{Gate, Noise, Source};

/// A connection must have sent its whole ClientHello by then.
const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(2);
/// And finished its handshake by then (a client certificate takes one more flight).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Mutual-TLS connections served at once. Connections without a client certificate never
/// hold one of these.
const MAX_FLEET_CONNECTIONS: usize = 256;
/// How long in-flight requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A client must send a request's headers within this time, including the next request on a
/// kept-alive connection, or the connection is closed: idle connections cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 streams open at once on one fleet connection.
const MAX_STREAMS: u32 = 16;
/// The longest request header block accepted on HTTP/2.
const MAX_HEADER_LIST: u32 = 64 * 1024;
/// Connections on the enrollment name (no client certificate needed) served at once, so
/// anyone who can reach the port cannot take every connection slot with it.
const MAX_ENROLLMENT_CONNECTIONS: usize = 8;
/// An enrollment connection's whole life, however busy.
const ENROLLMENT_CONNECTION_DEADLINE: Duration = Duration::from_secs(20);
/// An enrollment request's headers, and its whole exchange.
const ENROLLMENT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const ENROLLMENT_REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The largest enrollment request body (a CSR request, or a certificate, a CA and the fleet's
/// revoked serials, some 3,000 of them at most): far below what would matter, eight at once.
const ENROLLMENT_MAX_BODY: usize = 128 * 1024;
/// A fleet request that reads or answers at once.
const REQUEST_DEADLINE: Duration = Duration::from_secs(60);
/// A fleet request that acts on the service (a rotation restarts it twice at most, compliance
/// checks probe it), beyond twice its restart time.
const ACTION_DEADLINE: Duration = Duration::from_secs(300);

/// Accept connections and serve them until `shutdown` resolves; the connections still open
/// are returned, to be drained.
pub async fn serve(
    agent: Arc<Agent>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Connections> {
    let routers = Routers {
        enroll: enrollment_router(agent.clone()),
        fleet: fleet_router(agent.clone()),
    };
    let limits = Arc::new(Limits {
        gate: Arc::new(Gate::default()),
        fleet: Arc::new(Semaphore::new(MAX_FLEET_CONNECTIONS)),
        enrollment: Arc::new(Semaphore::new(MAX_ENROLLMENT_CONNECTIONS)),
        noise: Noise::default(),
    });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Accepting never waits for a slot: a connection that cannot have one is closed at
        // once, so the listen backlog never fills with connections waiting behind idle ones.
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(ticket) = limits.gate.admit(Source::of(remote.ip())) else {
            limits.noise.say(
                remote,
                "every handshake slot is taken by connections that spoke; closed",
                None,
            );
            continue;
        };
        let connection = Connection {
            agent: agent.clone(),
            routers: routers.clone(),
            limits: limits.clone(),
            remote,
        };
        let watcher = graceful.watcher();
        tokio::spawn(connection.run(tcp, ticket, watcher));
    }
    tracing::info!("shutting down: no new connections");
    Ok(Connections(graceful))
}

#[derive(Clone)]
struct Routers {
    enroll: Router,
    fleet: Router,
}

struct Limits {
    gate: Arc<Gate>,
    fleet: Arc<Semaphore>,
    enrollment: Arc<Semaphore>,
    noise: Noise,
}

/// One accepted connection, from handshake to its last request.
struct Connection {
    agent: Arc<Agent>,
    routers: Routers,
    limits: Arc<Limits>,
    remote: std::net::SocketAddr,
}

impl Connection {
    async fn run(
        self,
        tcp: tokio::net::TcpStream,
        mut ticket: gate::Ticket,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let (remote, noise) = (self.remote, &self.limits.noise);
        let hello = tokio::select! {
            _ = &mut ticket.pushed_out => {
                noise.say(remote, "a connection that sent no ClientHello gave way to a newer one", None);
                return;
            }
            hello = tokio::time::timeout(
                CLIENT_HELLO_TIMEOUT,
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp),
            ) => hello,
        };
        let start = match hello {
            Ok(Ok(start)) => start,
            Ok(Err(e)) => return noise.say(remote, "TLS handshake refused", Some(&e)),
            Err(_) => return noise.say(remote, "no ClientHello in time; closed", None),
        };
        ticket.heard();
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, finish(&self.agent, start)).await;
        drop(ticket);
        let (tls, channel) = match handshake {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return noise.say(remote, "TLS handshake refused", Some(&e)),
            Err(_) => return noise.say(remote, "TLS handshake timed out", None),
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let (kind, router, permits) = match &channel {
            Channel::Enrollment => (
                Kind::Enrollment,
                self.routers.enroll.clone(),
                self.limits.enrollment.clone(),
            ),
            Channel::Fleet { .. } => (
                Kind::Fleet,
                self.routers.fleet.clone(),
                self.limits.fleet.clone(),
            ),
        };
        let Ok(_permit) = permits.try_acquire_owned() else {
            return noise.say(remote, "too many connections of this kind; closed", None);
        };
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(channel.clone());
                request.extensions_mut().insert(PeerAddr(remote.ip()));
                router.clone().oneshot(request)
            },
        );
        let io = TokioIo::new(tls);
        let served = match (kind, h2) {
            (Kind::Enrollment, _) => {
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(ENROLLMENT_HEADER_TIMEOUT)
                    .max_buf_size(16 * 1024);
                let connection = watcher.watch(http.serve_connection(io, service));
                match tokio::time::timeout(ENROLLMENT_CONNECTION_DEADLINE, connection).await {
                    Ok(served) => served,
                    Err(_) => Ok(()),
                }
            }
            (Kind::Fleet, true) => {
                let mut http = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                http.timer(TokioTimer::new())
                    .max_concurrent_streams(MAX_STREAMS)
                    .max_header_list_size(MAX_HEADER_LIST)
                    .keep_alive_interval(Some(HEADER_READ_TIMEOUT))
                    .keep_alive_timeout(HEADER_READ_TIMEOUT);
                watcher.watch(http.serve_connection(io, service)).await
            }
            (Kind::Fleet, false) => {
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                watcher.watch(http.serve_connection(io, service)).await
            }
        };
        if let Err(e) = served {
            tracing::debug!(%remote, error = %e, "connection ended with an error");
        }
    }
}

/// Which HTTP a connection gets: HTTP/1.1 with deadlines on the enrollment name, HTTP/2 (by
/// ALPN) or HTTP/1.1 on the fleet name.
enum Kind {
    Enrollment,
    Fleet,
}

/// The connections open when the server stopped accepting.
pub struct Connections(GracefulShutdown);

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").finish_non_exhaustive()
    }
}

impl Connections {
    /// Let in-flight requests finish, for ten seconds at most.
    pub async fn drain(self) {
        if tokio::time::timeout(SHUTDOWN_GRACE, self.0.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within the grace period");
        }
    }
}

/// The rest of the handshake, once the ClientHello is in: the config for the name asked
/// for, and which channel that makes.
async fn finish(
    agent: &Agent,
    start: tokio_rustls::StartHandshake<tokio::net::TcpStream>,
) -> anyhow::Result<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Channel,
)> {
    let sni = start.client_hello().server_name().map(str::to_owned);
    let (config, enrollment) = agent
        .tls_for(sni.as_deref())
        .ok_or_else(|| anyhow::anyhow!("no TLS identity to serve"))?;
    let tls = start.into_stream(config).await?;
    let channel = if enrollment {
        Channel::Enrollment
    } else {
        // The fleet config requires a verified client certificate, so one is present.
        let der = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| anyhow::anyhow!("no client certificate"))?;
        let info = pki::cert_info(der)?;
        Channel::Fleet {
            peer: info.serial,
            not_after: info.validity.not_after.unix_timestamp(),
        }
    };
    Ok((tls, channel))
}

fn enrollment_router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route(paths::ENROLL_CSR, post(enroll_csr))
        .route(paths::ENROLL_COMPLETE, post(enroll_complete))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Deadlines::fixed(ENROLLMENT_REQUEST_DEADLINE),
            deadline,
        ))
        .layer(DefaultBodyLimit::max(ENROLLMENT_MAX_BODY))
        .with_state(agent)
}

fn fleet_router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route(paths::INFO, get(info))
        .route(paths::RENEW_CSR, post(renew_csr))
        .route(paths::RENEW_INSTALL, post(renew_install))
        .route(paths::REVOCATIONS, put(revocations))
        .route(paths::EVENTS, get(events))
        .route(paths::CREDENTIALS, get(credentials))
        .route(
            paths::ROTATE,
            post(rotate).get(last_rotation).delete(cancel_rotation),
        )
        .route(paths::CHECKS, post(checks))
        .route(paths::RESTART, post(restart))
        .route(paths::SNAPSHOTS, get(snapshots).post(snapshot))
        .route(paths::RESTORE, post(restore))
        .route(paths::EVIDENCE, get(evidence))
        .route(paths::FIREWALL, get(blocked))
        .route(paths::FIREWALL_BLOCK, post(block))
        .route(paths::FIREWALL_UNBLOCK, post(unblock))
        .route(paths::AUDIT_ANCHOR, post(audit_anchor))
        .route(paths::FINGERPRINT_KEY, put(fingerprint_key))
        .route(paths::POLICY, get(policy_status).put(take_policy))
        .route(paths::DECISIONS, get(decisions))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            agent.clone(),
            refuse_unusable_certificates,
        ))
        .layer(middleware::from_fn_with_state(
            Deadlines {
                quick: REQUEST_DEADLINE,
                action: agent.settings().service.restart_timeout * 2 + ACTION_DEADLINE,
            },
            deadline,
        ))
        .layer(DefaultBodyLimit::max(protocol::MAX_BODY))
        .with_state(agent)
}

/// How long a request may take: an action on the service, or anything else.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    quick: Duration,
    action: Duration,
}

impl Deadlines {
    fn fixed(limit: Duration) -> Self {
        Deadlines {
            quick: limit,
            action: limit,
        }
    }

    fn of(&self, request: &Request) -> Duration {
        let acts = request.method() != axum::http::Method::GET
            && matches!(
                request.uri().path(),
                paths::ROTATE
                    | paths::RESTART
                    | paths::RESTORE
                    | paths::CHECKS
                    | paths::SNAPSHOTS
                    | paths::FIREWALL_BLOCK
                    | paths::FIREWALL_UNBLOCK
            );
        if acts {
            self.action
        } else {
            self.quick
        }
    }
}

/// Every request has an end: reading its body and answering it. An action that outlives its
/// request still runs to its end in a task of its own (a rotation records its outcome).
async fn deadline(State(deadlines): State<Deadlines>, request: Request, next: Next) -> Response {
    let limit = deadlines.of(&request);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = error_response(&ApiError::new(
                503,
                codes::INTERNAL,
                format!(
                    "the request did not finish within {} s; an action may still be running (ask for its outcome)",
                    limit.as_secs()
                ),
            ));
            // The rest of a slow body is not read: the connection cannot carry another request.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

/// The handshake checked revocation and expiry when the connection opened; this checks every
/// request, so a revocation or an expiry also ends connections that were already open.
async fn refuse_unusable_certificates(
    State(agent): State<Arc<Agent>>,
    Extension(channel): Extension<Channel>,
    request: Request,
    next: Next,
) -> Response {
    if let Channel::Fleet { peer, not_after } = &channel {
        let refusal = if agent.is_revoked(peer) {
            tracing::warn!(serial = %peer, "request with a revoked certificate refused");
            Some(ApiError::new(
                403,
                codes::REVOKED,
                "this client certificate has been revoked",
            ))
        } else if agent.clock().unix() >= *not_after {
            tracing::warn!(serial = %peer, "request with an expired certificate refused");
            Some(ApiError::new(
                403,
                codes::CERTIFICATE_EXPIRED,
                "this client certificate has expired; renew it and connect again",
            ))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            let mut response = error_response(&refusal);
            // The connection is done with: a new one meets the handshake's own checks.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return response;
        }
    }
    next.run(request).await
}

async fn enroll_csr(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    respond(decode(&body).and_then(|request| agent.enroll_csr(request, agent.clock().unix())))
}

async fn enroll_complete(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(request) => respond(agent.enroll_complete(request, agent.clock().unix()).await),
        Err(e) => error_response(&e),
    }
}

async fn info(State(agent): State<Arc<Agent>>) -> Response {
    Json(agent.info().await).into_response()
}

async fn credentials(State(agent): State<Arc<Agent>>) -> Response {
    // Small files, but file system calls all the same: off the async workers.
    match tokio::task::spawn_blocking(move || agent.credentials()).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error_response(&ApiError::new(
            500,
            codes::INTERNAL,
            format!("reading the credentials failed: {e}"),
        )),
    }
}

async fn restart(State(agent): State<Arc<Agent>>) -> Response {
    // A task of its own, like a rotation: a console that goes away does not cut it short.
    match agent
        .clone()
        .spawn_op(async move { agent.restart_service().await })
        .await
    {
        Ok(result) => respond(result),
        Err(e) => error_response(&ApiError::new(
            500,
            codes::INTERNAL,
            format!("the restart task failed: {e}"),
        )),
    }
}

async fn snapshots(State(agent): State<Arc<Agent>>) -> Response {
    match tokio::task::spawn_blocking(move || agent.snapshots()).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => error_response(&ApiError::new(
            500,
            codes::INTERNAL,
            format!("listing snapshots failed: {e}"),
        )),
    }
}

async fn snapshot(State(agent): State<Arc<Agent>>) -> Response {
    respond(agent.snapshot().await)
}

async fn restore(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    match decode::<protocol::RestoreRequest>(&body) {
        // A task of its own: the restore runs to its end if the console goes away.
        Ok(request) => match agent
            .clone()
            .spawn_op(async move { agent.restore(request).await })
            .await
        {
            Ok(result) => respond(result),
            Err(e) => error_response(&ApiError::new(
                500,
                codes::INTERNAL,
                format!("the restore task failed: {e}"),
            )),
        },
        Err(e) => error_response(&e),
    }
}

#[derive(serde::Deserialize)]
struct EvidenceQuery {
    #[serde(default = "default_lines")]
    lines: u32,
}

fn default_lines() -> u32 {
    500
}

async fn evidence(State(agent): State<Arc<Agent>>, Query(q): Query<EvidenceQuery>) -> Response {
    match tokio::task::spawn_blocking(move || agent.evidence(q.lines)).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => error_response(&ApiError::new(
            500,
            codes::INTERNAL,
            format!("collecting the evidence failed: {e}"),
        )),
    }
}

/// The address a connection came from.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::IpAddr);

async fn block(
    State(agent): State<Arc<Agent>>,
    peer: Option<Extension<PeerAddr>>,
    body: Bytes,
) -> Response {
    match decode(&body) {
        Ok(request) => respond(agent.block(request, peer.map(|Extension(p)| p.0)).await),
        Err(e) => error_response(&e),
    }
}

async fn unblock(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    match decode::<protocol::UnblockRequest>(&body) {
        Ok(request) => respond(agent.unblock(&request.ip).await),
        Err(e) => error_response(&e),
    }
}

async fn blocked(State(agent): State<Arc<Agent>>) -> Response {
    respond(agent.blocked().await)
}

async fn checks(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(request) => respond(agent.checks(request).await),
        Err(e) => error_response(&e),
    }
}

async fn rotate(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    match decode(&body) {
        // A task of its own: if the console goes away mid-way, the transaction still runs to
        // its end (commit or rollback) and records its outcome for the console to ask about.
        Ok(request) => match agent
            .clone()
            .spawn_op(async move { agent.rotate(request).await })
            .await
        {
            Ok(result) => respond(result),
            Err(e) => error_response(&ApiError::new(
                500,
                codes::INTERNAL,
                format!("the rotation task failed: {e}"),
            )),
        },
        Err(e) => error_response(&e),
    }
}

#[derive(serde::Deserialize)]
struct RotationQuery {
    fingerprint: Option<String>,
}

async fn last_rotation(
    State(agent): State<Arc<Agent>>,
    Query(query): Query<RotationQuery>,
) -> Response {
    Json(agent.rotation_status(query.fingerprint.as_deref())).into_response()
}

async fn cancel_rotation(
    State(agent): State<Arc<Agent>>,
    Query(query): Query<RotationQuery>,
) -> Response {
    match query.fingerprint {
        Some(fingerprint) if !fingerprint.is_empty() => {
            respond(agent.cancel_rotation(&fingerprint).await)
        }
        _ => error_response(&ApiError::new(
            400,
            codes::BAD_REQUEST,
            "name the rotation to cancel by its new key's fingerprint",
        )),
    }
}

async fn renew_csr(State(agent): State<Arc<Agent>>) -> Response {
    respond(agent.renew_csr())
}

async fn renew_install(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(request) => respond(agent.renew_install(request).await),
        Err(e) => error_response(&e),
    }
}

async fn revocations(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    respond(decode(&body).and_then(|request| agent.set_revocations(request)))
}

async fn audit_anchor(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    respond(decode(&body).and_then(|request| agent.audit_anchor(request)))
}

async fn fingerprint_key(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(request) => respond(agent.set_fingerprint_key(request).await),
        Err(e) => error_response(&e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_limit")]
    limit: u32,
    /// Hold the request until there is something after `after`, at most this long.
    #[serde(default)]
    wait_ms: u64,
}

fn default_limit() -> u32 {
    1000
}

async fn events(State(agent): State<Arc<Agent>>, Query(query): Query<EventsQuery>) -> Response {
    if query.wait_ms == 0 {
        return respond(agent.events(query.after, query.limit));
    }
    respond(
        agent
            .events_waiting(
                query.after,
                query.limit,
                Duration::from_millis(query.wait_ms),
            )
            .await,
    )
}

async fn policy_status(State(agent): State<Arc<Agent>>) -> Response {
    respond(Ok(agent.policy_status()))
}

async fn take_policy(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    respond(decode::<protocol::SignedPolicy>(&body).and_then(|signed| agent.take_policy(&signed)))
}

#[derive(Debug, serde::Deserialize)]
struct DecisionsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_decisions")]
    limit: u32,
}

fn default_decisions() -> u32 {
    protocol::MAX_DECISIONS_PAGE
}

async fn decisions(
    State(agent): State<Arc<Agent>>,
    Query(query): Query<DecisionsQuery>,
) -> Response {
    respond(agent.decisions(query.after, query.limit))
}

async fn not_found() -> Response {
    error_response(&ApiError::new(
        404,
        codes::NOT_FOUND,
        "no such endpoint on this agent",
    ))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, codes::BAD_REQUEST, format!("malformed request: {e}")))
}

fn respond<T: serde::Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => error_response(&e),
    }
}

fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody {
        code: error.code.into(),
        message: error.message.clone(),
    };
    (status, Json(body)).into_response()
}

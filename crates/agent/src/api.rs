//! The agent's API over HTTP, and nothing else: TCP, TLS 1.3 chosen per connection by the
//! name the client asked for, then HTTP (1.1 or 2) into one of two routers: the enrollment
//! endpoints on the temporary certificate, the fleet endpoints on the fleet certificate with
//! a verified client certificate. Each handler decodes, makes one call into [`Agent`], and
//! encodes the answer or the error.

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
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::agent::Agent;
use crate::error::ApiError;
use crate::identity::Channel;

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A client must send a request's headers within this time, including the next request on a
/// kept-alive connection, or the connection is closed: idle connections cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections on the enrollment channel (no client certificate needed) served at once, so
/// anyone who can reach the port cannot take every connection slot with it.
const MAX_ENROLLMENT_CONNECTIONS: usize = 8;

/// Accept connections and serve them until `shutdown` resolves; the connections still open
/// are returned, to be drained.
pub async fn serve(
    agent: Arc<Agent>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Connections> {
    let enroll = enrollment_router(agent.clone());
    let fleet = fleet_router(agent.clone());
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let enrollment_permits = Arc::new(Semaphore::new(MAX_ENROLLMENT_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit?,
        };
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
        let agent = agent.clone();
        let (enroll, fleet) = (enroll.clone(), fleet.clone());
        let watcher = graceful.watcher();
        let enrollment_permits = enrollment_permits.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&agent, tcp)).await;
            let (tls, channel) = match handshake {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => {
                    tracing::info!(%remote, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let (router, _enrollment_permit) = match &channel {
                Channel::Enrollment => match enrollment_permits.try_acquire_owned() {
                    Ok(permit) => (enroll, Some(permit)),
                    Err(_) => {
                        tracing::info!(%remote, "too many enrollment connections; closed");
                        return;
                    }
                },
                Channel::Fleet { .. } => (fleet, None),
            };
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(channel.clone());
                    request.extensions_mut().insert(PeerAddr(remote.ip()));
                    router.clone().oneshot(request)
                },
            );
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(Some(HEADER_READ_TIMEOUT));
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: no new connections");
    Ok(Connections(graceful))
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

async fn handshake(
    agent: &Agent,
    tcp: tokio::net::TcpStream,
) -> anyhow::Result<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Channel,
)> {
    let start =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
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
        Channel::Fleet {
            peer: pki::cert_info(der)?.serial,
        }
    };
    Ok((tls, channel))
}

fn enrollment_router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route(paths::ENROLL_CSR, post(enroll_csr))
        .route(paths::ENROLL_COMPLETE, post(enroll_complete))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(protocol::MAX_BODY))
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
        .route(paths::ROTATE, post(rotate).get(last_rotation))
        .route(paths::CHECKS, post(checks))
        .route(paths::RESTART, post(restart))
        .route(paths::SNAPSHOTS, get(snapshots).post(snapshot))
        .route(paths::RESTORE, post(restore))
        .route(paths::EVIDENCE, get(evidence))
        .route(paths::FIREWALL, get(blocked))
        .route(paths::FIREWALL_BLOCK, post(block))
        .route(paths::FIREWALL_UNBLOCK, post(unblock))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            agent.clone(),
            refuse_revoked,
        ))
        .layer(DefaultBodyLimit::max(protocol::MAX_BODY))
        .with_state(agent)
}

/// The handshake checked revocation when the connection opened; this checks every request,
/// so a revocation also closes connections that were already open.
async fn refuse_revoked(
    State(agent): State<Arc<Agent>>,
    Extension(channel): Extension<Channel>,
    request: Request,
    next: Next,
) -> Response {
    if let Channel::Fleet { peer } = &channel {
        if agent.is_revoked(peer) {
            tracing::warn!(serial = %peer, "request with a revoked certificate refused");
            return error_response(&ApiError::new(
                403,
                codes::REVOKED,
                "this client certificate has been revoked",
            ));
        }
    }
    next.run(request).await
}

async fn enroll_csr(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    respond(decode(&body).and_then(|request| agent.enroll_csr(request, now())))
}

async fn enroll_complete(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(request) => respond(agent.enroll_complete(request, now()).await),
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
    match tokio::spawn(async move { agent.restart_service().await }).await {
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
        Ok(request) => match tokio::spawn(async move { agent.restore(request).await }).await {
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
        Ok(request) => match tokio::spawn(async move { agent.rotate(request).await }).await {
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

#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    1000
}

async fn events(State(agent): State<Arc<Agent>>, Query(query): Query<EventsQuery>) -> Response {
    respond(agent.events(query.after, query.limit))
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

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

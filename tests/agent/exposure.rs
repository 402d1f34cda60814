//! What anyone who can reach the agent's port can do, unauthenticated: open sockets and say
//! nothing, hold TLS connections on the enrollment name, speak HTTP/2 there, send large or
//! endless bodies. None of it may cut the console off, pin the agent's memory, or flood its
//! log; the enrollment name stops being served once the agent is enrolled.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_agent::state::StateDir;
use gatehouse_pki::{self as pki, Fingerprint, Validity};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::support::{
    client, console_config, info_url, now, serial, serve_fleet, start_agent, Fleet, Running,
    INSTANCE,
};

/// An initialised, not yet enrolled agent on loopback, the fingerprint of its temporary
/// certificate and its one-time token.
async fn enrolling_agent() -> (tempfile::TempDir, Running, Fingerprint, String) {
    pki::install_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, fingerprint) = gatehouse_agent::initialise(
        &StateDir::new(dir.path()),
        now(),
        Duration::from_secs(900),
        [9; 20],
    )
    .expect("init");
    let agent = start_agent(dir.path()).await;
    (dir, agent, fingerprint, code.token.clone())
}

/// A TLS connection on the enrollment name, pinning the agent's temporary certificate and
/// offering `alpn`.
async fn enrollment_tls(
    addr: SocketAddr,
    pin: Fingerprint,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut config = pki::enrollment_client_config(pin).expect("config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(pki::ENROLLMENT_NAME).expect("name");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector.connect(name, tcp).await
}

/// An HTTPS client on the enrollment name, as the console enrolls with.
fn enrollment_client(addr: SocketAddr, pin: Fingerprint) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(pki::enrollment_client_config(pin).expect("config"))
        .resolve(pki::ENROLLMENT_NAME, addr)
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("client")
}

fn enrollment_url(addr: SocketAddr, path: &str) -> String {
    format!("https://{}:{}{path}", pki::ENROLLMENT_NAME, addr.port())
}

/// Whether the agent closes `stream` (end of stream, or a reset) before `bound` passes,
/// whatever it answers first. The bound only keeps a failing test from hanging.
async fn closed_by_agent(stream: &mut (impl AsyncRead + Unpin), bound: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Everything the agent logs on this runtime's threads, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Lines the API layer wrote (per connection, if it logs per connection).
    fn api_lines(&self) -> usize {
        String::from_utf8_lossy(&self.0.lock().expect("lock"))
            .lines()
            .filter(|l| l.contains("gatehouse_agent::api"))
            .count()
    }
}

/// A runtime whose threads (and this one) log into `captured`.
fn runtime_logging_into(captured: &Captured) -> (tokio::runtime::Runtime, tracing::Dispatch) {
    let writer = captured.clone();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // For the thread's whole life: the runtime's threads serve this test only.
            std::mem::forget(tracing::dispatcher::set_default(&for_threads));
        })
        .build()
        .expect("runtime");
    (runtime, dispatch)
}

#[test]
fn idle_sockets_from_anyone_do_not_cut_the_console_off() {
    let captured = Captured::default();
    let (runtime, dispatch) = runtime_logging_into(&captured);
    let _here = tracing::dispatcher::set_default(&dispatch);
    runtime.block_on(async {
        let (_dir, fleet, agent) = serve_fleet().await;
        let before = captured.api_lines();
        // 400 sockets that never say a word, from the console's own address.
        let mut idle = Vec::new();
        for _ in 0..400 {
            idle.push(
                tokio::net::TcpStream::connect(agent.addr)
                    .await
                    .expect("the kernel takes the connection"),
            );
        }
        let (cert, key) =
            fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 30);
        let console = client(console_config(&fleet, &cert.pem, &key), agent.addr);
        let answer = console.get(info_url(agent.addr)).send().await;
        let logged = captured.api_lines() - before;
        let status = answer.as_ref().map(|r| r.status().as_u16());
        assert_eq!(
            status.as_ref().ok(),
            Some(&200),
            "the console (connection 401, with a client certificate) is answered while 400 idle sockets are open: {answer:?}"
        );
        assert!(
            logged <= 20,
            "by then the agent wrote {logged} lines about connections: not one per socket"
        );
        for (n, socket) in idle.iter_mut().enumerate() {
            assert!(
                closed_by_agent(socket, Duration::from_secs(60)).await,
                "idle socket {n} is closed by the agent, not held"
            );
        }
        let logged = captured.api_lines() - before;
        assert!(
            logged <= 20,
            "closing 400 idle sockets took {logged} log lines: they are counted, not each logged"
        );
        let again = console.get(info_url(agent.addr)).send().await;
        assert_eq!(
            again.map(|r| r.status().as_u16()).ok(),
            Some(200),
            "and the console is still served"
        );
        agent.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_on_the_enrollment_name_are_closed_and_their_slots_freed() {
    let (_dir, agent, pin, _token) = enrolling_agent().await;
    // Every enrollment slot taken by a finished TLS handshake that sends nothing.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(
            enrollment_tls(agent.addr, pin, &[b"http/1.1"])
                .await
                .expect("the handshake completes"),
        );
    }
    for (n, tls) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_agent(tls, Duration::from_secs(60)).await,
            "idle enrollment connection {n} is closed by the agent"
        );
    }
    let answer = enrollment_client(agent.addr, pin)
        .post(enrollment_url(agent.addr, "/v1/enroll/csr"))
        .json(&gatehouse_protocol::EnrollCsrRequest {
            token: "not-the-token".into(),
            instance: INSTANCE.into(),
        })
        .send()
        .await
        .expect("a new enrollment connection is answered");
    assert_eq!(answer.status(), 401, "with a wrong token, refused as such");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_large_bodies_and_endless_bodies_on_the_enrollment_name_pin_no_memory() {
    let (_dir, agent, pin, _token) = enrolling_agent().await;
    // HTTP/2 (up to 200 streams per connection, each buffering a body) is not spoken there.
    let h2 = async {
        let tls = enrollment_tls(agent.addr, pin, &[b"h2"]).await?;
        let (send, connection) = h2::client::handshake(tls).await?;
        tokio::spawn(connection);
        let mut send = send.ready().await?;
        let request = axum::http::Request::post(enrollment_url(agent.addr, "/v1/enroll/csr"))
            .body(())
            .expect("request");
        let (answer, _) = send.send_request(request, true)?;
        answer.await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    let spoken = tokio::time::timeout(Duration::from_secs(30), h2)
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        !spoken,
        "no HTTP/2 request is answered on the enrollment name"
    );
    // A body far larger than any enrollment request is refused, not buffered.
    let large = enrollment_client(agent.addr, pin)
        .post(enrollment_url(agent.addr, "/v1/enroll/csr"))
        .header("content-type", "application/json")
        .body("a".repeat(512 * 1024))
        .send()
        .await;
    match large {
        Ok(answer) => assert_eq!(
            answer.status(),
            413,
            "a 512 KiB body is refused as too large"
        ),
        // The agent answers 413 on the length alone and closes: a client still sending the
        // body may see its write fail before it reads the answer. Refused either way.
        Err(e) => {
            let seen = format!("{e:?}");
            assert!(
                seen.contains("BodyWrite")
                    && (seen.contains("BrokenPipe") || seen.contains("ConnectionReset")),
                "the body was refused while it was being sent, not some other failure: {e:?}"
            );
        }
    }
    // A body that never ends is cut off.
    let mut tls = enrollment_tls(agent.addr, pin, &[b"http/1.1"])
        .await
        .expect("handshake");
    tls.write_all(
        format!(
            "POST /v1/enroll/csr HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{\"token\":",
            pki::ENROLLMENT_NAME
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    assert!(
        closed_by_agent(&mut tls, Duration::from_secs(60)).await,
        "a request whose body never ends is not waited for forever"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_agent_stops_serving_the_enrollment_name_and_deletes_its_key() {
    let (dir, agent, pin, token) = enrolling_agent().await;
    let fleet = Fleet::new();
    let enroll = enrollment_client(agent.addr, pin);
    let csr: gatehouse_protocol::EnrollCsrResponse = enroll
        .post(enrollment_url(agent.addr, "/v1/enroll/csr"))
        .json(&gatehouse_protocol::EnrollCsrRequest {
            token: token.clone(),
            instance: INSTANCE.into(),
        })
        .send()
        .await
        .expect("csr")
        .json()
        .await
        .expect("csr json");
    let cert = fleet
        .ca
        .sign_agent_csr(
            &csr.csr_pem,
            INSTANCE,
            Validity::starting(now(), pki::CERT_LIFETIME),
            serial(40),
        )
        .expect("signed");
    let done = enroll
        .post(enrollment_url(agent.addr, "/v1/enroll/complete"))
        .json(&gatehouse_protocol::EnrollCompleteRequest {
            token: token.clone(),
            cert_pem: cert.pem.clone(),
            ca_pem: fleet.ca.cert_pem(),
            revoked: Vec::new(),
        })
        .send()
        .await
        .expect("complete");
    assert_eq!(done.status(), 200, "enrolled");
    // Right after enrollment, a console that uses the code again is told it was used.
    let reused = enroll
        .post(enrollment_url(agent.addr, "/v1/enroll/csr"))
        .json(&gatehouse_protocol::EnrollCsrRequest {
            token,
            instance: INSTANCE.into(),
        })
        .send()
        .await
        .expect("an answer");
    assert_eq!(reused.status(), 409, "a used code is refused as used");
    agent.stop().await;
    let agent = start_agent(dir.path()).await;
    for name in ["enroll.key", "enroll.crt"] {
        assert!(
            !dir.path().join(name).exists(),
            "{name} is deleted once the agent is enrolled"
        );
    }
    assert!(
        enrollment_tls(agent.addr, pin, &[b"http/1.1"])
            .await
            .is_err(),
        "the temporary certificate is no longer served to anyone"
    );
    let (client_cert, key) =
        fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 41);
    let info = client(console_config(&fleet, &client_cert.pem, &key), agent.addr)
        .get(info_url(agent.addr))
        .send()
        .await
        .expect("info");
    assert_eq!(info.status(), 200, "while the fleet certificate works");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_on_the_fleet_name_allows_only_a_few_streams_at_once() {
    let (_dir, fleet, agent) = serve_fleet().await;
    let (cert, key) = fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 42);
    let mut config = console_config(&fleet, &cert.pem, &key);
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(pki::agent_name(INSTANCE).expect("name"))
        .expect("server name");
    let tcp = tokio::net::TcpStream::connect(agent.addr)
        .await
        .expect("tcp");
    let tls = connector.connect(name, tcp).await.expect("mutual TLS");
    let (send, connection) = h2::client::handshake(tls).await.expect("h2");
    tokio::spawn(connection);
    let mut send = send.ready().await.expect("ready");
    let request = axum::http::Request::get(info_url(agent.addr))
        .body(())
        .expect("request");
    let (answer, _) = send.send_request(request, true).expect("send");
    let answer = answer.await.expect("answer");
    assert_eq!(
        answer.status(),
        200,
        "HTTP/2 works with a client certificate"
    );
    assert!(
        send.current_max_send_streams() <= 16,
        "but at most 16 streams at once, not {}",
        send.current_max_send_streams()
    );
    agent.stop().await;
}

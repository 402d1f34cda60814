//! A compromised agent, as the console sees one: it holds the real agent's fleet identity
//! (the attacker owns the host) and answers each route with whatever a test chooses. Every
//! answer closes its connection, so each request is a new handshake with the same checks.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use gatehouse_agent::state::StateDir;
use gatehouse_pki::{self as pki, KeyPem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer: the status and the JSON body.
pub type Answer = (u16, String);

/// What the rogue answers for `method` and `path` (with its query); `None` gives 404.
pub type Routes = dyn Fn(&str, &str, &[u8]) -> Option<Answer> + Send + Sync;

#[derive(Debug)]
pub struct Rogue {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rogue {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve `routes` at `addr` (where the real agent was) with the fleet identity the agent in
/// `state_dir` was enrolled with.
pub async fn start_rogue(
    state_dir: &Path,
    addr: SocketAddr,
    routes: impl Fn(&str, &str, &[u8]) -> Option<Answer> + Send + Sync + 'static,
) -> Rogue {
    pki::install_provider();
    let identity = StateDir::new(state_dir)
        .fleet()
        .expect("the agent's state is readable")
        .expect("the agent was enrolled, so the rogue holds a fleet identity");
    let key = KeyPem::from_pem(identity.key_pem.clone()).expect("the agent's key");
    let mut config = pki::agent_server_config(
        &identity.ca_pem,
        &identity.cert_pem,
        &key,
        &identity.instance,
        Default::default(),
    )
    .expect("a server config from the agent's identity");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the rogue takes the agent's address");
    let addr = listener.local_addr().expect("address");
    let routes: Arc<Routes> = Arc::new(routes);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let routes = routes.clone();
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp))
                        .await
                else {
                    return;
                };
                let Some((method, path, body)) = read_request(&mut tls).await else {
                    return;
                };
                let (status, body) = routes(&method, &path, &body).unwrap_or((
                    404,
                    r#"{"code":"not_found","message":"no such route"}"#.into(),
                ));
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Rogue { addr, task }
}

/// The method, path and body of one HTTP/1.1 request (64 KiB at most).
async fn read_request(tls: &mut (impl AsyncReadExt + Unpin)) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = tls.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
        .min(64 << 10);
    let mut body = buf[end..].to_vec();
    while body.len() < length {
        let n = tls.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some((method, path, body))
}

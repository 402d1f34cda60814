//! The console's client against agents that misbehave: an answer without end, served by a
//! "compromised agent" holding a valid fleet certificate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_agent_client::{AgentClient, Error, Identity, Link};
use gatehouse_pki::{self as pki, FleetCa, KeyPem, Serial, Validity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fleet CA, an agent certificate for `instance` and the console's client certificate and
/// key for it, as an enrolled console would hold them.
struct Fleet {
    ca_pem: String,
    agent_cert: String,
    agent_key: KeyPem,
    client_cert: String,
    client_key: KeyPem,
}

fn fleet(instance: &str) -> Fleet {
    pki::install_provider();
    let now = time::OffsetDateTime::now_utc();
    let validity = Validity::starting(now, time::Duration::days(30));
    let ca = FleetCa::generate(validity, Serial::from_random([1; 16])).expect("CA");
    let agent_key = KeyPem::generate().expect("agent key");
    let csr = agent_key.agent_csr(instance).expect("csr");
    let agent_cert = ca
        .sign_agent_csr(&csr, instance, validity, Serial::from_random([2; 16]))
        .expect("agent certificate")
        .pem;
    let (client, client_key) = ca
        .issue_console_client(instance, validity, Serial::from_random([3; 16]))
        .expect("client certificate");
    Fleet {
        ca_pem: ca.cert_pem(),
        agent_cert,
        agent_key,
        client_cert: client.pem,
        client_key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compromised_agent_cannot_make_the_console_read_an_endless_answer() {
    let instance = "evil-1";
    let f = fleet(instance);
    let mut config = pki::agent_server_config(
        &f.ca_pem,
        &f.agent_cert,
        &f.agent_key,
        instance,
        Default::default(),
    )
    .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let address = listener.local_addr().expect("address").to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    // The agent answers /v1/info with a chunked body that never ends: 64 KiB chunks until
    // the console hangs up, or 64 MiB at most so a broken client cannot hang the test.
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut tls = acceptor.accept(tcp).await.expect("handshake");
        let mut request = [0u8; 4096];
        let _ = tls.read(&mut request).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if tls.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        for _ in 0..1024 {
            if tls.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
            counter.fetch_add(0x10000, Ordering::Relaxed);
        }
    });

    let client = AgentClient::new();
    let link = Link {
        instance,
        address: &address,
        client_cert_pem: &f.client_cert,
    };
    let agent = client
        .connect(
            &link,
            Identity {
                key: f.client_key,
                ca_pem: f.ca_pem.clone(),
            },
        )
        .await
        .expect("connects over mutual TLS");
    let error = agent
        .info()
        .await
        .expect_err("an answer without end is refused");
    assert!(
        matches!(&error, Error::BadResponse { detail, .. } if detail.contains("larger than any the API sends")),
        "the console stops reading at the API's limit and says why, rather than reading until \
         a timeout: {error}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    let read_at_most = 8 * gatehouse_protocol::MAX_BODY as u64;
    assert!(
        sent.load(Ordering::Relaxed) < read_at_most,
        "the agent could push only a few buffers past the limit before the console hung up \
         ({} bytes sent)",
        sent.load(Ordering::Relaxed)
    );
}

//! The agent on loopback, driven by real TLS clients: accepted with a fleet certificate,
//! refused with anything else. Refusals are checked by the TLS alert the agent sends, which
//! says why.

use std::sync::{Arc, RwLock};

use gatehouse_agent::state::StateDir;
use gatehouse_agent::{AgentConfig, LogConfig};
use gatehouse_pki::{self as pki, FleetCa, KeyPem, RevocationList, Validity};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::AlertDescription;
use time::Duration;

use crate::support::{client, info_url, now, serial, serve_fleet, start_agent, Fleet, INSTANCE};

fn no_revocations() -> Arc<RwLock<RevocationList>> {
    Arc::new(RwLock::new(RevocationList::new()))
}

fn client_config(fleet: &Fleet, cert_pem: &str, key: &KeyPem) -> rustls::ClientConfig {
    pki::console_client_config(
        &fleet.ca.cert_pem(),
        INSTANCE,
        cert_pem,
        key,
        no_revocations(),
    )
    .expect("client config")
}

/// Send a request over a raw TLS connection and return the alert the agent refused with.
/// Under TLS 1.3 the client finishes its side of the handshake before the server has judged
/// its certificate, so the alert arrives on the first read; reading it directly is
/// deterministic, where an HTTP client may only see a closed connection.
async fn refusal(config: rustls::ClientConfig, addr: std::net::SocketAddr) -> AlertDescription {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(pki::agent_name(INSTANCE).expect("name"))
        .expect("server name");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("tcp connect");
    let outcome = async {
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"GET /v1/info HTTP/1.1\r\nHost: agent\r\n\r\n")
            .await?;
        let mut buf = [0u8; 1024];
        let n = tls.read(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
    .await;
    match outcome {
        Ok(answer) => panic!("the agent must refuse, but answered: {answer}"),
        Err(e) => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::AlertReceived(alert)) => *alert,
            _ => panic!("expected a TLS alert from the agent, got: {e:?}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_with_a_fleet_certificate() {
    let (_dir, fleet, agent) = serve_fleet().await;
    let (cert, key) = fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 10);
    let response = client(client_config(&fleet, &cert.pem, &key), agent.addr)
        .get(info_url(agent.addr))
        .send()
        .await
        .expect("a fleet certificate for this instance is accepted");
    assert_eq!(response.status(), 200, "info answers");
    let info: gatehouse_protocol::Info = response.json().await.expect("info JSON");
    assert_eq!(
        info.instance, INSTANCE,
        "the agent reports the instance it was enrolled as"
    );
    assert_eq!(
        info.cert_serial,
        fleet.agent_cert.info.serial.to_string(),
        "and the certificate it serves"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_without_a_client_certificate() {
    let (_dir, fleet, agent) = serve_fleet().await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(fleet.ca.cert_pem().as_bytes()).expect("ca der"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(pki::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert_eq!(
        refusal(config, agent.addr).await,
        AlertDescription::CertificateRequired,
        "no client certificate, no API"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_with_a_certificate_from_another_ca() {
    let (_dir, fleet, agent) = serve_fleet().await;
    let other = FleetCa::generate(Validity::starting(now(), Duration::days(365)), serial(50))
        .expect("other CA");
    let (cert, key) = other
        .issue_console_client(
            INSTANCE,
            Validity::starting(now(), pki::CERT_LIFETIME),
            serial(51),
        )
        .expect("cert from the other CA");
    // Both CAs are called "Gatehouse fleet CA": the agent finds the name and then the
    // signature fails (decrypt_error); with another name it would be unknown_ca.
    let alert = refusal(client_config(&fleet, &cert.pem, &key), agent.addr).await;
    assert!(
        matches!(
            alert,
            AlertDescription::DecryptError | AlertDescription::UnknownCA
        ),
        "only the fleet CA is trusted, got {alert:?}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_with_an_expired_certificate() {
    let (_dir, fleet, agent) = serve_fleet().await;
    let expired = Validity {
        not_before: now() - Duration::days(40),
        not_after: now() - Duration::days(10),
    };
    let (cert, key) = fleet.client(INSTANCE, expired, 11);
    assert_eq!(
        refusal(client_config(&fleet, &cert.pem, &key), agent.addr).await,
        AlertDescription::CertificateExpired,
        "an expired certificate is refused"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_with_a_revoked_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = Fleet::new();
    fleet.write_agent_state(dir.path());
    let (cert, key) = fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 12);
    StateDir::new(dir.path())
        .write_revoked(&[cert.info.serial.clone()].into_iter().collect())
        .expect("revocation list");
    let agent = start_agent(dir.path()).await;
    assert_eq!(
        refusal(client_config(&fleet, &cert.pem, &key), agent.addr).await,
        AlertDescription::CertificateRevoked,
        "a revoked serial is refused at the handshake"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_with_a_certificate_for_another_name() {
    let (_dir, fleet, agent) = serve_fleet().await;
    // A genuine fleet certificate, but the console's certificate for another instance.
    let (cert, key) = fleet.client("beta", Validity::starting(now(), pki::CERT_LIFETIME), 13);
    assert_eq!(
        refusal(client_config(&fleet, &cert.pem, &key), agent.addr).await,
        AlertDescription::BadCertificate,
        "a key stolen for one instance must not open another"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_with_a_self_signed_certificate() {
    let (_dir, fleet, agent) = serve_fleet().await;
    // The right name, signed by itself.
    let name = pki::console_name(INSTANCE).expect("name");
    let forged = rcgen::generate_simple_self_signed(vec![name]).expect("self-signed");
    let key = KeyPem::from_pem(forged.key_pair.serialize_pem()).expect("key");
    let alert = refusal(client_config(&fleet, &forged.cert.pem(), &key), agent.addr).await;
    assert!(
        matches!(
            alert,
            AlertDescription::UnknownCA | AlertDescription::BadCertificate
        ),
        "a self-signed certificate is refused, got {alert:?}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_takes_effect_at_once_on_open_connections() {
    let (dir, fleet, agent) = serve_fleet().await;
    let (victim_cert, victim_key) =
        fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 14);
    let (admin_cert, admin_key) =
        fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 15);
    let victim = client(
        client_config(&fleet, &victim_cert.pem, &victim_key),
        agent.addr,
    );
    let admin = client(
        client_config(&fleet, &admin_cert.pem, &admin_key),
        agent.addr,
    );
    let before = victim
        .get(info_url(agent.addr))
        .send()
        .await
        .expect("works before");
    assert_eq!(
        before.status(),
        200,
        "the certificate works before revocation"
    );

    let put = admin
        .put(format!(
            "https://{}:{}/v1/revocations",
            pki::agent_name(INSTANCE).expect("n"),
            agent.addr.port()
        ))
        .json(&gatehouse_protocol::Revocations {
            serials: vec![victim_cert.info.serial.to_string()],
        })
        .send()
        .await
        .expect("revocation accepted");
    assert_eq!(put.status(), 200, "the console can replace the list");

    // Same client, so the same pooled connection as before.
    let after = victim
        .get(info_url(agent.addr))
        .send()
        .await
        .expect("an HTTP answer");
    assert_eq!(
        after.status(),
        403,
        "the open connection is refused from the next request"
    );
    let body: gatehouse_protocol::ErrorBody = after.json().await.expect("error body");
    assert_eq!(body.code, "revoked", "and says why");
    let persisted = StateDir::new(dir.path()).revoked().expect("read list");
    assert!(
        persisted.contains(&victim_cert.info.serial),
        "the list survives a restart"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_served_in_pages_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = Fleet::new();
    fleet.write_agent_state(dir.path());
    let log = dir.path().join("access.log");
    let lines: String = (0..5)
        .map(|n| format!("203.0.113.{n} - - [23/Nov/2026:02:41:57 +0000] \"GET /health HTTP/1.1\" 200 2 \"-\" \"probe\"\n"))
        .collect();
    std::fs::write(&log, lines).expect("log");
    let agent = crate::support::start_agent_config(
        AgentConfig::for_test(dir.path().to_owned()).with_logs(vec![LogConfig::file(
            log,
            gatehouse_events::Format::NginxCombined,
            gatehouse_events::Source::Proxy,
        )]),
    )
    .await;
    let (cert, key) = fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 20);
    let http = client(client_config(&fleet, &cert.pem, &key), agent.addr);
    let url = |after: u64, limit: u32| {
        format!(
            "https://{}:{}/v1/events?after={after}&limit={limit}",
            pki::agent_name(INSTANCE).expect("n"),
            agent.addr.port()
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page: gatehouse_protocol::EventsPage = http
            .get(url(0, 100))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("page");
        if page.head >= 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent reads the log within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let first: gatehouse_protocol::EventsPage = http
        .get(url(0, 2))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("page");
    assert_eq!(
        first.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2],
        "limit is honoured"
    );
    let second: gatehouse_protocol::EventsPage = http
        .get(url(2, 2))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("page");
    assert_eq!(
        second.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4],
        "after resumes exactly"
    );
    assert_eq!(
        second.events[0].ip.as_deref(),
        Some("203.0.113.2"),
        "lines arrive in order"
    );
    assert_eq!(
        (second.head, second.oldest),
        (5, 1),
        "the page says what the agent holds"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_client_certificate_is_refused_on_a_kept_alive_connection() {
    let (_dir, fleet, agent) = serve_fleet().await;
    let validity = Validity {
        not_before: now() - Duration::minutes(1),
        not_after: now() + Duration::seconds(5),
    };
    let (cert, key) = fleet.client(INSTANCE, validity, 16);
    let console = client(client_config(&fleet, &cert.pem, &key), agent.addr);
    let before = console
        .get(info_url(agent.addr))
        .send()
        .await
        .expect("works while valid");
    assert_eq!(
        before.status(),
        200,
        "the certificate works before it expires"
    );
    // Keep the connection alive past the certificate's end.
    while now() <= validity.not_after + Duration::seconds(1) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let after = console
        .get(info_url(agent.addr))
        .send()
        .await
        .expect("an HTTP answer on the kept-alive connection");
    assert_eq!(
        after.status(),
        403,
        "the open connection is refused once the certificate has expired"
    );
    let body: gatehouse_protocol::ErrorBody = after.json().await.expect("error body");
    assert_eq!(body.code, "certificate_expired", "and says why");
    agent.stop().await;
}

/// `PUT /v1/policy` over mutual TLS: the console's signed policy is taken and reported by
/// `GET`; one signed by another key (even naming the console's), an unsigned one and an older
/// one are refused with `policy_refused` and leave the running policy alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_console_s_newer_signed_policy_is_taken() {
    let (_dir, fleet, agent) = serve_fleet().await;
    let (cert, key) = fleet.client(INSTANCE, Validity::starting(now(), pki::CERT_LIFETIME), 16);
    let http = client(client_config(&fleet, &cert.pem, &key), agent.addr);
    let url = format!(
        "https://{}:{}/v1/policy",
        pki::agent_name(INSTANCE).expect("n"),
        agent.addr.port()
    );
    let sign = |key: &pki::PolicyKey, version: u64| {
        let policy = gatehouse_detect::Policy {
            version,
            issued_at: 1,
            rules: gatehouse_detect::default_rules(),
            allowlist: vec![],
            recidive: Default::default(),
            blocks: vec![],
        };
        let text = serde_json::to_string(&policy).expect("json");
        gatehouse_protocol::SignedPolicy {
            signature: key.sign(text.as_bytes()),
            policy: text,
            key: key.public_hex(),
        }
    };
    let console = pki::PolicyKey::from_pkcs8(&pki::PolicyKey::generate().expect("k")).expect("k");
    let forger = pki::PolicyKey::from_pkcs8(&pki::PolicyKey::generate().expect("k")).expect("k");

    let none: gatehouse_protocol::PolicyStatus = http
        .get(&url)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(none.version, None, "no policy before a console sends one");
    let taken = http
        .put(&url)
        .json(&sign(&console, 4))
        .send()
        .await
        .expect("put");
    assert_eq!(taken.status(), 200, "the console's signed policy is taken");
    let status: gatehouse_protocol::PolicyStatus = taken.json().await.expect("json");
    assert_eq!(
        status.version,
        Some(4),
        "the agent runs the version it took"
    );
    assert_eq!(status.key, Some(console.public_hex()), "its key is pinned");

    let mut posing = sign(&forger, 9);
    posing.key = console.public_hex();
    let mut unsigned = sign(&console, 9);
    unsigned.signature = String::new();
    for (what, body) in [
        ("another key", sign(&forger, 9)),
        ("a forger naming the console's key", posing),
        ("unsigned", unsigned),
        ("older", sign(&console, 3)),
    ] {
        let refused = http.put(&url).json(&body).send().await.expect("put");
        assert_eq!(refused.status(), 409, "{what} is refused");
        let body: gatehouse_protocol::ErrorBody = refused.json().await.expect("error body");
        assert_eq!(body.code, "policy_refused", "{what}: {}", body.message);
    }
    let after: gatehouse_protocol::PolicyStatus = http
        .get(&url)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(after.version, Some(4), "the running policy is untouched");
    agent.stop().await;
}

//! Enrollment and the mutual-TLS link end to end: a real console (real keychain, real SQLite)
//! against a real agent on loopback. Faults leave nothing half-done.

use gatehouse_core::{DataDir, Error, ErrorCode, Status};
use gatehouse_pki as pki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use time::OffsetDateTime;

use crate::lab::{start_agent, Lab};
use crate::support::{contains, files_below};

fn code_of(error: &Error) -> ErrorCode {
    error.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_end_to_end_over_mutual_tls() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("alpha").await;
    let view = lab
        .add("alpha", &agent, &code)
        .await
        .expect("enrollment succeeds");
    assert_eq!(
        view.error_code, None,
        "the first mutual-TLS contact works: {}",
        view.status_text
    );
    assert_eq!(
        view.status,
        Status::Ok,
        "a freshly enrolled instance is healthy: {}",
        view.status_text
    );
    assert_eq!(
        view.agent_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION")),
        "agent version recorded"
    );
    assert_eq!(
        view.profile, "sekha",
        "the profile comes from the agent when not given"
    );
    assert!(view.last_contact.is_some(), "last contact recorded");
    assert!(
        lab.keychain_lookup("instance/alpha/client.key")
            .starts_with(b"-----BEGIN PRIVATE KEY"),
        "the console's client key for the instance lives in the OS keychain"
    );
    assert!(
        lab.keychain_lookup("fleet-ca.key")
            .starts_with(b"-----BEGIN PRIVATE KEY"),
        "the fleet CA key lives in the OS keychain"
    );
    let audit = lab
        .console
        .vault()
        .load("audit-hmac.key")
        .expect("audit key in the keychain");
    assert_eq!(audit.expose().len(), 32, "the audit HMAC key is 256 bits");
    assert!(
        audit.expose().iter().any(|b| *b != 0),
        "and random, not zeros"
    );
    let refreshed = lab.console.fleet.refresh_all().await.expect("refresh");
    assert_eq!(
        (refreshed.reached, refreshed.failed),
        (1, 0),
        "a refresh reaches the agent"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_enrollment_code_is_refused_and_leaves_nothing() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("alpha").await;
    lab.add("alpha", &agent, &code)
        .await
        .expect("first use works");

    let other = Lab::new();
    let err = other
        .add("alpha", &agent, &code)
        .await
        .expect_err("a code works once");
    assert_eq!(
        code_of(&err),
        ErrorCode::EnrollmentUsed,
        "a used code is refused as used: {err}"
    );
    assert!(
        err.to_string().contains("Nothing was enrolled"),
        "says nothing changed: {err}"
    );
    other.assert_nothing_left("alpha");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_fingerprint_is_refused_and_the_code_stays_usable() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("alpha").await;
    // Flip the last hex digit of the fingerprint: a man in the middle's certificate.
    let mut tampered = code.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == '0' { '1' } else { '0' });
    let err = lab
        .add("alpha", &agent, &tampered)
        .await
        .expect_err("pin mismatch");
    assert_eq!(
        code_of(&err),
        ErrorCode::FingerprintMismatch,
        "a certificate not matching the code is refused: {err}"
    );
    assert!(
        err.to_string().contains("intercepting"),
        "names the danger: {err}"
    );
    lab.assert_nothing_left("alpha");
    lab.add("alpha", &agent, &code)
        .await
        .expect("the genuine code was not spent by the refused attempt");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_enrollment_code_is_refused() {
    let lab = Lab::new();
    let (dir, code) = lab.init_agent(
        "alpha",
        OffsetDateTime::now_utc() - time::Duration::minutes(20),
    );
    let agent = start_agent(&dir).await;
    let err = lab
        .add("alpha", &agent, &code)
        .await
        .expect_err("15 minutes have passed");
    assert_eq!(
        code_of(&err),
        ErrorCode::EnrollmentExpired,
        "an expired code is refused as expired: {err}"
    );
    assert!(
        err.to_string().contains("init --force"),
        "says how to get a new code: {err}"
    );
    lab.assert_nothing_left("alpha");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_agent_is_a_clear_error_with_nothing_left_behind() {
    let lab = Lab::new();
    let (_dir, code) = lab.init_agent("alpha", OffsetDateTime::now_utc());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let err = lab
        .add_at("alpha", &address, &code)
        .await
        .expect_err("nothing listens there");
    assert_eq!(
        code_of(&err),
        ErrorCode::AgentUnreachable,
        "a closed port is unreachable: {err}"
    );
    assert!(
        err.to_string().contains(&address)
            && err.to_string().contains("gatehouse-agent is running"),
        "names the address and what to check: {err}"
    );
    lab.assert_nothing_left("alpha");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_times_out() {
    let lab = Lab::new();
    let (_dir, code) = lab.init_agent("alpha", OffsetDateTime::now_utc());
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let err = lab
        .add_at("alpha", &address, &code)
        .await
        .expect_err("no answer");
    assert_eq!(
        code_of(&err),
        ErrorCode::AgentTimeout,
        "a silent agent times out: {err}"
    );
    lab.assert_nothing_left("alpha");
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_answering_garbage_is_reported_as_such() {
    use tokio::io::AsyncWriteExt;
    let lab = Lab::new();
    let (_dir, code) = lab.init_agent("alpha", OffsetDateTime::now_utc());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let garbage = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nnot TLS at all\r\n")
                .await;
        }
    });
    let err = lab
        .add_at("alpha", &address, &code)
        .await
        .expect_err("not an agent");
    assert_eq!(
        code_of(&err),
        ErrorCode::AgentBadResponse,
        "a non-agent answer is a bad response: {err}"
    );
    lab.assert_nothing_left("alpha");
    garbage.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_makes_the_agent_refuse_the_console_at_once() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("alpha").await;
    lab.add("alpha", &agent, &code).await.expect("enrolled");
    // Keep the revoked identity to try it afterwards, as a thief would.
    let key_pem = String::from_utf8(lab.keychain_lookup("instance/alpha/client.key")).expect("pem");
    let view = lab
        .console
        .fleet
        .revoke_instance("alpha")
        .await
        .expect("revoked");
    assert!(view.revoked, "the view shows the instance revoked");
    assert_eq!(
        view.status,
        Status::Failing,
        "a revoked instance is not healthy"
    );
    let err = lab
        .console
        .fleet
        .refresh_instance("alpha")
        .await
        .expect_err("no more contact");
    assert_eq!(
        code_of(&err),
        ErrorCode::InstanceRevoked,
        "a revoked instance is not contacted: {err}"
    );

    let record_cert = {
        let db = rusqlite::Connection::open(lab.data.join("gatehouse.sqlite3")).expect("db");
        db.query_row(
            "SELECT client_cert_pem FROM instances WHERE name = 'alpha'",
            [],
            |r| r.get::<_, String>(0),
        )
        .expect("row")
    };
    let ca_pem = {
        let db = rusqlite::Connection::open(lab.data.join("gatehouse.sqlite3")).expect("db");
        db.query_row("SELECT cert_pem FROM fleet_ca", [], |r| {
            r.get::<_, String>(0)
        })
        .expect("ca")
    };
    let config = pki::console_client_config(
        &ca_pem,
        "alpha",
        &record_cert,
        &pki::KeyPem::from_pem(key_pem).expect("key"),
        Default::default(),
    )
    .expect("config");
    let stolen = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .resolve(&pki::agent_name("alpha").expect("name"), agent.addr)
        .no_proxy()
        .build()
        .expect("client");
    let result = stolen
        .get(format!(
            "https://alpha.gatehouse.invalid:{}/v1/info",
            agent.addr.port()
        ))
        .send()
        .await;
    assert!(
        result.is_err(),
        "the agent must refuse the revoked client certificate, got {:?}",
        result.map(|r| r.status())
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_takes_the_secrets_out_of_the_keychain() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("alpha").await;
    lab.add("alpha", &agent, &code).await.expect("enrolled");
    assert!(
        !lab.keychain_lookup("instance/alpha/client.key").is_empty(),
        "key present before"
    );
    lab.console
        .fleet
        .remove_instance("alpha")
        .await
        .expect("removed");
    assert!(
        lab.keychain_lookup("instance/alpha/client.key").is_empty(),
        "the instance's secret has left the keychain"
    );
    assert!(
        lab.console.fleet.instances().expect("list").is_empty(),
        "and its row the database"
    );
    let err = lab
        .console
        .fleet
        .refresh_instance("alpha")
        .await
        .expect_err("gone");
    assert_eq!(
        code_of(&err),
        ErrorCode::InstanceNotFound,
        "an unknown instance is not found: {err}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_runs_on_the_clock_and_replaces_both_certificates() {
    let lab = Lab::new();
    let real_now = OffsetDateTime::now_utc();
    // Enrolled 21 days ago: past two thirds of a 30-day life, not yet expired.
    lab.set_clock(real_now - time::Duration::days(21));
    let (agent, code) = lab.agent("alpha").await;
    lab.add("alpha", &agent, &code).await.expect("enrolled");
    let before = lab.console.fleet.ping("alpha").await.expect("ping");
    assert!(
        lab.console
            .fleet
            .renew_due()
            .await
            .expect("nothing due yet")
            .is_empty(),
        "not due at enrollment"
    );

    lab.set_clock(real_now);
    let renewed = lab.console.fleet.renew_due().await.expect("renewal");
    assert_eq!(
        renewed,
        vec!["alpha".to_owned()],
        "renewed by the clock, with no traffic needed"
    );
    let after = lab
        .console
        .fleet
        .ping("alpha")
        .await
        .expect("the link works after renewal");
    assert_ne!(
        after.cert_serial, before.cert_serial,
        "the agent serves its new certificate"
    );
    let view = lab.console.fleet.instance("alpha").expect("view");
    assert!(
        view.cert_not_after > before.cert_not_after,
        "the new certificate lives longer than the old"
    );
    assert!(
        lab.console
            .fleet
            .renew_due()
            .await
            .expect("again")
            .is_empty(),
        "renewal is not repeated"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_expired_while_the_laptop_was_closed_says_how_to_recover() {
    let lab = Lab::new();
    // The console last ran 31 days ago: everything it issued then has expired since.
    lab.set_clock(OffsetDateTime::now_utc() - time::Duration::days(31));
    let (agent, code) = lab.agent("alpha").await;
    let view = lab
        .add("alpha", &agent, &code)
        .await
        .expect("enrollment itself completes");
    lab.set_clock(OffsetDateTime::now_utc());
    let view = if view.error_code.is_some() {
        view
    } else {
        lab.console
            .fleet
            .refresh_instance("alpha")
            .await
            .expect("view")
    };
    assert_eq!(
        view.status,
        Status::Failing,
        "an expired link is failing, not silently ok"
    );
    assert_eq!(
        view.error_code.as_deref(),
        Some("agent_certificate"),
        "an expired agent certificate is reported as such: {}",
        view.status_text
    );
    assert!(
        view.status_text.contains("expired") && view.status_text.contains("init --force"),
        "says what happened and how to recover: {}",
        view.status_text
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_an_agent_that_is_not_the_instance_it_enrolled() {
    let lab = Lab::new();
    let (alpha, alpha_code) = lab.agent("alpha").await;
    let (beta, beta_code) = lab.agent("beta").await;
    lab.add("alpha", &alpha, &alpha_code).await.expect("alpha");
    lab.add("beta", &beta, &beta_code).await.expect("beta");
    // alpha's address now leads to beta's agent (a DNS change, a port reuse, an attacker).
    let db = rusqlite::Connection::open(lab.data.join("gatehouse.sqlite3")).expect("db");
    db.execute(
        "UPDATE instances SET address = ?1 WHERE name = 'alpha'",
        [beta.addr.to_string()],
    )
    .expect("update");
    let view = lab
        .console
        .fleet
        .refresh_instance("alpha")
        .await
        .expect("view");
    assert_eq!(
        view.error_code.as_deref(),
        Some("agent_certificate"),
        "an agent certificate for another name is reported: {}",
        view.status_text
    );
    assert!(
        view.status_text.contains("names another instance"),
        "and the status says whose name it carries: {}",
        view.status_text
    );
    alpha.stop().await;
    beta.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_key_reaches_disk_after_enrollment_and_renewal() {
    let started = std::time::SystemTime::now();
    let lab = Lab::new();
    let _log = gatehouse_core::logging::init(&DataDir::at(&lab.data), "console").expect("log");
    let real_now = OffsetDateTime::now_utc();
    lab.set_clock(real_now - time::Duration::days(21));
    let (agent, code) = lab.agent("alpha").await;
    lab.add("alpha", &agent, &code).await.expect("enrolled");
    lab.set_clock(real_now);
    lab.console.fleet.renew_due().await.expect("renewed");

    let mut secrets: Vec<Vec<u8>> = Vec::new();
    let audit = lab
        .console
        .vault()
        .load("audit-hmac.key")
        .expect("audit key");
    secrets.push(audit.expose().clone());
    for name in ["fleet-ca.key", "instance/alpha/client.key"] {
        let pem = lab.console.vault().load(name).expect("key in keychain");
        let pem = pem.expose().clone();
        let der = PrivateKeyDer::from_pem_slice(&pem).expect("pem key");
        secrets.push(der.secret_der().to_vec());
        // The base64 body, whole and line by line (a PEM written elsewhere wraps at 64).
        let text = String::from_utf8(pem.clone()).expect("text");
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
        secrets.push(body.concat().into_bytes());
        secrets.extend(
            body.iter()
                .filter(|l| l.len() >= 40)
                .map(|l| l.as_bytes().to_vec()),
        );
        secrets.push(pem);
    }
    agent.stop().await;
    drop(_log);
    let data = files_below(&lab.data);
    assert!(
        data.iter()
            .any(|(p, _)| p.starts_with(lab.data.join("logs"))),
        "the scan must cover the console's log"
    );
    // Temporary files: whatever was written under the temp dir while this test ran.
    let temp = gatehouse_testkit::files::files_below_where(&std::env::temp_dir(), |p, meta| {
        meta.len() < 16 << 20
            && meta.modified().is_ok_and(|t| t >= started)
            // The agent's own key lives there.
            && !p.starts_with(&lab.agents)
    });
    for (path, bytes) in data.into_iter().chain(temp) {
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret),
                "private key material found in {}: keys must live only in the keychain",
                path.display()
            );
        }
    }
}

//! The public endpoint as clients reach it (usually the reverse proxy, `[checks]
//! public_url`), probed once for all four of its checks: the TLS versions offered, the
//! certificate's expiry, HSTS and CORS. TLS goes through a probe-only rustls config, so a
//! certificate the probe could not trust is still read and reported.

use std::sync::Arc;

use gatehouse_pki::ProbeVersions;
use gatehouse_protocol::{CheckId, CheckResult, TlsMinimum};

use super::{fail, pass, unknown, Context, PROBE_TIMEOUT};
use crate::error::root_cause;

/// The origin the CORS probe claims.
const PROBE_ORIGIN: &str = "https://gatehouse-probe.invalid";
/// An HSTS max-age below this (180 days) is too short to protect returning clients.
const MIN_HSTS_SECONDS: u64 = 15_552_000;
/// A certificate expiring sooner than this fails its check.
const MIN_CERT_DAYS: i64 = 14;

pub(super) async fn probe(cx: &Context<'_>) -> PublicProbe {
    let Some(url) = cx.policy.public_url.clone() else {
        return PublicProbe::NotConfigured;
    };
    let parsed = match reqwest::Url::parse(&url) {
        Ok(parsed) => parsed,
        Err(e) => return PublicProbe::Broken(format!("public_url {url}: {e}")),
    };
    if parsed.scheme() != "https" {
        // No TLS to judge, but CORS is answered over plain HTTP just the same.
        let headers = probe_http(cx, &url).await;
        return PublicProbe::PlainHttp(Box::new(Plain { url, headers }));
    }
    let host = parsed.host_str().unwrap_or("localhost").to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let tls13 = handshake(&host, port, ProbeVersions::Tls13Only).await;
    let tls12 = handshake(&host, port, ProbeVersions::Tls12Only).await;
    let cert_not_after = tls13
        .as_ref()
        .ok()
        .or(tls12.as_ref().ok())
        .and_then(|h| h.not_after);
    let headers = probe_http(cx, &url).await;
    PublicProbe::Probed(Box::new(Probed {
        url,
        tls13: tls13.map(|_| ()),
        tls12: tls12.map(|_| ()),
        cert_not_after,
        headers,
    }))
}

pub(super) enum PublicProbe {
    NotConfigured,
    Broken(String),
    PlainHttp(Box<Plain>),
    Probed(Box<Probed>),
}

/// A public endpoint without TLS: only its headers can be judged.
pub(super) struct Plain {
    url: String,
    headers: Result<Headers, String>,
}

pub(super) struct Probed {
    url: String,
    tls13: Result<(), String>,
    tls12: Result<(), String>,
    cert_not_after: Option<i64>,
    headers: Result<Headers, String>,
}

struct Headers {
    status: u16,
    hsts: Option<String>,
    /// `Access-Control-Allow-Origin` on a GET and on a preflight, from the probe origin.
    cors_get: Option<String>,
    cors_preflight: Option<String>,
    /// `Access-Control-Allow-Credentials` on either.
    cors_credentials: Option<String>,
}

impl PublicProbe {
    pub(super) fn result(&self, check: CheckId, minimum: TlsMinimum, now: i64) -> CheckResult {
        let p = match self {
            PublicProbe::NotConfigured => {
                return unknown(
                    check,
                    "no public_url is set in the agent's [checks], so the public endpoint cannot be probed",
                    vec![],
                )
            }
            PublicProbe::Broken(why) => return unknown(check, why.clone(), vec![]),
            PublicProbe::PlainHttp(plain) => {
                return match check {
                    CheckId::Cors => cors(&plain.url, &plain.headers),
                    _ => fail(
                        check,
                        "the public endpoint is plain HTTP: keys cross the network in clear text",
                        vec![plain.url.clone()],
                    ),
                }
            }
            PublicProbe::Probed(p) => p,
        };
        match check {
            CheckId::TlsVersions => p.versions(minimum),
            CheckId::TlsCertificate => match p.cert_not_after {
                Some(not_after) => {
                    let days = (not_after - now) / 86_400;
                    let shown = time::OffsetDateTime::from_unix_timestamp(not_after)
                        .map(|t| t.date().to_string())
                        .unwrap_or_default();
                    let evidence = vec![format!("{}: certificate valid until {shown}", p.url)];
                    if not_after <= now {
                        fail(check, "the certificate has expired", evidence)
                    } else if days < MIN_CERT_DAYS {
                        fail(
                            check,
                            format!("the certificate expires in {days} days"),
                            evidence,
                        )
                    } else {
                        pass(
                            check,
                            format!("the certificate is valid for {days} more days"),
                            evidence,
                        )
                    }
                }
                None => unknown(check, "no TLS handshake succeeded", vec![p.url.clone()]),
            },
            CheckId::Hsts => match &p.headers {
                Ok(h) => {
                    let evidence = vec![format!(
                        "GET {}: {}, Strict-Transport-Security: {}",
                        p.url,
                        h.status,
                        h.hsts.as_deref().unwrap_or("(absent)")
                    )];
                    match h.hsts.as_deref().and_then(hsts_max_age) {
                        Some(age) if age >= MIN_HSTS_SECONDS => {
                            pass(check, format!("HSTS is sent with max-age {age}"), evidence)
                        }
                        Some(age) => fail(
                            check,
                            format!("HSTS max-age {age} is under 180 days"),
                            evidence,
                        ),
                        None => fail(check, "no Strict-Transport-Security header", evidence),
                    }
                }
                Err(e) => unknown(check, "the public endpoint did not answer", vec![e.clone()]),
            },
            CheckId::Cors => cors(&p.url, &p.headers),
            other => unknown(other, "not a check of the public endpoint", vec![]),
        }
    }
}

/// CORS as the public endpoint answers it (over TLS or not): an `Access-Control-Allow-Origin`
/// of `*`, or one that echoes an origin the probe made up, lets any web page call the API
/// from a browser; with `Access-Control-Allow-Credentials: true` it does so with the browser's
/// cookies and authentication.
fn cors(url: &str, headers: &Result<Headers, String>) -> CheckResult {
    let check = CheckId::Cors;
    let h = match headers {
        Ok(h) => h,
        Err(e) => return unknown(check, "the public endpoint did not answer", vec![e.clone()]),
    };
    let evidence = vec![
        format!(
            "GET {url} with Origin {PROBE_ORIGIN}: Access-Control-Allow-Origin {}",
            h.cors_get.as_deref().unwrap_or("(absent)")
        ),
        format!(
            "OPTIONS preflight from {PROBE_ORIGIN}: Access-Control-Allow-Origin {}",
            h.cors_preflight.as_deref().unwrap_or("(absent)")
        ),
        format!(
            "Access-Control-Allow-Credentials: {}",
            h.cors_credentials.as_deref().unwrap_or("(absent)")
        ),
    ];
    let loose = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|v| v.trim() == "*" || v.trim() == PROBE_ORIGIN)
    };
    let credentials = h
        .cors_credentials
        .as_deref()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !(loose(&h.cors_get) || loose(&h.cors_preflight)) {
        pass(check, "CORS does not allow an arbitrary origin", evidence)
    } else if credentials {
        fail(check, "any web page may call this API from a browser, with the browser's credentials (CORS echoes every origin and allows credentials)", evidence)
    } else {
        fail(
            check,
            "any web page may call this API from a browser (CORS allows every origin)",
            evidence,
        )
    }
}

impl Probed {
    fn versions(&self, minimum: TlsMinimum) -> CheckResult {
        let check = CheckId::TlsVersions;
        let line = |name: &str, r: &Result<(), String>| match r {
            Ok(()) => format!("{name}: offered"),
            Err(e) => format!("{name}: refused ({e})"),
        };
        let mut evidence = vec![
            format!("{}", self.url),
            line("TLS 1.3", &self.tls13),
            line("TLS 1.2", &self.tls12),
        ];
        evidence.push(
            "TLS 1.0 and 1.1 are not probed: the agent's TLS library does not speak them".into(),
        );
        match (minimum, self.tls13.is_ok(), self.tls12.is_ok()) {
            (_, false, false) => unknown(check, "no TLS handshake succeeded", evidence),
            (TlsMinimum::Tls13, true, false) => pass(check, "only TLS 1.3 is offered", evidence),
            (TlsMinimum::Tls13, _, true) => fail(
                check,
                "TLS 1.2 is offered where the policy asks for TLS 1.3 only",
                evidence,
            ),
            (TlsMinimum::Tls12, _, _) => pass(check, "TLS 1.2 or newer is offered", evidence),
        }
    }
}

struct Handshake {
    not_after: Option<i64>,
}

async fn handshake(host: &str, port: u16, versions: ProbeVersions) -> Result<Handshake, String> {
    let config = gatehouse_pki::probe_client_config(versions).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host}: {e}"))?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let not_after = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| gatehouse_pki::cert_info(der).ok())
            .map(|info| info.validity.not_after.unix_timestamp());
        Ok(Handshake { not_after })
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".into()))
}

async fn probe_http(cx: &Context<'_>, url: &str) -> Result<Headers, String> {
    // The agent's own requests: what the proxy logs of them is flagged as a probe.
    let window = cx.service.probes.begin(url);
    // A GET and a preflight.
    window.sends(2);
    let marks = window.headers();
    let config =
        gatehouse_pki::probe_client_config(ProbeVersions::Both).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut get = client.get(url).header("origin", PROBE_ORIGIN);
    for (name, value) in &marks {
        get = get.header(*name, value);
    }
    let get = get
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", root_cause(&e)))?;
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = get.status().as_u16();
    let hsts = header(&get, "strict-transport-security");
    let cors_get = header(&get, "access-control-allow-origin");
    let mut cors_credentials = header(&get, "access-control-allow-credentials");
    let mut preflight = client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", PROBE_ORIGIN)
        .header("access-control-request-method", "GET");
    for (name, value) in &marks {
        preflight = preflight.header(*name, value);
    }
    let preflight = preflight
        .send()
        .await
        .map_err(|e| format!("OPTIONS {url}: {}", root_cause(&e)))?;
    let cors_preflight = header(&preflight, "access-control-allow-origin");
    if cors_credentials.is_none() {
        cors_credentials = header(&preflight, "access-control-allow-credentials");
    }
    drop(window);
    Ok(Headers {
        status,
        hsts,
        cors_get,
        cors_preflight,
        cors_credentials,
    })
}

fn hsts_max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|part| {
        let (name, v) = part.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_max_age_is_read_from_any_position() {
        assert_eq!(
            hsts_max_age("max-age=31536000; includeSubDomains"),
            Some(31_536_000),
            "first"
        );
        assert_eq!(
            hsts_max_age("includeSubDomains; Max-Age=\"600\""),
            Some(600),
            "quoted, later, any case"
        );
        assert_eq!(
            hsts_max_age("includeSubDomains"),
            None,
            "no max-age means no HSTS"
        );
    }
}

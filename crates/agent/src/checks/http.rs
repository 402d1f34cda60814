//! The service's own HTTP endpoints: the protected endpoint refuses a missing key, a wrong
//! key and a made-up Bearer token; no data endpoint answers without a key; a burst to the
//! open health endpoint meets a rate limit. GET only where the profile allows, so nothing
//! changes data.

use std::time::{Duration, Instant};

use gatehouse_events::profile::Presented;
use gatehouse_protocol::{CheckId, CheckResult};

use super::{fail, pass, unknown, Context, PROBE_TIMEOUT};
use crate::error::root_cause;

/// A key presented by the probes: recognisable in the service's own log as Gatehouse's.
const PROBE_KEY: &str = "gatehouse-compliance-probe-not-a-key";
/// TEST-NET-1: a rate limit keyed on `X-Forwarded-For` charges the burst to nobody real.
const PROBE_FORWARDED_FOR: std::net::Ipv4Addr = crate::probes::PROBE_FORWARDED_FOR;
const BURST_TIME_LIMIT: Duration = Duration::from_secs(15);

pub(super) async fn auth_refuses(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::AuthRefuses;
    let probe = &cx.service.profile.probes.protected;
    let target = format!("{} {}", probe.method, probe.path);
    let missing = protected_status(cx, None, None).await;
    let wrong = protected_status(cx, Some(PROBE_KEY), None).await;
    let (missing, wrong) = match (missing, wrong) {
        (Ok(m), Ok(w)) => (m, w),
        (Err(e), _) | (_, Err(e)) => return unknown(check, "the service did not answer", vec![e]),
    };
    let evidence = vec![
        format!("{target} without a key: {missing}"),
        format!("{target} with a wrong key: {wrong}"),
    ];
    let refused = |s: u16| matches!(s, 400 | 401 | 403);
    match (refused(missing), refused(wrong)) {
        (true, true) => pass(
            check,
            "the protected endpoint refuses a missing and a wrong key",
            evidence,
        ),
        _ => {
            let mut evidence = evidence;
            if let Some(note) = &cx.service.profile.auth.note {
                evidence.push(format!("profile: {note}"));
            }
            fail(
                check,
                "the protected endpoint answers without a valid key: authentication is off",
                evidence,
            )
        }
    }
}

pub(super) async fn bearer_bypass(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::BearerBypass;
    let probe = &cx.service.profile.probes.protected;
    let target = format!("{} {}", probe.method, probe.path);
    let bearer = ("authorization", format!("Bearer {PROBE_KEY}"));
    match protected_status(cx, None, Some(bearer)).await {
        Ok(status @ (400 | 401 | 403)) => pass(
            check,
            "an arbitrary Bearer token is refused",
            vec![format!(
                "{target} with Authorization: Bearer <made-up token>: {status}"
            )],
        ),
        Ok(status) => fail(
            check,
            "an arbitrary Bearer token is accepted: anyone can call the protected API",
            vec![format!(
                "{target} with Authorization: Bearer <made-up token>: {status}"
            )],
        ),
        Err(e) => unknown(check, "the service did not answer", vec![e]),
    }
}

pub(super) async fn data_endpoints(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::DataEndpointsProtected;
    let base = match base_url(cx) {
        Ok(base) => base,
        Err(why) => return unknown(check, why, vec![]),
    };
    let paths = &cx.service.profile.probes.unprotected_data;
    if paths.is_empty() {
        return pass(
            check,
            "the profile names no data endpoint that answers without a key",
            vec![],
        );
    }
    let (mut open, mut refused) = (0, 0);
    let mut evidence = Vec::new();
    for path in paths {
        let url = format!("{base}{path}");
        // GET only: a probe never calls anything that could change data.
        match get_within_origin(cx, &url).await {
            Ok(status) => {
                let word = match status {
                    200..=299 => {
                        open += 1;
                        " (open)"
                    }
                    401 | 403 => {
                        refused += 1;
                        " (refused)"
                    }
                    // 404, 405 and the like say nothing about protection.
                    _ => " (neither open nor refused)",
                };
                evidence.push(format!("GET {path} without a key: {status}{word}"));
            }
            Err(e) => evidence.push(format!("GET {path}: {e}")),
        }
    }
    if open > 0 {
        fail(
            check,
            format!("{open} endpoint(s) answer without a key; restrict them at the proxy"),
            evidence,
        )
    } else if refused < paths.len() {
        unknown(
            check,
            "some endpoints neither answered nor refused a request without a key",
            evidence,
        )
    } else {
        pass(
            check,
            "every data endpoint refuses a request without a key",
            evidence,
        )
    }
}

pub(super) async fn rate_limit(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::RateLimit;
    let base = match base_url(cx) {
        Ok(base) => base,
        Err(why) => return unknown(check, why, vec![]),
    };
    let limit_status = cx
        .service
        .profile
        .rate_limit
        .as_ref()
        .and_then(|r| r.status)
        .unwrap_or(429);
    let url = format!("{base}{}", cx.service.profile.probes.open.path);
    let burst = cx.policy.rate_limit_burst;
    // One window for the whole burst: every line it makes is the agent's own.
    let probe = cx.service.probes.begin(&url);
    probe.sends(burst);
    let marks = probe.headers();
    let started = Instant::now();
    let mut sent = 0u32;
    let mut limited_at = None;
    let mut errors = 0u32;
    // Eight at a time: fast enough to beat a per-second limit, gentle on the service.
    'burst: while sent < burst && started.elapsed() < BURST_TIME_LIMIT {
        let batch = (burst - sent).min(8);
        let mut tasks = Vec::with_capacity(batch as usize);
        for _ in 0..batch {
            let mut request = cx
                .service
                .http
                .get(&url)
                .header("x-forwarded-for", PROBE_FORWARDED_FOR.to_string())
                .timeout(PROBE_TIMEOUT);
            for (name, value) in &marks {
                request = request.header(*name, value);
            }
            let request = request.send();
            tasks.push(request);
        }
        for result in futures_join(tasks).await {
            sent += 1;
            match result {
                Ok(status) if status == limit_status => {
                    limited_at = Some(sent);
                    break 'burst;
                }
                Ok(_) => {}
                Err(()) => errors += 1,
            }
        }
    }
    drop(probe);
    let took = started.elapsed().as_millis();
    let mut evidence = vec![format!(
        "{sent} GET {} in {took} ms with X-Forwarded-For {PROBE_FORWARDED_FOR}{}",
        cx.service.profile.probes.open.path,
        if errors > 0 {
            format!(", {errors} failed")
        } else {
            String::new()
        }
    )];
    if let Some(note) = cx
        .service
        .profile
        .rate_limit
        .as_ref()
        .and_then(|r| r.note.clone())
    {
        evidence.push(format!("profile: {note}"));
    }
    match limited_at {
        Some(n) => pass(
            check,
            format!("answered {limit_status} after {n} requests"),
            evidence,
        ),
        None if errors == sent => unknown(check, "the service did not answer", evidence),
        None => fail(
            check,
            format!("no {limit_status} after {sent} requests: nothing slows a brute force down"),
            evidence,
        ),
    }
}

/// Redirects followed by a data endpoint probe (RAE's `/v2/memories` answers 307).
const MAX_REDIRECTS: usize = 3;

/// The status of `GET url`, following redirects within the service's origin only (the agent's
/// client follows none: a probe that carried a key would carry it along). A redirect
/// elsewhere is the answer.
async fn get_within_origin(cx: &Context<'_>, url: &str) -> Result<u16, String> {
    let mut url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    for _ in 0..=MAX_REDIRECTS {
        let probe = cx.service.probes.begin(url.as_str());
        let mut request = cx.service.http.get(url.clone()).timeout(PROBE_TIMEOUT);
        for (name, value) in probe.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| root_cause(&e))?;
        drop(probe);
        let status = response.status();
        let next = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .filter(|next| next.origin() == url.origin());
        match next {
            Some(next) if status.is_redirection() => url = next,
            _ => return Ok(status.as_u16()),
        }
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

fn base_url(cx: &Context<'_>) -> Result<String, String> {
    cx.service.origin().unwrap_or_else(|| {
        Err("no service_url is configured, so the service cannot be probed".into())
    })
}

/// The protected endpoint's status for a request with `header` (or none).
/// The protected endpoint's status without a key, or with `key` presented as the profile
/// says, or with `header`.
async fn protected_status(
    cx: &Context<'_>,
    key: Option<&str>,
    header: Option<(&str, String)>,
) -> Result<u16, String> {
    let probe = &cx.service.profile.probes.protected;
    // The agent's own request: the failed sign-in it makes is flagged as a probe.
    let window = cx.service.probes.begin(&probe.path);
    let mut headers: Vec<(&str, String)> = window.headers().into_iter().collect();
    let presented = key.map(|key| cx.service.profile.auth.present(key));
    if let Some(Presented::Header { name, value }) = &presented {
        headers.push((name.as_str(), value.clone()));
    }
    headers.extend(header);
    let (mut request, url) =
        cx.service
            .protected_request(&base_url(cx)?, headers, PROBE_TIMEOUT)?;
    if let Some(Presented::Query { name, value }) = &presented {
        request = request.query(&[(name, value)]);
    }
    let status = request
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{} {url}: {}", probe.method, root_cause(&e)));
    drop(window);
    status
}

/// Runs the requests together and gives each one's status (or `Err` when it got no answer).
async fn futures_join<F>(requests: Vec<F>) -> Vec<Result<u16, ()>>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = requests.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(match handle.await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            _ => Err(()),
        });
    }
    out
}

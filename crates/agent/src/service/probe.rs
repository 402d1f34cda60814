//! Reaching the service over HTTP with the agent's one client: its base URL (the origin of
//! `service_url`), its liveness probe, and its protected endpoint as the profile names it.
//! Every request is the agent's own (see `probes`): it carries the window's nonce.

use std::time::Duration;

use gatehouse_events::profile::Presented;
use gatehouse_protocol::{Health, ServiceHealth};
use reqwest::RequestBuilder;

use super::listener::{Call, NoAnswer};
use super::Service;
use crate::config::Liveness;
use crate::error::root_cause;
use crate::probes::ProbeLog;

/// How long the protected endpoint has to answer when a rotation checks a key.
const KEY_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one health request may take while a restart is awaited.
const HEALTH_POLL_TIMEOUT: Duration = Duration::from_secs(2);

impl Service<'_> {
    /// The service's origin (scheme, host and port of `service_url`), where the profile's
    /// endpoint paths are appended; `None` when no `service_url` is configured.
    pub fn origin(&self) -> Option<Result<String, String>> {
        let url = self.settings.url.as_deref()?;
        Some(
            reqwest::Url::parse(url)
                .map(|parsed| parsed.origin().ascii_serialization())
                .map_err(|e| format!("service_url {url}: {e}")),
        )
    }

    /// A request to the protected endpoint with `headers`, and its URL. The body the profile
    /// gives goes last, as JSON.
    pub fn protected_request(
        &self,
        base: &str,
        headers: Vec<(&str, String)>,
        timeout: Duration,
    ) -> Result<(RequestBuilder, String), String> {
        let probe = &self.profile.probes.protected;
        let url = format!("{base}{}", probe.path);
        let method = reqwest::Method::from_bytes(probe.method.as_bytes())
            .map_err(|e| format!("probe method {}: {e}", probe.method))?;
        let mut request = self.http.request(method, &url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request = request.timeout(timeout);
        if let Some(body) = &probe.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        Ok((request, url))
    }

    /// Whether the protected endpoint accepts `key`, presented as the profile says: 2xx is
    /// yes, 401 and 403 are no, anything else is no answer. The key goes only to the service's
    /// own process (see [`listener`](super::listener)); the answer says which process that
    /// was, when it could be found.
    pub async fn accepts(&self, key: &str) -> Result<(bool, Option<u32>), String> {
        self.accepts_as(key, None).await
    }

    /// [`accepts`](Self::accepts), with `key` presented as `user`'s password where the
    /// profile's key is a user's password (`basic_user = "*"`).
    pub async fn accepts_as(
        &self,
        key: &str,
        user: Option<&str>,
    ) -> Result<(bool, Option<u32>), String> {
        let base = self.origin().unwrap_or_else(|| {
            Err("no service_url is configured, so the service cannot be checked".into())
        })?;
        let probe = &self.profile.probes.protected;
        // `url` is what messages show: never the key, which a query parameter would carry.
        let url = format!("{base}{}", probe.path);
        let (with_key, header) = match self.profile.auth.present_as(key, user) {
            Presented::Header { name, value } => (url.clone(), Some((name, value))),
            Presented::Query { name, value } => {
                let mut with_key =
                    reqwest::Url::parse(&url).map_err(|e| format!("{url} is not a URL: {e}"))?;
                with_key.query_pairs_mut().append_pair(&name, &value);
                (with_key.to_string(), None)
            }
        };
        let mut headers: Vec<(&str, &str)> = header
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        if probe.body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let answer = self
            .request_own(Call {
                method: &probe.method,
                url: &with_key,
                headers: &headers,
                body: probe.body.as_deref(),
                timeout: KEY_CHECK_TIMEOUT,
                keyless: false,
            })
            .await
            .map_err(|e| format!("{} {url}: {e}", probe.method))?;
        match answer.status {
            200..=299 => Ok((true, answer.pid)),
            401 | 403 => Ok((false, answer.pid)),
            status => Err(format!(
                "{} {url} answered {status}, neither an acceptance nor a refusal",
                probe.method
            )),
        }
    }

    /// One liveness request to the service's own process: `Ok(true)` when it answers that
    /// its API works (2xx, or 429: it answers but limits the agent), `Ok(false)` when
    /// something answers otherwise or nothing does yet.
    pub async fn live(&self, liveness: &Liveness) -> Result<bool, NoAnswer> {
        let headers: Vec<(&str, &str)> = match liveness.body {
            Some(_) => vec![("content-type", "application/json")],
            None => Vec::new(),
        };
        let answer = self
            .request_own(Call {
                method: &liveness.method,
                url: &liveness.url,
                headers: &headers,
                body: liveness.body.as_deref(),
                timeout: HEALTH_POLL_TIMEOUT,
                keyless: true,
            })
            .await;
        match answer {
            Ok(answer) => Ok((200..300).contains(&answer.status) || answer.status == 429),
            Err(NoAnswer::Unreachable(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

/// The service's health for `/v1/info`: whether its liveness probe answers (the profile's,
/// at the origin of `service_url`; `service_url` itself without a profile). Marked as the
/// agent's own request.
pub async fn health(
    http: &reqwest::Client,
    probes: &ProbeLog,
    liveness: Option<&Liveness>,
) -> ServiceHealth {
    let Some(liveness) = liveness else {
        return ServiceHealth {
            health: Health::Unknown,
            detail: "no service_url is configured for this agent".into(),
        };
    };
    let (method, url) = (&liveness.method, &liveness.url);
    let Ok(verb) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return ServiceHealth {
            health: Health::Unknown,
            detail: format!("the liveness probe's method {method} is not an HTTP method"),
        };
    };
    let probe = probes.begin(url);
    probe.keyless();
    let mut request = http.request(verb, url);
    for (name, value) in probe.headers() {
        request = request.header(name, value);
    }
    if let Some(body) = &liveness.body {
        request = request
            .header("content-type", "application/json")
            .body(body.clone());
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => ServiceHealth {
            health: Health::Ok,
            detail: format!("{method} {url} answered {}", response.status().as_u16()),
        },
        Ok(response) => ServiceHealth {
            health: Health::Failing,
            detail: format!("{method} {url} answered {}", response.status().as_u16()),
        },
        Err(e) => ServiceHealth {
            health: Health::Failing,
            detail: format!("{method} {url} failed: {}", root_cause(&e)),
        },
    }
}

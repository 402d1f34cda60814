//! Reaching the service over HTTP with the agent's one client: its base URL (the origin of
//! `service_url`), its health endpoint, and its protected endpoint as the profile names it.

use std::time::Duration;

use gatehouse_protocol::{Health, ServiceHealth};
use reqwest::RequestBuilder;

use super::listener::{Call, NoAnswer};
use super::Service;
use crate::error::root_cause;

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
        let base = self.origin().unwrap_or_else(|| {
            Err("no service_url is configured, so the service cannot be checked".into())
        })?;
        let probe = &self.profile.probes.protected;
        let auth = &self.profile.auth;
        let url = format!("{base}{}", probe.path);
        let value = format!("{}{key}", auth.scheme);
        let mut headers = vec![(auth.header.as_str(), value.as_str())];
        if probe.body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let answer = self
            .request_own(Call {
                method: &probe.method,
                url: &url,
                headers: &headers,
                body: probe.body.as_deref(),
                timeout: KEY_CHECK_TIMEOUT,
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

    /// After a restart: wait until the service's own process answers its health endpoint
    /// with 2xx, at most `within`. Another user's process on the port ends the wait at once:
    /// the service cannot have started there.
    pub async fn await_health(&self, health: &str, within: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        // The old process may still answer for a moment: give the restart time to take.
        tokio::time::sleep(Duration::from_millis(300)).await;
        loop {
            let answer = self
                .request_own(Call {
                    method: "GET",
                    url: health,
                    headers: &[],
                    body: None,
                    timeout: HEALTH_POLL_TIMEOUT,
                })
                .await;
            match answer {
                Ok(answer) if (200..300).contains(&answer.status) => return Ok(()),
                Err(NoAnswer::NotTheService(why)) => {
                    return Err(format!("the service is not back: {why}"))
                }
                Err(NoAnswer::Unchecked(why)) => {
                    return Err(format!("the restart cannot be checked: {why}"))
                }
                Ok(_) | Err(NoAnswer::Unreachable(_)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the service did not answer {health} within {} s of the restart",
                    within.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The service's health for `/v1/info`: its health endpoint's answer. Needs no profile, so
/// an agent whose profile is unknown still reports it.
pub async fn health(http: &reqwest::Client, url: Option<&str>) -> ServiceHealth {
    let Some(url) = url else {
        return ServiceHealth {
            health: Health::Unknown,
            detail: "no service_url is configured for this agent".into(),
        };
    };
    match http.get(url).send().await {
        Ok(response) if response.status().is_success() => ServiceHealth {
            health: Health::Ok,
            detail: format!("GET {url} answered {}", response.status().as_u16()),
        },
        Ok(response) => ServiceHealth {
            health: Health::Failing,
            detail: format!("GET {url} answered {}", response.status().as_u16()),
        },
        Err(e) => ServiceHealth {
            health: Health::Failing,
            detail: format!("GET {url} failed: {}", root_cause(&e)),
        },
    }
}

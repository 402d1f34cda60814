//! What can go wrong talking to an agent, worded to name the cause and the fix.

use gatehouse_protocol::{codes, ErrorBody};
use reqwest::StatusCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address is not `host:port`.
    #[error("Invalid address: {address:?} {reason}")]
    InvalidAddress { address: String, reason: String },

    /// The agent could not be reached at all.
    #[error(
        "Cannot reach the agent at {address}: {detail}. Check that gatehouse-agent is running \
         there and that the port is open from this computer."
    )]
    Unreachable { address: String, detail: String },

    /// The agent did not answer in time.
    #[error("The agent at {address} did not answer within {seconds} s. It may be overloaded, or a firewall may be dropping the connection.")]
    Timeout { address: String, seconds: u64 },

    /// The agent answered, but not with the Gatehouse agent API.
    #[error("The agent at {address} answered something that is not the Gatehouse agent API ({detail}). Is the address right?")]
    BadResponse { address: String, detail: String },

    /// The agent refused the request, with its own code.
    #[error("The agent at {address} refused: {message}")]
    Refused {
        address: String,
        code: String,
        message: String,
    },

    /// At enrollment, the agent's certificate is not the one the code names.
    #[error(
        "The agent at {address} presented a certificate whose fingerprint does not match the \
         enrollment code. Someone may be intercepting the connection, or the code belongs to \
         another agent. Nothing was enrolled."
    )]
    FingerprintMismatch { address: String },

    /// The enrollment code's token has expired.
    #[error("{message} Nothing was enrolled.")]
    EnrollmentExpired { message: String },

    /// The enrollment code was already used.
    #[error("{message} Nothing was enrolled.")]
    EnrollmentUsed { message: String },

    /// The enrollment code is not this agent's (or is malformed).
    #[error("{message} Nothing was enrolled.")]
    EnrollmentInvalid { message: String },

    /// The agent's certificate is not acceptable any more (expired, revoked, wrong name...).
    #[error("The agent at {address} cannot be trusted as \"{instance}\": {detail}")]
    Certificate {
        instance: String,
        address: String,
        detail: String,
    },

    /// The agent refused this console's client certificate.
    #[error(
        "The agent at {address} refused this console's certificate for \"{instance}\": {detail}"
    )]
    ClientCertificateRefused {
        instance: String,
        address: String,
        detail: String,
    },

    /// Building a TLS configuration failed (a damaged stored certificate or key).
    #[error("Certificate handling failed: {0}")]
    Pki(#[from] gatehouse_pki::Error),
}

impl Error {
    /// The agent's own error code, when it refused.
    pub fn agent_code(&self) -> Option<&str> {
        match self {
            Error::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Who a request is for, to word its errors.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub address: String,
    pub instance: Option<String>,
}

pub(crate) fn refused(status: StatusCode, error: ErrorBody, target: &Target) -> Error {
    match (error.code.as_str(), &target.instance) {
        (codes::TOKEN_EXPIRED, _) => Error::EnrollmentExpired {
            message: format!("The agent says: {}.", error.message),
        },
        (codes::TOKEN_USED, _) => Error::EnrollmentUsed {
            message: format!("The agent says: {}.", error.message),
        },
        (codes::TOKEN_INVALID, _) => Error::EnrollmentInvalid {
            message: format!("The agent says: {}.", error.message),
        },
        (codes::REVOKED, Some(instance)) => Error::ClientCertificateRefused {
            instance: instance.clone(),
            address: target.address.clone(),
            detail: "it has been revoked".into(),
        },
        _ => Error::Refused {
            address: target.address.clone(),
            code: error.code,
            message: format!("{} (HTTP {status})", error.message),
        },
    }
}

/// A TLS failure as an error that names the cause and the fix.
fn from_tls(tls: &rustls::Error, target: &Target) -> Error {
    let address = target.address.clone();
    use rustls::{AlertDescription as Alert, CertificateError as Cert};
    let agent_cert = |detail: &str| match &target.instance {
        Some(instance) => Error::Certificate {
            instance: instance.clone(),
            address: address.clone(),
            detail: detail.to_owned(),
        },
        None => Error::BadResponse {
            address: address.clone(),
            detail: detail.to_owned(),
        },
    };
    let client_refused = |detail: &str| Error::ClientCertificateRefused {
        instance: target.instance.clone().unwrap_or_default(),
        address: address.clone(),
        detail: detail.to_owned(),
    };
    match tls {
        rustls::Error::InvalidCertificate(Cert::ApplicationVerificationFailure)
            if target.instance.is_none() =>
        {
            Error::FingerprintMismatch { address }
        }
        rustls::Error::InvalidCertificate(Cert::ExpiredContext { time, not_after }) => {
            agent_cert(&format!(
                "its certificate expired on {} by this computer's clock, which says {}. If \
                 that is the right time (the console was probably offline past its renewal \
                 date), run `gatehouse-agent init --force` on the host, remove the instance \
                 and enroll it again; if this clock is ahead, set it right (NTP) and try \
                 again.",
                utc(not_after.as_secs()),
                utc(time.as_secs())
            ))
        }
        rustls::Error::InvalidCertificate(Cert::Expired) => agent_cert(
            "its certificate has expired (the console was probably offline past its renewal \
             date, or this computer's clock is ahead). Run `gatehouse-agent init --force` on \
             the host, remove the instance and enroll it again.",
        ),
        rustls::Error::InvalidCertificate(Cert::NotValidYetContext { time, not_before }) => {
            agent_cert(&format!(
                "its certificate is valid only from {}, and this computer's clock says {}: \
                 this clock (or the host's) is behind. Set it right (NTP) and try again.",
                utc(not_before.as_secs()),
                utc(time.as_secs())
            ))
        }
        rustls::Error::InvalidCertificate(Cert::NotValidYet) => agent_cert(
            "its certificate is not valid yet: this computer's clock (or the host's) is \
             behind. Set it right (NTP) and try again.",
        ),
        rustls::Error::InvalidCertificate(Cert::Revoked) => {
            agent_cert("its certificate has been revoked.")
        }
        rustls::Error::InvalidCertificate(
            Cert::NotValidForName | Cert::NotValidForNameContext { .. },
        ) => agent_cert(
            "its certificate names another instance: the address may point at a different \
             agent.",
        ),
        rustls::Error::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => agent_cert(
            "its certificate was not issued by this console's fleet CA (was it enrolled by \
             another console?).",
        ),
        rustls::Error::InvalidCertificate(other) => {
            agent_cert(&format!("its certificate is not acceptable ({other})."))
        }
        rustls::Error::AlertReceived(Alert::CertificateRevoked) => {
            client_refused("it has been revoked")
        }
        rustls::Error::AlertReceived(Alert::CertificateExpired) => {
            client_refused("it has expired; it is renewed automatically, try again in a moment")
        }
        rustls::Error::AlertReceived(Alert::UnknownCA | Alert::DecryptError) => client_refused(
            "the agent trusts a different fleet CA (it was enrolled by another console, or \
             re-initialised)",
        ),
        rustls::Error::AlertReceived(
            Alert::BadCertificate | Alert::CertificateRequired | Alert::CertificateUnknown,
        ) => client_refused("the agent does not accept it for this instance"),
        other => Error::BadResponse {
            address,
            detail: format!("TLS failed: {other}"),
        },
    }
}

/// Unix seconds as a UTC time an operator reads, e.g. `2026-12-07 03:12:09 UTC`.
fn utc(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("{secs} (Unix time)"))
}

/// Turn a transport failure into an error that names the cause and the fix.
pub(crate) fn classify(error: &reqwest::Error, target: &Target, limits: (u64, u64)) -> Error {
    let address = target.address.clone();

    if let Some(tls) = find_rustls_error(error) {
        return from_tls(tls, target);
    }
    let cause = root_cause(error);
    if target.instance.is_some()
        && (cause.contains("connection was not ready")
            || cause.contains("connection closed before"))
    {
        // Under TLS 1.3 a refused client certificate shows up as the connection closing right
        // after the handshake, before the request could be sent.
        return Error::ClientCertificateRefused {
            instance: target.instance.clone().unwrap_or_default(),
            address,
            detail: "the agent closed the connection right after the TLS handshake, which it \
                     does when it refuses the certificate (revoked, expired, or from another \
                     fleet)"
                .into(),
        };
    }
    if error.is_timeout() {
        // A connect timeout covers the TCP connect and the TLS handshake.
        let (connect, request) = limits;
        return Error::Timeout {
            address,
            seconds: if error.is_connect() { connect } else { request },
        };
    }
    if error.is_connect() {
        return Error::Unreachable {
            address,
            detail: cause,
        };
    }
    Error::BadResponse {
        address,
        detail: cause,
    }
}

/// rustls errors arrive wrapped in (possibly nested) io::Errors, whose `source()` skips the
/// wrapped error itself; descend through `get_ref()` instead.
fn find_rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::UnixTime;
    use rustls::CertificateError as Cert;
    use std::time::Duration;

    fn enrolled() -> Target {
        Target {
            address: "10.0.0.5:8443".into(),
            instance: Some("sekha-prod".into()),
        }
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    /// A console whose clock is a day behind meets a certificate that starts tomorrow: the
    /// operator reads both dates and that the clock is the cause, never rustls's debug text.
    #[test]
    fn a_clock_behind_is_named_with_both_dates() {
        let tls = rustls::Error::InvalidCertificate(Cert::NotValidYetContext {
            time: at(1_796_515_200),       // 2026-12-06 00:00:00 UTC
            not_before: at(1_796_601_600), // 2026-12-07 00:00:00 UTC
        });
        let text = from_tls(&tls, &enrolled()).to_string();
        assert!(
            !text.contains("Context") && !text.contains('{'),
            "no Rust debug text reaches the operator: {text}"
        );
        assert!(
            text.contains("2026-12-07 00:00:00 UTC") && text.contains("2026-12-06 00:00:00 UTC"),
            "the certificate's start and this clock's time are both given: {text}"
        );
        assert!(text.contains("clock"), "the cause is named: {text}");
    }

    /// A clock ahead looks like an expired certificate: the message gives both readings and
    /// both ways out, so a wrong clock is not mended by re-enrolling.
    #[test]
    fn an_expired_certificate_says_what_the_clock_says() {
        let tls = rustls::Error::InvalidCertificate(Cert::ExpiredContext {
            time: at(1_828_137_600),      // 2027-12-07 00:00:00 UTC
            not_after: at(1_804_377_600), // 2027-03-07 00:00:00 UTC
        });
        let text = from_tls(&tls, &enrolled()).to_string();
        assert!(
            text.contains("2027-03-07 00:00:00 UTC") && text.contains("2027-12-07 00:00:00 UTC"),
            "both dates are given: {text}"
        );
        assert!(
            text.contains("init --force") && text.contains("clock is ahead"),
            "both remedies are named: {text}"
        );
    }

    /// Whatever other certificate error rustls adds later reads as its text, not as `Debug`.
    #[test]
    fn other_certificate_errors_use_their_display() {
        let tls = rustls::Error::InvalidCertificate(Cert::UnhandledCriticalExtension);
        let text = from_tls(&tls, &enrolled()).to_string();
        assert!(text.contains("its certificate is not acceptable"), "{text}");
    }
}

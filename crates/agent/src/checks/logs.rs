//! The access log: one is configured (the proxy's or the service's access log, or a service
//! log whose format names each request's client, as a pattern with an `ip` capture does: each
//! carries the client address of a failed sign-in) and was written within a day.

use std::time::Duration;

use gatehouse_events::Source;
use gatehouse_protocol::{CheckId, CheckResult};

use super::{fail, human, pass, unknown, Context};

/// An access log silent for longer than this is not "recent".
const ACCESS_LOG_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// `now`: Unix seconds.
pub(super) fn access_log(cx: &Context<'_>, now: i64) -> CheckResult {
    let check = CheckId::AccessLogRecent;
    let logs = match cx.logs {
        Ok(logs) => logs,
        Err(e) => return unknown(check, e.to_string(), vec![]),
    };
    let access: Vec<_> = logs
        .iter()
        .filter(|l| {
            matches!(l.source, Source::Proxy | Source::Access)
                || (l.source == Source::Service && l.format.names_clients())
        })
        .collect();
    if access.is_empty() {
        return fail(
            check,
            "no access log is configured: failed sign-ins have no client address",
            vec![],
        );
    }
    let mut evidence = Vec::new();
    let mut recent = 0;
    for log in access {
        let modified = match (log.path(), log.journal_unit()) {
            (Some(path), _) => crate::fsutil::open_regular(path).and_then(|regular| {
                regular
                    .facts
                    .modified
                    .ok_or_else(|| std::io::Error::other("no modification time"))
            }),
            (None, Some(unit)) => crate::journal::last_written(unit)
                .and_then(|t| t.ok_or_else(|| std::io::Error::other("nothing in the journal yet"))),
            (None, None) => Err(std::io::Error::other("no file and no journal")),
        };
        match modified {
            Ok(modified) => {
                let age = crate::clock::age(now, modified);
                if age <= ACCESS_LOG_MAX_AGE {
                    recent += 1;
                }
                evidence.push(format!(
                    "{} ({}): last written {} ago",
                    log.name(),
                    log.source,
                    human(age)
                ));
            }
            Err(e) => evidence.push(format!("{} ({}): {e}", log.name(), log.source)),
        }
    }
    if recent > 0 {
        pass(
            check,
            "access logging is on and written within a day",
            evidence,
        )
    } else {
        fail(
            check,
            "no access log has been written in the last day",
            evidence,
        )
    }
}

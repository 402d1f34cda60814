//! The console's own audit log: every operator action, append-only, each row chained to the
//! one before by an HMAC-SHA256 whose key lives only in the keychain. The newest row's id and
//! MAC are also kept in the keychain, so removing rows from the end is noticed too.
//!
//! `verify` recomputes the chain and reports the first broken link: a row edited, a row
//! removed, rows added without the key, or the log cut short.

use ring::hmac;
use serde::Serialize;
use ts_rs::TS;

use ring::rand::{SecureRandom, SystemRandom};

use crate::context::Ctx;
use crate::rotation::operator;
use crate::{Error, Result, Sensitive};

/// Keychain entry of the HMAC key that chains the audit log.
pub(crate) const AUDIT_KEY: &str = "audit-hmac.key";

/// Keychain entry holding `id:mac` of the newest row.
const AUDIT_HEAD: &str = "audit-head";
/// The MAC before the first row.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub use gatehouse_store::audit::AuditEntry;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AuditVerdict {
    pub intact: bool,
    #[ts(type = "number")]
    pub rows: u64,
    /// The first row whose link is broken (or the id where one is missing).
    #[ts(type = "number | null")]
    pub first_broken: Option<i64>,
    /// What is wrong there, for a person.
    pub problem: Option<String>,
}

/// The console's own audit log: list it, verify the chain.
#[derive(Debug, Clone)]
pub struct AuditLog {
    ctx: Ctx,
}

/// Append an operator action to the audit log.
pub(crate) fn append(ctx: &Ctx, action: &str, target: &str, detail: &str) -> Result<()> {
    let key = audit_key(ctx)?;
    let at_us = ctx.micros();
    let actor = operator();
    let store = ctx.db();
    let audit = store.audit();
    let (prev_id, prev_mac) = audit.last()?.unwrap_or((0, GENESIS.to_owned()));
    let id = prev_id + 1;
    let mac = link(&key, &prev_mac, id, at_us, &actor, action, target, detail);
    audit.append(&AuditEntry {
        id,
        at_us,
        actor,
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_owned(),
        mac: mac.clone(),
    })?;
    // Still under the store's lock: two actions at once must not leave the keychain naming a
    // row older than the newest.
    ctx.vault.store(
        AUDIT_HEAD,
        &Sensitive::new(format!("{id}:{mac}").into_bytes()),
    )
}

/// The audit log's HMAC key (256 random bits), created in the keychain on first need.
pub(crate) fn ensure_audit_key(ctx: &Ctx) -> Result<()> {
    match ctx.vault.load(AUDIT_KEY) {
        Ok(_) => Ok(()),
        Err(Error::SecretNotFound { .. }) => {
            let mut key = Sensitive::new(vec![0u8; 32]);
            SystemRandom::new()
                .fill(&mut key.expose_mut()[..])
                .map_err(|_| Error::Keychain {
                    detail: "the system random number generator failed".into(),
                })?;
            ctx.vault.store(AUDIT_KEY, &key)
        }
        Err(e) => Err(e),
    }
}

fn audit_key(ctx: &Ctx) -> Result<hmac::Key> {
    let mut cached = ctx
        .audit_key
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(key) = cached.clone() {
        return Ok(key);
    }
    ensure_audit_key(ctx)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, ctx.vault.load(AUDIT_KEY)?.expose());
    *cached = Some(key.clone());
    Ok(key)
}

impl AuditLog {
    pub(crate) fn new(ctx: Ctx) -> Self {
        AuditLog { ctx }
    }

    /// The audit log, newest first.
    pub fn entries(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        Ok(self.ctx.db().audit().newest(limit)?)
    }

    /// Recompute the chain from the first row and report the first broken link.
    pub fn verify(&self) -> Result<AuditVerdict> {
        let key = audit_key(&self.ctx)?;
        // The head is read under the store's lock, so no append lands in between.
        let store = self.ctx.db();
        let head = match self.ctx.vault.load(AUDIT_HEAD) {
            Ok(head) => Some(String::from_utf8_lossy(head.expose()).into_owned()),
            Err(Error::SecretNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut prev_mac = GENESIS.to_owned();
        let mut expected_id = 1i64;
        let mut count = 0u64;
        let broken = |id: i64, count: u64, problem: String| AuditVerdict {
            intact: false,
            rows: count,
            first_broken: Some(id),
            problem: Some(problem),
        };
        let mut verdict = None;
        store.audit().each(|row| {
            count += 1;
            if row.id != expected_id {
                verdict = Some(broken(
                    expected_id,
                    count,
                    format!(
                        "row {expected_id} is missing (the next row is {}): a row was removed",
                        row.id
                    ),
                ));
                return false;
            }
            let want = link(
                &key,
                &prev_mac,
                row.id,
                row.at_us,
                &row.actor,
                &row.action,
                &row.target,
                &row.detail,
            );
            if want != row.mac {
                verdict = Some(broken(
                    row.id,
                    count,
                    format!(
                        "row {} does not match its MAC: it was edited, or written without the key",
                        row.id
                    ),
                ));
                return false;
            }
            prev_mac = row.mac;
            expected_id += 1;
            true
        })?;
        if let Some(verdict) = verdict {
            return Ok(verdict);
        }
        let last = expected_id - 1;
        match head.as_deref().and_then(|h| h.split_once(':')) {
            Some((id, mac)) if id == last.to_string() && mac == prev_mac => {}
            Some((id, _)) if id.parse::<i64>().is_ok_and(|id| id > last) => {
                return Ok(broken(
                    last + 1,
                    count,
                    format!("the log ends at row {last} but row {id} was written: rows were removed from the end"),
                ));
            }
            None if last == 0 => {}
            _ => {
                return Ok(broken(
                    last.max(1),
                    count,
                    "the newest row is not the one the keychain recorded".into(),
                ))
            }
        }
        Ok(AuditVerdict {
            intact: true,
            rows: count,
            first_broken: None,
            problem: None,
        })
    }
}

/// The MAC of one row: the previous row's MAC and every field, each length-prefixed so no two
/// different rows encode alike.
#[allow(clippy::too_many_arguments, reason = "every column is part of the MAC")]
fn link(
    key: &hmac::Key,
    prev_mac: &str,
    id: i64,
    at_us: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> String {
    let mut ctx = hmac::Context::with_key(key);
    for field in [
        prev_mac,
        &id.to_string(),
        &at_us.to_string(),
        actor,
        action,
        target,
        detail,
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    ctx.sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_cannot_be_shifted_between_columns() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        let a = link(&key, GENESIS, 1, 5, "alice", "block", "1.2.3.4", "x");
        let b = link(&key, GENESIS, 1, 5, "alic", "eblock", "1.2.3.4", "x");
        assert_ne!(
            a, b,
            "moving bytes from one field to the next changes the MAC"
        );
        let c = link(
            &hmac::Key::new(hmac::HMAC_SHA256, &[8; 32]),
            GENESIS,
            1,
            5,
            "alice",
            "block",
            "1.2.3.4",
            "x",
        );
        assert_ne!(a, c, "another key makes another MAC");
    }
}

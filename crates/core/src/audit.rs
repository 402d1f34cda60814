//! The console's own audit log: every operator action, append-only, each row chained to the
//! one before by an HMAC-SHA256 whose key lives only in the keychain.
//!
//! Three anchors keep the end of the log honest:
//!
//! - the keychain holds the newest row's id, MAC and key generation (the *head*); an append
//!   compares it with the database first, and a log cut back or replaced gets a signed
//!   *chain break* row saying what the keychain remembered, rather than the next row quietly
//!   chaining from whatever is left;
//! - every agent is sent the head as it syncs ([`anchor`]) and answers with the highest row
//!   it was sent before, so a console whose log and keychain were both rewritten is told so
//!   by any agent, and records that as a chain break too;
//! - a missing key is never recreated while rows exist: the log cannot be re-signed.
//!
//! Keys have generations. [`AuditLog::rotate_key`] starts a new one with a row signed by the
//! new key; rows made with a key the keychain no longer holds read as *unverifiable*, not as
//! tampered. Operator actions write their request to the log before they act and are refused
//! while it cannot be written ([`Error::AuditUnavailable`]).
//!
//! `verify` recomputes the chain and reports the first broken link: a row edited, a row
//! removed, rows added without the key, the log cut short, or a break recorded earlier.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use gatehouse_agent_client::Agent;
use gatehouse_protocol as protocol;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use ts_rs::TS;

use crate::context::Ctx;
use crate::rotation::operator;
use crate::{Error, Result, Sensitive};

/// Keychain entry of the first generation's HMAC key; later ones add `.<generation>`.
pub(crate) const AUDIT_KEY: &str = "audit-hmac.key";
/// Keychain entry holding `id:mac:generation` of the newest row.
const AUDIT_HEAD: &str = "audit-head";
/// The MAC before the first row.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The action of a row recording that the log was found cut back or replaced.
pub const CHAIN_BREAK: &str = "audit_chain_break";
/// The action of the first row signed by a new key generation.
pub const KEY_ROTATED: &str = "audit_key_rotated";

pub use gatehouse_store::audit::AuditEntry;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AuditVerdict {
    /// Every row checks out, nothing is missing from the end, and no break was recorded.
    pub intact: bool,
    #[ts(type = "number")]
    pub rows: u64,
    /// The first row whose link is broken (or the id where one is missing, or the first
    /// recorded break).
    #[ts(type = "number | null")]
    pub first_broken: Option<i64>,
    /// What is wrong there, for a person.
    pub problem: Option<String>,
    /// Rows made with a key generation this keychain no longer holds: they cannot be checked.
    #[ts(type = "number")]
    pub unverifiable: u64,
    /// The key generation new rows are signed with.
    pub key_generation: u32,
}

/// The audit log's state kept in memory: keys read from the keychain, an outcome that could
/// not be written, and the head each agent was last sent.
#[derive(Debug, Default)]
pub(crate) struct AuditState {
    keys: Mutex<HashMap<u32, hmac::Key>>,
    fault: Mutex<Option<String>>,
    anchored: Mutex<HashMap<String, (i64, String)>>,
}

impl AuditState {
    /// Why the last outcome could not be written, if it could not.
    pub(crate) fn fault(&self) -> Option<String> {
        self.fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_fault(&self, fault: Option<String>) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }
}

/// The console's own audit log: list it, verify the chain, rotate its key.
#[derive(Debug, Clone)]
pub struct AuditLog {
    ctx: Ctx,
}

/// The newest row as the keychain remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    id: i64,
    mac: String,
    generation: u32,
}

impl Head {
    fn parse(text: &str) -> Option<Head> {
        let mut parts = text.split(':');
        let id = parts.next()?.parse().ok()?;
        let mac = parts.next()?.to_owned();
        let generation = match parts.next() {
            Some(g) => g.parse().ok()?,
            None => 1,
        };
        Some(Head {
            id,
            mac,
            generation,
        })
    }

    fn of(row: &AuditEntry) -> Head {
        Head {
            id: row.id,
            mac: row.mac.clone(),
            generation: row.key_gen,
        }
    }
}

fn unavailable(detail: impl Into<String>) -> Error {
    Error::AuditUnavailable {
        detail: detail.into(),
    }
}

fn key_name(generation: u32) -> String {
    match generation {
        1 => AUDIT_KEY.to_owned(),
        g => format!("{AUDIT_KEY}.{g}"),
    }
}

/// The key of a generation, from the cache or the keychain; `None` if the keychain does not
/// hold it.
fn key(ctx: &Ctx, generation: u32) -> Result<Option<hmac::Key>> {
    let mut keys = ctx
        .audit
        .keys
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(key) = keys.get(&generation) {
        return Ok(Some(key.clone()));
    }
    match ctx.vault.load(&key_name(generation)) {
        Ok(bytes) => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, bytes.expose());
            keys.insert(generation, key.clone());
            Ok(Some(key))
        }
        Err(Error::SecretNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A new random key for `generation`, stored in the keychain.
fn create_key(ctx: &Ctx, generation: u32) -> Result<hmac::Key> {
    let mut bytes = Sensitive::new(vec![0u8; 32]);
    SystemRandom::new()
        .fill(&mut bytes.expose_mut()[..])
        .map_err(|_| Error::Keychain {
            detail: "the system random number generator failed".into(),
        })?;
    ctx.vault.store(&key_name(generation), &bytes)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, bytes.expose());
    ctx.audit
        .keys
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(generation, key.clone());
    Ok(key)
}

fn load_head(ctx: &Ctx) -> Result<Option<Head>> {
    match ctx.vault.load(AUDIT_HEAD) {
        Ok(head) => {
            let text = String::from_utf8_lossy(head.expose()).into_owned();
            Head::parse(&text).map(Some).ok_or_else(|| {
                unavailable(format!("the keychain's audit head {text:?} is not id:mac"))
            })
        }
        Err(Error::SecretNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The action of a row written by the console's own detection, not by a person.
pub(crate) const ALERT_RAISED: &str = "alert_raised";

/// Who a row is by: the operator, or the console itself for what its detection raised.
fn actor_of(action: &str) -> String {
    if action == ALERT_RAISED {
        "Gatehouse detection".to_owned()
    } else {
        operator()
    }
}

/// Append one row. Under the store's lock throughout, so two appends never interleave and the
/// keychain's head never names an older row than the newest.
fn append_locked(
    ctx: &Ctx,
    store: &gatehouse_store::Db,
    action: &str,
    target: &str,
    detail: &str,
    new_generation: Option<u32>,
) -> Result<()> {
    let audit = store.audit();
    let last = audit.last()?;
    let head = load_head(ctx)?;
    let generation = head
        .as_ref()
        .map(|h| h.generation)
        .or(last.as_ref().map(|l| l.key_gen))
        .unwrap_or(1);
    let rows_exist = last.is_some() || head.is_some();
    let current = match key(ctx, generation)? {
        Some(key) => key,
        None if !rows_exist => create_key(ctx, generation)?,
        None => {
            return Err(unavailable(format!(
                "the audit key (generation {generation}) is missing from the keychain while the \
                 log has rows; a new key would let the log be re-signed, so none is made. \
                 Restore the keychain entry \"{}\", or start a new data directory",
                key_name(generation)
            )))
        }
    };
    let found = last.as_ref().map(Head::of);
    let mut last = last;
    let mut write = |key: &hmac::Key, generation: u32, action: &str, target: &str, detail: &str| {
        let (prev_id, prev_mac) = last
            .as_ref()
            .map_or((0, GENESIS.to_owned()), |l| (l.id, l.mac.clone()));
        let id = prev_id + 1;
        let row = Row {
            prev_mac: &prev_mac,
            id,
            at_us: ctx.micros(),
            actor: &actor_of(action),
            action,
            target,
            detail,
            generation,
        };
        let entry = AuditEntry {
            id,
            at_us: row.at_us,
            actor: row.actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: detail.to_owned(),
            mac: row.mac(key),
            key_gen: generation,
        };
        audit.append(&entry)?;
        ctx.vault.store(
            AUDIT_HEAD,
            &Sensitive::new(format!("{}:{}:{generation}", entry.id, entry.mac).into_bytes()),
        )?;
        last = Some(entry);
        Result::Ok(())
    };
    if head != found && (head.is_some() || found.is_some()) {
        let detail = match (&head, &found) {
            (Some(h), Some(f)) if h.id > f.id => format!(
                "the keychain recorded row {} (MAC {}…) but the log ends at row {}: rows were \
                 removed from its end",
                h.id,
                &h.mac[..h.mac.len().min(12)],
                f.id
            ),
            (Some(h), Some(f)) => format!(
                "the keychain recorded row {} (MAC {}…) but the log's newest is row {} (MAC \
                 {}…): rows were replaced",
                h.id,
                &h.mac[..h.mac.len().min(12)],
                f.id,
                &f.mac[..f.mac.len().min(12)]
            ),
            (Some(h), None) => format!(
                "the keychain recorded row {} but the log is empty: every row was removed",
                h.id
            ),
            (None, _) => "the log has rows but the keychain recorded none".to_owned(),
        };
        tracing::error!(%detail, "the audit log does not end where the keychain says");
        write(&current, generation, CHAIN_BREAK, "keychain head", &detail)?;
    }
    match new_generation {
        Some(next) => {
            let key = create_key(ctx, next)?;
            write(&key, next, action, target, detail)
        }
        None => write(&current, generation, action, target, detail),
    }
}

/// A failed append as the operator should read it: a keychain that is locked or unreachable
/// keeps its own error (its fix is to unlock it); anything else is the audit log's.
fn audit_error(error: Error) -> Error {
    match error {
        Error::AuditUnavailable { .. }
        | Error::KeychainLocked { .. }
        | Error::KeychainUnavailable { .. } => error,
        other => unavailable(other.to_string()),
    }
}

/// Append an operator action to the audit log, or say why it cannot be written.
pub(crate) fn append(ctx: &Ctx, action: &str, target: &str, detail: &str) -> Result<()> {
    let store = ctx.db();
    let result = append_locked(ctx, &store, action, target, detail, None).map_err(audit_error);
    if result.is_ok() {
        ctx.audit.set_fault(None);
    }
    result
}

/// Send the log's newest row to an agent, and compare what it held before with the log: a
/// row it holds that the log no longer has (cut back, or replaced) is recorded as a signed
/// chain break, once per anchor. Agents without the route are skipped.
pub(crate) async fn anchor(ctx: &Ctx, instance: &str, agent: &Agent) -> Result<()> {
    let Some(last) = ctx.db().audit().last()? else {
        return Ok(());
    };
    let sent = (last.id, last.mac.clone());
    let already = ctx
        .audit
        .anchored
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(instance)
        == Some(&sent);
    if already {
        return Ok(());
    }
    let reply = match agent
        .audit_anchor(&protocol::AuditAnchor {
            id: last.id,
            mac: last.mac.clone(),
        })
        .await
    {
        Ok(reply) => reply,
        Err(e) if e.agent_code() == Some(protocol::codes::NOT_FOUND) => {
            tracing::debug!(%instance, "this agent keeps no audit anchor (an older agent)");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(held) = reply.held {
        let mine = ctx.db().audit().get(held.id)?;
        let problem = match &mine {
            None => Some(format!(
                "{instance}'s agent holds row {} of this log (MAC {}…), which the log no longer \
                 has: rows were removed from its end",
                held.id,
                &held.mac[..held.mac.len().min(12)]
            )),
            Some(row) if row.mac != held.mac => Some(format!(
                "{instance}'s agent holds row {} with MAC {}…, but the log's row {} has MAC {}…: \
                 rows were replaced",
                held.id,
                &held.mac[..held.mac.len().min(12)],
                held.id,
                &row.mac[..row.mac.len().min(12)]
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            let target = format!("anchor {instance} {}:{}", held.id, held.mac);
            let store = ctx.db();
            // Once per anchor: the agent keeps answering with it until the log passes it.
            if !store.audit().has(CHAIN_BREAK, &target)? {
                tracing::error!(%problem, "an agent remembers audit rows this log does not have");
                append_locked(ctx, &store, CHAIN_BREAK, &target, &problem, None)?;
            }
        }
    }
    ctx.audit
        .anchored
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(instance.to_owned(), sent);
    Ok(())
}

impl AuditLog {
    pub(crate) fn new(ctx: Ctx) -> Self {
        AuditLog { ctx }
    }

    /// The audit log, newest first.
    pub fn entries(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        Ok(self.ctx.db().audit().newest(limit)?)
    }

    /// Start a new key generation: a new random key in the keychain and a row signed by it
    /// saying where the old generation ended. The old key stays in the keychain, so its rows
    /// stay verifiable; without it they read as unverifiable, not as tampered.
    pub fn rotate_key(&self) -> Result<u32> {
        let store = self.ctx.db();
        let last = store.audit().last()?;
        let generation = match load_head(&self.ctx)? {
            Some(head) => head.generation,
            None => last.as_ref().map_or(1, |l| l.key_gen),
        };
        let next = generation + 1;
        let detail = format!(
            "generation {generation} ended at row {}; later rows are signed by generation {next}",
            last.as_ref().map_or(0, |l| l.id)
        );
        append_locked(
            &self.ctx,
            &store,
            KEY_ROTATED,
            "audit log",
            &detail,
            Some(next),
        )
        .map_err(audit_error)?;
        Ok(next)
    }

    /// Recompute the chain from the first row and report the first broken link.
    pub fn verify(&self) -> Result<AuditVerdict> {
        // The head is read under the store's lock, so no append lands in between.
        let store = self.ctx.db();
        let head = load_head(&self.ctx)?;
        let current = head.as_ref().map_or(1, |h| h.generation);
        let mut prev_mac = GENESIS.to_owned();
        let mut expected_id = 1i64;
        let mut generation = 1u32;
        let mut count = 0u64;
        let mut unverifiable = 0u64;
        let mut first_break: Option<(i64, String)> = None;
        let mut failure: Option<(i64, String)> = None;
        let mut last_row: Option<AuditEntry> = None;
        let mut keys: HashMap<u32, Option<hmac::Key>> = HashMap::new();
        let mut lookup_error = None;
        store.audit().each(|row| {
            count += 1;
            if row.id != expected_id {
                failure = Some((
                    expected_id,
                    format!(
                        "row {expected_id} is missing (the next row is {}): a row was removed",
                        row.id
                    ),
                ));
                return false;
            }
            let claimed = if row.action == KEY_ROTATED {
                generation + 1
            } else {
                generation
            };
            if row.key_gen != claimed || row.key_gen > current.max(1) {
                failure = Some((
                    row.id,
                    format!(
                        "row {} claims key generation {}, but generation {claimed} signs it: it \
                         was edited",
                        row.id, row.key_gen
                    ),
                ));
                return false;
            }
            generation = claimed;
            let key = match keys.get(&generation) {
                Some(key) => key.clone(),
                None => match key(&self.ctx, generation) {
                    Ok(key) => {
                        keys.insert(generation, key.clone());
                        key
                    }
                    Err(e) => {
                        lookup_error = Some(e);
                        return false;
                    }
                },
            };
            match key {
                Some(key) => {
                    let want = Row::of(&prev_mac, &row).mac(&key);
                    if want != row.mac {
                        failure = Some((
                            row.id,
                            format!(
                                "row {} does not match its MAC: it was edited, or written \
                                 without the key",
                                row.id
                            ),
                        ));
                        return false;
                    }
                }
                None if generation < current => unverifiable += 1,
                None => {
                    failure = Some((
                        row.id,
                        format!(
                            "row {} is signed by the current key generation {generation}, which \
                             the keychain does not hold",
                            row.id
                        ),
                    ));
                    return false;
                }
            }
            if row.action == CHAIN_BREAK && first_break.is_none() {
                first_break = Some((
                    row.id,
                    format!("row {} records a break in the log: {}", row.id, row.detail),
                ));
            }
            prev_mac = row.mac.clone();
            expected_id += 1;
            last_row = Some(row);
            true
        })?;
        if let Some(e) = lookup_error {
            return Err(e);
        }
        let verdict = |first: Option<(i64, String)>| AuditVerdict {
            intact: first.is_none(),
            rows: count,
            first_broken: first.as_ref().map(|(id, _)| *id),
            problem: first.map(|(_, p)| p),
            unverifiable,
            key_generation: current,
        };
        if failure.is_some() {
            return Ok(verdict(failure));
        }
        let last = expected_id - 1;
        let found = last_row.as_ref().map(Head::of);
        let end = match (&head, &found) {
            (Some(h), Some(f)) if h == f => None,
            (None, None) => None,
            (Some(h), _) if h.id > last => Some((
                last + 1,
                format!(
                    "the log ends at row {last} but row {} was written: rows were removed from \
                     the end",
                    h.id
                ),
            )),
            _ => Some((
                last.max(1),
                "the newest row is not the one the keychain recorded".into(),
            )),
        };
        Ok(verdict(end.or(first_break)))
    }
}

/// One row's fields as its MAC covers them.
struct Row<'a> {
    prev_mac: &'a str,
    id: i64,
    at_us: i64,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    detail: &'a str,
    generation: u32,
}

impl<'a> Row<'a> {
    fn of(prev_mac: &'a str, entry: &'a AuditEntry) -> Self {
        Row {
            prev_mac,
            id: entry.id,
            at_us: entry.at_us,
            actor: &entry.actor,
            action: &entry.action,
            target: &entry.target,
            detail: &entry.detail,
            generation: entry.key_gen,
        }
    }

    /// The previous row's MAC and every field, each length-prefixed so no two different rows
    /// encode alike. The generation is covered from the second on (the first generation's
    /// rows were signed before generations existed).
    fn mac(&self, key: &hmac::Key) -> String {
        let mut ctx = hmac::Context::with_key(key);
        let id = self.id.to_string();
        let at = self.at_us.to_string();
        let generation = self.generation.to_string();
        let mut fields = vec![
            self.prev_mac,
            &id,
            &at,
            self.actor,
            self.action,
            self.target,
            self.detail,
        ];
        if self.generation > 1 {
            fields.push(&generation);
        }
        for field in fields {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        ctx.sign()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(actor: &'a str, action: &'a str, generation: u32) -> Row<'a> {
        Row {
            prev_mac: GENESIS,
            id: 1,
            at_us: 5,
            actor,
            action,
            target: "1.2.3.4",
            detail: "x",
            generation,
        }
    }

    #[test]
    fn fields_cannot_be_shifted_between_columns() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        let a = row("alice", "block", 1).mac(&key);
        let b = row("alic", "eblock", 1).mac(&key);
        assert_ne!(
            a, b,
            "moving bytes from one field to the next changes the MAC"
        );
        let c = row("alice", "block", 1).mac(&hmac::Key::new(hmac::HMAC_SHA256, &[8; 32]));
        assert_ne!(a, c, "another key makes another MAC");
        assert_ne!(
            row("alice", "block", 2).mac(&key),
            row("alice", "block", 3).mac(&key),
            "the generation is covered, so a row cannot claim another"
        );
    }

    #[test]
    fn heads_written_before_generations_read_as_the_first() {
        assert_eq!(
            Head::parse("7:abc"),
            Some(Head {
                id: 7,
                mac: "abc".into(),
                generation: 1
            }),
            "id:mac is generation 1"
        );
        assert_eq!(
            Head::parse("7:abc:3").map(|h| h.generation),
            Some(3),
            "id:mac:generation"
        );
        assert_eq!(Head::parse("x:abc"), None, "a damaged head is not a head");
    }
}

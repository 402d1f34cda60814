//! Failed sign-ins a rotation explains: clients still presenting the key a recent rotation
//! replaced are not guessing, and become one notice per rotation instead of brute-force
//! alerts.
//!
//! Services such as Jelmore log the first characters of a refused key. A rotation made by
//! this console records the first characters of the key it made, so a later rotation of the
//! same key knows those of the key it replaced: failures presenting them are certain. A
//! rotation of a key this console never made knows only that key's fingerprint (a hash),
//! which a logged prefix cannot be checked against: then an address that, since the
//! rotation, keeps retrying one single key other than the new one is taken for a client with
//! the old key, and the notice says the match is by time and behaviour only.

use std::collections::{BTreeSet, HashMap, HashSet};

use gatehouse_protocol::WireEvent;
use gatehouse_store::rotations::Committed;

/// How long after a rotation failures with the replaced key are put down to it.
pub(crate) const AFTER_ROTATION_US: i64 = 30 * 86_400 * 1_000_000;

/// The characters of a key that services log (Jelmore: the first 10).
pub(crate) const PREFIX_LEN: usize = 10;

/// Fewer characters than this in common say nothing about which key it was.
const MIN_AGREEING: usize = 6;

/// Lines of the same request in other logs (proxy, access log) are this close in time.
const SAME_REQUEST_US: i64 = 2_000_000;

/// Whether a logged prefix and a recorded one are the same key's.
fn agree(logged: &str, recorded: &str) -> bool {
    let n = logged.len().min(recorded.len());
    n >= MIN_AGREEING && logged.as_bytes()[..n] == recorded.as_bytes()[..n]
}

/// Failures put down to one rotation's replaced key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaleUse {
    /// Index into the rotations given.
    pub rotation: usize,
    /// Failed sign-ins that presented the key (not counting other logs' lines of them).
    pub count: u64,
    pub first_us: i64,
    pub last_us: i64,
    pub addresses: BTreeSet<String>,
    /// The prefixes presented.
    pub prefixes: BTreeSet<String>,
    /// Matched by the recorded prefix; otherwise by time and a single key retried.
    pub confirmed: bool,
}

/// Which of `failures` (time order) a rotation explains, and the uses per rotation.
/// `rotations` are the instance's committed rotations, newest first.
pub(crate) fn explain(
    failures: &[&WireEvent],
    rotations: &[Committed],
) -> (Vec<bool>, Vec<StaleUse>) {
    let mut explained = vec![false; failures.len()];
    if rotations.is_empty() {
        return (explained, Vec::new());
    }
    // For each failure that presented a key: the rotation it matches and whether for certain.
    let mut matched: Vec<Option<(usize, bool)>> = vec![None; failures.len()];
    // Per address: the prefixes presented that no recorded prefix explains.
    let mut unconfirmed: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    // Addresses that presented a key no rotation can explain (a new key, or outside every
    // rotation's reach).
    let mut other_keys: HashSet<&str> = HashSet::new();
    for (i, e) in failures.iter().enumerate() {
        let (Some(ip), Some(prefix)) = (e.ip.as_deref(), e.key_prefix.as_deref()) else {
            continue;
        };
        let recent = |r: &&Committed| {
            let at = r.started_at.saturating_mul(1_000_000);
            e.time_us >= at && e.time_us - at <= AFTER_ROTATION_US
        };
        let is_new = |r: &Committed| r.new_prefix.as_deref().is_some_and(|p| agree(prefix, p));
        let certain = rotations.iter().enumerate().find(|(_, r)| {
            recent(r) && !is_new(r) && r.old_prefix.as_deref().is_some_and(|p| agree(prefix, p))
        });
        if let Some((at, _)) = certain {
            matched[i] = Some((at, true));
            continue;
        }
        // A new key presented, or a key some rotation recorded, is not an unknown old key.
        if rotations.iter().any(is_new) {
            other_keys.insert(ip);
            continue;
        }
        let unknown = rotations
            .iter()
            .enumerate()
            .find(|(_, r)| recent(r) && r.old_prefix.is_none());
        match unknown {
            Some((at, _)) => {
                matched[i] = Some((at, false));
                unconfirmed.entry(ip).or_default().insert(prefix);
            }
            // Outside every rotation's reach, or a prefix no rotation explains: guessing.
            None => {
                other_keys.insert(ip);
            }
        }
    }
    // An address trying more than one key (or one no rotation explains) is not a client
    // with a stale key: its unconfirmed matches do not count.
    for (i, e) in failures.iter().enumerate() {
        if let Some((_, false)) = matched[i] {
            let ip = e.ip.as_deref().unwrap_or_default();
            if other_keys.contains(ip) || unconfirmed.get(ip).is_none_or(|p| p.len() != 1) {
                matched[i] = None;
            }
        }
    }
    let mut uses: Vec<StaleUse> = Vec::new();
    // The explained requests per address, for pairing other logs' lines with them.
    let mut requests: HashMap<&str, Vec<i64>> = HashMap::new();
    for (i, e) in failures.iter().enumerate() {
        let Some((rotation, confirmed)) = matched[i] else {
            continue;
        };
        explained[i] = true;
        let ip = e.ip.as_deref().unwrap_or_default();
        requests.entry(ip).or_default().push(e.time_us);
        let use_ = match uses
            .iter_mut()
            .find(|u| u.rotation == rotation && u.confirmed == confirmed)
        {
            Some(u) => u,
            None => {
                uses.push(StaleUse {
                    rotation,
                    count: 0,
                    first_us: e.time_us,
                    last_us: e.time_us,
                    addresses: BTreeSet::new(),
                    prefixes: BTreeSet::new(),
                    confirmed,
                });
                uses.last_mut().expect("just pushed")
            }
        };
        use_.count += 1;
        use_.first_us = use_.first_us.min(e.time_us);
        use_.last_us = use_.last_us.max(e.time_us);
        use_.addresses.insert(ip.to_owned());
        if let Some(p) = e.key_prefix.as_deref() {
            use_.prefixes.insert(p.to_owned());
        }
    }
    // The same requests as other logs saw them (a proxy logs no key): each explained request
    // explains at most one line per other log, from its address, within two seconds.
    let mut used: HashMap<(&str, &str, usize), ()> = HashMap::new();
    for (i, e) in failures.iter().enumerate() {
        if explained[i] || e.key_prefix.is_some() {
            continue;
        }
        let Some(ip) = e.ip.as_deref() else { continue };
        let Some(times) = requests.get(ip) else {
            continue;
        };
        let hit = times.iter().enumerate().find(|(k, t)| {
            (e.time_us - **t).abs() <= SAME_REQUEST_US
                && !used.contains_key(&(ip, e.source.as_str(), *k))
        });
        if let Some((k, _)) = hit {
            used.insert((ip, e.source.as_str(), k), ());
            explained[i] = true;
        }
    }
    (explained, uses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_events::{Kind, Outcome};

    const S: i64 = 1_000_000;
    const T0: i64 = 1_795_401_600;

    fn failure(at_s: i64, source: &str, ip: &str, prefix: Option<&str>) -> WireEvent {
        WireEvent {
            seq: 0,
            time_us: (T0 + at_s) * S,
            source: source.parse().expect("a source word"),
            kind: Kind::Auth,
            outcome: Outcome::Failure,
            actor: None,
            key_prefix: prefix.map(Into::into),
            ip: Some(ip.into()),
            method: None,
            path: None,
            status: Some(401),
            message: None,
            raw: String::new(),
            flags: 0,
        }
    }

    fn rotation(id: i64, old_prefix: Option<&str>) -> Committed {
        Committed {
            id,
            instance: "jelmore-1".into(),
            name: "API_KEY_MAIN".into(),
            old_fingerprint: "0011223344556677".into(),
            new_fingerprint: "8899aabbccddeeff".into(),
            started_at: T0,
            old_prefix: old_prefix.map(Into::into),
            new_prefix: Some("NEWKEYnewk".into()),
        }
    }

    #[test]
    fn the_old_keys_prefix_explains_its_failures_and_the_proxy_lines_of_them() {
        let events = [
            failure(60, "proxy", "10.0.0.5", None),
            failure(60, "service", "10.0.0.5", Some("OLDKEYoldk")),
            failure(61, "proxy", "10.0.0.5", None),
            failure(61, "service", "10.0.0.5", Some("OLDKEYoldk")),
            // Another client guessing at the same time is not explained.
            failure(62, "proxy", "203.0.113.9", None),
            failure(62, "service", "203.0.113.9", Some("guess00001")),
            // A proxy line of the stale client with no service line near it stays counted.
            failure(300, "proxy", "10.0.0.5", None),
        ];
        let refs: Vec<&WireEvent> = events.iter().collect();
        let (explained, uses) = explain(&refs, &[rotation(7, Some("OLDKEYoldk"))]);
        assert_eq!(
            explained,
            [true, true, true, true, false, false, false],
            "the old key's requests, in both logs, and nothing else"
        );
        assert_eq!(uses.len(), 1, "one rotation, one use: {uses:?}");
        assert!(uses[0].confirmed, "matched by the recorded prefix");
        assert_eq!(uses[0].count, 2, "two requests (not four lines)");
        assert_eq!(
            uses[0].addresses.iter().collect::<Vec<_>>(),
            ["10.0.0.5"],
            "the client still using the old key"
        );
    }

    #[test]
    fn without_a_recorded_prefix_only_an_address_retrying_one_key_is_put_down_to_the_rotation() {
        let events = [
            failure(10, "service", "10.0.0.5", Some("SAMEKEY123")),
            failure(20, "service", "10.0.0.5", Some("SAMEKEY123")),
            failure(30, "service", "198.51.100.7", Some("guess00001")),
            failure(31, "service", "198.51.100.7", Some("guess00002")),
            // The new key, mistyped or not: not the old one.
            failure(40, "service", "10.0.0.9", Some("NEWKEYnewk")),
            // Before the rotation: nothing to put it down to.
            failure(-10, "service", "10.0.0.6", Some("OTHERKEY12")),
        ];
        let mut refs: Vec<&WireEvent> = events.iter().collect();
        refs.sort_by_key(|e| e.time_us);
        let (explained, uses) = explain(&refs, &[rotation(7, None)]);
        let explained_ips: BTreeSet<&str> = refs
            .iter()
            .zip(&explained)
            .filter(|(_, x)| **x)
            .filter_map(|(e, _)| e.ip.as_deref())
            .collect();
        assert_eq!(
            explained_ips.into_iter().collect::<Vec<_>>(),
            ["10.0.0.5"],
            "only the address retrying one key; two keys is guessing, the new key is not \
             the old, and a failure before the rotation is not explained by it"
        );
        assert_eq!(uses.len(), 1, "{uses:?}");
        assert!(
            !uses[0].confirmed,
            "the history has no prefix for the old key: the match is not certain"
        );
    }

    #[test]
    fn a_rotation_long_past_explains_nothing() {
        let events = [failure(
            AFTER_ROTATION_US / S + 60,
            "service",
            "10.0.0.5",
            Some("OLDKEYoldk"),
        )];
        let refs: Vec<&WireEvent> = events.iter().collect();
        let (explained, uses) = explain(&refs, &[rotation(7, Some("OLDKEYoldk"))]);
        assert_eq!(
            (explained, uses.len()),
            (vec![false], 0),
            "a month after the rotation, failures with the old key are judged like any other"
        );
    }
}

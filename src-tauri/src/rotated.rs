//! New keys from committed rotations, held in the shell (never the webview) until each is
//! copied to the clipboard once, or for ten minutes at most; dropping one wipes it
//! ([`Sensitive`] zeroizes on drop). The key itself is in the OS keychain either way.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gatehouse_core::Sensitive;

/// How long a new key waits to be copied.
pub const KEPT_FOR: Duration = Duration::from_secs(600);

/// A key's label, the key, and when it was kept.
type Kept = (String, Sensitive<String>, Instant);

#[derive(Debug, Default, Clone)]
pub struct RotatedKeys(Arc<Mutex<Vec<Kept>>>);

impl RotatedKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep `key` under `label` (`NAME on INSTANCE`) from `now`, replacing one of the same
    /// label. A thread forgets it when its time is over, if it was not copied by then.
    pub fn keep(&self, label: String, key: Sensitive<String>, now: Instant) {
        {
            let mut keys = self.lock();
            keys.retain(|(l, _, _)| l != &label);
            keys.push((label, key, now));
        }
        let keys = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(KEPT_FOR);
            keys.forget_expired(Instant::now());
        });
    }

    /// The key labelled `label` (or the latest) if its time is not over; it is then
    /// forgotten.
    pub fn take(&self, label: Option<&str>, now: Instant) -> Option<(String, Sensitive<String>)> {
        self.forget_expired(now);
        let mut keys = self.lock();
        let index = match label {
            Some(label) => keys.iter().position(|(l, _, _)| l == label)?,
            None => keys.len().checked_sub(1)?,
        };
        let (label, key, _) = keys.remove(index);
        Some((label, key))
    }

    /// Drop (and so wipe) every key kept longer than [`KEPT_FOR`] at `now`.
    pub fn forget_expired(&self, now: Instant) {
        self.lock()
            .retain(|(_, _, kept)| now.saturating_duration_since(*kept) < KEPT_FOR);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Sensitive<String> {
        Sensitive::new(text.to_owned())
    }

    #[test]
    fn a_key_is_given_once_and_not_after_its_time() {
        let keys = RotatedKeys::default();
        let t0 = Instant::now();
        keys.keep("a on x".into(), key("k1"), t0);
        keys.keep("b on x".into(), key("k2"), t0);
        let (label, first) = keys.take(Some("a on x"), t0).expect("kept");
        assert_eq!(
            (label.as_str(), first.expose().as_str()),
            ("a on x", "k1"),
            "the key asked for"
        );
        assert!(
            keys.take(Some("a on x"), t0).is_none(),
            "a key is given once"
        );
        assert!(
            keys.take(None, t0 + KEPT_FOR).is_none(),
            "after its time a key is gone, even unasked"
        );
        assert_eq!(keys.len(), 0, "and nothing is left in memory");
    }

    #[test]
    fn a_new_rotation_of_the_same_key_replaces_the_waiting_one() {
        let keys = RotatedKeys::default();
        let t0 = Instant::now();
        keys.keep("a on x".into(), key("old"), t0);
        keys.keep("a on x".into(), key("new"), t0 + Duration::from_secs(1));
        assert_eq!(keys.len(), 1, "one key per label");
        let (_, latest) = keys
            .take(None, t0 + Duration::from_secs(2))
            .expect("latest");
        assert_eq!(latest.expose(), "new", "the newer key is the one kept");
    }
}

//! The OS keychain, through the `keyring` crate.
//!
//! Every secret the console owns (the fleet CA key, its client key, the audit HMAC key,
//! service API keys) lives here and nowhere else. If no keychain is reachable the console
//! says so and stops; it never falls back to storing secrets in a file.

use keyring::Entry;
use serde::Serialize;
use ts_rs::TS;

use crate::{Error, Result, Sensitive};

/// The keychain service under which Gatehouse files its secrets.
pub const DEFAULT_SERVICE: &str = "Gatehouse";

/// Reads `GATEHOUSE_KEYCHAIN_SERVICE`, so the demo and tests keep their secrets apart from an
/// operator's real ones.
pub const SERVICE_ENV: &str = "GATEHOUSE_KEYCHAIN_SERVICE";

/// Name of the entry looked up (never written) to learn whether the keychain answers.
const PROBE_ACCOUNT: &str = "gatehouse.probe";

/// Handle on one keychain service.
#[derive(Debug, Clone)]
pub struct Vault {
    service: String,
}

/// Whether the keychain can be used right now, for the Settings view and `gatehouse doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct KeychainStatus {
    pub state: KeychainState,
    /// The keychain service name Gatehouse files its secrets under.
    pub service: String,
    /// The backend in use on this platform, for example "Secret Service".
    pub backend: String,
    /// What went wrong and how to fix it; empty when available.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum KeychainState {
    Available,
    Locked,
    Unavailable,
}

impl Vault {
    pub fn new(service: impl Into<String>) -> Self {
        Vault {
            service: service.into(),
        }
    }

    /// The service named by `GATEHOUSE_KEYCHAIN_SERVICE`, or [`DEFAULT_SERVICE`].
    pub fn from_env() -> Self {
        match std::env::var(SERVICE_ENV) {
            Ok(name) if !name.trim().is_empty() => Vault::new(name),
            _ => Vault::new(DEFAULT_SERVICE),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Store a secret under `name`, replacing any previous value.
    pub fn store(&self, name: &str, secret: &Sensitive<Vec<u8>>) -> Result<()> {
        let entry = self.entry(name)?;
        // Setting replaces, so repeating a call that timed out after it took effect is safe.
        patiently(|| entry.set_secret(secret.expose())).map_err(|e| map_keyring_error(e, name))
    }

    /// Load the secret stored under `name`.
    pub fn load(&self, name: &str) -> Result<Sensitive<Vec<u8>>> {
        let entry = self.entry(name)?;
        patiently(|| entry.get_secret())
            .map(Sensitive::new)
            .map_err(|e| map_keyring_error(e, name))
    }

    /// Delete the secret under `name`. Deleting a secret that is not there is not an error:
    /// removal must be idempotent so an interrupted removal can be retried.
    pub fn delete(&self, name: &str) -> Result<()> {
        let entry = self.entry(name)?;
        match patiently(|| entry.delete_credential()) {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_error(e, name)),
        }
    }

    /// Whether the keychain answers and is unlocked. Looking up an entry that is never
    /// written proves it answers; on Linux the default collection is also asked whether it is
    /// locked, since a lookup of a missing entry succeeds even then.
    pub fn status(&self) -> KeychainStatus {
        let result = self
            .entry(PROBE_ACCOUNT)
            .and_then(|entry| match patiently(|| entry.get_secret()) {
                Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(map_keyring_error(e, PROBE_ACCOUNT)),
            })
            .and_then(|()| check_unlocked());
        let (state, message) = match result {
            Ok(()) => (KeychainState::Available, String::new()),
            Err(e @ Error::KeychainLocked { .. }) => (KeychainState::Locked, e.to_string()),
            Err(e) => (KeychainState::Unavailable, e.to_string()),
        };
        KeychainStatus {
            state,
            service: self.service.clone(),
            backend: BACKEND.to_owned(),
            message,
        }
    }

    fn entry(&self, name: &str) -> Result<Entry> {
        Entry::new(&self.service, name).map_err(|e| map_keyring_error(e, name))
    }
}

#[cfg(target_os = "linux")]
const BACKEND: &str = "Secret Service (D-Bus)";
#[cfg(target_os = "macos")]
const BACKEND: &str = "macOS Keychain";
#[cfg(target_os = "windows")]
const BACKEND: &str = "Windows Credential Manager";
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
const BACKEND: &str = "platform keychain";

#[cfg(target_os = "linux")]
const UNAVAILABLE_HINT: &str = "Start a Secret Service provider (GNOME Keyring or KeePassXC with \
     Secret Service enabled) in your desktop session, make sure DBUS_SESSION_BUS_ADDRESS is set, \
     then reopen Gatehouse.";
#[cfg(target_os = "macos")]
const UNAVAILABLE_HINT: &str = "Open Keychain Access and check that your login keychain exists.";
#[cfg(target_os = "windows")]
const UNAVAILABLE_HINT: &str = "Check that the Credential Manager service is running.";
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
const UNAVAILABLE_HINT: &str = "Gatehouse has no keychain backend for this platform.";

#[cfg(target_os = "linux")]
fn check_unlocked() -> Result<()> {
    use dbus_secret_service::{EncryptionType, SecretService};
    // Plain is enough: only the collection's Locked property is read, no secret is exchanged.
    let service =
        SecretService::connect(EncryptionType::Plain).map_err(|e| Error::KeychainUnavailable {
            detail: e.to_string(),
            hint: UNAVAILABLE_HINT,
        })?;
    let locked = service
        .get_default_collection()
        .and_then(|c| c.is_locked())
        .map_err(|e| Error::Keychain {
            detail: e.to_string(),
        })?;
    if locked {
        return Err(Error::KeychainLocked {
            detail: "the default keyring is locked".into(),
        });
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn check_unlocked() -> Result<()> {
    // macOS and Windows unlock the user's keychain at login and prompt when needed.
    Ok(())
}

/// The D-Bus text of a call that got no answer within the Secret Service client's per-call
/// timeout (two seconds): the daemon is busy, not locked or absent.
const NO_REPLY: &str = "Did not receive a reply";

fn is_no_reply(error: &keyring::Error) -> bool {
    match error {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            inner.to_string().contains(NO_REPLY)
        }
        _ => false,
    }
}

/// Runs a keychain call, repeating it while the keychain daemon is too busy to answer in
/// time (a loaded machine, a daemon writing its file), for up to about four seconds more.
/// Every call repeated this way is idempotent: a read, a replacing write, or a delete that
/// accepts an absent entry.
fn patiently<T>(mut call: impl FnMut() -> keyring::Result<T>) -> keyring::Result<T> {
    let mut pauses = [250u64, 750, 1500, 1500].into_iter();
    loop {
        match call() {
            Err(e) if is_no_reply(&e) => match pauses.next() {
                Some(ms) => {
                    tracing::debug!(pause_ms = ms, "keychain busy, asking again");
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

fn map_keyring_error(error: keyring::Error, name: &str) -> Error {
    match error {
        ref e if is_no_reply(e) => Error::Keychain {
            detail: format!("the keychain did not answer in time ({e}); try again in a moment"),
        },
        // The Secret Service reports a locked collection (or a dismissed unlock prompt) as a
        // D-Bus error; only its text tells it apart from an absent service.
        keyring::Error::PlatformFailure(inner)
            if inner.to_string().contains("locked") || inner.to_string().contains("ismissed") =>
        {
            Error::KeychainLocked {
                detail: inner.to_string(),
            }
        }
        keyring::Error::NoEntry => Error::SecretNotFound {
            name: name.to_owned(),
        },
        keyring::Error::NoStorageAccess(inner) => Error::KeychainLocked {
            detail: inner.to_string(),
        },
        keyring::Error::PlatformFailure(inner) => Error::KeychainUnavailable {
            detail: inner.to_string(),
            hint: UNAVAILABLE_HINT,
        },
        other => Error::Keychain {
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_message_says_how_to_fix() {
        let err = map_keyring_error(keyring::Error::PlatformFailure("no bus".into()), "fleet-ca");
        let text = err.to_string();
        assert_eq!(
            err.code(),
            crate::ErrorCode::KeychainUnavailable,
            "a platform failure means no keychain is reachable"
        );
        assert!(
            text.contains("never falls back to a file"),
            "the operator must learn secrets are not silently stored elsewhere: {text}"
        );
        assert!(
            text.contains(UNAVAILABLE_HINT),
            "the message must carry the platform's fix: {text}"
        );
    }

    #[test]
    fn a_busy_keychain_is_asked_again_and_then_reported_as_busy() {
        let no_reply = || {
            keyring::Error::NoStorageAccess(
                "DBus error: Did not receive a reply. Possible causes include: ...".into(),
            )
        };
        let mut calls = 0;
        let answered = patiently(|| {
            calls += 1;
            if calls < 3 {
                Err(no_reply())
            } else {
                Ok(7)
            }
        });
        assert_eq!(
            answered.ok(),
            Some(7),
            "a daemon that answers on the third try is used"
        );
        assert_eq!(calls, 3, "no call is repeated once it has an answer");

        let mut calls = 0;
        let locked = patiently(|| -> keyring::Result<()> {
            calls += 1;
            Err(keyring::Error::NoStorageAccess(
                "collection is locked".into(),
            ))
        });
        assert!(locked.is_err(), "a locked keychain stays an error");
        assert_eq!(
            calls, 1,
            "a locked keychain is not asked again: it needs the operator"
        );

        let err = map_keyring_error(no_reply(), "fleet-ca");
        assert_eq!(
            err.code(),
            crate::ErrorCode::KeychainFailed,
            "a timeout is neither a locked nor an absent keychain: {err}"
        );
        assert!(
            err.to_string().contains("try again"),
            "says what to do: {err}"
        );
    }
}

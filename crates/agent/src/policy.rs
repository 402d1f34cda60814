//! The policy the agent enforces on its own: the console's rules, each rule's response, the
//! allowlist, repeat-offender lengths and fleet-wide blocks.
//!
//! A policy is taken only if it is signed by the console's policy key and newer than the one
//! running. The key is pinned when the first policy arrives (over mutual TLS, from the
//! enrolled console) and forgotten only when the agent is enrolled again (`init`). The last
//! good policy is kept as signed in the state directory and verified again at every start:
//! a policy file changed on disk is not run.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use gatehouse_detect::{Policy, MAX_POLICY_BYTES};
use gatehouse_protocol::SignedPolicy;

use crate::state::StateDir;

/// A verified policy and the key that signed it.
#[derive(Debug)]
pub struct Running {
    pub policy: Policy,
    pub key: String,
}

#[derive(Debug, Default)]
pub struct PolicyState {
    running: RwLock<Option<Arc<Running>>>,
    /// One policy taken at a time, so two consoles' requests cannot interleave.
    taking: Mutex<()>,
    /// Bumped by every policy taken: the enforcer starts afresh with new rules.
    generation: std::sync::atomic::AtomicU64,
}

/// Verify `signed` with `key` and read it.
fn open(signed: &SignedPolicy, key: &str) -> Result<Policy, String> {
    if signed.policy.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "the policy is {} bytes; at most {MAX_POLICY_BYTES} are read",
            signed.policy.len()
        ));
    }
    if signed.key != key {
        return Err(
            "the policy is signed by another key than this agent's console: enroll the agent again to trust a new console"
                .into(),
        );
    }
    gatehouse_pki::verify_policy(key, signed.policy.as_bytes(), &signed.signature)
        .map_err(|e| e.to_string())?;
    let policy: Policy = serde_json::from_str(&signed.policy)
        .map_err(|e| format!("the policy cannot be read: {e}"))?;
    policy.validate()?;
    Ok(policy)
}

impl PolicyState {
    /// The last good policy from the state directory, verified again; none (said in the
    /// log) if it is missing or fails.
    pub fn load(state: &StateDir) -> Self {
        let loaded = match (state.policy_key(), state.policy()) {
            (Ok(Some(key)), Ok(Some(signed))) => match open(&signed, &key) {
                Ok(policy) => Some(Arc::new(Running { policy, key })),
                Err(e) => {
                    tracing::error!(error = %e, "the stored policy failed verification: none runs until a console sends one");
                    None
                }
            },
            (Ok(_), Ok(_)) => None,
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "the stored policy cannot be read: none runs until a console sends one");
                None
            }
        };
        PolicyState {
            running: RwLock::new(loaded),
            ..PolicyState::default()
        }
    }

    pub fn current(&self) -> Option<Arc<Running>> {
        self.running
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Which policy is running: changes with every policy taken.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Take `signed` if it is signed by the pinned key (or, for the first policy, by the key
    /// it names), valid and newer than the running one; keep it before running it.
    pub fn take(&self, state: &StateDir, signed: &SignedPolicy) -> Result<Arc<Running>, String> {
        let _one = self.taking.lock().unwrap_or_else(PoisonError::into_inner);
        let pinned = state
            .policy_key()
            .map_err(|e| format!("the pinned policy key cannot be read: {e}"))?;
        let key = pinned.clone().unwrap_or_else(|| signed.key.clone());
        let policy = open(signed, &key)?;
        if let Some(running) = self.current() {
            if policy.version <= running.policy.version {
                return Err(format!(
                    "policy version {} is not newer than version {}, which runs here",
                    policy.version, running.policy.version
                ));
            }
        }
        state
            .write_policy(signed)
            .map_err(|e| format!("the policy cannot be kept: {e}"))?;
        if pinned.is_none() {
            state
                .write_policy_key(&key)
                .map_err(|e| format!("the policy key cannot be kept: {e}"))?;
        }
        let running = Arc::new(Running { policy, key });
        *self.running.write().unwrap_or_else(PoisonError::into_inner) = Some(running.clone());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tracing::info!(
            version = running.policy.version,
            rules = running.policy.rules.len(),
            "policy taken"
        );
        Ok(running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_pki::PolicyKey;

    fn key() -> PolicyKey {
        PolicyKey::from_pkcs8(&PolicyKey::generate().expect("key")).expect("parse")
    }

    fn signed(key: &PolicyKey, version: u64) -> SignedPolicy {
        let policy = Policy {
            version,
            issued_at: 0,
            rules: gatehouse_detect::default_rules(),
            allowlist: vec![],
            recidive: Default::default(),
            blocks: vec![],
        };
        let text = serde_json::to_string(&policy).expect("json");
        SignedPolicy {
            signature: key.sign(text.as_bytes()),
            policy: text,
            key: key.public_hex(),
        }
    }

    #[test]
    fn only_newer_policies_signed_by_the_pinned_key_are_taken_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path());
        let console = key();
        let policies = PolicyState::load(&state);
        assert!(
            policies.current().is_none(),
            "none before a console sends one"
        );
        policies
            .take(&state, &signed(&console, 2))
            .expect("the first signed policy is taken");

        let forger = key();
        let err = policies
            .take(&state, &signed(&forger, 3))
            .expect_err("another key");
        assert!(
            err.contains("another key"),
            "the refusal says the key is not the pinned one: {err}"
        );
        let mut posing = signed(&forger, 3);
        posing.key = console.public_hex();
        let err = policies
            .take(&state, &posing)
            .expect_err("a forger naming the console's key");
        assert!(
            err.contains("signature"),
            "the refusal says the signature does not match: {err}"
        );
        let mut unsigned = signed(&console, 3);
        unsigned.signature = String::new();
        assert!(policies.take(&state, &unsigned).is_err(), "unsigned");
        let mut changed = signed(&console, 3);
        changed.policy = changed
            .policy
            .replace("\"allowlist\":[]", "\"allowlist\":[\"0.0.0.0/0\"]");
        assert!(
            policies.take(&state, &changed).is_err(),
            "a policy changed after signing (here: allowlisting everyone)"
        );
        let err = policies
            .take(&state, &signed(&console, 2))
            .expect_err("same version");
        assert!(
            err.contains("not newer"),
            "the same version is refused as not newer: {err}"
        );
        let err = policies
            .take(&state, &signed(&console, 1))
            .expect_err("older");
        assert!(
            err.contains("not newer"),
            "an older version is refused as not newer: {err}"
        );
        assert_eq!(
            policies.current().map(|r| r.policy.version),
            Some(2),
            "every refusal left the running policy alone"
        );

        policies
            .take(&state, &signed(&console, 5))
            .expect("a newer one is taken");
        let again = PolicyState::load(&state);
        assert_eq!(
            again.current().map(|r| r.policy.version),
            Some(5),
            "the last good policy survives a restart"
        );

        // Someone with the agent's files changes the stored policy: it is not run.
        let mut stored = state.policy().expect("read").expect("kept");
        stored.policy = stored
            .policy
            .replace("\"allowlist\":[]", "\"allowlist\":[\"0.0.0.0/0\"]");
        state.write_policy(&stored).expect("write");
        assert!(
            PolicyState::load(&state).current().is_none(),
            "a stored policy that fails verification is not run"
        );
    }
}

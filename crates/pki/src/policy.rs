//! Signed policies. The console holds an Ed25519 key (PKCS#8, in its keychain) and signs each
//! policy's exact bytes; an agent verifies them with the public key it pinned when its first
//! policy arrived over mutual TLS, and refuses a policy signed by any other key.
//!
//! What is signed is a fixed label, then the policy's bytes, so a signature made for anything
//! else the key might ever sign is not a policy's.

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use zeroize::Zeroizing;

use crate::Error;

const LABEL: &[u8] = b"gatehouse policy v1\n";

/// The console's policy signing key.
pub struct PolicyKey(Ed25519KeyPair);

impl std::fmt::Debug for PolicyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PolicyKey")
            .field(&self.public_hex())
            .finish()
    }
}

impl PolicyKey {
    /// A new key, as PKCS#8 bytes to keep in the keychain.
    pub fn generate() -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| Error::Generate("the system's random source failed".into()))?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The key from its PKCS#8 bytes.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, Error> {
        Ed25519KeyPair::from_pkcs8(bytes)
            .map(PolicyKey)
            .map_err(|e| Error::BadPem {
                what: "policy signing key",
                detail: e.to_string(),
            })
    }

    /// The public key, as 64 hex digits: what agents pin.
    pub fn public_hex(&self) -> String {
        hex(self.0.public_key().as_ref())
    }

    /// The signature of `policy`, as hex.
    pub fn sign(&self, policy: &[u8]) -> String {
        let mut message = Vec::with_capacity(LABEL.len() + policy.len());
        message.extend_from_slice(LABEL);
        message.extend_from_slice(policy);
        hex(self.0.sign(&message).as_ref())
    }
}

/// Whether `signature` (hex) is `public` (hex)'s signature of `policy`.
pub fn verify_policy(public: &str, policy: &[u8], signature: &str) -> Result<(), Error> {
    let key = unhex(public)
        .filter(|k| k.len() == 32)
        .ok_or(Error::BadSignature {
            reason: "the signing key is not 32 bytes of hex",
        })?;
    let signature = unhex(signature)
        .filter(|s| s.len() == 64)
        .ok_or(Error::BadSignature {
            reason: "the signature is not 64 bytes of hex",
        })?;
    let mut message = Vec::with_capacity(LABEL.len() + policy.len());
    message.extend_from_slice(LABEL);
    message.extend_from_slice(policy);
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&message, &signature)
        .map_err(|_| Error::BadSignature {
            reason: "the signature does not match the policy and key",
        })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_verifies_with_its_key_only_and_unchanged() {
        let key = PolicyKey::from_pkcs8(&PolicyKey::generate().expect("key")).expect("parse");
        let other = PolicyKey::from_pkcs8(&PolicyKey::generate().expect("key")).expect("parse");
        let policy = br#"{"version":2}"#;
        let signature = key.sign(policy);
        verify_policy(&key.public_hex(), policy, &signature).expect("its own signature verifies");
        assert!(
            verify_policy(&other.public_hex(), policy, &signature).is_err(),
            "another console's key does not verify it"
        );
        assert!(
            verify_policy(&key.public_hex(), br#"{"version":3}"#, &signature).is_err(),
            "a changed policy does not verify"
        );
        assert!(
            verify_policy(&key.public_hex(), policy, &other.sign(policy)).is_err(),
            "a forger's signature does not verify with the pinned key"
        );
        assert!(
            verify_policy(&key.public_hex(), policy, "").is_err(),
            "an unsigned policy does not verify"
        );
        assert!(
            verify_policy(&key.public_hex(), policy, &signature.to_uppercase()).is_err(),
            "only one spelling of a signature is read"
        );
    }
}

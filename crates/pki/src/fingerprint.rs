//! SHA-256 certificate fingerprints, and keyed fingerprints of secrets.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// SHA-256 over a certificate's DER bytes: how an operator pins an agent at enrollment.
///
/// Displayed as 32 upper-case hex pairs joined by colons, the form `openssl x509 -fingerprint
/// -sha256` prints, so an operator can compare it by eye with the agent's output.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// A secret described without its value, unkeyed: the first 16 hex digits of its SHA-256.
/// Anyone holding such a fingerprint can test guesses of the secret against it offline, so
/// it is only what an agent that was never given its fleet's [`FingerprintKey`] reports; see
/// [`Fingerprints`].
pub fn secret_fingerprint(value: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, value);
    hex16(digest.as_ref())
}

fn hex16(bytes: &[u8]) -> String {
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The fleet's key for fingerprints of secrets: 32 random bytes the console keeps in the
/// keychain and hands each agent over mutual TLS. A fingerprint made with it (HMAC-SHA256,
/// first 16 hex digits) still tells two keys apart and recognises a key the console set, but
/// cannot confirm a guessed key (a weak or published one) to anyone without the key: not to
/// a reader of the console's database, an evidence bundle, a report or a screenshot.
#[derive(Clone, PartialEq, Eq)]
pub struct FingerprintKey(zeroize::Zeroizing<[u8; 32]>);

impl FingerprintKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        FingerprintKey(zeroize::Zeroizing::new(bytes))
    }

    /// The key's bytes, to keep it (in the keychain, or the agent's own state directory).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// From 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::BadFingerprint {
                reason: "a fingerprint key is 64 hex digits",
            });
        }
        let mut bytes = [0u8; 32];
        for (out, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| Error::BadFingerprint {
                reason: "a fingerprint key is 64 hex digits",
            })?;
            *out = u8::from_str_radix(pair, 16).map_err(|_| Error::BadFingerprint {
                reason: "a fingerprint key is 64 hex digits",
            })?;
        }
        Ok(Self::from_bytes(bytes))
    }

    /// As 64 hex digits (kept in a buffer that is wiped when dropped).
    pub fn to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(self.0.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The keyed fingerprint of `value`.
    pub fn of(&self, value: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.0.as_ref());
        hex16(ring::hmac::sign(&key, value).as_ref())
    }

    /// A name for the key that does not reveal it: which key an agent holds, in its info
    /// and in logs.
    pub fn id(&self) -> String {
        self.of(b"gatehouse fingerprint key id")[..8].to_owned()
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FingerprintKey({})", self.id())
    }
}

/// How secrets are fingerprinted on one link: with the fleet's key once the agent holds it,
/// unkeyed ([`secret_fingerprint`]) by an agent that was never given one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprints(Option<FingerprintKey>);

impl Fingerprints {
    /// Unkeyed: the form of an agent without a fleet key, and of records kept before keys.
    pub fn unkeyed() -> Self {
        Fingerprints(None)
    }

    pub fn keyed(key: FingerprintKey) -> Self {
        Fingerprints(Some(key))
    }

    pub fn key(&self) -> Option<&FingerprintKey> {
        self.0.as_ref()
    }

    /// The fingerprint of `value` in this form.
    pub fn of(&self, value: impl AsRef<[u8]>) -> String {
        match &self.0 {
            Some(key) => key.of(value.as_ref()),
            None => secret_fingerprint(value.as_ref()),
        }
    }

    /// Whether `fingerprint`, kept in this form or in the unkeyed one of older records, is
    /// `value`'s.
    pub fn matches(&self, fingerprint: &str, value: impl AsRef<[u8]>) -> bool {
        let value = value.as_ref();
        self.of(value) == fingerprint || secret_fingerprint(value) == fingerprint
    }
}

impl Fingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Accepts the colon form in either case, or 64 bare hex digits (people paste both).
    fn from_str(s: &str) -> Result<Self, Error> {
        let hex: Vec<u8> = s.trim().bytes().filter(|b| *b != b':').collect();
        if hex.len() != 64 {
            return Err(Error::BadFingerprint {
                reason: "expected 32 bytes as 64 hex digits",
            });
        }
        let mut bytes = [0u8; 32];
        for (out, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *out = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Fingerprint(bytes))
    }
}

fn nibble(c: u8) -> Result<u8, Error> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::BadFingerprint {
            reason: "only hex digits and colons are allowed",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_fingerprints_cannot_be_recomputed_without_the_key() {
        let a = FingerprintKey::from_bytes([7; 32]);
        let b = FingerprintKey::from_bytes([8; 32]);
        let guess = b"change-this-secret-key-in-production";
        assert_ne!(
            a.of(guess),
            secret_fingerprint(guess),
            "a keyed fingerprint is not the plain SHA-256 prefix anyone can compute"
        );
        assert_ne!(
            a.of(guess),
            b.of(guess),
            "two fleets fingerprint one key differently"
        );
        assert_eq!(a.of(guess).len(), 16, "16 hex digits, as before");
        let keyed = Fingerprints::keyed(a.clone());
        assert!(
            keyed.matches(&a.of(guess), guess) && keyed.matches(&secret_fingerprint(guess), guess),
            "a value is recognised by its keyed fingerprint and by the unkeyed one of older records"
        );
        assert!(
            !keyed.matches(&b.of(guess), guess),
            "not by another fleet's"
        );
        assert_eq!(
            FingerprintKey::from_hex(&a.to_hex()).expect("parses"),
            a,
            "kept as hex and read back"
        );
        assert!(
            FingerprintKey::from_hex("zz").is_err() && !format!("{a:?}").contains(&*a.to_hex()),
            "bad hex is refused and Debug never shows the key"
        );
    }

    #[test]
    fn display_matches_openssl_form_and_parses_back() {
        // SHA-256 of the empty input, a value anyone can check.
        let fp = Fingerprint::of_der(b"");
        let text = fp.to_string();
        assert!(
            text.starts_with("E3:B0:C4:42:98:FC:1C:14"),
            "must print upper-case colon pairs like openssl: {text}"
        );
        assert_eq!(
            text.parse::<Fingerprint>().expect("parses"),
            fp,
            "round trip"
        );
        let bare = text.replace(':', "").to_lowercase();
        assert_eq!(
            bare.parse::<Fingerprint>().expect("bare hex parses"),
            fp,
            "bare form accepted"
        );
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        for bad in ["", "E3:B0", &"G".repeat(64), &"ab".repeat(33)] {
            let err = bad.parse::<Fingerprint>().expect_err("must be refused");
            assert_eq!(err.code(), "bad_fingerprint", "input {bad:?}");
        }
    }
}

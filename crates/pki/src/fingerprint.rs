//! SHA-256 certificate fingerprints.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// SHA-256 over a certificate's DER bytes: how an operator pins an agent at enrollment.
///
/// Displayed as 32 upper-case hex pairs joined by colons, the form `openssl x509 -fingerprint
/// -sha256` prints, so an operator can compare it by eye with the agent's output.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// A secret described without its value: the first 16 hex digits of its SHA-256. The agent
/// reports keys this way and the console recognises the keys it set by it.
pub fn secret_fingerprint(value: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, value);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

//! Revocation by serial number.
//!
//! The fleet is small and the console is the only issuer, so a plain set of revoked serials
//! (pushed by the console to every agent, checked on every handshake and every request) does
//! the job of a CRL without its distribution problem.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A certificate serial number, without leading zero bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Serial(bytes[start..].to_vec())
    }

    /// A fresh serial from 16 random bytes, positive as DER integers must be.
    pub fn from_random(mut bytes: [u8; 16]) -> Self {
        bytes[0] &= 0x7f;
        bytes[0] |= 0x01;
        Serial(bytes.to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({self})")
    }
}

impl FromStr for Serial {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let bad = Error::BadPem {
            what: "serial number",
            detail: format!("{s:?} is not an even number of hex digits"),
        };
        if s.is_empty() || s.len() % 2 != 0 {
            return Err(bad);
        }
        let mut bytes = Vec::with_capacity(s.len() / 2);
        for pair in s.as_bytes().chunks_exact(2) {
            let text = std::str::from_utf8(pair).map_err(|_| Error::BadPem {
                what: "serial number",
                detail: "not ASCII".into(),
            })?;
            bytes.push(u8::from_str_radix(text, 16).map_err(|_| Error::BadPem {
                what: "serial number",
                detail: format!("{text:?} is not hex"),
            })?);
        }
        Ok(Serial::from_bytes(&bytes))
    }
}

/// The set of revoked serials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationList {
    serials: BTreeSet<Serial>,
}

impl RevocationList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, serial: Serial) -> bool {
        self.serials.insert(serial)
    }

    pub fn contains(&self, serial: &Serial) -> bool {
        self.serials.contains(serial)
    }

    pub fn len(&self) -> usize {
        self.serials.len()
    }

    pub fn is_empty(&self) -> bool {
        self.serials.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Serial> {
        self.serials.iter()
    }

    /// One hex serial per line, as the agent stores it.
    pub fn to_text(&self) -> String {
        self.serials.iter().map(|s| format!("{s}\n")).collect()
    }

    /// Parse the text form; blank lines and `#` comments are ignored.
    pub fn from_text(text: &str) -> Result<Self, Error> {
        let mut list = RevocationList::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            list.insert(line.parse()?);
        }
        Ok(list)
    }
}

impl FromIterator<Serial> for RevocationList {
    fn from_iter<I: IntoIterator<Item = Serial>>(iter: I) -> Self {
        RevocationList {
            serials: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_do_not_make_a_different_serial() {
        assert_eq!(
            Serial::from_bytes(&[0, 0, 0x12, 0x34]),
            Serial::from_bytes(&[0x12, 0x34]),
            "DER may pad a serial with a zero byte; it is the same certificate"
        );
        assert_eq!(
            "001234".parse::<Serial>().expect("hex"),
            Serial::from_bytes(&[0x12, 0x34]),
            "hex text with leading zeros parses to the same serial"
        );
    }

    #[test]
    fn text_form_round_trips_and_rejects_garbage() {
        let list: RevocationList = [Serial::from_bytes(&[1, 2]), Serial::from_bytes(&[0xab])]
            .into_iter()
            .collect();
        let text = list.to_text();
        assert_eq!(
            RevocationList::from_text(&text).expect("parses"),
            list,
            "round trip"
        );
        assert!(
            RevocationList::from_text("# comment\n\n0a0b\n").is_ok_and(|l| l.len() == 1),
            "comments and blank lines are skipped"
        );
        assert!(
            RevocationList::from_text("zz\n").is_err(),
            "non-hex is an error, not skipped"
        );
    }

    #[test]
    fn random_serials_are_positive_and_nonzero() {
        let s = Serial::from_random([0xff; 16]);
        assert!(
            s.as_bytes()[0] < 0x80,
            "DER integers with the top bit set are negative"
        );
        let z = Serial::from_random([0; 16]);
        assert_eq!(
            z.as_bytes().len(),
            16,
            "a zero first byte must not shorten the serial"
        );
    }
}

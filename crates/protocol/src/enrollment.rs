//! The one-time enrollment code `gatehouse-agent init` prints:
//! `gh1.<token>.<sha256 of the agent's temporary certificate, 64 hex digits>`.

use std::fmt;
use std::str::FromStr;

use crate::Error;

pub const ENROLLMENT_CODE_PREFIX: &str = "gh1";

/// Length of the token: 20 random bytes in unpadded lower-case base32.
const TOKEN_LEN: usize = 32;

/// A parsed enrollment code. `Debug` hides the token: it is a secret until used.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentCode {
    pub token: String,
    pub fingerprint: [u8; 32],
}

impl EnrollmentCode {
    /// A code for a fresh token made from 20 random bytes.
    pub fn new(random: [u8; 20], fingerprint: [u8; 32]) -> Self {
        EnrollmentCode {
            token: base32(&random),
            fingerprint,
        }
    }
}

impl fmt::Debug for EnrollmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentCode")
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl fmt::Display for EnrollmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ENROLLMENT_CODE_PREFIX}.{}.", self.token)?;
        for b in self.fingerprint {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for EnrollmentCode {
    type Err = Error;

    /// Accepts surrounding white space (codes are pasted); nothing else is forgiven.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason| Error::BadEnrollmentCode { reason };
        let mut parts = s.trim().split('.');
        let (Some(prefix), Some(token), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected gh1.<token>.<fingerprint>"));
        };
        if prefix != ENROLLMENT_CODE_PREFIX {
            return Err(bad("it must start with gh1."));
        }
        if token.len() != TOKEN_LEN
            || !token
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(bad("the token part is damaged"));
        }
        if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the fingerprint part must be 64 hex digits"));
        }
        let mut fingerprint = [0u8; 32];
        for (out, pair) in fingerprint.iter_mut().zip(fp.as_bytes().chunks_exact(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| bad("not ASCII"))?;
            *out = u8::from_str_radix(text, 16).map_err(|_| bad("not hex"))?;
        }
        Ok(EnrollmentCode {
            token: token.to_owned(),
            fingerprint,
        })
    }
}

fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_text() {
        let code = EnrollmentCode::new([7; 20], [0xab; 32]);
        let text = code.to_string();
        assert!(
            text.starts_with("gh1."),
            "codes start with their version: {text}"
        );
        assert_eq!(text.len(), 3 + 1 + 32 + 1 + 64, "fixed length: {text}");
        assert_eq!(
            format!("  {text}\n")
                .parse::<EnrollmentCode>()
                .expect("parses"),
            code,
            "a pasted code with surrounding white space parses to the same code"
        );
    }

    #[test]
    fn damaged_codes_are_refused_with_a_reason() {
        let good = EnrollmentCode::new([1; 20], [2; 32]).to_string();
        let cases = [
            String::new(),
            good.replacen("gh1", "gh2", 1),
            good[..good.len() - 1].to_owned(),
            good.replace('.', ":"),
            format!("{good}.extra"),
            good.to_uppercase(),
        ];
        for case in cases {
            let err = case.parse::<EnrollmentCode>().expect_err("must be refused");
            assert_eq!(
                err.code(),
                "bad_enrollment_code",
                "each malformed code is refused with its code: {case:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let code = EnrollmentCode::new([9; 20], [0; 32]);
        assert!(
            !format!("{code:?}").contains(&code.token),
            "the token is a secret"
        );
    }
}

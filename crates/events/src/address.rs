//! Client addresses as logs write them, parsed as addresses: an IPv4 or IPv6 address is kept
//! (in one canonical spelling, so one client is one offender); anything else a log line can
//! hold in that place (`999.999.999.999`, markup, a host name, a byte-order mark) is not an
//! address and never becomes one.

use std::borrow::Cow;
use std::net::IpAddr;

/// The IP address `text` names, or `None` if it names none. IPv6 may be in brackets; an
/// IPv4-mapped IPv6 address is the IPv4 address it maps.
pub fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    match bare.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// `text` in the canonical spelling of the address it names, borrowed when it already is
/// that spelling (every IPv4 address std accepts is: no leading zeros, no spaces).
pub(crate) fn canonical(text: Cow<'_, str>) -> Option<Cow<'_, str>> {
    // The common case, checked byte by byte without spelling the address again (an
    // allocation per line): IPv4 as std accepts it, which has one spelling only.
    if dotted_quad(text.as_bytes()) {
        return Some(text);
    }
    let ip = parse_address(&text)?;
    let spelled = ip.to_string();
    Some(if spelled == *text {
        text
    } else {
        Cow::Owned(spelled)
    })
}

/// Whether `b` is an IPv4 address in its one spelling: four decimal octets of at most 255,
/// without leading zeros (as std's parser accepts them).
///
/// This runs for every line an access log writes, so it reads the address the way a CPU
/// likes: all bytes at once, as one 128-bit word, with the high bit of each byte answering a
/// question about that byte ("is it a digit?", "is the next one a dot?"). A loop over the
/// bytes branches on octets of one, two or three digits, which come at random, and its
/// mispredicted branches cost several times this whole check.
#[inline]
pub(crate) fn dotted_quad(b: &[u8]) -> bool {
    const ONES: u128 = u128::from_le_bytes([1; 16]);
    const HIGH: u128 = ONES * 0x80;
    const LOW7: u128 = ONES * 0x7f;
    let len = b.len();
    if !(7..=15).contains(&len) {
        return false;
    }
    // The bytes as one word (zero past the end), read in two loads that may overlap: a copy
    // of a varying length into a buffer is a call to memcpy, and the load after it stalls.
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
    let v = if len >= 8 {
        let tail = word(len - 8)
            .checked_shr(8 * (16 - len) as u32)
            .unwrap_or(0);
        u128::from(word(0)) | u128::from(tail) << 64
    } else {
        let half = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default());
        u128::from(half(0)) | u128::from(half(3)) << 24
    };
    // `at_least(k)`: the byte is ASCII and at least `k`. No sum carries into the next byte
    // (seven bits plus at most 0x7f stays below 0x100).
    let low = v & LOW7;
    let ascii = !v & HIGH;
    let at_least = |k: u8| (low + ONES * u128::from(0x80 - k)) & ascii;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let not_dot = v ^ (ONES * u128::from(b'.'));
    let dot = !(((not_dot & LOW7) + LOW7) | not_dot) & HIGH;
    let in_text = HIGH & ((1u128 << (8 * len)) - 1);
    let first = 0x80;
    let last = 0x80u128 << (8 * (len - 1));
    // Three dots, none first, last or next to another; so four octets, none empty.
    let ones = dot >> 7;
    let count = |half: u64| half.wrapping_mul(ONES as u64) >> 56;
    let dots = count(ones as u64) + count((ones >> 64) as u64);
    let shape = (digit | dot) == in_text
        && dots == 3
        && dot & (first | last | dot << 8) == 0
        // No octet of four digits or more.
        && digit & digit << 8 & digit << 16 & digit << 24 == 0;
    // An octet's first digit: no leading zero, and three digits are at most 255 (compared
    // digit by digit: over 2, or 2 then over 5, or 25 then over 5).
    let start = (dot << 8 | first) & digit;
    let leading_zero = start & !at_least(b'1') & digit >> 8;
    let (over2, over5) = (at_least(b'3'), at_least(b'6'));
    let (is2, is5) = (at_least(b'2') & !over2, at_least(b'5') & !over5);
    let three = start & digit >> 8 & digit >> 16;
    let too_big = three & (over2 | is2 & (over5 >> 8 | is5 >> 8 & over5 >> 16));
    shape && leading_zero | too_big == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_are_addresses() {
        for (text, want) in [
            ("203.0.113.7", Some("203.0.113.7")),
            ("::1", Some("::1")),
            ("[2001:DB8::1]", Some("2001:db8::1")),
            ("::ffff:198.51.100.4", Some("198.51.100.4")),
            ("999.999.999.999", None),
            ("<svg/onload=alert(1)>", None),
            ("\u{feff}203.0.113.7", None),
            ("203.0.113.7:8080", None),
            ("example.org", None),
            ("010.1.1.1", None),
            ("", None),
        ] {
            assert_eq!(
                canonical(Cow::Borrowed(text)).as_deref(),
                want,
                "{text:?} is read as {want:?}"
            );
        }
        assert!(
            matches!(canonical(Cow::Borrowed("10.0.0.1")), Some(Cow::Borrowed(_))),
            "a canonical address is borrowed, not copied"
        );
        // The quick IPv4 check agrees with std's parser on every near miss.
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.",
            ".1.2.3",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.4 ",
            "1.2.3.4a",
            "1234.1.1.1",
            "00.1.1.1",
            "1.2.3.0",
            "9.99.199.249",
        ] {
            assert_eq!(
                dotted_quad(text.as_bytes()),
                text.parse::<std::net::Ipv4Addr>().is_ok(),
                "{text:?} is read as std reads it"
            );
        }
        // And on a million strings near an address: three to five runs of up to four
        // characters, mostly digits (a few other bytes), joined by dots.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let alphabet = b"01234567890123456789012345678901234567892255555. a:";
        let mut agreed_addresses = 0;
        for _ in 0..1_000_000 {
            let runs = 3 + next() % 3;
            let text = (0..runs)
                .map(|_| {
                    let len = next() % 5;
                    (0..len)
                        .map(|_| char::from(alphabet[next() % alphabet.len()]))
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join(".");
            let std_reads = text.parse::<std::net::Ipv4Addr>().is_ok();
            assert_eq!(
                dotted_quad(text.as_bytes()),
                std_reads,
                "{text:?} is read as std reads it"
            );
            agreed_addresses += usize::from(std_reads);
        }
        assert!(
            agreed_addresses > 5_000,
            "the strings drawn include many addresses, so both answers are compared \
             ({agreed_addresses} addresses)"
        );
    }
}

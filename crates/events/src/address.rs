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
fn dotted_quad(b: &[u8]) -> bool {
    let mut octets = 0;
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let mut value: u32 = 0;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
            value = value * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || value > 255 || (digits > 1 && b[start] == b'0') {
            return false;
        }
        octets += 1;
        if i == b.len() {
            break;
        }
        if b[i] != b'.' || octets == 4 {
            return false;
        }
        i += 1;
        if i == b.len() {
            return false;
        }
    }
    octets == 4
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
    }
}

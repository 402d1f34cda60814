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
    let ip = parse_address(&text)?;
    let spelled = ip.to_string();
    Some(if spelled == *text {
        text
    } else {
        Cow::Owned(spelled)
    })
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
    }
}

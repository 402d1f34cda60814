//! Allowlist entries (an address, or a network such as `192.0.2.0/24`) and whether one covers
//! an address: the console's alerts, its replay and the agent's decisions and firewall all
//! read an entry this one way.

use std::net::IpAddr;

/// Whether `entry` covers `ip`. An IPv4 address written as IPv6 (`::ffff:192.0.2.1`) is the
/// IPv4 address. An entry that is neither an address nor a network covers nothing.
pub fn covers(entry: &str, ip: IpAddr) -> bool {
    let (net, bits) = match entry.trim().split_once('/') {
        Some((net, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (net, Some(bits)),
            Err(_) => return false,
        },
        None => (entry.trim(), None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (net.to_canonical(), ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return false;
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return false;
            }
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Whether any entry of `list` covers `ip` (text; an unreadable address is covered by none).
pub fn allowlisted(list: &[String], ip: &str) -> bool {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else {
        return false;
    };
    list.iter().any(|entry| covers(entry, ip))
}

/// Check one entry; the error says what is wrong in words.
pub fn check(entry: &str) -> Result<(), String> {
    let (net, bits) = match entry.split_once('/') {
        Some((net, bits)) => (net, Some(bits)),
        None => (entry, None),
    };
    let max = match net.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => 32,
        Ok(IpAddr::V6(_)) => 128,
        Err(_) => {
            return Err(format!(
                "\"{entry}\" is not an address or a network such as 192.0.2.0/24"
            ))
        }
    };
    match bits {
        Some(bits) if !bits.parse::<u32>().is_ok_and(|b| b <= max) => {
            Err(format!("\"{entry}\": the prefix length must be 0 to {max}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn entries_cover_addresses_and_networks_of_their_family_only() {
        assert!(
            covers("192.0.2.0/24", ip("192.0.2.77")),
            "inside the network"
        );
        assert!(!covers("192.0.2.0/24", ip("192.0.3.1")), "outside it");
        assert!(covers("198.51.100.7", ip("198.51.100.7")), "one address");
        assert!(
            covers("0.0.0.0/0", ip("203.0.113.1")),
            "/0 is every IPv4 address"
        );
        assert!(
            covers("2001:db8::/32", ip("2001:db8:1::5")),
            "IPv6 networks"
        );
        assert!(
            !covers("2001:db8::/32", ip("192.0.2.1")),
            "not across families"
        );
        assert!(
            covers("192.0.2.0/24", ip("::ffff:192.0.2.9")),
            "an IPv4 address written as IPv6 is the IPv4 address: no way around the list"
        );
        assert!(
            !covers("not an address", ip("192.0.2.1")),
            "nonsense covers nothing"
        );
        assert!(
            !covers("192.0.2.1/abc", ip("192.0.2.1")),
            "a broken prefix is not read as the bare address"
        );
        assert!(
            !covers("192.0.2.0/33", ip("192.0.2.1")),
            "nor a prefix too long"
        );
        assert!(
            allowlisted(&["10.0.0.0/8".into()], " 10.1.2.3 "),
            "text addresses are trimmed"
        );
        assert!(
            !allowlisted(&["10.0.0.0/8".into()], "ten"),
            "a non-address is never listed"
        );
    }

    #[test]
    fn bad_entries_are_refused_in_words() {
        assert!(
            check("192.0.2.0/24").is_ok() && check("2001:db8::1").is_ok(),
            "a network and an IPv6 address are good entries"
        );
        let err = check("example.org").expect_err("a name is no address");
        assert!(
            err.contains("not an address"),
            "the error says what an entry must be: {err}"
        );
        let err = check("192.0.2.0/40").expect_err("too long");
        assert!(
            err.contains("0 to 32"),
            "the error names the prefix lengths allowed: {err}"
        );
    }
}

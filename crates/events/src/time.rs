//! Timestamps in the formats the logs use, to microseconds since the epoch, by hand: a
//! general date parser would cost more than the rest of the line.

/// `2026-11-23T02:41:57.390647Z`, `2026-11-23T02:41:57+01:00`, `2026-11-23T02:41:57.1Z`; and
/// as Python's logging writes `%Y-%m-%d %H:%M:%S %z`: `2026-11-23 02:41:57 +0100` (a space
/// before an offset without a colon).
pub fn parse_rfc3339(s: &[u8]) -> Option<i64> {
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b' ')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let (hour, minute, second) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if rest.first() == Some(&b'.') {
        let frac_len = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if frac_len == 0 {
            return None;
        }
        let frac = &rest[1..1 + frac_len];
        for i in 0..6 {
            micros = micros * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
        rest = &rest[1 + frac_len..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
        | [b' ', sign @ (b'+' | b'-'), h1, h2, m1, m2]
        | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let seconds = civil_seconds(year, month, day, hour, minute, second)? - offset * 60;
    Some(seconds * 1_000_000 + micros)
}

/// nginx's `$time_local`: `23/Nov/2026:02:41:57 +0000`.
pub fn parse_nginx_time(s: &[u8]) -> Option<i64> {
    if s.len() != 26 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' || s[20] != b' ' {
        return None;
    }
    let day = digits(&s[0..2])?;
    let month = match &s[3..6] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let year = digits(&s[7..11])?;
    let (hour, minute, second) = (
        digits(&s[12..14])?,
        digits(&s[15..17])?,
        digits(&s[18..20])?,
    );
    let sign = match s[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = (digits(&s[22..24])?, digits(&s[24..26])?);
    if h > 23 || m > 59 {
        return None;
    }
    let offset = sign * (h * 60 + m);
    Some((civil_seconds(year, month, day, hour, minute, second)? - offset * 60) * 1_000_000)
}

fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Seconds since the epoch of a UTC civil time (Howard Hinnant's days_from_civil).
fn civil_seconds(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> Option<i64> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        // 2026-11-23T02:41:57Z is 1795401717 (date -d ... +%s).
        assert_eq!(
            parse_rfc3339(b"2026-11-23T02:41:57Z"),
            Some(1_795_401_717_000_000),
            "whole seconds in UTC"
        );
        assert_eq!(
            parse_rfc3339(b"2026-11-23T02:41:57.390647Z"),
            Some(1_795_401_717_390_647),
            "microseconds are kept"
        );
        assert_eq!(
            parse_rfc3339(b"2026-11-23T03:41:57.5+01:00"),
            Some(1_795_401_717_500_000),
            "offsets are applied and short fractions padded"
        );
        assert_eq!(
            parse_rfc3339(b"2026-11-23 03:41:57 +0100"),
            Some(1_795_401_717_000_000),
            "Python logging's %Y-%m-%d %H:%M:%S %z (Radicale's log)"
        );
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0), "the epoch");
        assert_eq!(
            parse_rfc3339(b"2024-02-29T12:00:00Z"),
            Some(1_709_208_000_000_000),
            "leap day"
        );
    }

    #[test]
    fn rfc3339_refuses_garbage() {
        for bad in [
            &b""[..],
            b"2026-13-01T00:00:00Z",
            b"2026-11-23T02:41:57",
            b"2026-11-23T02:41:57.Z",
            b"2026-11-23 02:41:57  +0100",
            b"2026-11-23 02:41:57 +01",
            b"yesterday at noon",
        ] {
            assert_eq!(
                parse_rfc3339(bad),
                None,
                "a malformed timestamp is refused: {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn nginx_time_with_offsets() {
        assert_eq!(
            parse_nginx_time(b"23/Nov/2026:02:41:57 +0000"),
            Some(1_795_401_717_000_000),
            "nginx time in UTC"
        );
        assert_eq!(
            parse_nginx_time(b"23/Nov/2026:03:41:57 +0100"),
            Some(1_795_401_717_000_000),
            "local time with an offset is the same instant"
        );
        assert_eq!(
            parse_nginx_time(b"23/Foo/2026:02:41:57 +0000"),
            None,
            "unknown month"
        );
    }
}

//! The kernel's TCP socket tables, `/proc/net/tcp` and `/proc/net/tcp6`, parsed: for each
//! socket its local and remote address, its state, the uid that owns it and its inode.
//!
//! Plain std, no crate paths: the fuzz target `proc_net_tcp` includes this file as it is.
//!
//! A line looks like (addresses are the kernel's raw words in hex, in the host's byte order;
//! ports are hex; uid and inode are decimal):
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//!    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 43121 1 ...
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `TCP_ESTABLISHED`.
pub const ESTABLISHED: u8 = 0x01;
/// `TCP_LISTEN`.
pub const LISTEN: u8 = 0x0A;

/// One socket of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    pub uid: u32,
    /// 0 for a socket no process holds yet (a connection waiting to be accepted).
    pub inode: u64,
}

/// Every well-formed line of a table; the header and anything malformed are skipped.
pub fn parse(table: &str) -> Vec<Socket> {
    table.lines().filter_map(line).collect()
}

fn line(line: &str) -> Option<Socket> {
    let mut fields = line.split_ascii_whitespace();
    let slot = fields.next()?;
    if !slot.ends_with(':') {
        return None;
    }
    let local = address(fields.next()?)?;
    let remote = address(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt
    let mut fields = fields.skip(3);
    let uid = fields.next()?.parse().ok()?;
    let _timeout = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    Some(Socket {
        local,
        remote,
        state,
        uid,
        inode,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6).
fn address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if !ip.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?.to_ne_bytes())),
        32 => {
            let mut octets = [0u8; 16];
            for (i, chunk) in octets.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(&ip[i * 8..i * 8 + 8])?.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One 32-bit word as the kernel printed it (`%08X` of the value in memory).
fn word(hex: &str) -> Option<u32> {
    u32::from_str_radix(hex, 16).ok()
}

/// Whether a socket listening on `local` takes connections made to `target`: the same
/// address, the unspecified address of its family, or (a dual-stack socket) `::` or the
/// IPv4-mapped form of an IPv4 target.
pub fn takes(local: SocketAddr, target: SocketAddr) -> bool {
    if local.port() != target.port() {
        return false;
    }
    let target_ip = canonical(target.ip());
    match canonical(local.ip()) {
        ip if ip == target_ip => true,
        IpAddr::V4(ip) => ip.is_unspecified() && target_ip.is_ipv4(),
        IpAddr::V6(ip) => ip.is_unspecified(),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B3AD 00000000:0000 0A 00000000:00000001 00:00000000 00000000 65534        0 571016 2 0000000051017bf9 100 0 0 10 0
  13: 0100007F:B3AD 0100007F:B2EA 01 00000000:00000000 00:00000000 00000000 65534        0 0 1 00000000607e86ed 20 0 0 10 -1
  14: garbage
";

    #[test]
    fn the_kernel_s_table_is_read_as_it_prints_it() {
        let sockets = parse(TABLE);
        assert_eq!(sockets.len(), 2, "the header and a broken line are skipped");
        let here = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(
            sockets[0].local,
            format!("127.0.0.1:{}", 0xB3AD).parse().expect("addr"),
            "on this host's byte order ({here:08X} is 127.0.0.1)"
        );
        assert_eq!(
            (sockets[0].state, sockets[0].uid, sockets[0].inode),
            (LISTEN, 65534, 571_016),
            "state, owner and inode"
        );
        assert_eq!(
            (sockets[1].state, sockets[1].inode),
            (ESTABLISHED, 0),
            "a connection not yet accepted has no inode but has its owner"
        );
        let v6 = parse("  0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 7 1\n");
        assert_eq!(
            v6[0].local,
            "[::1]:8080".parse().expect("addr"),
            "IPv6 in four words"
        );
    }

    #[test]
    fn a_listener_takes_its_address_the_unspecified_one_and_mapped_ones() {
        let target: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        for (local, takes_it) in [
            ("127.0.0.1:8080", true),
            ("0.0.0.0:8080", true),
            ("[::]:8080", true),
            ("[::ffff:127.0.0.1]:8080", true),
            ("127.0.0.2:8080", false),
            ("[::1]:8080", false),
            ("127.0.0.1:8081", false),
        ] {
            assert_eq!(
                takes(local.parse().expect("addr"), target),
                takes_it,
                "{local} for {target}"
            );
        }
        let v6: SocketAddr = "[::1]:8080".parse().expect("addr");
        assert!(
            !takes("0.0.0.0:8080".parse().expect("addr"), v6),
            "an IPv4 socket takes no IPv6 connection"
        );
    }
}

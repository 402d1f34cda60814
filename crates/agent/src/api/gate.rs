//! Who gets a connection slot, for anyone who can reach the agent's port.
//!
//! A connection holds a handshake slot from accept until its TLS handshake is done: at most
//! [`MAX_HANDSHAKES`] in all and [`MAX_PER_SOURCE`] from one source (an IPv4 address, or an
//! IPv6 /64, which one host usually has whole). When the slots are full, the oldest
//! connection that has not yet sent a whole ClientHello gives its slot up to the newcomer;
//! a connection that has sent one (a console presenting its certificate, among others) is
//! never pushed out, and one that cannot get a slot is closed at once. Idle sockets, however
//! many and from wherever, therefore cycle through the slots without holding them, and a
//! console that speaks promptly always gets through. After the handshake, connections with a
//! verified client certificate are counted apart from those without, so none of the latter
//! ever take a fleet connection's place.
//!
//! What happens to connections that are refused is logged through [`Noise`]: a few lines per
//! window and then a count, never a line per connection.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Handshakes under way at once, in all.
pub const MAX_HANDSHAKES: usize = 256;
/// Handshakes under way at once from one source.
pub const MAX_PER_SOURCE: usize = 32;
/// Lines about refused connections per window, before they are only counted.
const NOISE_LINES: u32 = 10;
const NOISE_WINDOW: Duration = Duration::from_secs(60);

/// Where a connection comes from, as far as limits go: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let mut octets = v6.octets();
                    octets[8..].fill(0);
                    Source(IpAddr::V6(octets.into()))
                }
            },
        }
    }
}

/// The handshake slots.
#[derive(Debug, Default)]
pub struct Gate {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    next: u64,
    /// By age: the oldest first.
    taken: BTreeMap<u64, Slot>,
    per_source: HashMap<Source, usize>,
}

#[derive(Debug)]
struct Slot {
    source: Source,
    /// Has sent its whole ClientHello: never pushed out.
    heard: bool,
    push_out: Option<oneshot::Sender<()>>,
}

impl Slots {
    fn release(&mut self, id: u64) -> Option<Slot> {
        let slot = self.taken.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&slot.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&slot.source);
            }
        }
        Some(slot)
    }

    /// Push out the oldest connection that has not spoken (from `source`, if given).
    fn push_out_oldest(&mut self, source: Option<Source>) -> bool {
        let oldest = self
            .taken
            .iter()
            .find(|(_, slot)| !slot.heard && source.is_none_or(|s| s == slot.source))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| self.release(id)) {
            Some(mut slot) => {
                if let Some(tell) = slot.push_out.take() {
                    let _ = tell.send(());
                }
                true
            }
            None => false,
        }
    }
}

impl Gate {
    /// A handshake slot for a connection from `source`, pushing out the oldest silent one if
    /// need be; `None` when every slot it could have is held by a connection that spoke.
    pub fn admit(self: &Arc<Self>, source: Source) -> Option<Ticket> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.per_source.get(&source).copied().unwrap_or(0) >= MAX_PER_SOURCE
            && !slots.push_out_oldest(Some(source))
        {
            return None;
        }
        if slots.taken.len() >= MAX_HANDSHAKES && !slots.push_out_oldest(None) {
            return None;
        }
        let (tell, pushed_out) = oneshot::channel();
        let id = slots.next;
        slots.next += 1;
        slots.taken.insert(
            id,
            Slot {
                source,
                heard: false,
                push_out: Some(tell),
            },
        );
        *slots.per_source.entry(source).or_default() += 1;
        Some(Ticket {
            gate: self.clone(),
            id,
            pushed_out,
        })
    }

    /// Handshakes under way now.
    #[cfg(test)]
    fn taken(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .taken
            .len()
    }
}

/// A connection's handshake slot, released when dropped.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    id: u64,
    /// Resolves when a newer connection took this slot.
    pub pushed_out: oneshot::Receiver<()>,
}

impl Ticket {
    /// The whole ClientHello arrived: the slot is no longer given up to newcomers.
    pub fn heard(&self) {
        let mut slots = self
            .gate
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.taken.get_mut(&self.id) {
            slot.heard = true;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(self.id);
    }
}

/// Lines about refused connections: [`NOISE_LINES`] per window, then only counted, and the
/// count said when the next window begins.
#[derive(Debug)]
pub struct Noise {
    window: Mutex<(Instant, u32, u32)>,
}

impl Default for Noise {
    fn default() -> Self {
        Noise {
            window: Mutex::new((Instant::now(), 0, 0)),
        }
    }
}

impl Noise {
    /// Say `what` about a connection from `remote`, unless enough was said this window.
    pub fn say(
        &self,
        remote: std::net::SocketAddr,
        what: &str,
        error: Option<&dyn std::fmt::Display>,
    ) {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let (started, said, held) = &mut *window;
        if started.elapsed() >= NOISE_WINDOW {
            if *held > 0 {
                tracing::info!(
                    held_back = *held,
                    "more connections were refused or timed out than were logged"
                );
            }
            *started = Instant::now();
            *said = 0;
            *held = 0;
        }
        if *said >= NOISE_LINES {
            *held += 1;
            return;
        }
        *said += 1;
        match error {
            Some(e) => tracing::info!(%remote, error = %e, "{what}"),
            None => tracing::info!(%remote, "{what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().expect("ip"))
    }

    #[test]
    fn silent_connections_give_way_and_speaking_ones_keep_their_slot() {
        let gate = Arc::new(Gate::default());
        let here = source("192.0.2.1");
        let mut tickets: Vec<Ticket> = (0..MAX_PER_SOURCE)
            .map(|_| gate.admit(here).expect("a slot"))
            .collect();
        tickets[1].heard();
        let newcomer = gate.admit(here).expect("the oldest silent one gives way");
        assert!(
            tickets[0].pushed_out.try_recv().is_ok(),
            "the oldest silent connection was told to go"
        );
        assert!(
            tickets[1].pushed_out.try_recv().is_err(),
            "a connection that spoke keeps its slot"
        );
        assert_eq!(gate.taken(), MAX_PER_SOURCE, "never more than the limit");
        for t in &tickets[2..] {
            t.heard();
        }
        newcomer.heard();
        assert!(
            gate.admit(here).is_none(),
            "when every slot spoke, a newcomer is refused"
        );
        assert!(
            gate.admit(source("192.0.2.2")).is_some(),
            "while another source still gets in"
        );
        drop(tickets);
        drop(newcomer);
        assert_eq!(gate.taken(), 0, "dropped tickets free their slots");
    }

    #[test]
    fn an_ipv6_host_is_one_source_per_64() {
        assert_eq!(
            source("2001:db8::1"),
            source("2001:db8::ffff:1"),
            "one /64 is one source"
        );
        assert_ne!(
            source("2001:db8::1"),
            source("2001:db8:0:1::1"),
            "another /64 is another"
        );
        assert_eq!(
            source("::ffff:192.0.2.1"),
            source("192.0.2.1"),
            "a mapped IPv4 address is that address"
        );
    }
}

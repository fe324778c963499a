//! Who holds connections: at most so many at once in all, and so many from one client, so
//! that idle or slow connections from a few addresses (slowloris, slow readers) cannot take
//! every slot and a scrape from anyone else still gets in.
//!
//! A client is an IPv4 address, or an IPv6 /64 (one host usually has a whole /64 to pick
//! addresses from). IPv4-mapped IPv6 addresses (a dual-stack listener) count as IPv4.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// One client, as the limits count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(ip: IpAddr) -> Client {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.segments();
                Client(IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)))
            }
            v4 => Client(v4),
        }
    }
}

/// Why a connection was closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken.
    Full,
    /// This client holds its share already.
    ClientFull,
}

/// The connections open now, in all and by client.
pub struct Clients {
    max: usize,
    per_client: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Only clients with a connection open: at most `max` entries.
    by_client: HashMap<Client, usize>,
}

/// A connection's place; given back when dropped.
pub struct Slot {
    clients: Arc<Clients>,
    client: Client,
}

/// Descriptors kept for everything but HTTP connections (the capture, the outputs, the
/// runtime, a few accepts in flight).
const FDS_KEPT: u64 = 64;

/// `max`, or fewer if the process may not open that many descriptors besides its others:
/// past the limit, accept() would fail and connections wait in the kernel's queue, where
/// no limit per client applies.
pub fn within_fd_limit(max: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match soft {
        Some(n) => max.min(usize::try_from(n.saturating_sub(FDS_KEPT).max(16)).unwrap_or(max)),
        None => max,
    }
}

impl Clients {
    pub fn new(max: usize, per_client: usize) -> Arc<Clients> {
        Arc::new(Clients {
            max: max.max(1),
            per_client: per_client.max(1),
            open: Mutex::default(),
        })
    }

    /// A slot for a new connection from `client`, or why not.
    pub fn admit(self: &Arc<Self>, client: Client) -> Result<Slot, Refused> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max {
            return Err(Refused::Full);
        }
        let mine = open.by_client.entry(client).or_insert(0);
        if *mine >= self.per_client {
            return Err(Refused::ClientFull);
        }
        *mine += 1;
        open.total += 1;
        Ok(Slot {
            clients: Arc::clone(self),
            client,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Slot {
    pub fn client(&self) -> Client {
        self.client
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Client {
        Client::of(s.parse().unwrap())
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_64() {
        assert_eq!(ip("::ffff:192.0.2.1"), ip("192.0.2.1"));
        assert_ne!(ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
    }

    #[test]
    fn limits_per_client_and_in_all_and_slots_come_back() {
        let c = Clients::new(3, 2);
        let a1 = c.admit(ip("192.0.2.1")).unwrap();
        let _a2 = c.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(c.admit(ip("192.0.2.1")).err(), Some(Refused::ClientFull));
        let _b = c.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(c.admit(ip("192.0.2.3")).err(), Some(Refused::Full));
        drop(a1);
        assert_eq!(c.open(), 2);
        let _c = c.admit(ip("192.0.2.3")).unwrap();
        assert_eq!(c.open(), 3);
    }

    #[test]
    fn the_limit_leaves_descriptors_for_the_rest() {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let n = within_fd_limit(1_000_000);
        if let Some(soft) = soft {
            assert!(n as u64 <= soft.saturating_sub(FDS_KEPT).max(16));
        }
        assert_eq!(within_fd_limit(3), 3);
    }

    #[test]
    fn clients_without_connections_are_forgotten() {
        let c = Clients::new(10, 1);
        for i in 0..100u8 {
            drop(c.admit(ip(&format!("198.51.100.{i}"))).unwrap());
        }
        assert!(c.open.lock().unwrap().by_client.is_empty());
    }
}

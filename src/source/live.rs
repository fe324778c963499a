//! Live capture through libpcap (cargo feature `live`; needs libpcap-dev to build).
//!
//! The capture never blocks for longer than the read timeout, so a quiet link still hands
//! control back several times a second ([`LiveSource::next_packet`] returns `None`): the
//! caller lets packet time pass and notices signals. libpcap's own read timeout cannot do this
//! on Linux: with TPACKET_V3 the kernel retires a block after the timeout only if it holds a
//! packet, and libpcap then waits in `poll` without a timeout, so an idle link would block
//! forever. The handle is non-blocking instead, and mailtap polls its descriptor itself; the
//! libpcap timeout still sets how long the kernel holds a block of packets back. Packet time is the kernel's timestamp (µs), the same clock the caller
//! estimates from the wall clock when nothing arrives. The kernel filter is the caller's
//! (`--filter`) or one built from the port map for the link type the interface turned out to
//! have ([`super::filter::port_filter`]).
//!
//! Opening needs root or `CAP_NET_RAW` + `CAP_NET_ADMIN`; once open, the capture keeps working
//! after the process gives up its privileges.

use super::filter::port_filter;
use super::{CaptureStats, Linktype, LiveSource, Packet, Timestamp};
use crate::config::PortMap;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::time::Duration;

/// How to open the capture.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// An interface name, or `any` (all interfaces, Linux cooked capture).
    pub interface: String,
    /// Ignored on `any`, which has no promiscuous mode.
    pub promiscuous: bool,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// The kernel's capture buffer in bytes: what absorbs a burst while mailtap is busy.
    pub buffer_size: u32,
    /// How long a read waits for packets before it returns `None`.
    pub read_timeout: Duration,
    pub filter: FilterSpec,
}

/// Which packets the kernel hands over.
#[derive(Clone, Debug)]
pub enum FilterSpec {
    /// A BPF expression from the user, as is.
    Expr(String),
    /// TCP on these ports, plain and (on Ethernet) VLAN-tagged.
    Ports(PortMap),
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot capture on {interface}: {source}{hint}")]
    Open {
        interface: String,
        source: pcap::Error,
        hint: &'static str,
    },
    #[error("--filter `{filter}`: {source}")]
    Filter { filter: String, source: pcap::Error },
    #[error("capture on {interface} failed: {source}")]
    Read {
        interface: String,
        source: pcap::Error,
    },
}

const PERMISSION_HINT: &str =
    " (live capture needs root, or the capabilities CAP_NET_RAW and CAP_NET_ADMIN)";

/// One open capture.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    interface: String,
    link: Linktype,
    filter: String,
    read_timeout: PollTimeout,
    /// The last read found nothing: the next one waits for the descriptor first.
    idle: bool,
}

impl LiveCapture {
    pub fn open(opts: &LiveOptions) -> Result<Self, LiveError> {
        let interface = opts.interface.clone();
        let open_err = |source: pcap::Error| {
            let text = source.to_string();
            let denied = text.contains("not permitted") || text.contains("ermission denied");
            LiveError::Open {
                interface: interface.clone(),
                source,
                hint: if denied { PERMISSION_HINT } else { "" },
            }
        };
        let timeout_ms = i32::try_from(opts.read_timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        // libpcap reports "no promiscuous mode on any" as an activation warning, which the
        // pcap crate treats as an error: ask only where it exists.
        let promiscuous = opts.promiscuous && opts.interface != "any";
        let mut cap = pcap::Capture::from_device(opts.interface.as_str())
            .map_err(open_err)?
            .promisc(promiscuous)
            .snaplen(i32::try_from(opts.snaplen).unwrap_or(i32::MAX))
            .buffer_size(i32::try_from(opts.buffer_size).unwrap_or(i32::MAX))
            .timeout(timeout_ms)
            .open()
            .and_then(pcap::Capture::setnonblock)
            .map_err(open_err)?;
        let link = Linktype(cap.get_datalink().0);
        let filter = match &opts.filter {
            FilterSpec::Expr(e) => e.clone(),
            FilterSpec::Ports(ports) => port_filter(ports, link == Linktype::ETHERNET),
        };
        cap.filter(&filter, true)
            .map_err(|source| LiveError::Filter {
                filter: filter.clone(),
                source,
            })?;
        Ok(LiveCapture {
            cap,
            interface,
            link,
            filter,
            read_timeout: PollTimeout::from(u16::try_from(timeout_ms).unwrap_or(u16::MAX)),
            idle: false,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface's link type, as the decoder reads it.
    pub fn link(&self) -> Linktype {
        self.link
    }

    /// The BPF filter in force.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    fn read_err(&self, source: pcap::Error) -> LiveError {
        LiveError::Read {
            interface: self.interface.clone(),
            source,
        }
    }
}

impl LiveSource for LiveCapture {
    type Error = LiveError;

    /// `None` when nothing could be read: at once after a read that found the buffer empty,
    /// else after waiting up to the read timeout (or less, when a signal arrives).
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        // Split borrows: a packet borrows the capture, the rest are other fields.
        let LiveCapture {
            cap,
            interface,
            link,
            read_timeout,
            idle,
            ..
        } = self;
        if *idle {
            *idle = false;
            let mut fds = [PollFd::new(cap.as_fd(), PollFlags::POLLIN)];
            // EINTR (a signal) is a quiet return like a timeout; the caller checks its flag.
            if !matches!(poll(&mut fds, *read_timeout), Ok(n) if n > 0) {
                return Ok(None);
            }
        }
        let link = *link;
        match cap.next_packet() {
            Ok(p) => Ok(Some(Packet {
                ts: timestamp(p.header.ts.tv_sec, p.header.ts.tv_usec),
                link,
                data: p.data,
                wire_len: p.header.len.max(p.header.caplen),
            })),
            // Non-blocking: nothing buffered now. NoMorePackets follows a break of the loop.
            Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => {
                *idle = true;
                Ok(None)
            }
            Err(source) => Err(LiveError::Read {
                interface: interface.clone(),
                source,
            }),
        }
    }

    fn stats(&mut self) -> Result<CaptureStats, LiveError> {
        match self.cap.stats() {
            Ok(s) => Ok(CaptureStats {
                received: s.received,
                dropped: s.dropped,
                if_dropped: s.if_dropped,
            }),
            Err(e) => Err(self.read_err(e)),
        }
    }
}

/// libpcap's `timeval` (microsecond precision, the default) → packet time; a time before the
/// epoch (a broken clock) is the epoch.
fn timestamp(sec: i64, usec: i64) -> Timestamp {
    let nanos = i128::from(sec) * 1_000_000_000 + i128::from(usec) * 1_000;
    Timestamp::from_nanos(u64::try_from(nanos.max(0)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeval_to_packet_time() {
        assert_eq!(
            timestamp(1_795_896_000, 123_456).to_string(),
            "2026-11-28T20:00:00.123456Z"
        );
        assert_eq!(timestamp(-5, 0), Timestamp::ZERO);
    }
}

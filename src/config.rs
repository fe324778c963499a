//! What the sensor watches and how much it may hold: ports → protocols, caps and timeouts.
//! Validated once, when the command line is read; everything downstream trusts it.

use crate::decode::defrag::DefragLimits;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The mail services mailtap knows. Also the `protocol` label of every metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Smtp,
    Submission,
    Submissions,
    Imap,
    Imaps,
    Pop3,
    Pop3s,
}

/// The dialogue a protocol speaks once in clear (implicit-TLS ports speak it inside TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Smtp,
    Imap,
    Pop3,
}

impl Protocol {
    pub const ALL: [Protocol; 7] = [
        Protocol::Smtp,
        Protocol::Submission,
        Protocol::Submissions,
        Protocol::Imap,
        Protocol::Imaps,
        Protocol::Pop3,
        Protocol::Pop3s,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Submission => "submission",
            Protocol::Submissions => "submissions",
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Pop3 => "pop3",
            Protocol::Pop3s => "pop3s",
        }
    }

    pub const fn default_port(self) -> u16 {
        match self {
            Protocol::Smtp => 25,
            Protocol::Submission => 587,
            Protocol::Submissions => 465,
            Protocol::Imap => 143,
            Protocol::Imaps => 993,
            Protocol::Pop3 => 110,
            Protocol::Pop3s => 995,
        }
    }

    /// TLS from the first byte (RFC 8314), no cleartext dialogue before it.
    pub const fn implicit_tls(self) -> bool {
        matches!(
            self,
            Protocol::Submissions | Protocol::Imaps | Protocol::Pop3s
        )
    }

    pub const fn family(self) -> Family {
        match self {
            Protocol::Smtp | Protocol::Submission | Protocol::Submissions => Family::Smtp,
            Protocol::Imap | Protocol::Imaps => Family::Imap,
            Protocol::Pop3 | Protocol::Pop3s => Family::Pop3,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = Protocol::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown protocol `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// One `--port PORT=PROTOCOL` mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMapping {
    pub port: u16,
    pub protocol: Protocol,
}

impl FromStr for PortMapping {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (port, proto) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not PORT=PROTOCOL (e.g. 2525=smtp)"))?;
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| format!("`{port}` is not a TCP port number"))?;
        if port == 0 {
            return Err("port 0 cannot carry a connection".into());
        }
        Ok(PortMapping {
            port,
            protocol: proto.trim().parse()?,
        })
    }
}

/// Which TCP ports carry which protocol: a flat table, so the per-packet check is one load.
#[derive(Clone)]
pub struct PortMap {
    by_port: Box<[Option<Protocol>]>,
}

impl PortMap {
    /// The default ports of every protocol, then `extra` on top (a later mapping wins).
    pub fn new(extra: &[PortMapping]) -> Self {
        let mut by_port = vec![None; 1 << 16].into_boxed_slice();
        let defaults = Protocol::ALL.map(|p| PortMapping {
            port: p.default_port(),
            protocol: p,
        });
        for m in defaults.iter().chain(extra) {
            if let Some(slot) = by_port.get_mut(usize::from(m.port)) {
                *slot = Some(m.protocol);
            }
        }
        PortMap { by_port }
    }

    pub fn get(&self, port: u16) -> Option<Protocol> {
        self.by_port.get(usize::from(port)).copied().flatten()
    }

    /// Every mapped port, ascending (for BPF filters and the report).
    pub fn ports(&self) -> impl Iterator<Item = (u16, Protocol)> + '_ {
        (0..=u16::MAX).filter_map(|p| self.get(p).map(|proto| (p, proto)))
    }
}

impl Default for PortMap {
    fn default() -> Self {
        PortMap::new(&[])
    }
}

impl fmt::Debug for PortMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.ports()).finish()
    }
}

/// Bounds on what the flow table may hold, and how long idle flows live (in packet time); and
/// the defragmenter's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Flows tracked at once; the least recently active is evicted beyond this.
    pub max_flows: usize,
    /// Out-of-order bytes held per direction of a flow.
    pub max_buffer_per_direction: usize,
    /// Out-of-order bytes held across all flows of one worker.
    pub max_buffer_total: usize,
    /// Out-of-order segments (holes + 1) held per direction.
    pub max_segments_per_direction: usize,
    /// A flow that has seen a payload byte is closed after this long without a packet.
    pub idle_timeout: Duration,
    /// A flow that never completed a handshake nor carried payload (scans, floods) goes sooner.
    pub embryonic_timeout: Duration,
    /// After FIN both ways or RST, late packets (retransmissions) are absorbed this long.
    pub closed_linger: Duration,
    /// IP reassembly: for the whole sensor, whatever the workers (one defragmenter serves
    /// them all).
    pub defrag: DefragLimits,
}

impl Limits {
    /// The share of one of `workers` flow tables: the flow and total-buffer caps are for the
    /// whole sensor, each worker holds its part (rounded up); per-flow caps stay as they are.
    pub fn per_worker(&self, workers: usize) -> Limits {
        let n = workers.max(1);
        Limits {
            max_flows: self.max_flows.div_ceil(n).max(1),
            max_buffer_total: self.max_buffer_total.div_ceil(n),
            ..self.clone()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: 1_000_000,
            max_buffer_per_direction: 256 * 1024,
            max_buffer_total: 256 * 1024 * 1024,
            max_segments_per_direction: 32,
            idle_timeout: Duration::from_secs(300),
            embryonic_timeout: Duration::from_secs(30),
            closed_linger: Duration::from_secs(5),
            defrag: DefragLimits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_map_to_their_protocols() {
        let map = PortMap::default();
        for p in Protocol::ALL {
            assert_eq!(map.get(p.default_port()), Some(p));
        }
        assert_eq!(map.get(80), None);
        assert_eq!(map.ports().count(), 7);
    }

    #[test]
    fn extra_mapping_adds_and_overrides() {
        let extra = [
            "2525=smtp".parse().unwrap(),
            "25=submission".parse().unwrap(),
        ];
        let map = PortMap::new(&extra);
        assert_eq!(map.get(2525), Some(Protocol::Smtp));
        assert_eq!(map.get(25), Some(Protocol::Submission));
    }

    #[test]
    fn sensor_wide_caps_are_shared_by_the_workers() {
        let all = Limits {
            max_flows: 10_001,
            ..Limits::default()
        };
        let one = all.per_worker(4);
        assert_eq!(one.max_flows, 2_501);
        assert_eq!(one.max_buffer_total, all.max_buffer_total / 4);
        assert_eq!(one.max_buffer_per_direction, all.max_buffer_per_direction);
        assert_eq!(all.per_worker(0), all);
    }

    #[test]
    fn bad_mappings_are_explained() {
        assert!("2525"
            .parse::<PortMapping>()
            .unwrap_err()
            .contains("PORT=PROTOCOL"));
        assert!("x=smtp"
            .parse::<PortMapping>()
            .unwrap_err()
            .contains("port number"));
        assert!("0=smtp"
            .parse::<PortMapping>()
            .unwrap_err()
            .contains("port 0"));
        assert!("25=http"
            .parse::<PortMapping>()
            .unwrap_err()
            .contains("unknown protocol"));
    }
}

//! Prometheus metrics: the contract of DESIGN.md, fed by session records and sensor health.
//!
//! Label values come from closed sets only (protocols, outcomes, IANA names or `other`), so
//! cardinality stays bounded whatever the traffic. Combinations known in advance are exported
//! as 0, so rates and ratios exist before the first event.

use crate::config::Protocol;
use crate::decode::defrag::DefragEvent;
use crate::engine::{packet_result_label, Health, PACKET_RESULTS};
use crate::flow::table::CloseReason;
use crate::protection::{judge, Attack, Verdict};
use crate::record::{
    CipherSuite, ContentClass, Encryption, Group, KeyExchange, SessionRecord, Version,
};
use crate::session::dialogue::mechanism_labels;
use crate::sink::failure::Output;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use std::sync::{Mutex, PoisonError};

const NS: &str = "mailtap";

/// Where a live capture lost packets (`capture_dropped_packets_total{where}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropSite {
    /// The kernel's capture buffer was full: mailtap did not read fast enough.
    Kernel,
    /// The network interface or its driver dropped them.
    Interface,
}

impl DropSite {
    pub const ALL: [DropSite; 2] = [DropSite::Kernel, DropSite::Interface];

    pub fn label(self) -> &'static str {
        match self {
            DropSite::Kernel => "kernel",
            DropSite::Interface => "interface",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    sessions: IntCounterVec,
    starttls_offered: IntCounterVec,
    starttls_attempted: IntCounterVec,
    tls_sessions: IntCounterVec,
    tls_key_exchange: IntCounterVec,
    tls_weaknesses: IntCounterVec,
    tls_certificates: IntCounterVec,
    cleartext_auth: IntCounterVec,
    cleartext_messages: IntCounterVec,
    cleartext_messages_by_content: IntCounterVec,
    flows_unanswered: IntCounterVec,
    bytes: IntCounterVec,
    protection: IntCounterVec,
    anomalies: IntCounterVec,
    parse_errors: IntCounterVec,
    packets: IntCounterVec,
    ip_datagrams: IntCounterVec,
    fragment_overlaps: IntCounter,
    flows_active: IntGauge,
    flows_evicted: IntCounterVec,
    gaps: IntCounter,
    capture_dropped: IntCounterVec,
    output_errors: IntCounterVec,
    /// Health as last published, to turn cumulative snapshots into counter increments.
    published: Mutex<Health>,
    /// By [`Protocol::ALL`] index.
    resolved: Vec<Resolved>,
}

mod build;
mod resolved;
use resolved::{index_of, Families, Resolved};

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help).namespace(NS), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    /// Fails only if a metric above is defined wrongly (a bug, caught by the tests).
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let mut m = Metrics {
            sessions: counter(
                &r,
                "sessions_total",
                "Mail sessions, by protocol and how they were encrypted.",
                &["protocol", "encryption"],
            )?,
            starttls_offered: counter(
                &r,
                "starttls_offered_total",
                "Sessions whose server offered STARTTLS/STLS.",
                &["protocol"],
            )?,
            starttls_attempted: counter(
                &r,
                "starttls_attempted_total",
                "Sessions whose client sent STARTTLS/STLS.",
                &["protocol"],
            )?,
            tls_sessions: counter(
                &r,
                "tls_sessions_total",
                "Sessions whose TLS handshake was seen, by negotiated version and cipher suite.",
                &["protocol", "version", "cipher_suite", "forward_secret"],
            )?,
            tls_key_exchange: counter(
                &r,
                "tls_key_exchange_total",
                "TLS sessions by key exchange and group.",
                &["protocol", "key_exchange", "group", "post_quantum"],
            )?,
            tls_weaknesses: counter(
                &r,
                "tls_weaknesses_total",
                "Weaknesses of negotiated TLS parameters, one per session and weakness.",
                &["protocol", "weakness"],
            )?,
            tls_certificates: counter(
                &r,
                "tls_certificates_total",
                "TLS sessions by server certificate verdict.",
                &["protocol", "status"],
            )?,
            cleartext_auth: counter(
                &r,
                "cleartext_auth_total",
                "Logins sent before any TLS, by mechanism.",
                &["protocol", "mechanism"],
            )?,
            cleartext_messages: counter(
                &r,
                "cleartext_messages_total",
                "Messages whose content crossed the wire unencrypted.",
                &["protocol"],
            )?,
            cleartext_messages_by_content: counter(
                &r,
                "cleartext_messages_by_content_total",
                "Messages whose content crossed the wire unencrypted, by end-to-end protection \
                 (OpenPGP, S/MIME).",
                &["protocol", "content"],
            )?,
            flows_unanswered: counter(
                &r,
                "flows_unanswered_total",
                "Connections that carried client payload with no sign of a server (no SYN-ACK, \
                 no server byte, no acknowledged server byte): spoofed packets and floods, not \
                 sessions.",
                &["protocol"],
            )?,
            bytes: counter(
                &r,
                "bytes_total",
                "Payload bytes of mail sessions, both directions.",
                &["protocol", "encryption"],
            )?,
            protection: counter(
                &r,
                "session_protection_total",
                "Per session and attack: was the session protected against it?",
                &["protocol", "attack", "verdict"],
            )?,
            anomalies: counter(
                &r,
                "anomalies_total",
                "Sessions showing an anomaly, by kind.",
                &["protocol", "anomaly"],
            )?,
            parse_errors: counter(
                &r,
                "parse_errors_total",
                "Sessions with bytes their protocol parser rejected (malformed, too long).",
                &["protocol"],
            )?,
            packets: counter(
                &r,
                "packets_total",
                "Packets seen, by what became of them.",
                &["result"],
            )?,
            ip_datagrams: counter(
                &r,
                "ip_datagrams_total",
                "IP datagrams that came in fragments, by what became of them: reassembled, or \
                 given up (timeout, over_cap, invalid, end_of_capture).",
                &["result"],
            )?,
            fragment_overlaps: {
                let c = IntCounter::with_opts(
                    Opts::new(
                        "ip_fragment_overlaps_total",
                        "IP fragments that overlapped bytes an earlier fragment of their datagram \
                         brought (the first copy is kept).",
                    )
                    .namespace(NS),
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            flows_evicted: counter(
                &r,
                "flows_evicted_total",
                "Flows closed before they ended, by reason.",
                &["reason"],
            )?,
            capture_dropped: counter(
                &r,
                "capture_dropped_packets_total",
                "Packets the capture lost before mailtap saw them: by the kernel (buffer full) \
                 or by the interface; every other number is a lower bound while this grows.",
                &["where"],
            )?,
            output_errors: counter(
                &r,
                "output_errors_total",
                "Writes to a file output that failed (a session record or a rewrite of the \
                 metrics file lost), by output.",
                &["output"],
            )?,
            gaps: {
                let c = IntCounter::with_opts(
                    Opts::new(
                        "reassembly_gaps_total",
                        "Stream gaps: bytes that were never seen.",
                    )
                    .namespace(NS),
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            flows_active: {
                let g = IntGauge::with_opts(
                    Opts::new("flows_active", "Connections tracked now.").namespace(NS),
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            registry: r,
            published: Mutex::new(Health::default()),
            resolved: Vec::new(),
        };
        build::register(&m.registry)?;
        m.zeros();
        m.resolved = Resolved::all(&Families {
            sessions: &m.sessions,
            bytes: &m.bytes,
            starttls_offered: &m.starttls_offered,
            starttls_attempted: &m.starttls_attempted,
            cleartext_messages: &m.cleartext_messages,
            cleartext_messages_by_content: &m.cleartext_messages_by_content,
            parse_errors: &m.parse_errors,
            protection: &m.protection,
        });
        Ok(m)
    }

    /// Every label combination known in advance, at 0.
    fn zeros(&self) {
        for p in Protocol::ALL.map(Protocol::name) {
            for e in Encryption::ALL.map(Encryption::label) {
                self.sessions.with_label_values(&[p, e]);
                self.bytes.with_label_values(&[p, e]);
            }
            self.starttls_offered.with_label_values(&[p]);
            self.starttls_attempted.with_label_values(&[p]);
            self.cleartext_messages.with_label_values(&[p]);
            for c in ContentClass::ALL {
                self.cleartext_messages_by_content
                    .with_label_values(&[p, c.label()]);
            }
            self.flows_unanswered.with_label_values(&[p]);
            self.parse_errors.with_label_values(&[p]);
            for a in Attack::ALL {
                for v in Verdict::ALL {
                    self.protection
                        .with_label_values(&[p, a.label(), v.label()]);
                }
            }
            for mech in mechanism_labels() {
                self.cleartext_auth.with_label_values(&[p, mech]);
            }
        }
        for i in 0..PACKET_RESULTS {
            self.packets.with_label_values(&[packet_result_label(i)]);
        }
        for e in DefragEvent::FATES {
            self.ip_datagrams.with_label_values(&[e.label()]);
        }
        for reason in CloseReason::ALL.iter().filter(|r| r.is_eviction()) {
            self.flows_evicted.with_label_values(&[reason.label()]);
        }
        for site in DropSite::ALL {
            self.capture_dropped.with_label_values(&[site.label()]);
        }
        for output in Output::ALL {
            self.output_errors.with_label_values(&[output.label()]);
        }
    }

    /// Count one failed write to a file output.
    pub fn output_error(&self, output: Output) {
        self.output_errors
            .with_label_values(&[output.label()])
            .inc();
    }

    /// Count packets the live capture lost since the last call (increments, not totals).
    pub fn capture_dropped(&self, site: DropSite, packets: u64) {
        self.capture_dropped
            .with_label_values(&[site.label()])
            .inc_by(packets);
    }

    /// Count a connection that was not a session because no server answered it.
    pub fn unanswered(&self, protocol: Protocol) {
        self.flows_unanswered
            .with_label_values(&[protocol.name()])
            .inc();
    }

    /// Count one finished session.
    pub fn session(&self, r: &SessionRecord) {
        let p = r.protocol.name();
        let Some(c) = self.resolved.get(index_of(&Protocol::ALL, &r.protocol)) else {
            return;
        };
        let enc = index_of(&Encryption::ALL, &r.encryption);
        if let Some(n) = c.sessions.get(enc) {
            n.inc();
        }
        if let Some(n) = c.bytes.get(enc) {
            n.inc_by(r.bytes_to_server + r.bytes_to_client);
        }
        if r.starttls_offered {
            c.starttls_offered.inc();
        }
        if r.starttls_attempted {
            c.starttls_attempted.inc();
        }
        for mech in &r.cleartext_auth {
            self.cleartext_auth.with_label_values(&[p, mech]).inc();
        }
        c.cleartext_messages.inc_by(r.cleartext_messages);
        for ((_, n), counter) in r.content_protection.iter().zip(&c.by_content) {
            if n > 0 {
                counter.inc_by(n);
            }
        }
        for (a, by_verdict) in Attack::ALL.iter().zip(&c.protection) {
            if let Some(n) = by_verdict.get(index_of(&Verdict::ALL, &judge(r, *a))) {
                n.inc();
            }
        }
        for a in r.anomalies.iter() {
            self.anomalies.with_label_values(&[p, a.label()]).inc();
        }
        if r.anomalies.iter().any(|a| a.is_parse_error()) {
            c.parse_errors.inc();
        }
        if let Some(tls) = &r.tls {
            self.tls(p, tls);
        }
    }

    /// Every label value comes from a closed set: the types' `label()` (registry names,
    /// `other`, the DH prime buckets), and `unknown` where the handshake did not show it.
    fn tls(&self, p: &str, tls: &crate::record::TlsInfo) {
        let flag = |v: Option<bool>| match v {
            Some(true) => "true",
            Some(false) => "false",
            None => UNKNOWN,
        };
        let version = tls.version.map_or(UNKNOWN, Version::label);
        let suite = tls.cipher_suite.map_or(UNKNOWN, CipherSuite::label);
        self.tls_sessions
            .with_label_values(&[p, version, suite, flag(tls.forward_secret)])
            .inc();
        let kx = tls.key_exchange.map_or(UNKNOWN, KeyExchange::label);
        let group = tls.group.map_or(UNKNOWN, Group::label);
        self.tls_key_exchange
            .with_label_values(&[p, kx, group, flag(tls.post_quantum)])
            .inc();
        for w in &tls.weaknesses {
            self.tls_weaknesses.with_label_values(&[p, w.label()]).inc();
        }
        self.tls_certificates
            .with_label_values(&[p, tls.certificate.status.label()])
            .inc();
    }

    /// Publish a cumulative health snapshot (all workers merged).
    pub fn health(&self, h: &Health) {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for i in 0..PACKET_RESULTS {
            let delta = h.packets[i].saturating_sub(published.packets[i]);
            self.packets
                .with_label_values(&[packet_result_label(i)])
                .inc_by(delta);
        }
        for reason in CloseReason::ALL.iter().filter(|r| r.is_eviction()) {
            let i = reason.index();
            self.flows_evicted
                .with_label_values(&[reason.label()])
                .inc_by(h.closed[i].saturating_sub(published.closed[i]));
        }
        for e in DefragEvent::FATES {
            let i = e.index();
            self.ip_datagrams
                .with_label_values(&[e.label()])
                .inc_by(h.datagrams[i].saturating_sub(published.datagrams[i]));
        }
        let overlap = DefragEvent::Overlap.index();
        self.fragment_overlaps
            .inc_by(h.datagrams[overlap].saturating_sub(published.datagrams[overlap]));
        self.gaps.inc_by(h.gaps.saturating_sub(published.gaps));
        self.flows_active
            .set(i64::try_from(h.active_flows).unwrap_or(i64::MAX));
        *published = h.clone();
    }

    /// The text exposition format (what `/metrics` serves and `--metrics-file` writes).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on metric families that cannot exist here.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The label of a TLS value the handshake did not show (no ServerHello, no key exchange).
const UNKNOWN: &str = "unknown";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_records::{plaintext_smtp, with_tls};
    use crate::record::{CertStatus, Version};

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(series))
            .map(|l| &l[series.len()..])
    }

    #[test]
    fn known_combinations_are_exported_as_zero() {
        let text = Metrics::new().unwrap().render();
        assert_eq!(
            line(
                &text,
                r#"mailtap_sessions_total{encryption="starttls_stripped",protocol="pop3s"}"#
            ),
            Some(" 0")
        );
        assert_eq!(
            line(
                &text,
                r#"mailtap_session_protection_total{attack="quantum_later",protocol="imap",verdict="unknown"}"#
            ),
            Some(" 0")
        );
        assert_eq!(
            line(&text, r#"mailtap_packets_total{result="fragment"}"#),
            Some(" 0")
        );
        assert_eq!(
            line(&text, r#"mailtap_flows_evicted_total{reason="table_full"}"#),
            Some(" 0")
        );
        assert_eq!(
            line(
                &text,
                r#"mailtap_ip_datagrams_total{result="end_of_capture"}"#
            ),
            Some(" 0")
        );
        assert_eq!(
            line(&text, "mailtap_ip_fragment_overlaps_total"),
            Some(" 0")
        );
        assert!(text.contains("mailtap_build_info{revision=\""));
        assert_eq!(
            line(&text, r#"mailtap_output_errors_total{output="sessions"}"#),
            Some(" 0")
        );
    }

    #[test]
    fn a_session_counts_in_every_family() {
        let m = Metrics::new().unwrap();
        m.session(&plaintext_smtp());
        m.session(&with_tls(
            Encryption::Starttls,
            Version::TLS13,
            true,
            false,
            CertStatus::Hidden,
        ));
        let text = m.render();
        let get = |s: &str| line(&text, s).unwrap_or("missing").trim().to_string();
        assert_eq!(
            get(r#"mailtap_sessions_total{encryption="plaintext",protocol="smtp"}"#),
            "1"
        );
        assert_eq!(
            get(r#"mailtap_sessions_total{encryption="starttls",protocol="smtp"}"#),
            "1"
        );
        assert_eq!(
            get(r#"mailtap_starttls_offered_total{protocol="smtp"}"#),
            "2"
        );
        assert_eq!(
            get(r#"mailtap_starttls_attempted_total{protocol="smtp"}"#),
            "1"
        );
        assert_eq!(
            get(r#"mailtap_cleartext_auth_total{mechanism="PLAIN",protocol="smtp"}"#),
            "1"
        );
        assert_eq!(
            get(r#"mailtap_cleartext_messages_total{protocol="smtp"}"#),
            "2"
        );
        for (content, n) in [
            ("none", "1"),
            ("pgp_encrypted", "1"),
            ("smime_encrypted", "0"),
        ] {
            let series = format!(
                "mailtap_cleartext_messages_by_content_total{{content=\"{content}\",protocol=\"smtp\"}}"
            );
            assert_eq!(get(&series), n, "{series}");
        }
        assert_eq!(
            get(r#"mailtap_bytes_total{encryption="plaintext",protocol="smtp"}"#),
            "1500"
        );
        assert_eq!(
            get(
                r#"mailtap_tls_sessions_total{cipher_suite="TLS_AES_256_GCM_SHA384",forward_secret="true",protocol="smtp",version="TLSv1.3"}"#
            ),
            "1"
        );
        assert_eq!(
            get(
                r#"mailtap_session_protection_total{attack="active",protocol="smtp",verdict="unknown"}"#
            ),
            "1"
        );
        assert_eq!(
            get(
                r#"mailtap_session_protection_total{attack="passive",protocol="smtp",verdict="exposed"}"#
            ),
            "1"
        );
        assert_eq!(
            get(r#"mailtap_tls_certificates_total{protocol="smtp",status="hidden"}"#),
            "1"
        );
    }

    #[test]
    fn parse_errors_count_sessions_with_a_parse_level_anomaly() {
        use crate::session::anomaly::Anomaly;
        let m = Metrics::new().unwrap();
        let zero = m.render();
        for p in Protocol::ALL {
            let series = format!("mailtap_parse_errors_total{{protocol=\"{}\"}}", p.name());
            assert_eq!(line(&zero, &series), Some(" 0"), "{series}");
        }
        let mut bad = plaintext_smtp();
        bad.anomalies.add(Anomaly::ProtocolViolation);
        bad.anomalies.add(Anomaly::LineTooLong);
        m.session(&bad);
        let mut odd = plaintext_smtp();
        odd.anomalies.add(Anomaly::OutOfWindow);
        m.session(&odd);
        let text = m.render();
        assert_eq!(
            line(&text, r#"mailtap_parse_errors_total{protocol="smtp"}"#),
            Some(" 1"),
            "one session, counted once; transport anomalies are not parse errors"
        );
    }

    #[test]
    fn health_snapshots_become_increments() {
        let m = Metrics::new().unwrap();
        let mut h = Health::default();
        h.packets[0] = 5;
        h.gaps = 2;
        h.active_flows = 7;
        m.health(&h);
        h.packets[0] = 8;
        m.health(&h);
        let text = m.render();
        let label = packet_result_label(0);
        assert_eq!(
            line(
                &text,
                &format!("mailtap_packets_total{{result=\"{label}\"}}")
            ),
            Some(" 8")
        );
        assert_eq!(line(&text, "mailtap_reassembly_gaps_total "), Some("2"));
        assert_eq!(line(&text, "mailtap_flows_active "), Some("7"));
    }

    #[test]
    fn unknown_code_points_share_one_label_value() {
        let m = Metrics::new().unwrap();
        for i in 0..100u16 {
            let mut r = with_tls(
                Encryption::ImplicitTls,
                Version(0x0305 + i),
                true,
                false,
                CertStatus::Hidden,
            );
            if let Some(tls) = &mut r.tls {
                tls.cipher_suite = Some(CipherSuite(0x7a00 + i));
                tls.group = Some(Group::Named(0x3000 + i));
            }
            m.session(&r);
        }
        let text = m.render();
        let series = |name: &str| text.lines().filter(|l| l.starts_with(name)).count();
        assert_eq!(series("mailtap_tls_sessions_total{"), 1, "{text}");
        assert_eq!(series("mailtap_tls_key_exchange_total{"), 1, "{text}");
        assert!(text.contains(
            r#"mailtap_tls_sessions_total{cipher_suite="other",forward_secret="true",protocol="smtp",version="other"} 100"#
        ), "{text}");
        assert!(text.contains(
            r#"mailtap_tls_key_exchange_total{group="other",key_exchange="ECDHE",post_quantum="false",protocol="smtp"} 100"#
        ), "{text}");
    }

    #[test]
    fn capture_drops_exist_at_zero_and_count_increments() {
        let m = Metrics::new().expect("metrics are well defined");
        let text = m.render();
        assert!(text.contains(r#"mailtap_capture_dropped_packets_total{where="kernel"} 0"#));
        assert!(text.contains(r#"mailtap_capture_dropped_packets_total{where="interface"} 0"#));
        m.capture_dropped(DropSite::Kernel, 5);
        m.capture_dropped(DropSite::Kernel, 2);
        let text = m.render();
        assert!(text.contains(r#"mailtap_capture_dropped_packets_total{where="kernel"} 7"#));
        assert!(text.contains(r#"mailtap_capture_dropped_packets_total{where="interface"} 0"#));
    }
}

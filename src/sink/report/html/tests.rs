use super::*;
use crate::flow::table::FlowInfo;
use crate::record::test_records::{plaintext_smtp, with_tls};
use crate::record::SessionRecord;
use crate::record::{CertStatus, Version};
use crate::sink::inventory::Inventory;
use crate::sink::report::Report;

fn info(r: &SessionRecord) -> FlowInfo {
    FlowInfo {
        client: r.client,
        server: r.server,
        protocol: r.protocol,
        first_ts: r.ts_start,
        last_ts: r.ts_end,
        packets: [5, 5],
        bytes: [r.bytes_to_server, r.bytes_to_client],
        handshake_seen: true,
        bypassed: false,
        server_seen: true,
    }
}

/// A report of a plaintext SMTP session with a cleartext login, a STARTTLS session with a
/// hidden certificate, and an implicit-TLS one with a valid certificate.
fn view() -> ReportView {
    let mut report = Report::new();
    let inventory = Inventory::new(100);
    let mut tls = with_tls(
        Encryption::Starttls,
        Version::TLS13,
        true,
        false,
        CertStatus::Hidden,
    );
    tls.server = "198.51.100.8:25".parse().expect("address");
    let mut implicit = with_tls(
        Encryption::ImplicitTls,
        Version::TLS13,
        true,
        true,
        CertStatus::Valid,
    );
    implicit.protocol = crate::config::Protocol::Submissions;
    implicit.server = "198.51.100.9:465".parse().expect("address");
    let mut plain = plaintext_smtp();
    plain.starttls_offered = false;
    for r in [&plain, &tls, &implicit] {
        report.add(&info(r), Some(r));
        inventory.record(r);
    }
    report.view(inventory.snapshot())
}

fn page(view: &ReportView) -> String {
    render(view, &Page::default())
}

#[test]
fn shows_every_cell_of_the_protection_table_with_shares_adding_up() {
    let html = page(&view());
    // smtp: one plaintext, one STARTTLS with its certificate hidden. Against an active
    // attacker none is protected (one exposed, one unknown); against a passive one, half.
    assert!(
        html.contains(
            "data-protocol=\"smtp\" data-attack=\"active\"><span class=\"mark\">\u{2717}</span> \
             exposed"
        ),
        "{html}"
    );
    assert!(html.contains(
        "data-protocol=\"smtp\" data-attack=\"passive\"><span class=\"mark\">?</span> \
         questionable"
    ));
    assert!(html.contains(
        "<span data-verdict=\"protected\">0.0 %</span> protected<br><span \
         data-verdict=\"exposed\">50.0 %</span> exposed<br><span data-verdict=\"unknown\">50.0 \
         %</span> unknown"
    ));
    // submissions: TLS 1.3, valid certificate, post-quantum: protected against everything.
    assert!(html.contains(
        "data-protocol=\"submissions\" data-attack=\"quantum_later\"><span \
         class=\"mark\">\u{2713}</span> protected"
    ));
}

#[test]
fn lists_every_server_those_needing_a_look_first() {
    let html = page(&view());
    let rows: Vec<&str> = html
        .split("id=\"server-table\"")
        .nth(1)
        .and_then(|t| t.split("<tbody>\n").nth(1))
        .and_then(|t| t.split("</tbody>").next())
        .map(|t| t.lines().collect())
        .unwrap_or_default();
    assert_eq!(rows.len(), 3, "{html}");
    assert!(rows[0].starts_with("<tr class=\"attention\"><td>198.51.100.7:25</td><td>smtp</td>"));
    assert!(rows[0].contains("no STARTTLS, cleartext logins"));
    assert!(!rows[1].contains("attention") && !rows[2].contains("attention"));
    assert!(html.contains("<span id=\"server-count\" data-servers=\"3\">3</span>"));
}

#[test]
fn makes_no_request_and_escapes_what_came_from_the_network() {
    let html = page(&view());
    for external in [
        "src=",
        "href=\"http",
        "url(",
        "@import",
        "<link",
        "<iframe",
        "<img",
    ] {
        assert!(!html.contains(external), "{external} in the page");
    }
    let mut v = view();
    v.files.push(crate::sink::report::FileReport {
        name: "<img src=x onerror=alert(1)>.pcap".into(),
        packets: 3,
        span: None,
        error: Some("\"bad\" & <cut>".into()),
        error_offset: Some(24),
        compression: None,
    });
    let html = page(&v);
    assert!(!html.contains("<img"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.pcap"));
    assert!(html.contains("&quot;bad&quot; &amp; &lt;cut&gt;"));
}

#[test]
fn the_banner_says_why_numbers_are_lower_bounds() {
    let mut v = view();
    assert!(!page(&v).contains("id=\"lower-bounds\""));
    v.lower_bounds.push(crate::sink::report::LowerBound {
        reason: "reassembly_gaps",
        count: 4,
    });
    let html = page(&v);
    assert!(html.contains(
        "<li data-reason=\"reassembly_gaps\">4 reassembly gap(s) (bytes never seen)</li>"
    ));
}

#[test]
fn the_live_page_refreshes_and_keeps_the_landing_links() {
    let live = Live {
        telemetry_path: "/m<x>",
        servers_path: "/servers",
        report_path: "/report.json",
        refresh_seconds: 7,
    };
    let html = render(&view(), &Page { live: Some(live) });
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"7\">"));
    assert!(html.contains("href=\"/m&lt;x&gt;\""));
    assert!(html.contains("href=\"/servers\"") && html.contains("href=\"/report.json\""));
    assert!(!page(&view()).contains("http-equiv"));
}

#[test]
fn an_empty_report_renders() {
    let view = Report::new().view(Inventory::new(1).snapshot());
    let html = page(&view);
    assert!(html.contains("No sessions yet.") && html.ends_with("</html>\n"));
}

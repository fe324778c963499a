//! The session log as CSV (`--sessions-format csv`), for spreadsheets: a header line, then one
//! line per session with the fields of the JSON record flattened into named columns.
//!
//! Columns are taken from the record's JSON form by path, so each column is exactly the JSON
//! field of the same name (`docs/records.md`): lists become one cell of space-separated values,
//! `null` and absent fields an empty cell, `true`/`false` as in JSON.

use crate::record::SessionRecord;
use serde_json::Value;
use std::io::{self, Write};

/// Column names and the JSON pointer each reads.
pub const COLUMNS: [(&str, &str); 35] = [
    ("ts_start", "/ts_start"),
    ("ts_end", "/ts_end"),
    ("client", "/client"),
    ("server", "/server"),
    ("protocol", "/protocol"),
    ("encryption", "/encryption"),
    ("starttls_offered", "/starttls_offered"),
    ("starttls_attempted", "/starttls_attempted"),
    ("tls_version", "/tls/version"),
    ("tls_cipher_suite", "/tls/cipher_suite"),
    ("tls_key_exchange", "/tls/key_exchange"),
    ("tls_group", "/tls/group"),
    ("tls_forward_secret", "/tls/forward_secret"),
    ("tls_post_quantum", "/tls/post_quantum"),
    ("tls_server_name", "/tls/server_name"),
    ("tls_resumed", "/tls/resumed"),
    ("tls_established", "/tls/established"),
    ("tls_alert", "/tls/alert"),
    ("tls_weaknesses", "/tls/weaknesses"),
    ("tls_certificate_status", "/tls/certificate/status"),
    ("tls_certificate_subject_cn", "/tls/certificate/subject_cn"),
    ("tls_certificate_issuer_cn", "/tls/certificate/issuer_cn"),
    ("tls_certificate_not_after", "/tls/certificate/not_after"),
    ("tls_ja4", "/tls/ja4"),
    ("cleartext_auth", "/cleartext_auth"),
    ("cleartext_messages", "/cleartext_messages"),
    (
        "content_protection_pgp_encrypted",
        "/content_protection/pgp_encrypted",
    ),
    (
        "content_protection_pgp_signed",
        "/content_protection/pgp_signed",
    ),
    (
        "content_protection_smime_encrypted",
        "/content_protection/smime_encrypted",
    ),
    (
        "content_protection_smime_signed",
        "/content_protection/smime_signed",
    ),
    ("content_protection_none", "/content_protection/none"),
    ("content_protection_unknown", "/content_protection/unknown"),
    ("bytes_to_server", "/bytes_to_server"),
    ("bytes_to_client", "/bytes_to_client"),
    ("anomalies", "/anomalies"),
];

/// The header line.
pub fn write_header(out: &mut dyn Write) -> io::Result<()> {
    write_row(out, COLUMNS.iter().map(|(name, _)| (*name).to_string()))
}

/// One session's line.
pub fn write_record(out: &mut dyn Write, record: &SessionRecord) -> io::Result<()> {
    let json = serde_json::to_value(record)?;
    write_row(
        out,
        COLUMNS
            .iter()
            .map(|(_, pointer)| cell(json.pointer(pointer))),
    )
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|i| cell(Some(i))).collect();
            parts.join(" ")
        }
        Some(other) => other.to_string(),
    }
}

/// One line, quoted where a cell needs it (the csv crate's rules: RFC 4180).
fn write_row(out: &mut dyn Write, cells: impl Iterator<Item = String>) -> io::Result<()> {
    let mut line = csv::WriterBuilder::new()
        .buffer_capacity(512)
        .from_writer(Vec::with_capacity(512));
    line.write_record(cells)?;
    out.write_all(&line.into_inner().map_err(|e| e.into_error())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_records::{plaintext_smtp, with_tls};
    use crate::record::Encryption;
    use crate::record::{CertStatus, Version};

    #[test]
    fn every_column_is_a_field_of_the_json_record() {
        let r = with_tls(
            Encryption::Starttls,
            Version::TLS13,
            true,
            false,
            CertStatus::Hidden,
        );
        let mut json = serde_json::to_value(&r).unwrap();
        // Optional certificate fields are left out of the JSON when unknown.
        json["tls"]["certificate"]["subject_cn"] = "mx.example".into();
        json["tls"]["certificate"]["issuer_cn"] = "CA".into();
        json["tls"]["certificate"]["not_after"] = "2035-01-01T00:00:00Z".into();
        for (name, pointer) in COLUMNS {
            assert!(json.pointer(pointer).is_some(), "{name}: {pointer}");
        }
    }

    #[test]
    fn a_session_is_one_line_under_the_header() {
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        write_record(&mut out, &plaintext_smtp()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ts_start,ts_end,client,server,protocol,encryption,"));
        assert_eq!(
            lines[1],
            "2026-11-28T20:00:00.000000Z,2026-11-28T20:00:01.000000Z,192.0.2.1:51234,\
             198.51.100.7:25,smtp,plaintext,true,false,,,,,,,,,,,,,,,,,PLAIN,2,1,0,0,0,1,0,1000,500,"
        );
    }
}

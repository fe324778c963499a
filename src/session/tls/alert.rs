//! An alert's description (RFC 8446 §6, RFC 5246 §7.2), as the record names it.
//!
//! The names are tls-parser's table (the IANA "TLS Alerts" registry) in snake case
//! (`handshake_failure`, `unknown_ca`), built once for all 256 code points at first use. The
//! record spells a description the table does not know as its code point (`0x2a`); its metric
//! label is then `other`.

use crate::session::cipher::{serialize_as_display, OTHER};
use std::fmt;
use std::sync::LazyLock;

/// An alert description, by code point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alert(pub u8);

/// The snake-case name of every description tls-parser knows; `None` elsewhere.
static NAMES: LazyLock<Vec<Option<String>>> =
    LazyLock::new(|| (0..=u8::MAX).map(snake_name).collect());

/// tls-parser spells a known description in camel case (`HandshakeFailure`), an unknown one
/// in a form with other characters or not at all.
fn snake_name(description: u8) -> Option<String> {
    let name = tls_parser::TlsAlertDescription(description).to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    Some(out)
}

impl Alert {
    /// Its registry name, when tls-parser's table lists it.
    pub fn name(self) -> Option<&'static str> {
        NAMES.get(usize::from(self.0))?.as_deref()
    }

    /// The metric label: the name, or [`OTHER`].
    pub fn label(self) -> &'static str {
        self.name().unwrap_or(OTHER)
    }
}

/// The name, or the code point `0xfe`.
impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:02x}", self.0),
        }
    }
}

serialize_as_display!(Alert);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_and_code_points() {
        let spell = |d| Alert(d).to_string();
        assert_eq!(spell(40), "handshake_failure");
        assert_eq!(spell(70), "protocol_version");
        assert_eq!(spell(48), "unknown_ca");
        assert_eq!(spell(0), "close_notify");
        assert_eq!(spell(120), "no_application_protocol");
        assert_eq!(spell(0xfe), "0xfe");
        assert_eq!(Alert(0xfe).label(), OTHER);
        let json = serde_json::to_string(&[Alert(40), Alert(0xfe)]).ok();
        assert_eq!(json.as_deref(), Some(r#"["handshake_failure","0xfe"]"#));
    }

    /// All 256 descriptions label into the table's names and `other`.
    #[test]
    fn labels_are_a_closed_set() {
        let labels: BTreeSet<&str> = (0..=u8::MAX).map(|d| Alert(d).label()).collect();
        let names: BTreeSet<&str> = (0..=u8::MAX).filter_map(|d| Alert(d).name()).collect();
        assert!(names.len() > 20 && names.len() < 256, "{}", names.len());
        assert_eq!(labels.len(), names.len() + 1);
        assert!(labels.contains(OTHER));
    }
}

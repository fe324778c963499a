//! The counters every session touches, resolved once per protocol.
//!
//! `with_label_values` hashes its label strings and takes a lock on every call; a session
//! touches ten or so of these series, so resolving the closed-label ones (protocol ×
//! encryption, attack, verdict) up front takes that off the per-session path. Resolving them
//! also creates them at 0, as the exporter conventions ask.

use crate::config::Protocol;
use crate::protection::{Attack, Verdict};
use crate::record::{ContentClass, Encryption};
use prometheus::{IntCounter, IntCounterVec};

/// One protocol's closed-label counters.
pub(super) struct Resolved {
    /// By [`Encryption::ALL`] index.
    pub sessions: Vec<IntCounter>,
    pub bytes: Vec<IntCounter>,
    pub starttls_offered: IntCounter,
    pub starttls_attempted: IntCounter,
    pub cleartext_messages: IntCounter,
    /// By [`ContentClass::ALL`] index.
    pub by_content: Vec<IntCounter>,
    pub parse_errors: IntCounter,
    /// By [`Attack::ALL`] index, then [`Verdict::ALL`] index.
    pub protection: Vec<Vec<IntCounter>>,
}

/// The families [`Resolved`] draws from.
pub(super) struct Families<'a> {
    pub sessions: &'a IntCounterVec,
    pub bytes: &'a IntCounterVec,
    pub starttls_offered: &'a IntCounterVec,
    pub starttls_attempted: &'a IntCounterVec,
    pub cleartext_messages: &'a IntCounterVec,
    pub cleartext_messages_by_content: &'a IntCounterVec,
    pub parse_errors: &'a IntCounterVec,
    pub protection: &'a IntCounterVec,
}

impl Resolved {
    /// One per [`Protocol::ALL`] entry, in that order.
    pub fn all(f: &Families<'_>) -> Vec<Resolved> {
        Protocol::ALL
            .iter()
            .map(|p| {
                let p = p.name();
                Resolved {
                    sessions: Encryption::ALL
                        .iter()
                        .map(|e| f.sessions.with_label_values(&[p, e.label()]))
                        .collect(),
                    bytes: Encryption::ALL
                        .iter()
                        .map(|e| f.bytes.with_label_values(&[p, e.label()]))
                        .collect(),
                    starttls_offered: f.starttls_offered.with_label_values(&[p]),
                    starttls_attempted: f.starttls_attempted.with_label_values(&[p]),
                    cleartext_messages: f.cleartext_messages.with_label_values(&[p]),
                    by_content: ContentClass::ALL
                        .iter()
                        .map(|c| {
                            f.cleartext_messages_by_content
                                .with_label_values(&[p, c.label()])
                        })
                        .collect(),
                    parse_errors: f.parse_errors.with_label_values(&[p]),
                    protection: Attack::ALL
                        .iter()
                        .map(|a| {
                            Verdict::ALL
                                .iter()
                                .map(|v| f.protection.with_label_values(&[p, a.label(), v.label()]))
                                .collect()
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

/// Position of `x` in `all` (the enums' `ALL` lists are short).
pub(super) fn index_of<T: PartialEq>(all: &[T], x: &T) -> usize {
    all.iter().position(|a| a == x).unwrap_or(0)
}

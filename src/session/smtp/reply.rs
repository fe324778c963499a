//! Server reply lines (RFC 5321 §4.2) and the EHLO capabilities they list (§4.1.1.1).

use super::command::{split_word, trim_end};
use crate::session::dialogue::{mechanism, mechanism_labels};

/// One reply line: `ddd` then `-` (more lines follow), or ` ` / nothing (the last line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    pub code: u16,
    pub last: bool,
    pub text: &'a [u8],
}

/// A reply line, or `None` when the line is not one (RFC 5321 §4.2: `2*3DIGIT` with the
/// first digit 2 to 5; 1yz is tolerated, no SMTP server sends it).
pub fn parse(line: &[u8]) -> Option<ReplyLine<'_>> {
    let [a, b, c, rest @ ..] = line else {
        return None;
    };
    if !matches!(a, b'1'..=b'5') || !b.is_ascii_digit() || !c.is_ascii_digit() {
        return None;
    }
    let code = [a, b, c]
        .iter()
        .fold(0u16, |n, &&d| n * 10 + u16::from(d - b'0'));
    let (last, text) = match rest.split_first() {
        None => (true, rest),
        Some((b' ', text)) => (true, text),
        Some((b'-', text)) => (false, text),
        Some(_) => return None,
    };
    Some(ReplyLine { code, last, text })
}

/// One line of an EHLO reply after the first, read for what it says about protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// `STARTTLS` exactly (RFC 3207 §4).
    StartTls,
    /// An 8-letter keyword overwritten with X's (`XXXXXXXA`): Cisco PIX/ASA ESMTP inspection
    /// hides STARTTLS this way, keeping the length so the reply still parses.
    Masked,
    Pipelining,
    Chunking,
    Auth,
    Other,
}

/// The SASL mechanisms an AUTH capability listed, as a set of [`mechanism`] labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthMechanisms(u32);

impl AuthMechanisms {
    fn insert(&mut self, label: &'static str) {
        let bit = mechanism_labels()
            .position(|l| l == label)
            .and_then(|i| u32::try_from(i).ok())
            .and_then(|i| 1u32.checked_shl(i));
        self.0 |= bit.unwrap_or(0);
    }

    pub fn contains(self, label: &str) -> bool {
        self.iter().any(|l| l == label)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The labels in the set, in the registry's order.
    pub fn iter(self) -> impl Iterator<Item = &'static str> {
        mechanism_labels()
            .enumerate()
            .filter(move |&(i, _)| {
                u32::try_from(i)
                    .ok()
                    .and_then(|i| 1u32.checked_shl(i))
                    .is_some_and(|bit| self.0 & bit != 0)
            })
            .map(|(_, l)| l)
    }
}

/// What the last EHLO reply advertised. A masked STARTTLS is not an offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub starttls: bool,
    pub pipelining: bool,
    pub chunking: bool,
    pub auth: AuthMechanisms,
}

impl Capabilities {
    /// Read one capability line (the text after `250-` / `250 `) into the set.
    pub fn add_line(&mut self, text: &[u8]) -> Capability {
        let (word, params) = split_word(trim_end(text));
        // `AUTH=LOGIN PLAIN` (pre-RFC 4954 servers) lists its first mechanism after the `=`.
        let (keyword, glued) = match word.iter().position(|&b| b == b'=') {
            Some(eq) => (word.get(..eq).unwrap_or(word), word.get(eq + 1..)),
            None => (word, None),
        };
        let capability = classify(keyword);
        match capability {
            Capability::StartTls | Capability::Masked if glued.is_some() => {
                return Capability::Other
            }
            Capability::StartTls => self.starttls = true,
            Capability::Pipelining => self.pipelining = true,
            Capability::Chunking => self.chunking = true,
            Capability::Auth => {
                self.add_mechanisms(glued.unwrap_or_default());
                self.add_mechanisms(params);
            }
            Capability::Masked | Capability::Other => {}
        }
        capability
    }

    fn add_mechanisms(&mut self, mut params: &[u8]) {
        while !params.is_empty() {
            let (name, rest) = split_word(params);
            self.auth.insert(mechanism(name));
            params = rest;
        }
    }
}

fn classify(keyword: &[u8]) -> Capability {
    const NAMES: &[(&[u8], Capability)] = &[
        (b"STARTTLS", Capability::StartTls),
        (b"PIPELINING", Capability::Pipelining),
        (b"CHUNKING", Capability::Chunking),
        (b"AUTH", Capability::Auth),
    ];
    if let Some((_, c)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(keyword)) {
        return *c;
    }
    if is_masked(keyword) {
        Capability::Masked
    } else {
        Capability::Other
    }
}

/// Seven X's and an `A` or an eighth `X`: the length of STARTTLS, letters overwritten.
fn is_masked(keyword: &[u8]) -> bool {
    match keyword {
        [x @ .., last] if x.len() == 7 => {
            x.iter().all(|b| b.eq_ignore_ascii_case(&b'X'))
                && matches!(last.to_ascii_uppercase(), b'A' | b'X')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        let r = parse(b"250-mail.example.test").unwrap();
        assert_eq!(
            (r.code, r.last, r.text),
            (250, false, &b"mail.example.test"[..])
        );
        let r = parse(b"220 2.0.0 Ready to start TLS").unwrap();
        assert_eq!((r.code, r.last), (220, true));
        assert_eq!(parse(b"354").map(|r| (r.code, r.last)), Some((354, true)));
        assert_eq!(parse(b"25"), None);
        assert_eq!(parse(b"250x"), None);
        assert_eq!(parse(b"650 nope"), None);
        assert_eq!(parse(b"EHLO x"), None);
    }

    #[test]
    fn postfix_capabilities() {
        let mut caps = Capabilities::default();
        for line in [
            &b"PIPELINING"[..],
            b"SIZE 10240000",
            b"STARTTLS",
            b"AUTH PLAIN LOGIN",
            b"AUTH=PLAIN LOGIN",
            b"CHUNKING",
        ] {
            caps.add_line(line);
        }
        assert!(caps.starttls && caps.pipelining && caps.chunking);
        assert_eq!(caps.auth.iter().collect::<Vec<_>>(), ["PLAIN", "LOGIN"]);
        assert!(caps.auth.contains("LOGIN") && !caps.auth.contains("NTLM"));
    }

    #[test]
    fn starttls_is_exactly_the_keyword() {
        let mut caps = Capabilities::default();
        assert_eq!(caps.add_line(b"starttls"), Capability::StartTls);
        assert_eq!(caps.add_line(b"STARTTLSX"), Capability::Other);
        assert_eq!(caps.add_line(b"X-STARTTLS"), Capability::Other);
    }

    #[test]
    fn masked_keywords() {
        let mut caps = Capabilities::default();
        assert_eq!(caps.add_line(b"XXXXXXXA"), Capability::Masked);
        assert_eq!(caps.add_line(b"XXXXXXXX"), Capability::Masked);
        assert_eq!(caps.add_line(b"XXXXXXXB"), Capability::Other);
        assert_eq!(caps.add_line(b"XXXXXXA"), Capability::Other);
        assert!(!caps.starttls);
    }
}

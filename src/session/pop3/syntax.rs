//! POP3 line syntax (RFC 1939 §3, RFC 2449 §4, RFC 5034 §4): pure functions over one line
//! without its CRLF. Nothing here allocates or keeps bytes.

/// A server line outside multi-line data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK [text]`
    Ok(&'a [u8]),
    /// `-ERR [text]`
    Err(&'a [u8]),
    /// `+ [base64]`: a SASL challenge (RFC 5034 §4).
    Challenge,
}

/// The first word of `text` and what follows its separating space (empty if none).
pub fn split_word(text: &[u8]) -> (&[u8], &[u8]) {
    match text.iter().position(|&b| b == b' ') {
        Some(sp) => (
            text.get(..sp).unwrap_or_default(),
            text.get(sp + 1..).unwrap_or_default(),
        ),
        None => (text, &[]),
    }
}

pub fn reply(line: &[u8]) -> Option<Reply<'_>> {
    let (word, text) = split_word(line);
    if word.eq_ignore_ascii_case(b"+OK") {
        Some(Reply::Ok(text))
    } else if word.eq_ignore_ascii_case(b"-ERR") {
        Some(Reply::Err(text))
    } else if word == b"+" {
        Some(Reply::Challenge)
    } else {
        None
    }
}

/// A command line: a keyword of 3 or 4 letters or digits, starting with a letter (RFC 1939 §3,
/// RFC 2449 §4, `UTF8` in RFC 6856), and its arguments.
pub fn command(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let (keyword, args) = split_word(line);
    let ok = (3..=4).contains(&keyword.len())
        && keyword.first().is_some_and(u8::is_ascii_alphabetic)
        && keyword.iter().all(u8::is_ascii_alphanumeric);
    ok.then_some((keyword, args))
}

/// The greeting carries an APOP timestamp, `<...@...>` (RFC 1939 §7).
pub fn has_apop_timestamp(text: &[u8]) -> bool {
    let Some(lt) = text.iter().position(|&b| b == b'<') else {
        return false;
    };
    let after = text.get(lt + 1..).unwrap_or_default();
    match after.iter().position(|&b| b == b'>') {
        Some(gt) => after.get(..gt).is_some_and(|id| id.contains(&b'@')),
        None => false,
    }
}

/// An `-ERR` text that says the command itself is not known, as opposed to a refusal by
/// policy or a temporary failure. Matched case-insensitively on the wording of Dovecot
/// ("Unknown command"), Courier ("Invalid command"), Cyrus and others.
pub fn says_unknown_command(text: &[u8]) -> bool {
    const WORDING: &[&[u8]] = &[
        b"unknown",
        b"recogni",
        b"not supported",
        b"not implemented",
        b"invalid command",
        b"bad command",
    ];
    WORDING.iter().any(|w| contains_ignore_case(text, w))
}

fn contains_ignore_case(text: &[u8], word: &[u8]) -> bool {
    !word.is_empty()
        && text
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
}

/// `TOP msg n` asks for message text beyond the headers when n is not 0 (RFC 1939 §7).
pub fn top_has_text(args: &[u8]) -> bool {
    let (_msg, rest) = split_word(args);
    let (lines, _) = split_word(rest);
    lines.iter().any(|&b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(
            reply(b"+OK Dovecot (Debian) ready."),
            Some(Reply::Ok(b"Dovecot (Debian) ready."))
        );
        assert_eq!(reply(b"+OK"), Some(Reply::Ok(b"")));
        assert_eq!(
            reply(b"-ERR [AUTH] Authentication failed."),
            Some(Reply::Err(b"[AUTH] Authentication failed."))
        );
        assert_eq!(reply(b"+ "), Some(Reply::Challenge));
        assert_eq!(reply(b"+"), Some(Reply::Challenge));
        assert_eq!(reply(b"+OKAY"), None);
        assert_eq!(reply(b"* OK IMAP"), None);
    }

    #[test]
    fn commands() {
        assert_eq!(command(b"USER alice"), Some((&b"USER"[..], &b"alice"[..])));
        assert_eq!(command(b"top 1 10"), Some((&b"top"[..], &b"1 10"[..])));
        assert_eq!(command(b"UTF8"), Some((&b"UTF8"[..], &b""[..])));
        assert_eq!(command(b"STARTTLS"), None);
        assert_eq!(command(b"a1 LOGIN x y"), None);
        assert_eq!(command(b"\x16\x03\x01"), None);
        assert_eq!(command(b""), None);
    }

    #[test]
    fn apop_timestamps() {
        assert!(has_apop_timestamp(
            b"Dovecot ready. <1896.697170952@dbc.mtview.ca.us>"
        ));
        assert!(!has_apop_timestamp(b"Dovecot (Debian) ready."));
        assert!(!has_apop_timestamp(b"<no at sign>"));
        assert!(!has_apop_timestamp(b"<unclosed@x"));
    }

    #[test]
    fn unknown_command_wording() {
        assert!(says_unknown_command(b"Unknown command: STLS"));
        assert!(says_unknown_command(b"Invalid command."));
        assert!(says_unknown_command(b"Command not recognized"));
        assert!(!says_unknown_command(
            b"[SYS/TEMP] TLS initialization failed."
        ));
        assert!(!says_unknown_command(b""));
    }

    #[test]
    fn top_lines() {
        assert!(top_has_text(b"1 10"));
        assert!(!top_has_text(b"1 0"));
        assert!(!top_has_text(b"1 000"));
        assert!(!top_has_text(b"1"));
    }
}

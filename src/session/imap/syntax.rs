//! IMAP line syntax (RFC 9051 §9): the few pieces of the grammar the analyzer needs, as pure
//! functions over one line without its CRLF. Nothing here allocates or keeps bytes.

/// A client command line: `tag SP name [SP args]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    pub tag: &'a [u8],
    pub name: &'a [u8],
    pub args: &'a [u8],
}

/// The status of a tagged response, or of an untagged status response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    Preauth,
}

/// A server line that starts a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// `* OK|NO|BAD|BYE|PREAUTH text`; `text` may start with a `[code]`.
    Status { status: Status, text: &'a [u8] },
    /// `* CAPABILITY cap cap ...`
    Capability(&'a [u8]),
    /// `* n FETCH (...)`
    Fetch,
    /// Any other untagged data (`* 3 EXISTS`, `* LIST ...`, `* ENABLED ...`).
    Data,
    /// `+ text`: the server waits for a literal, a SASL response or IDLE's DONE.
    Continuation,
    /// `tag OK|NO|BAD text`.
    Tagged {
        tag: &'a [u8],
        status: Status,
        text: &'a [u8],
    },
}

/// A literal announced at the end of a line (RFC 9051 §4.3, RFC 7888, RFC 3516 `~{n}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Literal {
    pub len: u64,
    /// `{n+}`: the client sends it without waiting for a `+` continuation.
    pub non_sync: bool,
}

/// The first word of `text` and what follows its separating space, if any.
pub fn split_word(text: &[u8]) -> (&[u8], Option<&[u8]>) {
    match text.iter().position(|&b| b == b' ') {
        Some(sp) => (
            text.get(..sp).unwrap_or_default(),
            Some(text.get(sp + 1..).unwrap_or_default()),
        ),
        None => (text, None),
    }
}

/// ASTRING-CHAR except `+` (RFC 9051 §9 `tag`).
fn is_tag_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
}

/// ATOM-CHAR (RFC 9051 §9).
fn is_atom_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_tag(word: &[u8]) -> bool {
    !word.is_empty() && word.iter().all(|&b| is_tag_byte(b))
}

fn is_atom(word: &[u8]) -> bool {
    word.first().is_some_and(u8::is_ascii_alphabetic) && word.iter().all(|&b| is_atom_byte(b))
}

pub fn command(line: &[u8]) -> Option<Command<'_>> {
    let (tag, rest) = split_word(line);
    let (name, args) = split_word(rest?);
    (is_tag(tag) && is_atom(name)).then_some(Command {
        tag,
        name,
        args: args.unwrap_or_default(),
    })
}

pub fn response(line: &[u8]) -> Option<Response<'_>> {
    if line == b"+" || line.starts_with(b"+ ") {
        return Some(Response::Continuation);
    }
    let (first, rest) = split_word(line);
    let rest = rest?;
    if first == b"*" {
        return untagged(rest);
    }
    let (word, text) = split_word(rest);
    let status = status(word).filter(|s| matches!(s, Status::Ok | Status::No | Status::Bad))?;
    is_tag(first).then_some(Response::Tagged {
        tag: first,
        status,
        text: text.unwrap_or_default(),
    })
}

fn untagged(rest: &[u8]) -> Option<Response<'_>> {
    let (word, text) = split_word(rest);
    let text = text.unwrap_or_default();
    if let Some(status) = status(word) {
        return Some(Response::Status { status, text });
    }
    if word.eq_ignore_ascii_case(b"CAPABILITY") {
        return Some(Response::Capability(text));
    }
    if number(word).is_some() {
        let (what, _) = split_word(text);
        return Some(if what.eq_ignore_ascii_case(b"FETCH") {
            Response::Fetch
        } else {
            Response::Data
        });
    }
    is_atom(word).then_some(Response::Data)
}

fn status(word: &[u8]) -> Option<Status> {
    const STATUSES: &[(&[u8], Status)] = &[
        (b"OK", Status::Ok),
        (b"NO", Status::No),
        (b"BAD", Status::Bad),
        (b"BYE", Status::Bye),
        (b"PREAUTH", Status::Preauth),
    ];
    STATUSES
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
        .map(|&(_, s)| s)
}

/// The capability list of a `[CAPABILITY ...]` response code at the start of `text`.
pub fn code_capabilities(text: &[u8]) -> Option<&[u8]> {
    let inner = text.strip_prefix(b"[")?;
    let end = inner.iter().position(|&b| b == b']')?;
    let (name, list) = split_word(inner.get(..end)?);
    name.eq_ignore_ascii_case(b"CAPABILITY")
        .then_some(list.unwrap_or_default())
}

/// An unsigned decimal number of at most 20 digits that fits a u64.
pub fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// A literal announced at the end of `line`, and the text before it.
pub fn trailing_literal(line: &[u8]) -> Option<(Literal, &[u8])> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let inner = body.get(open + 1..)?;
    let before = body.get(..open)?;
    let (digits, non_sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (inner, false),
    };
    let len = number(digits)?;
    let before = before.strip_suffix(b"~").unwrap_or(before);
    Some((Literal { len, non_sync }, before))
}

/// Whether the FETCH data item right before a literal is message content (RFC 9051 §7.5.2):
/// `BODY[]`, `BODY[TEXT]`, `BODY[1.2]`, `BINARY[...]`, `RFC822`, `RFC822.TEXT`, with or
/// without a `<origin>`. Headers alone (`BODY[HEADER...]`, `BODY[1.MIME]`, `RFC822.HEADER`)
/// and strings inside ENVELOPE or BODYSTRUCTURE are not.
pub fn is_body_item(before: &[u8]) -> bool {
    let item = trim_end(before);
    let item = strip_origin(item);
    match item.strip_suffix(b"]") {
        Some(head) => {
            let Some(open) = head.iter().rposition(|&b| b == b'[') else {
                return false;
            };
            let name = last_token(head.get(..open).unwrap_or_default());
            let section = head.get(open + 1..).unwrap_or_default();
            (name.eq_ignore_ascii_case(b"BODY") || name.eq_ignore_ascii_case(b"BINARY"))
                && section_is_content(section)
        }
        None => {
            let name = last_token(item);
            name.eq_ignore_ascii_case(b"RFC822") || name.eq_ignore_ascii_case(b"RFC822.TEXT")
        }
    }
}

/// A content item that holds the whole message from its first byte, header included:
/// `BODY[]` (the answer to `BODY.PEEK[]` too), `BINARY[]`, `RFC822`, with no origin or `<0>`.
/// Call on what [`is_body_item`] accepts.
pub fn is_whole_message_item(before: &[u8]) -> bool {
    let item = trim_end(before);
    let stripped = strip_origin(item);
    let origin = item.get(stripped.len()..).unwrap_or_default();
    if !(origin.is_empty() || origin == b"<0>") {
        return false;
    }
    let name = last_token(stripped);
    name.eq_ignore_ascii_case(b"BODY[]")
        || name.eq_ignore_ascii_case(b"BINARY[]")
        || name.eq_ignore_ascii_case(b"RFC822")
}

/// A section spec names content when, after its part numbers, it is empty or `TEXT`.
fn section_is_content(section: &[u8]) -> bool {
    section
        .split(|&b| b == b'.')
        .find(|part| number(part).is_none())
        .is_none_or(|part| part.is_empty() || part.eq_ignore_ascii_case(b"TEXT"))
}

fn trim_end(text: &[u8]) -> &[u8] {
    let end = text.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    text.get(..end).unwrap_or_default()
}

/// `BODY[]<0>` → `BODY[]`.
fn strip_origin(item: &[u8]) -> &[u8] {
    if !item.ends_with(b">") {
        return item;
    }
    item.iter()
        .rposition(|&b| b == b'<')
        .and_then(|lt| item.get(..lt))
        .unwrap_or(item)
}

/// The word after the last space or `(`.
fn last_token(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .rposition(|&b| b == b' ' || b == b'(')
        .map_or(0, |i| i + 1);
    text.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            command(b"a1 LOGIN alice {6}"),
            Some(Command {
                tag: b"a1",
                name: b"LOGIN",
                args: b"alice {6}"
            })
        );
        assert_eq!(command(b"a NOOP").map(|c| c.args), Some(&b""[..]));
        assert_eq!(command(b"NOOP"), None);
        assert_eq!(command(b"a+ NOOP"), None);
        assert_eq!(command(b"a 123"), None);
        assert_eq!(command(b"\x16\x03\x01 x"), None);
    }

    #[test]
    fn responses() {
        assert_eq!(
            response(b"* OK [CAPABILITY IMAP4rev1] hi"),
            Some(Response::Status {
                status: Status::Ok,
                text: b"[CAPABILITY IMAP4rev1] hi"
            })
        );
        assert_eq!(response(b"* 12 FETCH (BODY[] {3}"), Some(Response::Fetch));
        assert_eq!(response(b"* 12 EXISTS"), Some(Response::Data));
        assert_eq!(response(b"+ idling"), Some(Response::Continuation));
        assert_eq!(response(b"+"), Some(Response::Continuation));
        assert_eq!(
            response(b"a1 bad Unknown command"),
            Some(Response::Tagged {
                tag: b"a1",
                status: Status::Bad,
                text: b"Unknown command"
            })
        );
        assert_eq!(response(b"a1 BYE x"), None);
        assert_eq!(response(b"+OK Dovecot ready."), None);
        assert_eq!(response(b"220 mx ESMTP"), None);
    }

    #[test]
    fn capability_codes() {
        assert_eq!(
            code_capabilities(b"[CAPABILITY IMAP4rev1 STARTTLS] ready"),
            Some(&b"IMAP4rev1 STARTTLS"[..])
        );
        assert_eq!(code_capabilities(b"[ALERT] x"), None);
        assert_eq!(code_capabilities(b"[CAPABILITY IMAP4rev1"), None);
    }

    #[test]
    fn literals() {
        let lit = |len, non_sync| Literal { len, non_sync };
        assert_eq!(
            trailing_literal(b"a LOGIN alice {6}"),
            Some((lit(6, false), &b"a LOGIN alice "[..]))
        );
        assert_eq!(trailing_literal(b"{10+}"), Some((lit(10, true), &b""[..])));
        assert_eq!(
            trailing_literal(b"* 1 FETCH (BINARY[] ~{3}"),
            Some((lit(3, false), &b"* 1 FETCH (BINARY[] "[..]))
        );
        assert_eq!(trailing_literal(b"x {}"), None);
        assert_eq!(trailing_literal(b"x {1a}"), None);
        assert_eq!(trailing_literal(b"x {99999999999999999999999}"), None);
        assert_eq!(trailing_literal(b"x"), None);
    }

    #[test]
    fn body_items() {
        for item in [
            &b"* 1 FETCH (UID 7 BODY[] "[..],
            b"* 1 FETCH (BODY[TEXT] ",
            b"* 1 FETCH (BODY[]<0> ",
            b" BODY[1.2] ",
            b" BODY[2.TEXT] ",
            b"* 1 FETCH (BINARY[1] ",
            b"* 1 FETCH (RFC822 ",
            b"* 1 FETCH (FLAGS (\\Seen) RFC822.TEXT ",
        ] {
            assert!(is_body_item(item), "{}", String::from_utf8_lossy(item));
        }
        for item in [
            &b"* 1 FETCH (BODY[HEADER] "[..],
            b"* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)] ",
            b"* 1 FETCH (BODY[1.MIME] ",
            b"* 1 FETCH (RFC822.HEADER ",
            b"* 1 FETCH (ENVELOPE (\"Mon, 1 Jan 2024\" ",
            b"* 1 FETCH (",
            b"",
            b"]",
        ] {
            assert!(!is_body_item(item), "{}", String::from_utf8_lossy(item));
        }
    }

    #[test]
    fn whole_message_items() {
        for item in [
            &b"* 1 FETCH (UID 7 BODY[] "[..],
            b"* 1 FETCH (body[]<0> ",
            b"* 1 FETCH (BINARY[] ",
            b"* 1 FETCH (FLAGS (\\Seen) RFC822 ",
        ] {
            assert!(
                is_whole_message_item(item),
                "{}",
                String::from_utf8_lossy(item)
            );
        }
        for item in [
            &b"* 1 FETCH (BODY[TEXT] "[..],
            b"* 1 FETCH (BODY[]<100> ",
            b" BODY[1] ",
            b"* 1 FETCH (BINARY[1] ",
            b"* 1 FETCH (RFC822.TEXT ",
        ] {
            assert!(
                !is_whole_message_item(item),
                "{}",
                String::from_utf8_lossy(item)
            );
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"0"), Some(0));
        assert_eq!(number(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(number(b"18446744073709551616"), None);
        assert_eq!(number(b""), None);
        assert_eq!(number(b"-1"), None);
    }
}

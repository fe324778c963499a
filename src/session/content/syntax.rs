//! The grammar of a MIME header field's value (RFC 2045 §5.1, RFC 2183 §2, RFC 5322 §3.2):
//! tokens, quoted strings with `\` escapes, and comments in parentheses (nested, with escapes)
//! wherever whitespace may go. Names and the values compared here are case-insensitive.
//!
//! Lenient where mail software is: an unquoted parameter value runs to the next `;`,
//! whitespace or comment, so `protocol=application/pgp-signature` (a `/` RFC 2045 wants
//! quoted) reads as meant; a parameter that cannot be read ends the list. RFC 2231
//! continuations and encoded values (`name*0=`, `name*=`) are not decoded.

/// A cursor over one field value (already unfolded: line ends removed).
pub struct Cursor<'a> {
    rest: &'a [u8],
}

/// RFC 2045 `tspecials`.
fn is_tspecial(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
    )
}

fn is_token_byte(b: u8) -> bool {
    b > b' ' && b < 0x7f && !is_tspecial(b)
}

impl<'a> Cursor<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        Cursor { rest: value }
    }

    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    /// Skip whitespace and comments (CFWS). An unterminated comment runs to the end.
    pub fn skip_cfws(&mut self) {
        let mut depth = 0u32;
        while let Some(b) = self.peek() {
            match b {
                b'(' => depth = depth.saturating_add(1),
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => {
                    self.bump();
                }
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ if depth > 0 => {}
                _ => return,
            }
            self.bump();
        }
    }

    /// Consume `b` (after CFWS) if it comes next.
    pub fn eat(&mut self, b: u8) -> bool {
        self.skip_cfws();
        if self.peek() == Some(b) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// A token (after CFWS); `None` if none starts here.
    pub fn token(&mut self) -> Option<&'a [u8]> {
        self.skip_cfws();
        let len = self.rest.iter().take_while(|&&b| is_token_byte(b)).count();
        if len == 0 {
            return None;
        }
        let (token, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(token)
    }

    /// A parameter value (after CFWS): a quoted string, unescaped, or a lenient token.
    fn value(&mut self) -> Option<Vec<u8>> {
        self.skip_cfws();
        if self.peek() == Some(b'"') {
            self.bump();
            let mut out = Vec::new();
            loop {
                match self.bump()? {
                    b'"' => return Some(out),
                    b'\\' => out.push(self.bump()?),
                    b'\r' | b'\n' => {}
                    b => out.push(b),
                }
            }
        }
        let len = self
            .rest
            .iter()
            .take_while(|&&b| b > b' ' && !matches!(b, b';' | b'(' | b'"' | 0x7f))
            .count();
        if len == 0 {
            return None;
        }
        let (value, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(value.to_vec())
    }

    /// The next `; attribute=value` parameter; `None` at the end of the list or where it
    /// cannot be read.
    pub fn parameter(&mut self) -> Option<(&'a [u8], Vec<u8>)> {
        if !self.eat(b';') {
            return None;
        }
        // A trailing `;` (common) ends the list.
        let name = self.token()?;
        if !self.eat(b'=') {
            return None;
        }
        Some((name, self.value()?))
    }
}

/// What a Content-Type field says, as far as the classification cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentType {
    /// Type and subtype, lowercased; `None` when the field does not parse (RFC 2045 §5.2:
    /// then `text/plain` is assumed, as when it is absent).
    pub media: Option<(Vec<u8>, Vec<u8>)>,
    pub protocol: Option<Vec<u8>>,
    pub smime_type: Option<Vec<u8>>,
    pub name: Option<Vec<u8>>,
}

impl ContentType {
    pub fn parse(value: &[u8]) -> ContentType {
        let mut c = Cursor::new(value);
        let Some(media) = media_type(&mut c) else {
            return ContentType::default();
        };
        let mut ct = ContentType {
            media: Some(media),
            ..ContentType::default()
        };
        while let Some((name, value)) = c.parameter() {
            // The first of duplicated parameters counts.
            let slot = if name.eq_ignore_ascii_case(b"protocol") {
                &mut ct.protocol
            } else if name.eq_ignore_ascii_case(b"smime-type") {
                &mut ct.smime_type
            } else if name.eq_ignore_ascii_case(b"name") {
                &mut ct.name
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        ct
    }

    /// Is the media type `t/s` (given lowercase)?
    pub fn is(&self, t: &[u8], s: &[u8]) -> bool {
        self.media
            .as_ref()
            .is_some_and(|(mt, ms)| mt.as_slice() == t && ms.as_slice() == s)
    }

    /// `text/plain`, explicitly or by default.
    pub fn is_text_plain(&self) -> bool {
        self.media.is_none() || self.is(b"text", b"plain")
    }
}

fn media_type(c: &mut Cursor<'_>) -> Option<(Vec<u8>, Vec<u8>)> {
    let t = c.token()?;
    if !c.eat(b'/') {
        return None;
    }
    let s = c.token()?;
    Some((t.to_ascii_lowercase(), s.to_ascii_lowercase()))
}

/// The `filename` parameter of a Content-Disposition field (RFC 2183 §2.3).
pub fn disposition_filename(value: &[u8]) -> Option<Vec<u8>> {
    let mut c = Cursor::new(value);
    c.token()?;
    while let Some((name, value)) = c.parameter() {
        if name.eq_ignore_ascii_case(b"filename") {
            return Some(value);
        }
    }
    None
}

/// A Content-Transfer-Encoding (RFC 2045 §6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// 7bit, 8bit, binary, absent, or a value not known: the body's bytes as they are.
    #[default]
    Identity,
    QuotedPrintable,
    Base64,
}

impl Encoding {
    pub fn parse(value: &[u8]) -> Encoding {
        let mut c = Cursor::new(value);
        match c.token() {
            Some(t) if t.eq_ignore_ascii_case(b"quoted-printable") => Encoding::QuotedPrintable,
            Some(t) if t.eq_ignore_ascii_case(b"base64") => Encoding::Base64,
            _ => Encoding::Identity,
        }
    }
}

/// `a` equals `b` ignoring ASCII case.
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The file name's extension is `ext` (given with its dot, lowercase), ignoring case and
/// trailing whitespace.
pub fn has_extension(name: &[u8], ext: &[u8]) -> bool {
    let end = name
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let name = name.get(..end).unwrap_or_default();
    name.len() >= ext.len()
        && name
            .get(name.len() - ext.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(v: &[u8]) -> Option<(String, String)> {
        ContentType::parse(v).media.map(|(t, s)| {
            (
                String::from_utf8_lossy(&t).into_owned(),
                String::from_utf8_lossy(&s).into_owned(),
            )
        })
    }

    fn protocol(v: &[u8]) -> Option<String> {
        ContentType::parse(v)
            .protocol
            .map(|p| String::from_utf8_lossy(&p).into_owned())
    }

    fn pair(t: &str, s: &str) -> Option<(String, String)> {
        Some((t.to_owned(), s.to_owned()))
    }

    #[test]
    fn media_types() {
        assert_eq!(media(b"text/plain"), pair("text", "plain"));
        assert_eq!(media(b"  Multipart/SIGNED ;"), pair("multipart", "signed"));
        assert_eq!(media(b"text / plain"), pair("text", "plain"));
        assert_eq!(media(b"(c) text/(c)plain (c)"), pair("text", "plain"));
        assert_eq!(media(b"((nested) c) text/plain"), pair("text", "plain"));
        assert_eq!(media(b"(a \\) b) text/plain"), pair("text", "plain"));
        assert_eq!(media(b"text"), None);
        assert_eq!(media(b"/plain"), None);
        assert_eq!(media(b""), None);
        assert_eq!(media(b"(unterminated text/plain"), None);
        assert_eq!(media(b"\"text\"/plain"), None);
    }

    #[test]
    fn parameters() {
        let v = b"multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=x";
        assert_eq!(protocol(v).as_deref(), Some("application/pgp-encrypted"));
        // Unquoted, with comments around, odd case of the name (values keep theirs).
        let v = b"multipart/signed;(c) PROTOCOL (c) = application/PGP-signature (c); micalg=x";
        assert_eq!(protocol(v).as_deref(), Some("application/PGP-signature"));
        // Escapes in a quoted string.
        let v = br#"multipart/signed; protocol="application\/pkcs7-\"sig""#;
        assert_eq!(protocol(v).as_deref(), Some("application/pkcs7-\"sig"));
        // The first of two counts.
        let v = b"multipart/signed; protocol=a/b; protocol=c/d";
        assert_eq!(protocol(v).as_deref(), Some("a/b"));
        // A parameter mentioned inside a comment or another value is not one.
        let v = b"multipart/mixed; boundary=\"protocol=application/pgp-encrypted\"";
        assert_eq!(protocol(v), None);
        let v = b"multipart/mixed (protocol=application/pgp-encrypted)";
        assert_eq!(protocol(v), None);
        // An unreadable parameter ends the list.
        assert_eq!(protocol(b"multipart/signed; = x; protocol=a/b"), None);
        assert_eq!(protocol(b"multipart/signed; protocol=\"a/b"), None);
        assert_eq!(
            protocol(b"multipart/signed; protocol=a/b;"),
            Some("a/b".into())
        );
        let ct = ContentType::parse(b"application/pkcs7-mime; Smime-Type=Enveloped-Data; name=x");
        assert_eq!(ct.smime_type.as_deref(), Some(&b"Enveloped-Data"[..]));
        assert_eq!(ct.name.as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn dispositions_and_encodings() {
        assert_eq!(
            disposition_filename(b"attachment; FileName=\"smime.p7m\""),
            Some(b"smime.p7m".to_vec())
        );
        assert_eq!(disposition_filename(b"attachment"), None);
        assert_eq!(Encoding::parse(b" (c) BASE64 "), Encoding::Base64);
        assert_eq!(
            Encoding::parse(b"Quoted-Printable"),
            Encoding::QuotedPrintable
        );
        assert_eq!(Encoding::parse(b"7bit"), Encoding::Identity);
        assert_eq!(Encoding::parse(b""), Encoding::Identity);
        assert!(has_extension(b"SMIME.P7M ", b".p7m"));
        assert!(!has_extension(b"p7m", b".p7m"));
    }
}

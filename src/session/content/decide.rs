//! From the top-level header's Content-Type to a class, or to what the body's first bytes
//! must show.

use super::class::ContentClass;
use super::syntax::{eq, has_extension, ContentType};

/// What the header section decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The class, whatever the body holds.
    Class(ContentClass),
    /// `text/plain`: the first non-blank body line says whether it is inline OpenPGP.
    InlinePgp,
    /// `application/pkcs7-mime` without `smime-type`: the CMS content type at the start of
    /// the body says; if it cannot be read, `fallback` (from the file name).
    Cms { fallback: ContentClass },
}

/// The rules of issue 19. Signed and encrypted counts as encrypted because the outer layer
/// decides: PGP/MIME sign-then-encrypt is `multipart/encrypted` (RFC 3156 §6.1), S/MIME
/// sign-then-envelope is enveloped-data; the rarer encrypt-then-sign shows as signed.
pub fn verdict(ct: &ContentType, filename: Option<&[u8]>) -> Verdict {
    if ct.is_text_plain() {
        return Verdict::InlinePgp;
    }
    let protocol = ct.protocol.as_deref().unwrap_or_default();
    let class = if ct.is(b"multipart", b"encrypted") {
        if eq(protocol, b"application/pgp-encrypted") {
            ContentClass::PgpEncrypted
        } else {
            ContentClass::None
        }
    } else if ct.is(b"multipart", b"signed") {
        if eq(protocol, b"application/pgp-signature") {
            ContentClass::PgpSigned
        } else if eq(protocol, b"application/pkcs7-signature")
            || eq(protocol, b"application/x-pkcs7-signature")
        {
            ContentClass::SmimeSigned
        } else {
            ContentClass::None
        }
    } else if ct.is(b"application", b"pkcs7-mime") || ct.is(b"application", b"x-pkcs7-mime") {
        return pkcs7_mime(ct, filename);
    } else {
        ContentClass::None
    };
    Verdict::Class(class)
}

/// RFC 8551 §3.2.2 `smime-type`; absent, the CMS content type, else the file name (§3.2.1).
fn pkcs7_mime(ct: &ContentType, filename: Option<&[u8]>) -> Verdict {
    let class = match ct.smime_type.as_deref() {
        Some(t) if eq(t, b"enveloped-data") || eq(t, b"authenveloped-data") => {
            ContentClass::SmimeEncrypted
        }
        Some(t) if eq(t, b"signed-data") => ContentClass::SmimeSigned,
        // A certificate-management message protects no content.
        Some(t) if eq(t, b"certs-only") => ContentClass::None,
        // compressed-data (RFC 3274) hides what it wraps; an unregistered value says nothing.
        Some(_) => ContentClass::Unknown,
        None => {
            return Verdict::Cms {
                fallback: by_name(ct.name.as_deref().or(filename)),
            }
        }
    };
    Verdict::Class(class)
}

/// RFC 8551 §3.2.1: `.p7s` is a signature, `.p7c` certificates only. `.p7m` names both
/// signed-data and enveloped-data, so it decides nothing: unknown.
fn by_name(name: Option<&[u8]>) -> ContentClass {
    match name {
        Some(n) if has_extension(n, b".p7s") => ContentClass::SmimeSigned,
        Some(n) if has_extension(n, b".p7c") => ContentClass::None,
        _ => ContentClass::Unknown,
    }
}

/// CMS content types (RFC 5652 §3, RFC 5083 §1) as DER OID contents.
const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
const AUTH_ENVELOPED_DATA: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
];

/// The class a CMS `ContentInfo` (its first bytes, DER or BER) names, if it can be read.
pub fn cms_class(der: &[u8]) -> Option<ContentClass> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    // Short form, indefinite (BER, 0x80), or long form with 1 to 4 length bytes.
    let skip = match len {
        0x81..=0x84 => usize::from(len - 0x80),
        0x00..=0x80 => 0,
        _ => return None,
    };
    let rest = rest.get(skip..)?;
    let (&tag, rest) = rest.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if tag != 0x06 {
        return None;
    }
    let oid = rest.get(..usize::from(len))?;
    match oid {
        SIGNED_DATA => Some(ContentClass::SmimeSigned),
        ENVELOPED_DATA | AUTH_ENVELOPED_DATA => Some(ContentClass::SmimeEncrypted),
        _ => None,
    }
}

/// Enough of a ContentInfo to read its content type.
pub const CMS_PEEK: usize = 2 + 4 + 2 + AUTH_ENVELOPED_DATA.len();

#[cfg(test)]
mod tests {
    use super::*;
    use ContentClass::*;

    fn class(ct: &[u8]) -> Verdict {
        verdict(&ContentType::parse(ct), Option::None)
    }

    #[test]
    fn rules() {
        let cases: &[(&[u8], Verdict)] = &[
            (b"text/plain; charset=utf-8", Verdict::InlinePgp),
            (b"not a type", Verdict::InlinePgp),
            (b"text/html", Verdict::Class(None)),
            (b"multipart/alternative; boundary=x", Verdict::Class(None)),
            (
                b"multipart/encrypted; protocol=\"application/pgp-encrypted\"",
                Verdict::Class(PgpEncrypted),
            ),
            (
                b"multipart/encrypted; protocol=\"x/y\"",
                Verdict::Class(None),
            ),
            (b"multipart/encrypted", Verdict::Class(None)),
            (
                b"Multipart/Signed; micalg=pgp-sha256; protocol=\"Application/PGP-Signature\"",
                Verdict::Class(PgpSigned),
            ),
            (
                b"multipart/signed; protocol=\"application/pkcs7-signature\"",
                Verdict::Class(SmimeSigned),
            ),
            (
                b"multipart/signed; protocol=application/x-pkcs7-signature",
                Verdict::Class(SmimeSigned),
            ),
            (b"multipart/signed", Verdict::Class(None)),
            (
                b"application/pkcs7-mime; smime-type=enveloped-data",
                Verdict::Class(SmimeEncrypted),
            ),
            (
                b"application/pkcs7-mime; smime-type=authEnveloped-data",
                Verdict::Class(SmimeEncrypted),
            ),
            (
                b"application/x-pkcs7-mime; smime-type=\"signed-data\"",
                Verdict::Class(SmimeSigned),
            ),
            (
                b"application/pkcs7-mime; smime-type=certs-only",
                Verdict::Class(None),
            ),
            (
                b"application/pkcs7-mime; smime-type=compressed-data",
                Verdict::Class(Unknown),
            ),
            (
                b"application/pkcs7-mime; name=smime.p7m",
                Verdict::Cms { fallback: Unknown },
            ),
            (
                b"application/pkcs7-mime; name=\"SMIME.P7S\"",
                Verdict::Cms {
                    fallback: SmimeSigned,
                },
            ),
            (
                b"application/pkcs7-mime; name=smime.p7c",
                Verdict::Cms { fallback: None },
            ),
            (b"application/pgp-encrypted", Verdict::Class(None)),
        ];
        for (ct, want) in cases {
            assert_eq!(class(ct), *want, "{}", String::from_utf8_lossy(ct));
        }
        let ct = ContentType::parse(b"application/pkcs7-mime");
        assert_eq!(
            verdict(&ct, Some(b"x.p7s")),
            Verdict::Cms {
                fallback: SmimeSigned
            }
        );
    }

    #[test]
    fn cms_content_types() {
        let info = |len: &[u8], oid: &[u8]| {
            let mut v = vec![0x30];
            v.extend_from_slice(len);
            v.push(0x06);
            v.push(oid.len() as u8);
            v.extend_from_slice(oid);
            v.extend_from_slice(&[0xa0, 0x80]);
            v
        };
        assert_eq!(
            cms_class(&info(&[0x80], ENVELOPED_DATA)),
            Some(SmimeEncrypted)
        );
        assert_eq!(
            cms_class(&info(&[0x82, 0x01, 0x00], SIGNED_DATA)),
            Some(SmimeSigned)
        );
        assert_eq!(
            cms_class(&info(&[0x30], AUTH_ENVELOPED_DATA)),
            Some(SmimeEncrypted)
        );
        assert!(info(&[0x84, 1, 2, 3, 4], AUTH_ENVELOPED_DATA).len() <= CMS_PEEK + 2);
        assert_eq!(cms_class(&info(&[0x80], &[0x2a, 0x03])), Option::None);
        assert_eq!(cms_class(&[0x30, 0x80, 0x06]), Option::None);
        assert_eq!(cms_class(&[0x31, 0x80]), Option::None);
        assert_eq!(cms_class(&[]), Option::None);
        assert_eq!(cms_class(&[0x30, 0x85, 0, 0, 0, 0, 0]), Option::None);
    }
}

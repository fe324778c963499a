use super::*;
use proptest::prelude::*;
use ContentClass::*;

fn classify(message: &[u8]) -> ContentClass {
    let mut c = ContentClassifier::new();
    c.feed(message);
    c.finish()
}

fn bytewise(message: &[u8]) -> ContentClass {
    let mut c = ContentClassifier::new();
    for b in message.chunks(1) {
        c.feed(b);
    }
    c.finish()
}

/// The class of `message`, checked to be the same fed whole, byte by byte, and with LF
/// line ends instead of CRLF.
fn class(message: &str) -> ContentClass {
    let crlf = message.replace('\n', "\r\n");
    let whole = classify(message.as_bytes());
    assert_eq!(
        whole,
        bytewise(message.as_bytes()),
        "byte by byte: {message}"
    );
    assert_eq!(whole, classify(crlf.as_bytes()), "CRLF: {message}");
    whole
}

const PGP_BODY: &str = "-----BEGIN PGP MESSAGE-----\n\nhQEMA...\n-----END PGP MESSAGE-----\n";

#[test]
fn pgp_mime() {
    let m = "From: a@example.org\nContent-Type: multipart/encrypted;\n\tprotocol=\"application/pgp-encrypted\";\n boundary=\"b\"\n\n--b\n";
    assert_eq!(class(m), PgpEncrypted);
    let m = "Content-Type: multipart/signed; micalg=pgp-sha512;\n protocol=\"application/pgp-signature\"; boundary=b\n\nThis is an OpenPGP/MIME signed message\n";
    assert_eq!(class(m), PgpSigned);
}

#[test]
fn smime() {
    let m = "MIME-Version: 1.0\nContent-Disposition: attachment; filename=\"smime.p7m\"\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\n";
    assert_eq!(class(m), SmimeEncrypted);
    let m = "Content-Type: application/x-pkcs7-mime; smime-type=signed-data; name=smime.p7m\n\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\n";
    assert_eq!(class(m), SmimeSigned);
    let m = "Content-Type: multipart/signed; protocol=\"application/x-pkcs7-signature\"; micalg=\"sha-256\"; boundary=\"----X\"\n\nThis is an S/MIME signed message\n";
    assert_eq!(class(m), SmimeSigned);
    let m = "Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data\n\n";
    assert_eq!(class(m), SmimeEncrypted);
}

#[test]
fn smime_without_smime_type() {
    // openssl's envelopedData and signedData ContentInfo, base64 (BER, indefinite length).
    let enveloped = "Content-Type: application/pkcs7-mime; name=smime.p7m\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\n";
    assert_eq!(class(enveloped), SmimeEncrypted);
    let signed = "Content-Type: application/pkcs7-mime; name=smime.p7m\nContent-Transfer-Encoding: base64\n\n\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\n";
    assert_eq!(class(signed), SmimeSigned);
    // The body is not CMS: the name decides, and .p7m says nothing.
    let m = "Content-Type: application/pkcs7-mime; name=smime.p7m\nContent-Transfer-Encoding: base64\n\nAAAA\n";
    assert_eq!(class(m), Unknown);
    let m =
        "Content-Type: application/pkcs7-mime\nContent-Disposition: attachment; filename=x.p7s\n\n";
    assert_eq!(class(m), SmimeSigned);
    // Binary transfer: DER bytes as they are.
    let mut m =
        b"Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            .to_vec();
    m.extend_from_slice(&[
        0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0,
    ]);
    assert_eq!(classify(&m), SmimeEncrypted);
    assert_eq!(bytewise(&m), SmimeEncrypted);
}

#[test]
fn inline_pgp() {
    assert_eq!(class(&format!("Subject: x\n\n{PGP_BODY}")), PgpEncrypted);
    assert_eq!(
        class(&format!("Subject: x\n\n \n\t\n\n{PGP_BODY}")),
        PgpEncrypted
    );
    assert_eq!(
        class("Content-Type: text/plain; charset=us-ascii\n\n-----BEGIN PGP SIGNED MESSAGE-----  \nHash: SHA256\n"),
        PgpSigned
    );
    // No header fields at all: the first line is not a field, so it begins the body.
    assert_eq!(class(PGP_BODY), PgpEncrypted);
    assert_eq!(class(&format!("X: y\n{PGP_BODY}")), PgpEncrypted);
    // A message that ends in its armor line.
    assert_eq!(
        class("Subject: x\n\n-----BEGIN PGP MESSAGE-----"),
        PgpEncrypted
    );
    // Quoted-printable and base64 hide nothing.
    assert_eq!(
        class(
            "Content-Transfer-Encoding: quoted-printable\n\n=2D=2D---BEGIN PGP MESS=\nAGE-----\n"
        ),
        PgpEncrypted
    );
    assert_eq!(
        class("Content-Transfer-Encoding: base64\n\nLS0tLS1CRUdJTiBQR1AgU0lHTkVEIE1FU1NBR0UtLS0tLQpIYXNo\n"),
        PgpSigned
    );
}

#[test]
fn not_inline_pgp() {
    let quoted = format!("Subject: x\n\nHi, my key:\n\n{PGP_BODY}");
    assert_eq!(class(&quoted), None);
    assert_eq!(class(&format!("Subject: x\n\n  {PGP_BODY}")), None);
    assert_eq!(class(&format!("Subject: x\n\n> {PGP_BODY}")), None);
    assert_eq!(
        class("Subject: x\n\n-----BEGIN PGP MESSAGE----- trailing\n"),
        None
    );
    assert_eq!(
        class("Subject: x\n\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n"),
        None
    );
    assert_eq!(class("Subject: x\n\n-----begin pgp message-----\n"), None);
    // Only text/plain is read for armor.
    assert_eq!(
        class(&format!("Content-Type: text/html\n\n{PGP_BODY}")),
        None
    );
    assert_eq!(class("Subject: x\n\n"), None);
    assert_eq!(class("Subject: x\n\n\n\n"), None);
    // Past the look, blank lines decide.
    let blanks = "\n".repeat(BODY_LOOK_MAX);
    assert_eq!(class(&format!("Subject: x\n\n{blanks}{PGP_BODY}")), None);
    let long = "x".repeat(5000);
    assert_eq!(class(&format!("Subject: x\n\n{long}\n")), None);
}

#[test]
fn other_headers_do_not_matter() {
    let m = "Subject: Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"\nX-Content-Type: application/pkcs7-mime; smime-type=enveloped-data\nContent-Types: multipart/signed; protocol=application/pgp-signature\nComments: -----BEGIN PGP MESSAGE-----\n\nhello\n";
    assert_eq!(class(m), None);
    let m = "Subject: hi\n -----BEGIN PGP MESSAGE-----\n\nhello\n";
    assert_eq!(class(m), None);
    let m = "Content-Type: multipart/mixed; boundary=\"protocol=application/pgp-encrypted\"\n (multipart/encrypted)\n\n";
    assert_eq!(class(m), None);
}

#[test]
fn header_grammar() {
    let cases: &[(&str, ContentClass)] = &[
        // Odd case in names and values.
        ("CONTENT-TYPE: MULTIPART/ENCRYPTED; PROTOCOL=\"APPLICATION/PGP-ENCRYPTED\"\n\n", PgpEncrypted),
        ("content-type:multipart/encrypted;protocol=application/pgp-encrypted\n\n", PgpEncrypted),
        // Obsolete whitespace before the colon (RFC 5322 §4.5).
        ("Content-Type  : multipart/signed; protocol=\"application/pgp-signature\"\n\n", PgpSigned),
        // Folding everywhere whitespace may go.
        ("Content-Type:\n multipart/signed\n ;\n protocol\n =\n \"application/pkcs7-signature\"\n\n", SmimeSigned),
        // Comments, nested and escaped.
        ("Content-Type: (a (b) \\) c) multipart/encrypted (x); (y) protocol=(z)\"application/pgp-encrypted\"\n\n", PgpEncrypted),
        // A quoted string with escapes.
        ("Content-Type: multipart/signed; protocol=\"application\\/pgp-signature\"\n\n", PgpSigned),
        // Parameters in any order, duplicated ones: the first counts.
        ("Content-Type: multipart/signed; boundary=x; protocol=application/pgp-signature; protocol=x/y\n\n", PgpSigned),
        // Two Content-Type fields: unknown.
        ("Content-Type: text/plain\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"\n\n", Unknown),
        // A Content-Type that does not parse is text/plain (RFC 2045 §5.2).
        ("Content-Type: garbage\n\n-----BEGIN PGP MESSAGE-----\n", PgpEncrypted),
        ("Content-Type:\n\n-----BEGIN PGP MESSAGE-----\n", PgpEncrypted),
        // Whitespace-only folded first line is a continuation of nothing: still a header.
        (" x\nSubject: y\n\n-----BEGIN PGP MESSAGE-----\n", PgpEncrypted),
        // CR alone at a line start begins the body.
        ("Subject: y\n\rx\n", None),
    ];
    for (m, want) in cases {
        assert_eq!(class(m), *want, "{m}");
    }
}

#[test]
fn unknown() {
    // Ended inside the header section.
    assert_eq!(
        class("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"\n"),
        Unknown
    );
    assert_eq!(class(""), Unknown);
    // Past the header cap.
    let big = format!("X-Big: {}\n", "a".repeat(HEADER_MAX));
    assert_eq!(class(&format!("{big}\n{PGP_BODY}")), Unknown);
    // A Content-Type value past its cap.
    let ct = format!(
        "Content-Type: text/plain; x=\"{}\"\n\n",
        "a".repeat(FIELD_MAX)
    );
    assert_eq!(class(&ct), Unknown);
    // Just under the caps.
    let ct = format!(
        "Content-Type: text/plain; x=\"{}\"\n\n",
        "a".repeat(FIELD_MAX - 30)
    );
    assert_eq!(class(&ct), None);
}

#[test]
fn gaps() {
    let gap_after = |head: &str| {
        let mut c = ContentClassifier::new();
        c.feed(head.as_bytes());
        c.gap();
        c.feed(b"\n\nmore\n");
        c.finish()
    };
    assert_eq!(gap_after("Subject: x\n"), Unknown);
    assert_eq!(gap_after("Subject: x\n\n"), Unknown);
    assert_eq!(gap_after("Subject: x\n\n\n"), Unknown);
    assert_eq!(gap_after("Subject: x\n\nhello\n"), None);
    assert_eq!(gap_after("Content-Type: text/html\n\n"), None);
    assert_eq!(
        gap_after("Content-Type: multipart/signed; protocol=application/pgp-signature\n\n"),
        PgpSigned
    );
}

#[test]
fn cut_lines() {
    let cut_after = |head: &str| {
        let mut c = ContentClassifier::new();
        c.feed(head.as_bytes());
        c.cut_line();
        c.feed(b"\n\n-----BEGIN PGP MESSAGE-----\n");
        c.finish()
    };
    // A cut in a field not looked at loses nothing that matters.
    assert_eq!(cut_after("References: <a@b>"), PgpEncrypted);
    assert_eq!(
        cut_after("Subject: x\nContent-Type: text/plain; charset="),
        Unknown
    );
    assert_eq!(cut_after("Subject: x\nContent-Typ"), Unknown);
    assert_eq!(
        cut_after("Subject: x\nContent-Transfer-Encoding: base"),
        Unknown
    );
}

#[test]
fn state_is_small() {
    let size = std::mem::size_of::<ContentClassifier>();
    assert!(size <= 256, "ContentClassifier is {size} bytes");
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    let part = prop_oneof![
        Just(
            &b"Content-Type: multipart/encrypted;\r\n protocol=\"application/pgp-encrypted\"\r\n"[..]
        ),
        Just(&b"Content-Type: application/pkcs7-mime; name=smime.p7m\r\n"[..]),
        Just(&b"content-type: text/plain (c)\n"[..]),
        Just(&b"Content-Transfer-Encoding: base64\r\n"[..]),
        Just(&b"Content-Transfer-Encoding: quoted-printable\r\n"[..]),
        Just(&b"Subject: -----BEGIN PGP MESSAGE-----\r\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\n"[..]),
        Just(&b" \t"[..]),
        Just(&b"-----BEGIN PGP MESSAGE-----\r\n"[..]),
        Just(&b"-----BEGIN PGP SIGNED MESSAGE-----\n"[..]),
        Just(&b"LS0tLS1CRUdJTiBQR1AgTUVTU0FHRS0tLS0tCg==\r\n"[..]),
        Just(&b"MIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n"[..]),
        Just(&b"=2D=2D---BEGIN PGP MESSAGE=\r\n-----\r\n"[..]),
        Just(&b"hello: world\r\n"[..]),
        Just(&b"("[..]),
        Just(&b"\""[..]),
        Just(&b"\r"[..]),
    ];
    prop::collection::vec(
        prop_oneof![
            part.prop_map(<[u8]>::to_vec),
            prop::collection::vec(any::<u8>(), 0..8)
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    /// The class does not depend on how the message is cut into `feed` calls.
    #[test]
    fn cut_anywhere(message in message(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(message.len() + 1)).collect();
        at.sort_unstable();
        let mut c = ContentClassifier::new();
        let mut from = 0;
        for to in at.into_iter().chain([message.len()]) {
            c.feed(message.get(from..to).unwrap_or_default());
            from = to;
        }
        let whole = classify(&message);
        prop_assert_eq!(c.finish(), whole);
        prop_assert_eq!(bytewise(&message), whole);
    }
}

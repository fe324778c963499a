#!/usr/bin/env python3
"""Makes the test PKI for the TLS analyzer tests (python3 `cryptography`).

Run from this folder: `python3 gen_certs.py`. Dates are fixed so the tests can pick a
capture time: everything is valid 2025-01-01 .. 2035-01-01 except `expired` (2020..2021)
and `future` (2040..2041).
"""
import datetime as dt
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, ec

D = dt.datetime
VALID = (D(2025, 1, 1), D(2035, 1, 1))


def key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailtap tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(subject_cn, subject_key, issuer_cn, issuer_key, ca, dates=VALID, sans=None):
    b = (x509.CertificateBuilder()
         .subject_name(name(subject_cn)).issuer_name(name(issuer_cn))
         .public_key(subject_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(dates[0]).not_valid_after(dates[1])
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in (sans or [subject_cn])]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


def write(path, *items):
    with open(path, "wb") as f:
        for i in items:
            f.write(i if isinstance(i, bytes) else pem(i))


def keypem(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


ca_key = key()
ca = cert("mailtap Test Root CA", ca_key, "mailtap Test Root CA", ca_key, True)
write("ca.pem", ca)

leaf_key = key()
write("leaf.key", keypem(leaf_key))
write("leaf.pem", cert("mail.example.test", leaf_key, "mailtap Test Root CA", ca_key, False))
write("expired.pem", cert("mail.example.test", leaf_key, "mailtap Test Root CA", ca_key, False,
                          dates=(D(2020, 1, 1), D(2021, 1, 1))))
write("future.pem", cert("mail.example.test", leaf_key, "mailtap Test Root CA", ca_key, False,
                         dates=(D(2040, 1, 1), D(2041, 1, 1))))
write("wrongname.pem", cert("other.example.test", leaf_key, "mailtap Test Root CA", ca_key, False))
write("selfsigned.pem", cert("mail.example.test", leaf_key, "mail.example.test", leaf_key, False))

# A long chain: root -> int1 .. int4 (RSA 4096) -> leaf with 500 names: more than 16 KiB.
prev_cn, prev_key, chain = "mailtap Test Root CA", ca_key, []
for i in range(1, 5):
    k = key(4096)
    c = cert(f"mailtap Test Intermediate {i}", k, prev_cn, prev_key, True)
    chain.append(c)
    prev_cn, prev_key = f"mailtap Test Intermediate {i}", k
sans = ["mail.example.test"] + [f"alias-{i:03}.mail.example.test" for i in range(500)]
big_leaf = cert("mail.example.test", leaf_key, prev_cn, prev_key, False, sans=sans)
write("bigchain.pem", big_leaf, *reversed(chain))

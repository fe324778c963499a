#!/usr/bin/env python3
"""SMTP clients for the live-capture tests (standard library only).

  smtp_client.py starttls   HOST PORT   EHLO, STARTTLS, EHLO, one message (certificate unchecked)
  smtp_client.py plain-auth HOST PORT   EHLO, AUTH PLAIN in clear, one message in clear
  smtp_client.py hold       HOST PORT   greeting and EHLO, then waits until stdin closes

Each prints its local port first (so the test can find its session), and exits non-zero if the
server does not answer as expected.
"""
import smtplib, socket, ssl, sys

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
MSG = ("From: <alice@client.example.test>\r\nTo: <bob@example.test>\r\n"
       "Subject: live capture test\r\n\r\nhello\r\n")

if mode == "hold":
    s = socket.create_connection((host, port), 10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO client.example.test\r\n")
    while f.readline()[3:4] == b"-":
        pass
    print(s.getsockname()[1], flush=True)
    sys.stdin.read()
    sys.exit(0)

c = smtplib.SMTP(host, port, local_hostname="client.example.test", timeout=10)
print(c.sock.getsockname()[1], flush=True)
c.ehlo()
if mode == "starttls":
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c.starttls(context=ctx)
    c.ehlo()
elif mode == "plain-auth":
    c.login("user", "S3cret")
else:
    sys.exit(f"unknown mode {mode}")
c.sendmail("alice@client.example.test", ["bob@example.test"], MSG)
c.quit()

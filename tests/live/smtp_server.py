#!/usr/bin/env python3
"""A small SMTP server for the live-capture tests (standard library only).

  smtp_server.py CERT KEY PORT

Listens on every address, one thread per connection, until killed. EHLO offers STARTTLS
(before TLS) and AUTH PLAIN LOGIN; STARTTLS switches to TLS 1.2 with exactly
ECDHE-ECDSA-AES128-GCM-SHA256 on secp256r1, so the test knows what mailtap must report.
Every login succeeds; mail is accepted and thrown away. Prints "ready" once listening.
"""
import socketserver, ssl, sys

CERT, KEY, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])

TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
TLS.minimum_version = ssl.TLSVersion.TLSv1_2
TLS.maximum_version = ssl.TLSVersion.TLSv1_2
TLS.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
TLS.set_ecdh_curve("prime256v1")
TLS.load_cert_chain(CERT, KEY)


class Session(socketserver.StreamRequestHandler):
    def handle(self):
        sock = self.request
        f = sock.makefile("rb")

        def send(*lines):
            sock.sendall(b"".join(l.encode() + b"\r\n" for l in lines))

        send("220 mail.example.test ESMTP live test")
        tls = False
        while True:
            line = f.readline()
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
            if verb == "EHLO":
                caps = ["250-mail.example.test", "250-PIPELINING"]
                if not tls:
                    caps.append("250-STARTTLS")
                send(*caps, "250 AUTH PLAIN LOGIN")
            elif verb == "STARTTLS" and not tls:
                send("220 2.0.0 Ready to start TLS")
                sock = TLS.wrap_socket(sock, server_side=True)
                f = sock.makefile("rb")
                tls = True
            elif verb == "AUTH":
                send("235 2.7.0 Authentication successful")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                send("250 2.0.0 Ok")
            elif verb == "DATA":
                send("354 End data with <CR><LF>.<CR><LF>")
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                send("250 2.0.0 Ok: queued")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("500 5.5.2 Error: command not recognized")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


with Server(("0.0.0.0", PORT), Session) as server:
    print("ready", flush=True)
    server.serve_forever()

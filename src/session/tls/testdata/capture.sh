#!/bin/sh
# Captures the real handshakes used by the TLS analyzer tests (OpenSSL 3.0 s_server/s_client
# on loopback, tcpdump as root), then keeps only the TCP payloads: one line per segment,
# `C <hex>` (client to server) or `S <hex>` (server to client), in capture order.
# Run from this folder after `python3 gen_certs.py` (which writes leaf.key, not committed).
set -eu
ADDR=127.0.2.1
SNI=mail.example.test

# case port "server options" "client options" [sess_in]
run() {
    name=$1 port=$2 sopts=$3 copts=$4
    tcpdump -i lo -s 0 -U -w "/tmp/$name.pcap" "host $ADDR and tcp port $port" 2>/dev/null &
    dump=$!
    sleep 1
    # shellcheck disable=SC2086
    (sleep 3) | openssl s_server -accept "$ADDR:$port" -naccept 1 -key leaf.key $sopts >/dev/null 2>&1 &
    srv=$!
    sleep 0.5
    # shellcheck disable=SC2086
    (sleep 0.5) | openssl s_client -connect "$ADDR:$port" $copts >/dev/null 2>&1 || true
    sleep 0.5
    kill "$srv" 2>/dev/null || true
    kill "$dump"; wait "$dump" || true
    tshark -r "/tmp/$name.pcap" -Y 'tcp.len>0' -T fields -e tcp.dstport -e tcp.payload \
        | awk -v p="$port" '{ print ($1 == p ? "C " : "S ") $2 }' > "$name.hex"
}

run tls13_x25519 4401 "-cert leaf.pem -tls1_3 -groups X25519" \
    "-servername $SNI -tls1_3 -groups X25519 -alpn imap"
run tls12_ecdhe_rsa 4402 "-cert leaf.pem -tls1_2" \
    "-servername $SNI -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"
run tls12_rsa 4403 "-cert leaf.pem -tls1_2 -cipher AES128-SHA" \
    "-servername $SNI -tls1_2 -cipher AES128-SHA"
run tls12_dhe_rsa 4404 "-cert leaf.pem -tls1_2" \
    "-servername $SNI -tls1_2 -cipher DHE-RSA-AES256-GCM-SHA384"
run tls12_alert 4405 "-cert leaf.pem -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256" \
    "-servername $SNI -tls1_2 -cipher AES256-SHA"
run tls13_hrr 4406 "-cert leaf.pem -tls1_3 -groups P-256" \
    "-servername $SNI -tls1_3 -groups X25519:P-256"
run tls12_bigchain 4407 "-cert bigchain.pem -cert_chain bigchain.pem -tls1_2" \
    "-servername $SNI -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384"
run tls12_selfsigned_nosni 4408 "-cert selfsigned.pem -tls1_2" \
    "-noservername -tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305"

# Resumption: a first connection saves the session, the second (captured) resumes it.
resume() {
    name=$1 port=$2 ver=$3
    (sleep 5) | openssl s_server -accept "$ADDR:$port" -naccept 2 -key leaf.key -cert leaf.pem "$ver" >/dev/null 2>&1 &
    srv=$!
    sleep 0.5
    (sleep 0.5) | openssl s_client -connect "$ADDR:$port" -servername $SNI "$ver" -sess_out /tmp/$name.sess >/dev/null 2>&1 || true
    tcpdump -i lo -s 0 -U -w "/tmp/$name.pcap" "host $ADDR and tcp port $port" 2>/dev/null &
    dump=$!
    sleep 1
    (sleep 0.5) | openssl s_client -connect "$ADDR:$port" -servername $SNI "$ver" -sess_in /tmp/$name.sess >/dev/null 2>&1 || true
    sleep 0.5
    kill "$srv" 2>/dev/null || true
    kill "$dump"; wait "$dump" || true
    tshark -r "/tmp/$name.pcap" -Y 'tcp.len>0' -T fields -e tcp.dstport -e tcp.payload \
        | awk -v p="$port" '{ print ($1 == p ? "C " : "S ") $2 }' > "$name.hex"
}
resume tls12_resumed 4409 -tls1_2
resume tls13_resumed 4410 -tls1_3

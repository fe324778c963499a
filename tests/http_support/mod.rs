//! Helpers for the HTTP tests: run the real binary serving on a free loopback port, and a
//! small HTTP/1.1 client (plain or over rustls) that shows every status and header as sent.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// A `mailtap replay` that has replayed its inputs and lingers, serving.
pub struct Served {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn fixture(case: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(case)
        .to_string_lossy()
        .into_owned()
}

/// Run `mailtap replay --quiet ARGS` on 127.0.0.1, port chosen by the system (unless
/// `listen_by_env`, which passes the address through `MAILTAP_WEB_LISTEN_ADDRESS`), and wait
/// until the replay is done.
pub fn serve(args: &[&str], listen_by_env: bool) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailtap"));
    cmd.args(["replay", "--quiet", "--linger", "120"]);
    if listen_by_env {
        cmd.env("MAILTAP_WEB_LISTEN_ADDRESS", "127.0.0.1:0");
    } else {
        cmd.args(["--web.listen-address", "127.0.0.1:0"]);
    }
    cmd.args(args).stdout(Stdio::null());
    spawn(cmd, |line| line.starts_with("mailtap: replay done"))
}

/// Run `mailtap replay --quiet ARGS` on 127.0.0.1 (port chosen by the system) with its
/// report going to `stdout`, and return as soon as it listens: the replay goes on.
pub fn serve_while_replaying(args: &[&str], stdout: Stdio) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailtap"));
    cmd.args(["replay", "--quiet", "--web.listen-address", "127.0.0.1:0"]);
    cmd.args(args).stdout(stdout);
    spawn(cmd, |line| line.starts_with("mailtap: listening on "))
}

/// Start `cmd` and read its stderr until the line for which `ready` is true; the listening
/// address must have been announced by then.
fn spawn(mut cmd: Command, ready: impl Fn(&str) -> bool) -> Served {
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("mailtap starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    // Drains stderr for the whole run, so the child never blocks writing to it.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("mailtap says it is listening (and, when asked, that the replay is done)");
        if let Some(rest) = line.strip_prefix("mailtap: listening on ") {
            let a = rest.split_whitespace().next().unwrap_or_default();
            addr = Some(a.parse::<SocketAddr>().expect("an address"));
        }
        if ready(&line) {
            break;
        }
    }
    Served {
        child,
        addr: addr.expect("the address came before the end of the replay"),
    }
}

impl Served {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (through kill(1): std sends only SIGKILL), then wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(sent.success(), "kill -TERM {}", self.child.id());
        self.child.wait().expect("mailtap exits")
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a new connection (`Connection: close`); `tls` speaks HTTPS.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    tls: Option<Arc<rustls::ClientConfig>>,
) -> std::io::Result<Response> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (n, v) in extra_headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let raw = match tls {
        None => exchange(tcp, head.as_bytes())?,
        Some(cfg) => {
            let name = pki_types::ServerName::try_from("localhost").expect("a name");
            let conn = rustls::ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
            exchange(rustls::StreamOwned::new(conn, tcp), head.as_bytes())?
        }
    };
    parse(&raw)
}

fn exchange<S: Read + Write>(mut s: S, head: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(head)?;
    s.flush()?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        // A peer that closes without close_notify after a complete response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => Ok(out),
        Err(e) => Err(e),
    }
}

fn parse(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], None).expect("the request is answered")
}

/// A client that trusts exactly `ca_pem`, optionally presenting a client certificate.
pub fn tls_client(
    ca_pem: &str,
    client: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    use pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("PEM")).expect("a CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certs = pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client certificate");
            let key = pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client auth")
        }
    };
    Arc::new(cfg)
}

/// A scratch directory unique to this call.
pub fn scratch_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mailtap-http-{}-{n}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A TCP connection to `addr` from the loopback address `source` (any 127.x.y.z: to the
/// server, a different client), with a receive buffer of `rcvbuf` bytes if given.
pub fn connect_from(
    source: std::net::Ipv4Addr,
    addr: SocketAddr,
    rcvbuf: Option<usize>,
) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    if let Some(n) = rcvbuf {
        s.set_recv_buffer_size(n)?;
    }
    s.bind(&SocketAddr::from((source, 0)).into())?;
    s.connect_timeout(&addr.into(), Duration::from_secs(2))?;
    Ok(s.into())
}

/// A field of `/proc/<pid>/status` in kB (VmRSS, VmHWM), or a count (Threads).
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Descriptors the process has open now.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

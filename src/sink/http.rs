//! The HTTP endpoint Prometheus scrapes: `/` (the HTML report so far, with the links to the
//! rest), the telemetry path (`/metrics`, the text exposition format), `/servers` (the server
//! inventory as JSON) and `/report.json` (the JSON report so far). GET and HEAD only; TLS and
//! basic authentication from `--web.config.file` ([`webconfig`]), for every path. The paths
//! and what answers them are in `routes.rs`.
//!
//! The server runs on its own thread with a single-threaded tokio runtime, at a lower
//! scheduling priority than the analysis (`priority.rs`), and reads only shared state
//! (`Arc<Metrics>`, `Arc<Inventory>`, `Arc<SharedReport>`). A network that is hostile to it
//! gets bounded costs:
//!
//! | what | bound |
//! |---|---|
//! | connections at once | [`HttpConfig::max_connections`] in all, [`HttpConfig::max_connections_per_client`] from one address (`clients.rs`); beyond them a connection is closed at once |
//! | TLS handshake | [`TLS_HANDSHAKE_TIMEOUT`] |
//! | request head, and keep-alive idle before the next one | [`HEAD_TIMEOUT`], [`MAX_HEAD_BYTES`] (431 beyond) |
//! | request body | never read; the connection is not reused after one |
//! | writing the response | each write may wait [`WRITE_TIMEOUT`] for the client to read (`deadline.rs`) |
//! | a connection's life | no new request after [`CONNECTION_LIFETIME`]; closed [`CLOSE_GRACE`] later whatever it is doing |
//! | memory per connection | the head buffer, and at most a few chunks of a response queued; `/servers`, `/report.json` and `/` are each one shared rendering (`rendered.rs`) |
//! | password checks | one bcrypt at a time, a few failures per client (`auth.rs`) |
//!
//! The blocking pool (bcrypt, rendering the pages) runs at the lowest priority.

mod auth;
mod clients;
mod deadline;
mod priority;
mod rendered;
mod routes;
pub mod webconfig;

use crate::sink::inventory::Inventory;
use crate::sink::metrics::Metrics;
use crate::sink::report::SharedReport;
use auth::{BasicAuth, Gate, Verdict};
use clients::{Client, Clients, Slot};
use deadline::WriteTimeout;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rendered::RenderedPage;
pub use routes::METRICS_CONTENT_TYPE;
use routes::{route, text, Body};
use socket2::{Domain, Protocol, Socket, Type};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use webconfig::WebConfig;

/// Not in Prometheus' default port allocations (whose exporter range 9100–9999 is full):
/// just above it, and 587 as in mail submission. See the README.
pub const DEFAULT_PORT: u16 = 10587;
/// Every interface, IPv4 and IPv6, on [`DEFAULT_PORT`].
pub const DEFAULT_LISTEN_ADDRESS: &str = ":10587";
pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";
/// The inventory's path.
pub const SERVERS_PATH: &str = "/servers";
/// The JSON report's path (the page at `/` shows the same numbers).
pub const REPORT_PATH: &str = "/report.json";
/// How often the page at `/` reloads itself.
const PAGE_REFRESH_SECONDS: u32 = 10;

/// Connections at once, in all: far more than honest scrapers need, well within the
/// 1024 file descriptors a process gets by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Connections at once from one client: a Prometheus needs one, a browser six.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 8;
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// hyper's smallest read buffer: a request head larger than this gets 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// Waiting connections the kernel holds before they are accepted.
const BACKLOG: i32 = 1024;

/// What to serve, and where: `--web.listen-address`, `--web.telemetry-path`,
/// `--web.config.file`, `--web.max-connections`, `--web.max-connections-per-client`.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub listen_address: String,
    pub telemetry_path: String,
    pub web_config: Option<PathBuf>,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Bad flags or web config file (exit status 2).
    #[error("{0}")]
    Config(String),
    /// The address cannot be listened on (in use, not ours).
    #[error("--web.listen-address {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// A running server. Stops when stopped or dropped.
pub struct Server {
    local_addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Check the configuration, listen, and serve on a thread of its own.
    pub fn start(
        cfg: &HttpConfig,
        metrics: Arc<Metrics>,
        inventory: Arc<Inventory>,
        report: Arc<SharedReport>,
    ) -> Result<Server, HttpError> {
        check_telemetry_path(&cfg.telemetry_path)?;
        let web = match &cfg.web_config {
            Some(path) => WebConfig::load(path).map_err(|e| HttpError::Config(e.to_string()))?,
            None => WebConfig {
                tls: None,
                users: Default::default(),
            },
        };
        let listener = listen(&cfg.listen_address)?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| listen_error(cfg, source))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // The blocking pool runs bcrypt checks and the pages' renderings, one of each at a
            // time.
            .max_blocking_threads(4)
            .on_thread_start(|| priority::lower_this_thread(priority::LOWEST))
            .build()
            .map_err(|source| listen_error(cfg, source))?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|source| listen_error(cfg, source))?
        };
        let tls = web.tls.is_some();
        let app = Arc::new(App {
            metrics,
            servers: RenderedPage::new(rendered::servers_json(Arc::clone(&inventory))),
            report_json: RenderedPage::new(routes::report_json(
                Arc::clone(&report),
                Arc::clone(&inventory),
            )),
            report_page: RenderedPage::new(routes::report_page(
                report,
                inventory,
                cfg.telemetry_path.clone(),
            )),
            telemetry_path: cfg.telemetry_path.clone(),
            auth: BasicAuth::new(web.users).map(Gate::new),
        });
        let clients = Clients::new(
            clients::within_fd_limit(cfg.max_connections),
            cfg.max_connections_per_client,
        );
        let acceptor = web.tls.map(tokio_rustls::TlsAcceptor::from);
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("mailtap-http".into())
            .spawn(move || {
                priority::lower_this_thread(priority::EVENT_LOOP_LOWER);
                runtime.block_on(accept_loop(listener, acceptor, app, clients, stopped));
            })
            .map_err(|source| listen_error(cfg, source))?;
        Ok(Server {
            local_addr,
            tls,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens (the real port when the address asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// Stop accepting, drop open connections, and wait for the thread.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn listen_error(cfg: &HttpConfig, source: std::io::Error) -> HttpError {
    HttpError::Listen {
        address: cfg.listen_address.clone(),
        source,
    }
}

fn check_telemetry_path(path: &str) -> Result<(), HttpError> {
    if !path.starts_with('/') || path == "/" || path == SERVERS_PATH || path == REPORT_PATH {
        return Err(HttpError::Config(format!(
            "--web.telemetry-path {path:?}: must start with / and be none of /, {SERVERS_PATH}, \
             {REPORT_PATH}"
        )));
    }
    Ok(())
}

/// `:PORT` (every interface, IPv6 and IPv4), `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT`.
fn listen(address: &str) -> Result<std::net::TcpListener, HttpError> {
    let bad = |why: String| HttpError::Config(format!("--web.listen-address {address:?}: {why}"));
    let io_err = |source| HttpError::Listen {
        address: address.to_string(),
        source,
    };
    if let Some(port) = address.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port is not a number from 0 to 65535".into()))?;
        return listen_any(port).map_err(io_err);
    }
    let addr = address
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("the name resolves to no address".into()))?;
    bind(addr, None).map_err(io_err)
}

/// Every interface: one dual-stack IPv6 socket, or IPv4 alone where IPv6 is missing.
fn listen_any(port: u16) -> std::io::Result<std::net::TcpListener> {
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
    match bind(v6, Some(false)) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(e),
        Err(_) => bind(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            None,
        ),
    }
}

fn bind(addr: SocketAddr, only_v6: Option<bool>) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(v6) = only_v6 {
        socket.set_only_v6(v6)?;
    }
    // As Go's listeners do: a restarted sensor may bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Shared by every connection.
pub(crate) struct App {
    metrics: Arc<Metrics>,
    servers: RenderedPage,
    report_json: RenderedPage,
    report_page: RenderedPage,
    telemetry_path: String,
    auth: Option<Arc<Gate>>,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Arc<App>,
    clients: Arc<Clients>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors, or a connection reset before it was accepted: go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // Over a limit: closed at once (the client sees the connection end).
        let Ok(slot) = clients.admit(Client::of(peer.ip())) else {
            continue;
        };
        let app = Arc::clone(&app);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, app, slot).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_connection(stream, app, slot).await;
                    }
                }
            }
        });
    }
}

/// One connection, for at most [`CONNECTION_LIFETIME`] and [`CLOSE_GRACE`]; its slot is
/// given back when it ends.
async fn serve_connection<S>(stream: S, app: Arc<App>, slot: Slot)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let client = slot.client();
    let service = hyper::service::service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(respond(&app, client, req).await) }
    });
    let io = TokioIo::new(WriteTimeout::new(stream, WRITE_TIMEOUT));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service);
    tokio::pin!(conn);
    // A client that goes away mid-request is its own business.
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = tokio::time::sleep(CONNECTION_LIFETIME) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(CLOSE_GRACE, conn).await;
    drop(slot);
}

async fn respond(app: &Arc<App>, client: Client, req: Request<Incoming>) -> Response<Body> {
    // The body is never read: a request that has one ends its connection.
    let has_body = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let mut r = match &app.auth {
        None => route(app, req.method(), req.uri().path()).await,
        Some(gate) => {
            let authorization = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes().to_vec());
            match gate.admit(client, authorization).await {
                Verdict::Allowed => route(app, req.method(), req.uri().path()).await,
                Verdict::Unauthorized => {
                    let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                    r
                }
                Verdict::TooManyFailures(seconds) => {
                    let mut r = text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                    r
                }
                Verdict::Busy => {
                    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n");
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    r
                }
            }
        }
    };
    if has_body {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_path_is_checked() {
        assert!(check_telemetry_path("/metrics").is_ok());
        assert!(check_telemetry_path("/").is_err());
        assert!(check_telemetry_path("metrics").is_err());
        assert!(check_telemetry_path("/servers").is_err());
        assert!(check_telemetry_path("/report.json").is_err());
    }

    #[test]
    fn bad_listen_addresses_are_configuration_errors() {
        assert!(matches!(listen(":http"), Err(HttpError::Config(_))));
        assert!(matches!(listen("no-port"), Err(HttpError::Config(_))));
        let l = listen("127.0.0.1:0").unwrap();
        assert!(l.local_addr().unwrap().port() != 0);
    }
}

//! The HTTP endpoint Prometheus scrapes: `/` (a landing page), the telemetry path (`/metrics`,
//! the text exposition format) and `/servers` (the server inventory as JSON). GET and HEAD
//! only; TLS and basic authentication from `--web.config.file` ([`webconfig`]).
//!
//! The server runs on its own thread with a single-threaded tokio runtime, so the engine and
//! its sink stay plain threads. It reads only shared state (`Arc<Metrics>`, `Arc<Inventory>`),
//! and bounds what a client can hold: a number of connections at once, a deadline for the
//! request head and for the TLS handshake.

mod auth;
pub mod webconfig;

use crate::sink::inventory::Inventory;
use crate::sink::metrics::Metrics;
use auth::BasicAuth;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::{Domain, Protocol, Socket, Type};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};
use webconfig::WebConfig;

/// Not in Prometheus' default port allocations (whose exporter range 9100–9999 is full):
/// just above it, and 587 as in mail submission. See the README.
pub const DEFAULT_PORT: u16 = 10587;
/// Every interface, IPv4 and IPv6, on [`DEFAULT_PORT`].
pub const DEFAULT_LISTEN_ADDRESS: &str = ":10587";
pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";
/// The inventory's path.
pub const SERVERS_PATH: &str = "/servers";

/// The exposition format version Prometheus negotiates down to.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What to serve, and where: `--web.listen-address`, `--web.telemetry-path`,
/// `--web.config.file`.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub listen_address: String,
    pub telemetry_path: String,
    pub web_config: Option<PathBuf>,
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
            inventory,
            telemetry_path: cfg.telemetry_path.clone(),
            auth: BasicAuth::new(web.users),
        });
        let acceptor = web.tls.map(tokio_rustls::TlsAcceptor::from);
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("mailtap-http".into())
            .spawn(move || runtime.block_on(accept_loop(listener, acceptor, app, stopped)))
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
    if !path.starts_with('/') || path == "/" || path == SERVERS_PATH {
        return Err(HttpError::Config(format!(
            "--web.telemetry-path {path:?}: must start with / and be neither / nor {SERVERS_PATH}"
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
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Shared by every connection.
struct App {
    metrics: Arc<Metrics>,
    inventory: Arc<Inventory>,
    telemetry_path: String,
    auth: Option<BasicAuth>,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Arc<App>,
    mut stopped: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = &mut stopped => return,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, or a connection reset before it was accepted: go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let app = Arc::clone(&app);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, app).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_connection(stream, app).await;
                    }
                }
            }
        });
    }
}

async fn serve_connection<S>(stream: S, app: Arc<App>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(respond(&app, req).await) }
    });
    // A client that goes away mid-request is its own business.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

type Body = Full<Bytes>;

async fn respond(app: &Arc<App>, req: Request<Incoming>) -> Response<Body> {
    if app.auth.is_some() {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec());
        let checker = Arc::clone(app);
        // bcrypt takes tens of milliseconds: not on the event loop.
        let ok = tokio::task::spawn_blocking(move || {
            checker
                .auth
                .as_ref()
                .is_some_and(|a| a.check(header.as_deref()))
        })
        .await
        .unwrap_or(false);
        if !ok {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            return r;
        }
    }
    route(app, req.method(), req.uri().path())
}

/// The response to a request that passed authentication. HEAD gets GET's headers; hyper leaves
/// the body out.
fn route(app: &App, method: &Method, path: &str) -> Response<Body> {
    let known = path == "/" || path == app.telemetry_path || path == SERVERS_PATH;
    if !known {
        return text(StatusCode::NOT_FOUND, "Not Found\n");
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path == app.telemetry_path {
        return body(StatusCode::OK, METRICS_CONTENT_TYPE, app.metrics.render());
    }
    if path == SERVERS_PATH {
        let mut json = serde_json::to_string_pretty(&app.inventory.snapshot()).unwrap_or_default();
        json.push('\n');
        return body(StatusCode::OK, "application/json", json);
    }
    body(
        StatusCode::OK,
        "text/html; charset=utf-8",
        landing_page(&app.telemetry_path),
    )
}

fn text(status: StatusCode, s: &'static str) -> Response<Body> {
    body(status, "text/plain; charset=utf-8", s.to_string())
}

fn body(status: StatusCode, content_type: &'static str, s: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(s)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The page at `/`: what this is, and where the data is.
pub fn landing_page(telemetry_path: &str) -> String {
    let path = html_escape(telemetry_path);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>mailtap</title></head>\n<body>\n<h1>mailtap {version}</h1>\n\
         <p>Passive sensor: how mail connections are protected in transit.</p>\n<ul>\n\
         <li><a href=\"{path}\">Metrics</a> ({path})</li>\n\
         <li><a href=\"{servers}\">Servers</a> ({servers}, JSON)</li>\n</ul>\n</body>\n</html>\n",
        version = env!("CARGO_PKG_VERSION"),
        servers = SERVERS_PATH,
    )
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App {
            metrics: Arc::new(Metrics::new().unwrap()),
            inventory: Arc::new(Inventory::new(10)),
            telemetry_path: "/metrics".into(),
            auth: None,
        }
    }

    #[test]
    fn routes_and_methods() {
        let a = app();
        assert_eq!(route(&a, &Method::GET, "/").status(), StatusCode::OK);
        assert_eq!(
            route(&a, &Method::HEAD, "/metrics").status(),
            StatusCode::OK
        );
        assert_eq!(route(&a, &Method::GET, "/servers").status(), StatusCode::OK);
        assert_eq!(
            route(&a, &Method::GET, "/nope").status(),
            StatusCode::NOT_FOUND
        );
        let r = route(&a, &Method::POST, "/metrics");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
        assert_eq!(
            route(&a, &Method::GET, "/metrics").headers()[header::CONTENT_TYPE],
            METRICS_CONTENT_TYPE
        );
    }

    #[test]
    fn telemetry_path_is_checked() {
        assert!(check_telemetry_path("/metrics").is_ok());
        assert!(check_telemetry_path("/").is_err());
        assert!(check_telemetry_path("metrics").is_err());
        assert!(check_telemetry_path("/servers").is_err());
    }

    #[test]
    fn landing_page_escapes_the_path() {
        let page = landing_page("/m<x>");
        assert!(page.contains("/m&lt;x&gt;") && !page.contains("<x>"));
    }

    #[test]
    fn bad_listen_addresses_are_configuration_errors() {
        assert!(matches!(listen(":http"), Err(HttpError::Config(_))));
        assert!(matches!(listen("no-port"), Err(HttpError::Config(_))));
        let l = listen("127.0.0.1:0").unwrap();
        assert!(l.local_addr().unwrap().port() != 0);
    }
}

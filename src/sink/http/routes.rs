//! What the server answers, path by path: [`Page`] lists the pages, [`page`] maps a path to
//! one, and [`route`] to the function that answers it. A new page is a variant, a line in
//! each of those two, and its function.

use super::rendered::{Chunks, Render, RenderedPage};
use super::{App, PAGE_REFRESH_SECONDS, REPORT_PATH, SERVERS_PATH};
use crate::sink::inventory::Inventory;
use crate::sink::report::{html, SharedReport};
use http_body_util::{Either, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};
use std::sync::Arc;

/// Every response body: a whole buffer, or a shared one in chunks (`/servers`).
pub type Body = Either<Full<Bytes>, Chunks>;

/// The exposition format version Prometheus negotiates down to.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every page the server has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Page {
    /// `/`: the HTML report so far, with the links to the other pages.
    Report,
    Metrics,
    Servers,
    ReportJson,
}

/// The page at `path`, if there is one.
fn page(app: &App, path: &str) -> Option<Page> {
    if path == app.telemetry_path {
        return Some(Page::Metrics);
    }
    match path {
        "/" => Some(Page::Report),
        SERVERS_PATH => Some(Page::Servers),
        REPORT_PATH => Some(Page::ReportJson),
        _ => None,
    }
}

/// The response to a request that passed authentication. HEAD gets GET's headers; hyper leaves
/// the body out.
pub async fn route(app: &App, method: &Method, path: &str) -> Response<Body> {
    let Some(page) = page(app, path) else {
        return text(StatusCode::NOT_FOUND, "Not Found\n");
    };
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match page {
        Page::Report => rendered(&app.report_page, "text/html; charset=utf-8").await,
        Page::Metrics => metrics(app),
        Page::Servers => rendered(&app.servers, "application/json").await,
        Page::ReportJson => rendered(&app.report_json, "application/json").await,
    }
}

fn metrics(app: &App) -> Response<Body> {
    body(StatusCode::OK, METRICS_CONTENT_TYPE, app.metrics.render())
}

async fn rendered(page: &RenderedPage, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Right(page.body().await));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `/report.json`: the report so far, as `--format json` writes it.
pub fn report_json(report: Arc<SharedReport>, inventory: Arc<Inventory>) -> Render {
    Arc::new(move || {
        let view = report.view(&inventory);
        let mut json = serde_json::to_vec_pretty(&view).unwrap_or_default();
        json.push(b'\n');
        json
    })
}

/// `/`: the report so far as the page `--html` writes, with the links to the other pages,
/// reloading itself.
pub fn report_page(
    report: Arc<SharedReport>,
    inventory: Arc<Inventory>,
    telemetry_path: String,
) -> Render {
    Arc::new(move || {
        let view = report.view(&inventory);
        let live = html::Live {
            telemetry_path: &telemetry_path,
            servers_path: SERVERS_PATH,
            report_path: REPORT_PATH,
            refresh_seconds: PAGE_REFRESH_SECONDS,
        };
        html::render(&view, &html::Page { live: Some(live) }).into_bytes()
    })
}

pub fn text(status: StatusCode, s: &'static str) -> Response<Body> {
    body(status, "text/plain; charset=utf-8", s.to_string())
}

fn body(status: StatusCode, content_type: &'static str, s: String) -> Response<Body> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(s))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::http::rendered::servers_json;
    use crate::sink::metrics::{DropSite, Metrics};
    use http_body_util::BodyExt;

    fn app(telemetry_path: &str) -> App {
        let inventory = Arc::new(Inventory::new(10));
        let report = Arc::new(SharedReport::new());
        report.lock().set_capture_dropped(DropSite::Kernel, 3);
        App {
            metrics: Arc::new(Metrics::new().unwrap()),
            servers: RenderedPage::new(servers_json(Arc::clone(&inventory))),
            report_json: RenderedPage::new(report_json(
                Arc::clone(&report),
                Arc::clone(&inventory),
            )),
            report_page: RenderedPage::new(report_page(
                report,
                inventory,
                telemetry_path.to_string(),
            )),
            telemetry_path: telemetry_path.into(),
            auth: None,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn routes_and_methods() {
        let a = app("/metrics");
        let rt = runtime();
        let get = |m: Method, path: &str| rt.block_on(route(&a, &m, path));
        assert_eq!(get(Method::GET, "/").status(), StatusCode::OK);
        assert_eq!(get(Method::HEAD, "/metrics").status(), StatusCode::OK);
        assert_eq!(get(Method::GET, "/servers").status(), StatusCode::OK);
        assert_eq!(get(Method::GET, "/report.json").status(), StatusCode::OK);
        assert_eq!(get(Method::GET, "/nope").status(), StatusCode::NOT_FOUND);
        for path in ["/metrics", "/report.json", "/"] {
            let r = get(Method::POST, path);
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
            assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
        }
        for (path, content_type) in [
            ("/metrics", METRICS_CONTENT_TYPE),
            ("/servers", "application/json"),
            ("/report.json", "application/json"),
            ("/", "text/html; charset=utf-8"),
        ] {
            let r = get(Method::GET, path);
            assert_eq!(r.headers()[header::CONTENT_TYPE], content_type, "{path}");
        }
    }

    #[test]
    fn the_json_report_and_the_page_show_the_report_so_far() {
        let a = app("/m<x>");
        let rt = runtime();
        let read = |path: &str| {
            rt.block_on(async {
                let r = route(&a, &Method::GET, path).await;
                let bytes = r.into_body().collect().await.unwrap().to_bytes();
                String::from_utf8(bytes.to_vec()).unwrap()
            })
        };
        let json: serde_json::Value = serde_json::from_str(&read("/report.json")).unwrap();
        assert_eq!(json["health"]["capture_dropped"]["kernel"], 3, "{json}");
        let page = read("/");
        assert!(
            page.contains("/m&lt;x&gt;") && !page.contains("<x>"),
            "{page}"
        );
        assert!(page.contains("href=\"/report.json\""), "{page}");
    }
}

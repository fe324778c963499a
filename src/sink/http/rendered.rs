//! The pages that take a while to render (`/servers`, `/report.json`, `/`): each is rendered
//! into one buffer that every connection shares and streams from in chunks, so a client
//! reading slowly holds a reference, not a copy. Rendering (tens of milliseconds for a full
//! inventory) runs off the event loop, one at a time per page; requests that come meanwhile
//! wait for it and share it.
//!
//! A buffer is rendered again once it is [`FRESH_FOR`] old; one still being read stays alive
//! until its reader is done (the connection's time is bounded), and at most
//! [`MAX_VERSIONS`] are alive at once: beyond that the newest one is served, a little stale.
//! Memory for a page is therefore at most [`MAX_VERSIONS`] renderings, however many clients
//! read it and however slowly.

use crate::sink::inventory::Inventory;
use hyper::body::{Body, Bytes, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub const FRESH_FOR: Duration = Duration::from_secs(1);
pub const MAX_VERSIONS: usize = 4;
/// The piece of a response handed to hyper at a time; it queues a few of them at most.
const CHUNK: usize = 16 * 1024;

type Rendering = Arc<Vec<u8>>;

/// What renders a page: the whole body, from the shared state it closes over.
pub type Render = Arc<dyn Fn() -> Vec<u8> + Send + Sync>;

pub struct RenderedPage {
    render: Render,
    /// An async lock: held across the rendering, so one renders and the others wait.
    cache: tokio::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    latest: Option<(Instant, Rendering)>,
    /// Every rendering handed out, to count those still being read.
    handed_out: Vec<Weak<Vec<u8>>>,
}

impl RenderedPage {
    pub fn new(render: Render) -> Self {
        RenderedPage {
            render,
            cache: tokio::sync::Mutex::default(),
        }
    }

    /// The body of a response: the latest rendering, or a new one.
    pub async fn body(&self) -> Chunks {
        let mut cache = self.cache.lock().await;
        cache.handed_out.retain(|w| w.strong_count() > 0);
        let stale = cache
            .latest
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= FRESH_FOR);
        let room = cache.handed_out.len() < MAX_VERSIONS;
        let data = match &cache.latest {
            Some((_, r)) if !stale || !room => Arc::clone(r),
            _ => {
                let render = Arc::clone(&self.render);
                let r: Rendering = tokio::task::spawn_blocking(move || Arc::new(render()))
                    .await
                    .unwrap_or_default();
                cache.handed_out.push(Arc::downgrade(&r));
                cache.latest = Some((Instant::now(), Arc::clone(&r)));
                r
            }
        };
        Chunks { data, at: 0 }
    }

    /// Renderings alive now (the cache's own and those being read).
    #[cfg(test)]
    pub async fn alive(&self) -> usize {
        let mut cache = self.cache.lock().await;
        cache.handed_out.retain(|w| w.strong_count() > 0);
        cache.handed_out.len()
    }
}

/// `/servers`: the inventory as JSON.
pub fn servers_json(inventory: Arc<Inventory>) -> Render {
    Arc::new(move || {
        let mut json = serde_json::to_vec(&inventory.snapshot()).unwrap_or_default();
        json.push(b'\n');
        json
    })
}

/// A shared rendering as a response body, [`CHUNK`] bytes at a time, its length known in
/// advance (`Content-Length`).
pub struct Chunks {
    data: Rendering,
    at: usize,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let rest = this.data.get(this.at..).unwrap_or_default();
        if rest.is_empty() {
            return Poll::Ready(None);
        }
        let piece = rest.get(..CHUNK).unwrap_or(rest);
        this.at += piece.len();
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(piece)))))
    }

    fn is_end_stream(&self) -> bool {
        self.at >= self.data.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.len().saturating_sub(self.at) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_records::plaintext_smtp;
    use http_body_util::BodyExt;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    async fn collect(body: Chunks) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[test]
    fn renders_the_snapshot_and_shares_it_between_readers() {
        let inventory = Arc::new(Inventory::new(10));
        inventory.record(&plaintext_smtp());
        let page = RenderedPage::new(servers_json(Arc::clone(&inventory)));
        run(async {
            let a = page.body().await;
            let b = page.body().await;
            assert!(Arc::ptr_eq(&a.data, &b.data), "one rendering for both");
            assert_eq!(page.alive().await, 1);
            let want = serde_json::to_value(inventory.snapshot()).unwrap();
            let got: serde_json::Value = serde_json::from_slice(&collect(a).await).unwrap();
            assert_eq!(got, want);
        });
    }

    #[test]
    fn long_bodies_come_in_chunks_of_known_total_length() {
        let inventory = Arc::new(Inventory::new(100_000));
        let mut r = plaintext_smtp();
        for i in 0..2000u32 {
            r.server = std::net::SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 25));
            inventory.record(&r);
        }
        let page = RenderedPage::new(servers_json(inventory));
        run(async {
            let body = page.body().await;
            let len = body.data.len();
            assert!(len > 4 * CHUNK, "{len}");
            assert_eq!(body.size_hint().exact(), Some(len as u64));
            assert_eq!(collect(body).await.len(), len);
        });
    }

    #[test]
    fn at_most_a_few_renderings_are_alive_however_many_readers() {
        let inventory = Arc::new(Inventory::new(10));
        let page = RenderedPage::new(servers_json(inventory));
        run(async {
            let mut readers = Vec::new();
            for _ in 0..3 * MAX_VERSIONS {
                readers.push(page.body().await);
                // Every rendering is stale by now.
                page.cache.lock().await.latest.as_mut().unwrap().0 -= FRESH_FOR;
            }
            assert_eq!(page.alive().await, MAX_VERSIONS);
            readers.clear();
            page.body().await;
            assert_eq!(page.alive().await, 1);
        });
    }
}

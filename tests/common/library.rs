//! Replaying through the library rather than the binary: no process per capture, for tests
//! that replay hundreds of copies of the fixtures (tests/impaired.rs, tests/transformed.rs).
#![allow(dead_code)]

use mailtap::config::{Limits, PortMap};
use mailtap::engine::{Engine, EngineConfig, Finished, InputRead, Sink};
use mailtap::session::cert::TlsContext;
use mailtap::source::file::Input;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The session records, as JSON.
#[derive(Default)]
struct Records(Vec<Value>);

impl Sink for Records {
    fn finished(&mut self, f: Finished) {
        if let Some(r) = f.record {
            self.0
                .push(serde_json::to_value(&r).expect("record serializes"));
        }
    }
}

/// The trust anchors a case's `args` names (`--trust-anchor fixtures/...`).
pub fn anchors(dir: &Path) -> Vec<Vec<u8>> {
    let args = super::case_args(dir);
    args.windows(2)
        .filter(|w| w[0] == "--trust-anchor")
        .map(|w| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(&w[1]);
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

/// How reading one capture went (on the caller's thread), and its session records sorted by
/// their JSON text (order-free).
pub fn replay(path: &Path, tls: &Arc<TlsContext>) -> (InputRead, Vec<Value>) {
    let cfg = EngineConfig {
        ports: PortMap::default(),
        limits: Limits::default(),
        tls: Arc::clone(tls),
        workers: 0,
    };
    let mut engine = Engine::for_files(cfg, Records::default());
    let read = engine.read_input(&Input::Path(path.to_path_buf()), &mut |_| {});
    let (records, _) = engine.finish();
    let mut out = records.0;
    out.sort_by_key(|r| r.to_string());
    (read, out)
}

/// The records of a capture that must read to its end.
pub fn records(path: &Path, tls: &Arc<TlsContext>) -> Vec<Value> {
    let (read, out) = replay(path, tls);
    assert!(read.result.is_ok(), "{}: {:?}", path.display(), read.result);
    out
}

/// Each fixture case's TLS context (its trust anchors) and the records of its own capture:
/// what the copies of the case are compared with.
pub fn originals<'a>(
    cases: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<&'a str, (Arc<TlsContext>, Vec<Value>)> {
    cases
        .into_iter()
        .map(|case| {
            let dir = super::case(case);
            let tls = Arc::new(TlsContext::new(&anchors(&dir)).expect("trust anchors load"));
            let capture = super::capture_of(&dir).expect("case has a capture");
            let records = records(&capture, &tls);
            (case, (tls, records))
        })
        .collect()
}

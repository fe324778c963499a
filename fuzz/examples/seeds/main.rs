//! Seed corpora from the fixtures: `seeds <FIXTURES-DIR> <CORPUS-DIR>` writes
//! `<CORPUS-DIR>/<target>/<fixture>.<n>` for every fuzz target, each in that target's input
//! format, so fuzzing starts from real mail and TLS traffic rather than from nothing.
//!
//! - `pcap_reader`, `pipeline`: the capture files themselves;
//! - `decode`: each frame behind its link-type selector; `tunnel`: those frames in one run
//!   (`mailtap_fuzz::frames`);
//! - `reassembly`: each connection's segments and acknowledgments (`segments.rs`);
//! - `smtp`, `imap`, `pop3`, `session`, `tls`: each connection's reassembled streams as a
//!   stream script (`streams.rs`); `tls` from the first ClientHello on;
//! - `cert`: the certificate chains sent in clear (`certs.rs`).

mod certs;
mod segments;
mod streams;

use mailtap::config::PortMap;
use mailtap::decode::decode;
use mailtap::source::file::{CaptureFile, Input};
use mailtap_fuzz::links;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Larger seeds make libFuzzer's inputs, and each execution, slower for little gain.
const MAX_SEED: usize = 64 * 1024;
/// Frames per capture for `decode`: the first few show every header layout the capture has.
const MAX_FRAMES: usize = 16;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [fixtures, corpus] = args.as_slice() else {
        return Err("usage: seeds <FIXTURES-DIR> <CORPUS-DIR>".into());
    };
    let mut out = Corpus {
        dir: PathBuf::from(corpus),
        written: BTreeMap::new(),
    };
    for capture in captures(Path::new(fixtures))? {
        let name = capture
            .parent()
            .and_then(Path::file_name)
            .map_or_else(|| "capture".into(), |n| n.to_string_lossy().into_owned());
        seed_capture(&capture, &name, &mut out)?;
    }
    for (target, n) in &out.written {
        println!("{target}: {n} seeds");
    }
    Ok(())
}

/// `<dir>/*/capture*`, in name order.
fn captures(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut found = Vec::new();
    for case in entries.filter_map(Result::ok).map(|e| e.path()) {
        let Ok(files) = std::fs::read_dir(&case) else {
            continue;
        };
        found.extend(files.filter_map(Result::ok).map(|e| e.path()).filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("capture"))
        }));
    }
    found.sort();
    Ok(found)
}

fn seed_capture(path: &Path, name: &str, out: &mut Corpus) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    out.write("pcap_reader", name, &bytes)?;
    out.write("pipeline", name, &bytes)?;

    let ports = PortMap::default();
    let mut flows = streams::Recorder::default();
    let mut segments = segments::Segments::default();
    let mut frames = Vec::new();
    let mut file = CaptureFile::open(&Input::Path(path.to_owned())).map_err(|e| e.to_string())?;
    file.for_each(&mut |packet, _| {
        if let Some(selector) = links::selector(packet.link).filter(|_| frames.len() < MAX_FRAMES) {
            frames.push([&[selector], packet.data].concat());
        }
        if let Ok(seg) = decode(packet, &ports) {
            flows.segment(packet.ts, &seg);
            segments.segment(&seg, &ports);
        }
    })
    .map_err(|e| e.to_string())?;

    let run = mailtap_fuzz::frames::encode(
        frames
            .iter()
            .filter_map(|f| Some((*f.first()?, f.get(1..)?))),
    );
    out.write("tunnel", name, &run)?;
    for frame in frames {
        out.write("decode", name, &frame)?;
    }
    for flow in flows.finish() {
        for (target, seed) in flow.seeds() {
            out.write(target, name, &seed)?;
        }
        if let Some(chain) = flow.chain_seed() {
            out.write("cert", name, &chain)?;
        }
    }
    for seed in segments.seeds() {
        out.write("reassembly", name, &seed)?;
    }
    Ok(())
}

struct Corpus {
    dir: PathBuf,
    written: BTreeMap<&'static str, usize>,
}

impl Corpus {
    /// `<dir>/<target>/<name>.<n>`; a seed over [`MAX_SEED`] is left out.
    fn write(&mut self, target: &'static str, name: &str, seed: &[u8]) -> Result<(), String> {
        if seed.len() > MAX_SEED {
            return Ok(());
        }
        let n = self.written.entry(target).or_default();
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{name}.{n}"));
        *n += 1;
        std::fs::write(&path, seed).map_err(|e| format!("{}: {e}", path.display()))
    }
}

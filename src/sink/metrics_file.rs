//! `--metrics-file`: the metrics in the text exposition format, for node_exporter's textfile
//! collector, rewritten every `--metrics-file-interval` while the sensor runs and once more
//! at its end.
//!
//! Each rewrite goes to a new file in the same directory, then is renamed over the target, so
//! a reader sees the old file or the new one, never half of one. The directory may be
//! writable by others (`/var/lib/node_exporter/textfile` often is), so the temporary file is
//! created with `O_CREAT|O_EXCL|O_NOFOLLOW` under a random name: a link planted under any
//! name is never followed, and a name already taken is skipped for another. `rename(2)`
//! replaces the target's directory entry, never writing through a link there.
//!
//! At start, [`MetricsFile::new`] refuses a target that exists and is not a regular file (a
//! device, a FIFO, a directory, a symbolic link) and tries the directory once, so a file
//! that could never be written stops the sensor then (exit status 2) rather than at its end.

use crate::sink::failure::{FailureWatch, Output};
use crate::sink::metrics::Metrics;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `--metrics-file-interval` unless given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// Random characters in a temporary name (62^12 names).
const RANDOM_LEN: usize = 12;

/// The target of `--metrics-file`, checked.
#[derive(Debug)]
pub struct MetricsFile {
    path: PathBuf,
    dir: PathBuf,
    /// `.NAME.` (hidden, and not ending in `.prom`: the collector reads only `*.prom`).
    prefix: String,
}

impl MetricsFile {
    /// Check the target: no existing non-regular file there, and a file can be made in its
    /// directory (tried once, then removed). The message says why not.
    pub fn new(path: &Path) -> Result<MetricsFile, String> {
        Self::for_option("--metrics-file", path)
    }

    /// [`MetricsFile::new`] for another file replaced whole the same way (`--html`); the
    /// message names `option`.
    pub fn for_option(option: &str, path: &Path) -> Result<MetricsFile, String> {
        let what = |why: String| format!("{option} {}: {why}", path.display());
        let name = path
            .file_name()
            .ok_or_else(|| what("names no file".into()))?
            .to_string_lossy();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file = MetricsFile {
            prefix: format!(".{name}."),
            path: path.to_path_buf(),
            dir,
        };
        file.check_target().map_err(what)?;
        file.check_writable().map_err(|e| what(e.to_string()))?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_target(&self) -> Result<(), String> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.file_type().is_file() => Ok(()),
            Ok(meta) => Err(format!(
                "exists and is not a regular file (it is {}); give the path of a file",
                kind(&meta.file_type())
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Make a temporary file in the target's directory and remove it: can the file be
    /// written there, by whoever this process is now (see `capture --user`)?
    pub fn check_writable(&self) -> io::Result<()> {
        let tmp = self.temporary()?;
        tmp.close()
    }

    /// Write `bytes` as the whole new content of the target.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut tmp = self.temporary()?;
        tmp.as_file_mut().write_all(bytes)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }

    fn temporary(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(&self.prefix)
            .rand_bytes(RANDOM_LEN)
            .make_in(&self.dir, create_exclusive)
    }
}

/// Create `path` as a new file: fails if anything exists there, a dangling symbolic link
/// included (`O_EXCL`), and never follows a link (`O_NOFOLLOW`). Mode 0644 less the umask:
/// the collector reads it as another user.
pub fn create_exclusive(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o644))?;
    Ok(File::from(fd))
}

fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The file rewritten every interval on a thread of its own, until [`Periodic::finish`].
pub struct Periodic {
    file: Arc<MetricsFile>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Writer>,
}

/// The file, what it is written from, and how its writes fare.
struct Writer {
    file: Arc<MetricsFile>,
    metrics: Arc<Metrics>,
    failures: FailureWatch,
}

impl Writer {
    fn write(&mut self) -> io::Result<()> {
        let result = self.file.write(self.metrics.render().as_bytes());
        if result.is_err() {
            self.metrics.output_error(Output::MetricsFile);
        }
        if let Some(line) = self.failures.outcome(&result) {
            eprintln!("mailtap: {line}");
        }
        result
    }
}

impl Periodic {
    /// Rewrite `file` from `metrics` every `every` (never, with zero: only at the end).
    pub fn start(file: Arc<MetricsFile>, metrics: Arc<Metrics>, every: Duration) -> Periodic {
        let failures = FailureWatch::new(format!("--metrics-file {}", file.path().display()));
        let mut writer = Writer {
            file: Arc::clone(&file),
            metrics,
            failures,
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("metrics-file".into())
            .spawn(move || {
                let every = if every.is_zero() { None } else { Some(every) };
                while let Some(every) = every {
                    match stopped.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {
                            let _ = writer.write();
                        }
                        _ => break,
                    }
                }
                if every.is_none() {
                    let _ = stopped.recv();
                }
                writer
            })
            .unwrap_or_else(|e| panic!("cannot start a thread: {e}"));
        Periodic { file, stop, thread }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Stop rewriting, and write the final numbers once more. An error of this last write is
    /// returned (earlier ones were said and counted when they happened).
    pub fn finish(self) -> io::Result<()> {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(mut writer) => writer.write(),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "mailtap-metrics-file-{}-{n}-{tag}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn exclusive_creation_never_follows_a_link() {
        let dir = scratch("link");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir.join("planted");
        symlink(&victim, &planted).unwrap();
        let e = create_exclusive(&planted).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        // A dangling link is not followed to create its target either.
        let dangling = dir.join("dangling");
        symlink(dir.join("would-be-created"), &dangling).unwrap();
        assert!(create_exclusive(&dangling).is_err());
        assert!(!dir.join("would-be-created").exists());
        // Nor a regular file already there.
        assert!(create_exclusive(&victim).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let fresh = create_exclusive(&dir.join("fresh")).unwrap();
        assert!(fresh.metadata().unwrap().is_file());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn writes_replace_the_target_and_leave_no_temporary_file() {
        let dir = scratch("write");
        let target = dir.join("mailtap.prom");
        let file = MetricsFile::new(&target).unwrap();
        file.write(b"a 1\n").unwrap();
        file.write(b"a 2\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"a 2\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["mailtap.prom"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_symbolic_link_as_target_is_refused_and_its_target_kept() {
        let dir = scratch("target-link");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let target = dir.join("mailtap.prom");
        symlink(&victim, &target).unwrap();
        let e = MetricsFile::new(&target).unwrap_err();
        assert!(
            e.contains("is not a regular file (it is a symbolic link)"),
            "{e}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_directory_or_device_as_target_is_refused() {
        let dir = scratch("target-dir");
        let e = MetricsFile::new(&dir).unwrap_err();
        assert!(e.contains("it is a directory"), "{e}");
        let e = MetricsFile::new(Path::new("/dev/null")).unwrap_err();
        assert!(e.contains("it is a character device"), "{e}");
        let e = MetricsFile::new(&dir.join("missing/mailtap.prom")).unwrap_err();
        assert!(e.contains("No such file or directory"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn periodic_rewrites_and_writes_once_more_at_the_end() {
        let dir = scratch("periodic");
        let target = dir.join("m.prom");
        let file = Arc::new(MetricsFile::new(&target).unwrap());
        let metrics = Arc::new(Metrics::new().unwrap());
        let p = Periodic::start(Arc::clone(&file), metrics, Duration::from_millis(20));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !target.exists() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::remove_file(&target).unwrap();
        p.finish().unwrap();
        let text = std::fs::read_to_string(&target).unwrap();
        assert!(text.contains("mailtap_build_info"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

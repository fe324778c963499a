//! A file output that holds whole lines only, like Suricata's eve.json: opened for appending
//! (never truncated, so a restart adds to it), written one line per `write(2)`, and reopened
//! by path on SIGHUP (after logrotate has moved it away).
//!
//! A line reaches the file whole or not at all:
//! - A line goes out in one `write(2)` on a descriptor opened with `O_APPEND`, so it lands in
//!   one piece at the end, whoever else appends.
//! - When the disk fills in the middle of a line, the kernel writes what fits and says how
//!   much; the piece written is cut off again (`ftruncate` back to where the line began), so
//!   the file still ends with a whole line, and the line counts as lost.
//! - A process killed between the pages of one `write(2)` (`kill -9` during a write that
//!   crosses a page boundary) can leave a piece of a line; the next open cuts it off, so a
//!   restarted sensor appends after the last whole line.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// A piece of a line at the end of a file is searched for backwards in reads of this size.
const TAIL_READ: u64 = 64 * 1024;

/// An append-only file of lines, shared by the thread that writes and the one that reopens.
pub struct AppendFile {
    path: PathBuf,
    file: Mutex<Current>,
}

/// The descriptor in use, and whether a line went to it since it was opened.
struct Current {
    file: File,
    written: bool,
}

/// What opening found at the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Bytes of a partial last line that were cut off (0 when the file ended with a newline).
    pub cut: u64,
}

impl AppendFile {
    /// Open (or create) `path` for appending; a partial last line is cut off (see the module
    /// doc) and reported in [`Opened`].
    pub fn open(path: &Path) -> io::Result<(AppendFile, Opened)> {
        let (file, opened) = open_append(path)?;
        Ok((
            AppendFile {
                path: path.to_path_buf(),
                file: Mutex::new(Current {
                    file,
                    written: false,
                }),
            },
            opened,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Close the file and open `path` again: after logrotate has renamed the file, the next
    /// line goes to a new one under the old name. When the new one cannot be opened, the old
    /// one stays in use and the error is returned (nothing is lost).
    pub fn reopen(&self) -> io::Result<Opened> {
        let (file, opened) = open_append(&self.path)?;
        // The old descriptor is closed here, when it is replaced.
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = Current {
            file,
            written: false,
        };
        Ok(opened)
    }

    /// Append one line (`line` ends with its newline) in one `write(2)`. On a short write
    /// to a file (disk full) the piece written is cut off again and the error returned; a
    /// pipe gets the rest of the line.
    pub fn write_line(&self, line: &[u8]) -> io::Result<()> {
        let mut current = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let result = write_whole(&mut current.file, line);
        current.written |= result.is_ok();
        result
    }

    /// [`write_line`](Self::write_line), with `header` (whole lines) written first when the
    /// file has none yet: a regular file that is empty (new, or just rotated), or another
    /// kind of file (a FIFO) before its first line since it was opened. The two go out in one
    /// `write(2)`, so a file never holds the header without the line or the line without it.
    pub fn write_line_headed(&self, header: &[u8], line: &[u8]) -> io::Result<()> {
        let mut current = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let meta = current.file.metadata()?;
        let headless = if meta.is_file() {
            meta.len() == 0
        } else {
            !current.written
        };
        let result = if headless {
            write_whole(&mut current.file, &[header, line].concat())
        } else {
            write_whole(&mut current.file, line)
        };
        current.written |= result.is_ok();
        result
    }
}

/// One line (or lines) in one `write(2)`; see [`AppendFile::write_line`].
fn write_whole(file: &mut File, line: &[u8]) -> io::Result<()> {
    loop {
        match file.write(line) {
            Ok(n) if n == line.len() => return Ok(()),
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if !is_regular(file)? => {
                // A pipe takes a long line in pieces: the rest follows.
                return file.write_all(line.get(n..).unwrap_or_default());
            }
            Ok(n) => {
                // What stops a write to a file short is a full disk or quota (ENOSPC,
                // EDQUOT), or the file size limit (EFBIG).
                undo_partial(file, n as u64)?;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "no room left on the device (only {n} of the {} bytes of a line \
                         fit, and were taken back)",
                        line.len()
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn open_append(path: &Path) -> io::Result<(File, Opened)> {
    // Write-only: a FIFO opened this way reports a reader that went away (EPIPE), where one
    // opened for reading too would fill up and block.
    let file = OpenOptions::new().append(true).create(true).open(path)?;
    let cut = cut_partial_line(&file, path)?;
    Ok((file, Opened { cut }))
}

fn is_regular(file: &File) -> io::Result<bool> {
    Ok(file.metadata()?.is_file())
}

/// Cut `written` bytes off the end of a regular file (the piece of a line a short write left).
fn undo_partial(file: &File, written: u64) -> io::Result<()> {
    let len = file.metadata()?.len();
    file.set_len(len.saturating_sub(written))
}

/// When a regular file does not end with a newline, cut it back to just after its last one
/// (or to empty, if it has none); how many bytes went. The tail is read through a second,
/// read-only descriptor, checked to be the same file. Other files (a FIFO, a terminal,
/// /dev/null) are left alone.
fn cut_partial_line(file: &File, path: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    let len = meta.len();
    if !meta.is_file() || len == 0 {
        return Ok(0);
    }
    let mut reader = File::open(path)?;
    let same = reader.metadata()?;
    if (same.dev(), same.ino()) != (meta.dev(), meta.ino()) {
        // Renamed between the two opens: leave it as it is.
        return Ok(0);
    }
    let mut end = len;
    let mut buf = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(TAIL_READ);
        buf.resize(usize::try_from(end - start).unwrap_or(0), 0);
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(&mut buf)?;
        if end == len && buf.last() == Some(&b'\n') {
            return Ok(0);
        }
        if let Some(i) = memchr::memrchr(b'\n', &buf) {
            let keep = start + i as u64 + 1;
            file.set_len(keep)?;
            return Ok(len - keep);
        }
        end = start;
    }
    file.set_len(0)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("mailtap-append-{}-{n}-{tag}", std::process::id()))
    }

    #[test]
    fn opening_appends_and_never_truncates() {
        let path = scratch("append");
        std::fs::write(&path, b"one\n").unwrap();
        let (f, opened) = AppendFile::open(&path).unwrap();
        assert_eq!(opened.cut, 0);
        f.write_line(b"two\n").unwrap();
        drop(f);
        let (f, _) = AppendFile::open(&path).unwrap();
        f.write_line(b"three\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\nthree\n");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_partial_last_line_is_cut_at_open() {
        let path = scratch("partial");
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":").unwrap();
        let (f, opened) = AppendFile::open(&path).unwrap();
        assert_eq!(opened.cut, 5);
        f.write_line(b"{\"c\":3}\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n{\"c\":3}\n");
        // A file that is one piece of a line, longer than one backwards read, goes whole.
        std::fs::write(&path, vec![b'x'; 200_000]).unwrap();
        let (_, opened) = AppendFile::open(&path).unwrap();
        assert_eq!(opened.cut, 200_000);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // A newline far back (more than one backwards read) is found.
        let mut text = b"whole\n".to_vec();
        text.extend(vec![b'y'; 150_000]);
        std::fs::write(&path, &text).unwrap();
        let (_, opened) = AppendFile::open(&path).unwrap();
        assert_eq!(opened.cut, 150_000);
        assert_eq!(std::fs::read(&path).unwrap(), b"whole\n");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn reopen_follows_the_path_after_a_rename() {
        let path = scratch("reopen");
        let moved = path.with_extension("1");
        let (f, _) = AppendFile::open(&path).unwrap();
        f.write_line(b"before\n").unwrap();
        std::fs::rename(&path, &moved).unwrap();
        f.write_line(b"still old\n").unwrap();
        f.reopen().unwrap();
        f.write_line(b"after\n").unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), b"before\nstill old\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"after\n");
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(moved);
    }

    #[test]
    fn a_failed_reopen_keeps_the_old_file() {
        let dir = scratch("gone");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let (f, _) = AppendFile::open(&path).unwrap();
        let moved = scratch("kept");
        std::fs::rename(&path, &moved).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        assert!(f.reopen().is_err());
        f.write_line(b"kept\n").unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), b"kept\n");
        let _ = std::fs::remove_file(moved);
    }

    #[test]
    fn a_full_device_is_an_error_and_writes_nothing() {
        let Ok((f, opened)) = AppendFile::open(Path::new("/dev/full")) else {
            return;
        };
        assert_eq!(opened.cut, 0, "a device is not cut");
        let e = f.write_line(b"line\n").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
    }
}

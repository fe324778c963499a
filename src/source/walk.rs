//! Command-line arguments → the captures to read, in order.
//!
//! A file named on the command line is read whatever its name and content (it must exist; a
//! file that is no capture is then an error of that file). A directory is walked with
//! `walkdir` in name order, depth first, following symbolic links, and only the files that
//! start like a capture, compressed or not (see `compressed.rs`), are read: the others are
//! [`Skipped`], each with its reason. Names starting with a dot (`.git`, editor files) are
//! passed over without a word.
//!
//! Every file is read once, however many paths reach it (a symbolic or hard link, a file named
//! and also inside a named directory): files and directories are known by device and inode.
//! A directory reached again, through a link back into one being walked or already walked, is
//! not walked again, so a link loop cannot multiply what is counted.

use super::compressed::{self, MAGIC_LEN};
use super::file::{Input, SourceError};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use walkdir::{DirEntry, WalkDir};

/// The inputs to read, and the files of the walked directories that are not read.
#[derive(Debug, Default)]
pub struct Expanded {
    pub inputs: Vec<Input>,
    pub skipped: Vec<Skipped>,
}

/// A path that is not read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: Skip,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Its first bytes (decompressed, if they are compressed) are no pcap or pcapng header.
    NotACapture,
    /// It cannot be opened, read or listed (a dangling link, no permission, a FIFO, a device).
    Unreadable(String),
    /// It is a file already read under this other path.
    Duplicate(PathBuf),
}

impl Skip {
    /// Every [`label`](Self::label), for counters that list them all.
    pub const LABELS: [&'static str; 3] = ["not_a_capture", "unreadable", "duplicate"];

    pub fn label(&self) -> &'static str {
        match self {
            Skip::NotACapture => "not_a_capture",
            Skip::Unreadable(_) => "unreadable",
            Skip::Duplicate(_) => "duplicate",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotACapture => f.write_str("not a capture"),
            Skip::Unreadable(why) => write!(f, "unreadable: {why}"),
            Skip::Duplicate(first) => write!(f, "the same file as {}", first.display()),
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.why)
    }
}

/// A file or directory, whatever path reached it.
type FileId = (u64, u64);

fn id_of(meta: &Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// What the walks have met so far.
#[derive(Default)]
struct Seen {
    files: HashMap<FileId, PathBuf>,
    dirs: HashSet<FileId>,
}

/// The inputs `args` name: `-` is stdin, a directory is walked, anything else is a file. A
/// path that does not exist (or cannot be looked at) is an error naming it.
pub fn expand(args: &[String]) -> Result<Expanded, SourceError> {
    let mut out = Expanded::default();
    let mut seen = Seen::default();
    for arg in args {
        if arg == "-" {
            out.inputs.push(Input::Stdin);
            continue;
        }
        let path = PathBuf::from(arg);
        let meta = std::fs::metadata(&path).map_err(|source| SourceError::Open {
            name: arg.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(&path, &mut seen, &mut out);
        } else {
            match seen.files.get(&id_of(&meta)) {
                Some(first) => out.skip(path, Skip::Duplicate(first.clone())),
                None => {
                    seen.files.insert(id_of(&meta), path.clone());
                    out.inputs.push(Input::Path(path));
                }
            }
        }
    }
    Ok(out)
}

impl Expanded {
    fn skip(&mut self, path: PathBuf, why: Skip) {
        self.skipped.push(Skipped { path, why });
    }
}

fn walk(root: &Path, seen: &mut Seen, out: &mut Expanded) {
    let mut entries = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !hidden(e));
    while let Some(next) = entries.next() {
        let entry = match next {
            Ok(entry) => entry,
            // A link to a directory this one is inside: that directory is being walked.
            Err(e) if e.loop_ancestor().is_some() => continue,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                let why = e
                    .io_error()
                    .map_or_else(|| e.to_string(), io::Error::to_string);
                out.skip(path, Skip::Unreadable(why));
                continue;
            }
        };
        // With links followed, the metadata is the target's.
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                let why = e
                    .io_error()
                    .map_or_else(|| e.to_string(), io::Error::to_string);
                out.skip(entry.into_path(), Skip::Unreadable(why));
                continue;
            }
        };
        let id = id_of(&meta);
        if meta.is_dir() {
            if !seen.dirs.insert(id) {
                entries.skip_current_dir();
            }
            continue;
        }
        let path = entry.into_path();
        if !meta.is_file() {
            // Reading a FIFO could wait forever; a device is no capture file.
            out.skip(path, Skip::Unreadable("not a regular file".into()));
        } else if let Some(first) = seen.files.get(&id) {
            out.skip(path, Skip::Duplicate(first.clone()));
        } else {
            match sniff(&path) {
                Ok(true) => {
                    seen.files.insert(id, path.clone());
                    out.inputs.push(Input::Path(path));
                }
                Ok(false) => out.skip(path, Skip::NotACapture),
                Err(e) => out.skip(path, Skip::Unreadable(e.to_string())),
            }
        }
    }
}

fn hidden(entry: &DirEntry) -> bool {
    entry.file_name().to_string_lossy().starts_with('.')
}

/// Whether the file starts like a capture once decompressed.
fn sniff(path: &Path) -> io::Result<bool> {
    let head = compressed::sniff(File::open(path)?)?;
    Ok(is_capture_magic(&head))
}

/// pcap magic in either byte order and resolution, or a pcapng section header.
fn is_capture_magic(head: &[u8]) -> bool {
    let Some(magic) = head
        .get(..MAGIC_LEN)
        .and_then(|m| <[u8; 4]>::try_from(m).ok())
    else {
        return false;
    };
    matches!(
        u32::from_le_bytes(magic),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0x0a0d_0d0a
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const PCAP: &[u8] = &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mailtap-walk-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(inputs: &[Input]) -> Vec<String> {
        inputs.iter().map(Input::name).collect()
    }

    fn arg(p: &Path) -> String {
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn a_walk_keeps_name_order_and_says_what_it_passes_over() {
        let dir = scratch("order");
        std::fs::create_dir(dir.join("b")).unwrap();
        std::fs::write(dir.join("b/1.pcap"), PCAP).unwrap();
        std::fs::write(dir.join("a.pcap"), PCAP).unwrap();
        std::fs::write(dir.join("c.txt"), b"notes").unwrap();
        std::fs::write(dir.join(".hidden.pcap"), PCAP).unwrap();
        symlink(dir.join("gone"), dir.join("d.pcap")).unwrap();
        let got = expand(&[arg(&dir)]).unwrap();
        let want: Vec<String> = ["a.pcap", "b/1.pcap"]
            .iter()
            .map(|n| arg(&dir.join(n)))
            .collect();
        assert_eq!(names(&got.inputs), want);
        let why: Vec<(PathBuf, &str)> = got
            .skipped
            .iter()
            .map(|s| (s.path.clone(), s.why.label()))
            .collect();
        assert_eq!(
            why,
            [
                (dir.join("c.txt"), "not_a_capture"),
                (dir.join("d.pcap"), "unreadable"),
            ]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn links_back_into_a_walked_directory_are_not_followed_again() {
        let dir = scratch("loop");
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/x.pcap"), PCAP).unwrap();
        symlink(&dir, dir.join("sub/up")).unwrap();
        symlink(&dir, dir.join("self")).unwrap();
        symlink(dir.join("sub"), dir.join("again")).unwrap();
        symlink(dir.join("sub/x.pcap"), dir.join("link.pcap")).unwrap();
        let got = expand(&[arg(&dir), arg(&dir.join("sub/x.pcap"))]).unwrap();
        assert_eq!(names(&got.inputs), [arg(&dir.join("again/x.pcap"))]);
        let dups: Vec<&Skip> = got.skipped.iter().map(|s| &s.why).collect();
        let first = Skip::Duplicate(dir.join("again/x.pcap"));
        assert_eq!(dups, [&first, &first]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let err = expand(&["/nonexistent/dir".into()]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/dir: cannot read: "),
            "{err}"
        );
    }

    #[test]
    fn capture_magic_is_told_from_short_and_other_heads() {
        assert!(is_capture_magic(PCAP));
        assert!(is_capture_magic(&[0x0a, 0x0d, 0x0d, 0x0a]));
        assert!(!is_capture_magic(&PCAP[..3]));
        assert!(!is_capture_magic(b"220 "));
    }
}

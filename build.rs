//! Build facts for `mailtap_build_info{version,revision,rustc}`: the commit the binary was built
//! from and the compiler that built it.
//!
//! The revision is, in this order: `MAILTAP_BUILD_REVISION` from the environment (for
//! packagers), `git rev-parse` in a clone, the `sha1` cargo writes into
//! `.cargo_vcs_info.json` of a published crate (`cargo install`), or `unknown` when none of
//! them is there (a tarball, no git installed). The build never fails for want of them.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MAILTAP_BUILD_REVISION");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let manifest = Path::new(&manifest);
    let revision = std::env::var("MAILTAP_BUILD_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| git_revision(manifest))
        .or_else(|| vcs_info_revision(manifest))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MAILTAP_REVISION={}", revision.trim());
    println!("cargo:rustc-env=MAILTAP_RUSTC={}", rustc_version());
}

fn git(manifest: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(manifest)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// The commit checked out, when this is a git clone (or worktree) and git is installed.
fn git_revision(manifest: &Path) -> Option<String> {
    let revision = git(manifest, &["rev-parse", "--short=12", "HEAD"])?;
    // Build again when HEAD moves: HEAD itself, the branch it names, and packed refs.
    for file in ["HEAD", "packed-refs"] {
        if let Some(p) = git(manifest, &["rev-parse", "--git-path", file]) {
            println!("cargo:rerun-if-changed={}", manifest.join(p).display());
        }
    }
    if let Some(branch) = git(manifest, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(manifest, &["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={}", manifest.join(p).display());
        }
    }
    Some(revision)
}

/// `{"git": {"sha1": "..."}}` in the `.cargo_vcs_info.json` of a packaged crate.
fn vcs_info_revision(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest.join(".cargo_vcs_info.json")).ok()?;
    let after = text.split("\"sha1\"").nth(1)?;
    let value = after.split('"').nth(1)?;
    let short: String = value.chars().take(12).collect();
    (short.len() == 12 && short.chars().all(|c| c.is_ascii_hexdigit())).then_some(short)
}

/// `rustc 1.85.0 (4d91de4e4 2025-02-17)` → `1.85.0`.
fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

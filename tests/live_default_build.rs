//! A build without the `live` feature knows the `capture` command, and says how to get it.
#![cfg(not(feature = "live"))]

mod common;

use common::mailtap;

#[test]
fn capture_without_the_feature_says_how_to_build_it() {
    let out = mailtap(&["capture", "-i", "lo"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cargo build --release --features live"),
        "{stderr}"
    );
    assert!(stderr.contains("libpcap-dev"), "{stderr}");
    assert!(out.stdout.is_empty());
}

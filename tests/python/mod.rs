//! Python tools the tests run (`jsonschema`, `duckdb`): whether they are there, and running a
//! script with them.
#![allow(dead_code)]

use std::process::Command;

/// Whether `python3` imports `module`. Without it the test skips, unless `require` (an
/// environment variable `.ci/run` sets) is set: then it fails.
pub fn has_module(module: &str, require: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os(require).is_none(),
            "{require} is set but python3 cannot import {module} (pip install {module})"
        );
        eprintln!("SKIPPED: python3 cannot import {module} (pip install {module})");
    }
    ok
}

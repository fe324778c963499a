//! The command line: one file per command, and what they share.

pub(crate) mod capture;
pub(crate) mod common;
pub(crate) mod replay;
pub(crate) mod size;

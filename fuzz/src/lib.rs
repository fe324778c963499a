//! What mailtap's fuzz targets share: the byte formats that turn one fuzz input into the calls
//! a target makes, each with the encoder the seed builder (`examples/seeds.rs`) uses to turn
//! the fixtures into inputs of that format, and the TLS context built once per process.
//!
//! The formats are tolerant: any byte string decodes to something (a cut-off field ends the
//! input), so every mutation libFuzzer makes reaches the code under test.

pub mod context;
pub mod dialogue;
pub mod first_copies;
pub mod frames;
pub mod links;
pub mod reader;
pub mod script;
pub mod segments;

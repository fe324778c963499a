//! The TLS context (trust anchors) of every target that judges certificates: built once per
//! process, since parsing Mozilla's roots costs far more than one fuzz execution.

use mailtap::session::tls::TlsContext;
use std::sync::{Arc, OnceLock};

/// The fixtures' test CA: with it trusted, fixture chains reach the `valid`,
/// `name_mismatch` and `expired` verdicts, not only `unknown_issuer`.
const FIXTURE_CA: &[u8] = include_bytes!("../../fixtures/ca/ca.pem");

pub fn tls_context() -> Arc<TlsContext> {
    static CTX: OnceLock<Arc<TlsContext>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        let ctx = TlsContext::new(&[FIXTURE_CA.to_vec()]).expect("the fixture CA is a valid PEM");
        Arc::new(ctx)
    });
    Arc::clone(ctx)
}

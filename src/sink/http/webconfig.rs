//! `--web.config.file`: TLS and basic authentication for the HTTP server, in the Prometheus
//! exporter-toolkit format, so one file serves mailtap and the Go exporters beside it:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt        # relative paths are relative to this file
//!   key_file: server.key
//!   min_version: TLS12           # TLS12 (default) or TLS13
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt
//! basic_auth_users:
//!   prometheus: $2y$10$...       # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
//! ```
//!
//! Keys the toolkit knows but mailtap does not implement are refused by name, as are keys
//! nobody knows: a setting that is silently ignored is a security hole in a TLS config.

use pki_types::pem::PemObject;
use pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file as loaded and checked: certificates read, hashes parsed.
pub struct WebConfig {
    /// Serve HTTPS with this, when the file has a `tls_server_config`.
    pub tls: Option<Arc<ServerConfig>>,
    /// User name → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
}

/// What is wrong with the file; its message names the file.
#[derive(Debug)]
pub struct WebConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--web.config.file {}: {}",
            self.path.display(),
            self.message
        )
    }
}

impl std::error::Error for WebConfigError {}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<serde_norway::Value>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    // Known to the exporter toolkit, not implemented here: refused by name.
    cert: Option<serde_norway::Value>,
    key: Option<serde_norway::Value>,
    client_ca: Option<serde_norway::Value>,
    cipher_suites: Option<serde_norway::Value>,
    curve_preferences: Option<serde_norway::Value>,
    prefer_server_cipher_suites: Option<serde_norway::Value>,
    client_allowed_sans: Option<serde_norway::Value>,
}

impl WebConfig {
    /// Read and check `path`; certificates and keys are read now, relative to its folder.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let err = |message: String| WebConfigError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let raw: RawConfig = if is_blank(&text) {
            RawConfig::default()
        } else {
            serde_norway::from_str(&text).map_err(|e| err(e.to_string()))?
        };
        if raw.http_server_config.is_some() {
            return Err(err(
                "http_server_config is not supported by mailtap".to_string()
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = match raw.tls_server_config {
            Some(t) => Some(Arc::new(tls_config(&t, dir).map_err(err)?)),
            None => None,
        };
        let users = raw.basic_auth_users.unwrap_or_default();
        for (name, hash) in &users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(err(format!("basic_auth_users.{name}: not a bcrypt hash")));
            }
        }
        Ok(WebConfig { tls, users })
    }
}

/// Empty, or comments only: a valid file that asks for nothing (as in the toolkit).
fn is_blank(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
}

fn tls_config(t: &RawTls, dir: &Path) -> Result<ServerConfig, String> {
    let unsupported = [
        ("cert", t.cert.is_some()),
        ("key", t.key.is_some()),
        ("client_ca", t.client_ca.is_some()),
        ("cipher_suites", t.cipher_suites.is_some()),
        ("curve_preferences", t.curve_preferences.is_some()),
        (
            "prefer_server_cipher_suites",
            t.prefer_server_cipher_suites.is_some(),
        ),
        ("client_allowed_sans", t.client_allowed_sans.is_some()),
    ];
    if let Some((key, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(format!(
            "tls_server_config.{key} is not supported by mailtap"
        ));
    }
    let (Some(cert_file), Some(key_file)) = (&t.cert_file, &t.key_file) else {
        return Err("tls_server_config needs both cert_file and key_file".to_string());
    };
    let cert_file = dir.join(cert_file);
    let key_file = dir.join(key_file);
    let certs = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_server_config.cert_file {}: no certificate in it",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| format!("tls_server_config.key_file {}: {e}", key_file.display()))?;
    let versions = versions(t.min_version.as_deref(), t.max_version.as_deref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_verifier(t, dir, &provider)?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: certificate and key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The toolkit's `TLS10` … `TLS13`; rustls speaks TLS 1.2 and 1.3 only.
fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |key: &str, v: Option<&str>, default: u8| match v {
        None => Ok(default),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(v @ ("TLS10" | "TLS11")) => Err(format!(
            "tls_server_config.{key}: {v} is not supported (TLS12 is the oldest mailtap serves)"
        )),
        Some(v) => Err(format!(
            "tls_server_config.{key}: unknown version {v:?} (TLS12 or TLS13)"
        )),
    };
    let lo = rank("min_version", min, 12)?;
    let hi = rank("max_version", max, 13)?;
    let all = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)];
    let chosen: Vec<_> = all
        .iter()
        .filter(|(r, _)| (lo..=hi).contains(r))
        .map(|(_, v)| *v)
        .collect();
    if chosen.is_empty() {
        return Err("tls_server_config: min_version is above max_version".to_string());
    }
    Ok(chosen)
}

fn client_verifier(
    t: &RawTls,
    dir: &Path,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let kind = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let verify_if_given = match kind {
        "NoClientCert" => {
            if t.client_ca_file.is_some() {
                return Err(
                    "tls_server_config.client_ca_file needs a client_auth_type that verifies \
                     (RequireAndVerifyClientCert or VerifyClientCertIfGiven)"
                        .to_string(),
                );
            }
            return Ok(WebPkiClientVerifier::no_client_auth());
        }
        "RequireAndVerifyClientCert" => false,
        "VerifyClientCertIfGiven" => true,
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "tls_server_config.client_auth_type: {kind} (unverified client certificates) \
                 is not supported by mailtap"
            ))
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: unknown value {other:?}"
            ))
        }
    };
    let Some(ca_file) = &t.client_ca_file else {
        return Err(format!(
            "tls_server_config.client_auth_type {kind} needs client_ca_file"
        ));
    };
    let ca_file = dir.join(ca_file);
    let mut roots = RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&ca_file)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "tls_server_config.client_ca_file {}: {e}",
                ca_file.display()
            )
        })?;
    let (added, _) = roots.add_parsable_certificates(cas);
    if added == 0 {
        return Err(format!(
            "tls_server_config.client_ca_file {}: no usable CA certificate in it",
            ca_file.display()
        ));
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = if verify_if_given {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder.build().map_err(|e| {
        format!(
            "tls_server_config.client_ca_file {}: {e}",
            ca_file.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<WebConfig, WebConfigError> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("mailtap-webconfig-{}-{n}.yml", std::process::id()));
        std::fs::write(&path, yaml).unwrap();
        let r = WebConfig::load(&path);
        let _ = std::fs::remove_file(&path);
        r
    }

    fn message(yaml: &str) -> String {
        match load(yaml) {
            Ok(_) => panic!("accepted: {yaml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_file_asks_for_nothing() {
        let c = load("# nothing\n\n").unwrap();
        assert!(c.tls.is_none() && c.users.is_empty());
    }

    #[test]
    fn unknown_keys_are_named() {
        let m = message("tls_server_config:\n  cert_fil: x\n");
        assert!(
            m.contains("--web.config.file") && m.contains("cert_fil"),
            "{m}"
        );
        let m = message("basic_auth_user:\n  a: b\n");
        assert!(m.contains("basic_auth_user"), "{m}");
    }

    #[test]
    fn toolkit_keys_mailtap_lacks_are_refused_by_name() {
        let m =
            message("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n");
        assert!(
            m.contains("tls_server_config.cipher_suites is not supported"),
            "{m}"
        );
    }

    #[test]
    fn bad_hash_and_missing_files_are_named() {
        let m = message("basic_auth_users:\n  alice: secret\n");
        assert!(m.contains("basic_auth_users.alice"), "{m}");
        let m = message("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: k\n");
        assert!(m.contains("cert_file /nonexistent.crt"), "{m}");
    }

    #[test]
    fn versions_follow_the_toolkit_names() {
        assert_eq!(versions(None, None).unwrap().len(), 2);
        assert_eq!(versions(Some("TLS13"), None).unwrap().len(), 1);
        assert!(versions(Some("TLS10"), None).is_err());
        assert!(versions(Some("TLS13"), Some("TLS12")).is_err());
        assert!(versions(Some("tls12"), None).is_err());
    }
}

// SPDX-License-Identifier: MIT
//! The bridge's TLS: a rustls client configuration (aws-lc-rs provider) that trusts the CA file given or
//! the system's trust store and may present a client certificate, and the words for the TLS
//! failures that retrying cannot cure.

use std::path::Path;
use std::sync::Arc;

use gstfaceveil::engine::secret_file::read_secret_file;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

/// A client configuration and the words that name the CA it trusts (for messages).
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub trusts: String,
}

/// The CA certificates of a PEM file.
fn ca_file(path: &Path) -> Result<RootCertStore, String> {
    let p = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--ca-file {p}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "--ca-file {p}: no certificate in it (expected PEM, '-----BEGIN CERTIFICATE-----')"
        ));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("--ca-file {p}: not a usable CA certificate: {e}"))?;
    }
    Ok(roots)
}

/// The system's trust store (`SSL_CERT_FILE` and `SSL_CERT_DIR` name another one).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(format!(
            "no CA certificate in the system's trust store{}: install ca-certificates or give \
             --ca-file",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        ));
    }
    Ok(roots)
}

/// The client certificate (chain) and its key; the key file is read like a key file: refused when
/// its group or other users can write it, a warning on standard error when every user can read it.
fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let c = cert.display();
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--client-cert {c}: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "--client-cert {c}: no certificate in it (expected PEM, '-----BEGIN CERTIFICATE-----')"
        ));
    }
    let k = key.display();
    let (text, warning) = read_secret_file(key, "client key file", 1 << 20)
        .map_err(|e| format!("--client-key {k}: {e}"))?;
    if let Some(w) = warning {
        eprintln!("faceveil-mqtt: warning: {w}");
    }
    let key = PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| {
        format!("--client-key {k}: {e} (expected a PEM private key: PKCS#8, PKCS#1 or SEC1)")
    })?;
    Ok((chain, key))
}

/// The configuration for `--tls`: the CA of `ca` (else the system's trust store), and the client
/// certificate of `client` (certificate, key) when given.
pub fn config(ca: Option<&Path>, client: Option<(&Path, &Path)>) -> Result<Tls, String> {
    let (roots, trusts) = match ca {
        Some(p) => (ca_file(p)?, format!("the CA of --ca-file {}", p.display())),
        None => {
            let roots = system_roots()?;
            let n = roots.len();
            let s = if n == 1 { "" } else { "s" };
            (
                roots,
                format!("the system's trust store ({n} CA certificate{s})"),
            )
        }
    };
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots);
    let config = match client {
        Some((cert, key_file)) => {
            let (chain, key) = client_identity(cert, key_file)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!(
                    "--client-cert {} --client-key {}: {e}",
                    cert.display(),
                    key_file.display()
                )
            })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Tls {
        config: Arc::new(config),
        trusts,
    })
}

/// The rustls error somewhere in `e`'s chain of causes (an `io::Error` hides its inner error from
/// `source()`, so it is looked into).
pub fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(inner);
        }
        cur = err.source();
    }
    None
}

/// What to say about a TLS failure that the next try would meet again (a certificate that does
/// not verify, a broker that refuses this client's certificate); `None` for the others (a broker
/// that went away mid-handshake), which are retried.
pub fn fatal(e: &rustls::Error, trusts: &str, host: &str) -> Option<String> {
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let hint = match c {
                CertificateError::UnknownIssuer => {
                    " (it is not signed by that CA: give the CA that signed the broker's \
                     certificate with --ca-file)"
                        .to_string()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => format!(
                    " (it does not name {host}: connect with --broker to a name or address in \
                     its subjectAltName)"
                ),
                _ => String::new(),
            };
            Some(format!(
                "the broker's certificate did not verify against {trusts}: {c}{hint}"
            ))
        }
        rustls::Error::NoCertificatesPresented => {
            Some("the broker presented no certificate".into())
        }
        rustls::Error::AlertReceived(
            a @ (AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRequired
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure),
        ) => Some(format!(
            "the broker ended the TLS handshake ({a:?}): it wants a client certificate that it \
             trusts (--client-cert, --client-key), or it accepts none of this client's TLS \
             settings"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inner_rustls_error_is_found_through_io_errors() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let found = rustls_error(&e).expect("found");
        let text = fatal(found, "the CA of --ca-file ca.pem", "10.0.0.2").unwrap();
        assert!(
            text.contains("did not verify against the CA of --ca-file ca.pem")
                && text.contains("not signed by that CA"),
            "{text}"
        );
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(rustls_error(&plain).is_none());
        // a handshake cut short is retried
        assert!(fatal(&rustls::Error::HandshakeNotComplete, "x", "h").is_none());
        let name = fatal(
            &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            "x",
            "10.0.0.2",
        )
        .unwrap();
        assert!(name.contains("does not name 10.0.0.2"), "{name}");
    }
}

//! The TLS configuration of the process's own HTTPS clients (Graph API, AI providers).
//!
//! reqwest builds a new platform verifier for every client, and building one reads and parses
//! the system's CA certificates: a function with a Graph client and an AI client read them twice
//! at cold start. Here the verifier is built once per process and every client's configuration
//! (the one reqwest itself would build: the platform's roots, TLS 1.2 and 1.3, HTTP/1.1) shares
//! it. The AWS SDK's client keeps its own copy of the roots, also loaded once per process.
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls_platform_verifier::Verifier;

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The process's one verifier of server certificates (the platform's roots, loaded once).
fn verifier() -> Result<Arc<Verifier>, String> {
    static VERIFIER: OnceLock<Result<Arc<Verifier>, String>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            Verifier::new(provider())
                .map(Arc::new)
                .map_err(|e| format!("no usable CA certificates: {e}"))
        })
        .clone()
}

/// A client configuration sharing the process's verifier; an error when the system has no
/// usable CA certificates.
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier()?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    #[test]
    fn one_verifier_for_every_client() {
        assert!(Arc::ptr_eq(&verifier().unwrap(), &verifier().unwrap()));
        let c = client_config().unwrap();
        assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(client_config().is_ok());
    }

    #[test]
    fn the_shared_verifier_still_verifies() {
        let bogus = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let r = verifier().unwrap().verify_server_cert(
            &bogus,
            &[],
            &ServerName::try_from("graph.facebook.com").unwrap(),
            &[],
            UnixTime::now(),
        );
        assert!(r.is_err(), "an unparsable certificate must be refused");
    }
}

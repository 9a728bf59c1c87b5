//! DICOM over TLS (PS3.15 B.1, profiles after BCP 195): rustls with the `ring`
//! provider chosen explicitly, TLS 1.2 and 1.3 only, certificates always checked.
//!
//! - As a client, a node's certificate is checked against its `tls_ca` (CA
//!   certificates, or the node's own certificate pinned: a PACS with a
//!   self-signed certificate) — else the system's bundle — and against
//!   `tls_server_name` (default: the host). Our own certificate is sent when the
//!   node asks for one (mutual TLS).
//! - As the Storage SCP (and the C-MOVE receiver of a TLS node), our certificate
//!   is presented, and client certificates are required from `tls_client_ca`
//!   unless `tls_allow_anonymous`.
//! - Failures are told by their reason: expired, unknown issuer, name mismatch,
//!   plaintext on a TLS port (and the reverse), protocol version refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    ServerConfig, SignatureScheme,
};

use crate::config::{Node, TlsIdentity};
use crate::error::{Error, Result};

/// BCP 195 / RFC 8996: nothing older than TLS 1.2.
static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Debian's bundle of the system's trusted CAs, used for nodes without `tls_ca`.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(path: &Path, attribute: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.to_path_buf(),
        attribute,
        reason: reason.into(),
    }
}

/// The certificates of a PEM file (`what` names the setting in errors).
pub fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| invalid(path, what, format!("cannot read its PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(path, what, "no certificate in it (PEM expected)"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        invalid(
            path,
            "tls_private_key",
            format!("cannot read a PEM private key: {e}"),
        )
    })
}

fn roots(
    certs: &[CertificateDer<'static>],
    path: &Path,
    what: &'static str,
) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots
            .add(c.clone())
            .map_err(|e| invalid(path, what, format!("a certificate cannot be trusted: {e}")))?;
    }
    Ok(roots)
}

/// The trust file for a node: its `tls_ca`, else `$SSL_CERT_FILE`, else the
/// system bundle.
pub(crate) fn trust_file(node: &Node) -> Result<PathBuf> {
    if let Some(p) = &node.tls_ca {
        return Ok(p.clone());
    }
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_BUNDLE));
    if system.is_file() {
        Ok(system)
    } else {
        Err(Error::Usage(format!(
            "node {:?} uses TLS but has no tls_ca, and there is no system CA bundle at {}; \
             set tls_ca to the PACS's CA certificate (or its own certificate, to pin it)",
            node.name,
            system.display()
        )))
    }
}

/// The name the node's certificate must carry.
pub fn server_name(node: &Node) -> &str {
    node.tls_server_name
        .as_deref()
        .unwrap_or(node.host.as_str())
}

/// The TLS client configuration for associations to `node`, with our identity
/// (sent when the node asks for a client certificate).
pub fn client_config(node: &Node, id: &TlsIdentity) -> Result<Arc<ClientConfig>> {
    let path = trust_file(node)?;
    let certs = read_certs(&path, "tls_ca")?;
    let webpki = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots(&certs, &path, "tls_ca")?),
        provider(),
    )
    .build()
    .map_err(|e| invalid(&path, "tls_ca", e.to_string()))?;
    let verifier = Arc::new(PinOrChain {
        chain: webpki,
        pinned: certs,
    });
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Usage(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&id.certificate, &id.private_key) {
        (Some(c), Some(k)) => {
            let chain = read_certs(c, "tls_certificate")?;
            builder
                .with_client_auth_cert(chain, read_key(k)?)
                .map_err(|e| invalid(k, "tls_private_key", e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The TLS server configuration of the Storage SCP: our certificate, and client
/// certificates required from `client_ca` unless anonymous peers are allowed.
pub fn server_config(id: &TlsIdentity) -> Result<Arc<ServerConfig>> {
    let (Some(cert), Some(key)) = (&id.certificate, &id.private_key) else {
        return Err(Error::Usage(
            "a TLS listener needs tls_certificate and tls_private_key in the configuration".into(),
        ));
    };
    let verifier = match (&id.client_ca, id.allow_anonymous) {
        (Some(ca), anonymous) => {
            let certs = read_certs(ca, "tls_client_ca")?;
            let b = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(&certs, ca, "tls_client_ca")?),
                provider(),
            );
            let b = if anonymous {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build()
                .map_err(|e| invalid(ca, "tls_client_ca", e.to_string()))?
        }
        (None, true) => WebPkiClientVerifier::no_client_auth(),
        (None, false) => {
            return Err(Error::Usage(
                "the TLS listener needs tls_client_ca (the CAs of the peers it accepts), \
                 or tls_allow_anonymous = true"
                    .into(),
            ));
        }
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| Error::Usage(format!("TLS: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(cert, "tls_certificate")?, read_key(key)?)
        .map_err(|e| invalid(key, "tls_private_key", e.to_string()))?;
    Ok(Arc::new(config))
}

/// Server certificates are checked against the trusted CAs (chain, dates, name);
/// a certificate that is itself in the trust file is pinned and accepted as is.
#[derive(Debug)]
struct PinOrChain {
    chain: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinOrChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The first TLS error in an error's chain (rustls errors travel inside
/// `std::io::Error`s, whose `source` skips them).
pub fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(t) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// A TLS failure as a reader of the message needs it: why, and what to do.
/// `name` is the name the peer's certificate was checked against (client side).
pub fn explain(e: &rustls::Error, name: Option<&str>) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the peer's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the peer's certificate is not valid yet (check the clocks)".into()
            }
            CertificateError::UnknownIssuer => {
                "the peer's certificate is from an unknown issuer (not signed by a CA in the \
                 trusted certificates; add its CA, or its own certificate to pin it)"
                    .into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                match name {
                    Some(n) => format!(
                        "the peer's certificate does not carry the name {n:?} (name mismatch; \
                         set tls_server_name to the name it carries)"
                    ),
                    None => {
                        "the peer's certificate is not valid for its name (name mismatch)".into()
                    }
                }
            }
            CertificateError::Revoked => "the peer's certificate has been revoked".into(),
            CertificateError::BadSignature => "the peer's certificate has a bad signature".into(),
            other => format!("the peer's certificate was refused: {other:?}"),
        },
        E::NoCertificatesPresented => {
            "the peer sent no client certificate (one is required here)".into()
        }
        E::AlertReceived(a) => match a {
            AlertDescription::ProtocolVersion => {
                "the peer refused the protocol version (Lightbox speaks TLS 1.2 and 1.3 only)"
                    .into()
            }
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::AccessDenied => format!(
                "the peer refused our certificate ({a:?}); check tls_certificate and that \
                 the peer trusts its CA"
            ),
            AlertDescription::CertificateRequired => {
                "the peer requires a client certificate; set tls_certificate and tls_private_key"
                    .into()
            }
            AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => {
                format!(
                    "the peer refused the handshake ({a:?}): no protocol version or cipher \
                     suite in common (TLS 1.2 and 1.3 only)"
                )
            }
            other => format!("the peer ended the TLS handshake ({other:?})"),
        },
        E::PeerIncompatible(p) => {
            format!("the peer's TLS is incompatible ({p:?}); Lightbox speaks TLS 1.2 and 1.3 only")
        }
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            "the peer does not speak TLS on this port (plaintext DICOM?)".into()
        }
        other => format!("TLS: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_their_reason() {
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert!(explain(&expired, None).contains("expired"));
        let issuer = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(explain(&issuer, None).contains("unknown issuer"));
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(explain(&name, Some("10.0.0.5")).contains("\"10.0.0.5\""));
        let version = rustls::Error::AlertReceived(AlertDescription::ProtocolVersion);
        assert!(explain(&version, None).contains("protocol version"));
        // Found inside an io::Error, as rustls returns them.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, expired.clone());
        assert_eq!(find_tls_error(&io), Some(&expired));
    }

    #[test]
    fn missing_files_name_the_setting() {
        let e = read_certs(Path::new("/nonexistent/ca.pem"), "tls_ca")
            .expect_err("absent")
            .to_string();
        assert!(
            e.contains("tls_ca") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let id = TlsIdentity::default();
        let e = server_config(&id).expect_err("no identity").to_string();
        assert!(e.contains("tls_certificate"), "{e}");
    }
}

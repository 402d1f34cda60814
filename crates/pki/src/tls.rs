//! rustls configurations: TLS 1.3 only, ring only, and only the fleet CA trusted.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};

use crate::ca::cert_info;
use crate::{agent_name, console_name, Error, Fingerprint, KeyPem, Result, RevocationList};

/// The crypto provider every config here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Make ring the process-wide default, for code (reqwest) that asks rustls for one.
/// Harmless if already installed.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The agent, enrolled: serves its fleet certificate and requires a console client
/// certificate that chains to the fleet CA, names this instance and is not revoked.
pub fn agent_server_config(
    ca_pem: &str,
    cert_pem: &str,
    key: &KeyPem,
    instance: &str,
    revoked: Arc<RwLock<RevocationList>>,
) -> Result<ServerConfig> {
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider())
        .build()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let verifier = Arc::new(FleetClientVerifier {
        inner,
        expected_name: console_name(instance)?,
        revoked,
    });
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(cert_pem)?, private_key(key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The agent, before enrollment: serves its temporary self-signed certificate (which the
/// console pins by fingerprint) and asks for no client certificate.
pub fn enrollment_server_config(cert_pem: &str, key: &KeyPem) -> Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13)?
        .with_no_client_auth()
        .with_single_cert(chain(cert_pem)?, private_key(key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The console talking to `instance`'s agent: trusts only the fleet CA, expects the agent's
/// name whatever address it was reached at, refuses revoked serials, and presents the
/// console's client certificate for that instance.
pub fn console_client_config(
    ca_pem: &str,
    instance: &str,
    client_cert_pem: &str,
    client_key: &KeyPem,
    revoked: Arc<RwLock<RevocationList>>,
) -> Result<ClientConfig> {
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider())
        .build()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let expected =
        ServerName::try_from(agent_name(instance)?).map_err(|e| Error::Tls(e.to_string()))?;
    let verifier = Arc::new(FleetServerVerifier {
        inner,
        expected,
        revoked,
    });
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain(client_cert_pem)?, private_key(client_key)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The console enrolling an agent: accepts exactly the certificate whose SHA-256 the
/// enrollment code carries, and proves the agent holds its key (the handshake signature is
/// still verified). No CA is involved yet.
pub fn enrollment_client_config(pin: Fingerprint) -> Result<ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        pin: Some(pin),
        provider: provider.clone(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS13)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Which TLS versions a probe offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeVersions {
    Tls12Only,
    Tls13Only,
    Both,
}

/// The agent probing a service's public endpoint for its TLS settings (versions offered,
/// certificate dates, headers): any certificate is accepted, since the point is to look at
/// it, not to trust it; the handshake signature is still checked. Never send a secret over
/// a connection made with this config.
pub fn probe_client_config(versions: ProbeVersions) -> Result<ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        pin: None,
        provider: provider.clone(),
    });
    let versions: &[&'static rustls::SupportedProtocolVersion] = match versions {
        ProbeVersions::Tls12Only => &[&rustls::version::TLS12],
        ProbeVersions::Tls13Only => &[&rustls::version::TLS13],
        ProbeVersions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn roots(ca_pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in chain(ca_pem)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

fn chain(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::BadPem {
            what: "certificate",
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(Error::BadPem {
            what: "certificate",
            detail: "no certificate in the PEM text".into(),
        });
    }
    Ok(certs)
}

fn private_key(key: &KeyPem) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).map_err(|e| Error::BadPem {
        what: "private key",
        detail: e.to_string(),
    })
}

fn is_revoked(revoked: &RwLock<RevocationList>, cert: &CertificateDer<'_>) -> Result<bool> {
    let info = cert_info(cert)?;
    let list = revoked.read().unwrap_or_else(PoisonError::into_inner);
    Ok(list.contains(&info.serial))
}

fn bad_certificate(e: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(e))))
}

#[derive(Debug)]
struct FleetClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    expected_name: String,
    revoked: Arc<RwLock<RevocationList>>,
}

impl ClientCertVerifier for FleetClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if is_revoked(&self.revoked, end_entity).map_err(bad_certificate)? {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        let info = cert_info(end_entity).map_err(bad_certificate)?;
        if !info.dns_names.iter().any(|n| n == &self.expected_name) {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct FleetServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    expected: ServerName<'static>,
    revoked: Arc<RwLock<RevocationList>>,
}

impl ServerCertVerifier for FleetServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // The address dialled says nothing about identity: check the enrolled name instead.
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            &self.expected,
            ocsp_response,
            now,
        )?;
        if is_revoked(&self.revoked, end_entity).map_err(bad_certificate)? {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    /// None: any certificate, for probes only.
    pin: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if self
            .pin
            .is_none_or(|pin| Fingerprint::of_der(end_entity) == pin)
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

//! The fleet CA and the certificates it issues.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::{Error, Fingerprint, Result, Serial};

/// How long agent and console certificates live. Short, because renewal runs on a clock.
pub const CERT_LIFETIME: Duration = Duration::days(30);
/// [`CERT_LIFETIME`] in seconds.
pub const CERT_LIFETIME_SECS: i64 = 30 * 86_400;

/// Subject of the agent's temporary self-signed certificate, pinned by fingerprint only.
pub const ENROLLMENT_NAME: &str = "enrollment.gatehouse.invalid";

/// Reserved top-level domain (RFC 2606): these names can never collide with real hosts.
const DOMAIN: &str = "gatehouse.invalid";

/// The DNS name in an agent's server certificate for `instance`.
pub fn agent_name(instance: &str) -> Result<String> {
    check_instance_name(instance)?;
    Ok(format!("{instance}.{DOMAIN}"))
}

/// The DNS name in the console's client certificate for `instance`.
pub fn console_name(instance: &str) -> Result<String> {
    check_instance_name(instance)?;
    Ok(format!("console.{instance}.{DOMAIN}"))
}

fn check_instance_name(name: &str) -> Result<()> {
    let ok = (1..=40).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_owned()))
    }
}

/// A private key as PKCS#8 PEM. Zeroed on drop; `Debug` redacts.
#[derive(Clone)]
pub struct KeyPem(Zeroizing<String>);

impl KeyPem {
    /// A new ECDSA P-256 key.
    pub fn generate() -> Result<Self> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        Ok(KeyPem(Zeroizing::new(key.serialize_pem())))
    }

    pub fn from_pem(pem: String) -> Result<Self> {
        let key = KeyPem(Zeroizing::new(pem));
        key.key_pair()?;
        Ok(key)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key_pair(&self) -> Result<KeyPair> {
        KeyPair::from_pem(&self.0).map_err(|e| Error::BadPem {
            what: "private key",
            detail: e.to_string(),
        })
    }

    /// DER of the SubjectPublicKeyInfo, to match certificates against this key.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        Ok(self.key_pair()?.public_key_der())
    }

    /// A certificate signing request for the agent of `instance`.
    pub fn agent_csr(&self, instance: &str) -> Result<String> {
        let params = CertificateParams::new(vec![agent_name(instance)?])?;
        Ok(params.serialize_request(&self.key_pair()?)?.pem()?)
    }

    /// The agent's temporary self-signed certificate, identified by its fingerprint alone.
    pub fn enrollment_cert(&self, validity: Validity) -> Result<String> {
        let mut params = CertificateParams::new(vec![ENROLLMENT_NAME.to_owned()])?;
        validity.apply(&mut params);
        Ok(params.self_signed(&self.key_pair()?)?.pem())
    }
}

impl fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyPem(<redacted>)")
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from a minute before `now` (clock skew) for `lifetime`.
    pub fn starting(now: OffsetDateTime, lifetime: Duration) -> Self {
        Validity {
            not_before: now - Duration::minutes(1),
            not_after: now + lifetime,
        }
    }

    /// Valid from a minute before `now` (Unix seconds) for `lifetime_secs`.
    pub fn starting_at(now: i64, lifetime_secs: i64) -> Result<Self> {
        let start = OffsetDateTime::from_unix_timestamp(now).map_err(|e| Error::BadPem {
            what: "certificate validity",
            detail: e.to_string(),
        })?;
        Ok(Validity::starting(start, Duration::seconds(lifetime_secs)))
    }

    /// Renewal is due at two thirds of the certificate's life.
    pub fn renew_at(&self) -> OffsetDateTime {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }

    /// [`Validity::not_before`] in Unix seconds.
    pub fn not_before_unix(&self) -> i64 {
        self.not_before.unix_timestamp()
    }

    /// [`Validity::not_after`] in Unix seconds.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after.unix_timestamp()
    }

    /// [`Validity::renew_at`] in Unix seconds.
    pub fn renew_at_unix(&self) -> i64 {
        self.renew_at().unix_timestamp()
    }

    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = self.not_before;
        params.not_after = self.not_after;
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: String,
    pub info: CertInfo,
}

/// What the console records about a certificate (never its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub serial: Serial,
    pub fingerprint: Fingerprint,
    pub validity: Validity,
    pub dns_names: Vec<String>,
    /// DER of the SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
}

/// Parse a PEM certificate.
pub fn parse_cert(pem: &str) -> Result<CertInfo> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::BadPem {
        what: "certificate",
        detail: e.to_string(),
    })?;
    cert_info(&der)
}

/// Parse a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo> {
    let bad = |detail: String| Error::BadPem {
        what: "certificate",
        detail,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| bad(e.to_string()))?;
    let to_time = |t: x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| bad(e.to_string()))
    };
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(bad(e.to_string())),
    };
    Ok(CertInfo {
        serial: Serial::from_bytes(cert.tbs_certificate.raw_serial()),
        fingerprint: Fingerprint::of_der(der),
        validity: Validity {
            not_before: to_time(cert.validity().not_before)?,
            not_after: to_time(cert.validity().not_after)?,
        },
        dns_names,
        public_key: cert.public_key().raw.to_vec(),
    })
}

/// The fleet's certificate authority. Its key lives in the console's keychain only.
pub struct FleetCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl fmt::Debug for FleetCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetCa").finish_non_exhaustive()
    }
}

impl FleetCa {
    /// A new CA, valid for `validity`.
    pub fn generate(validity: Validity, serial: Serial) -> Result<Self> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Gatehouse");
        dn.push(DnType::CommonName, "Gatehouse fleet CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(serial.to_rcgen());
        validity.apply(&mut params);
        let cert = params.self_signed(&key)?;
        Ok(FleetCa { cert, key })
    }

    /// The CA as stored: its certificate (public) and its key (from the keychain).
    pub fn from_pem(cert_pem: &str, key: &KeyPem) -> Result<Self> {
        let key = key.key_pair()?;
        let params = CertificateParams::from_ca_cert_pem(cert_pem).map_err(|e| Error::BadPem {
            what: "CA certificate",
            detail: e.to_string(),
        })?;
        let original = parse_cert(cert_pem)?;
        if original.public_key != key.public_key_der() {
            return Err(Error::KeyMismatch);
        }
        // Re-signing the same name and key reproduces an issuer that verifies as the original.
        let cert = params.self_signed(&key)?;
        Ok(FleetCa { cert, key })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn key_pem(&self) -> KeyPem {
        KeyPem(Zeroizing::new(self.key.serialize_pem()))
    }

    pub fn info(&self) -> Result<CertInfo> {
        cert_info(self.cert.der())
    }

    /// Sign an agent's CSR for `instance`. Only the CSR's public key is taken from it; names,
    /// usages and validity are the CA's decision.
    pub fn sign_agent_csr(
        &self,
        csr_pem: &str,
        instance: &str,
        validity: Validity,
        serial: Serial,
    ) -> Result<Issued> {
        let mut csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| Error::BadPem {
                what: "certificate signing request",
                detail: e.to_string(),
            })?;
        let mut params = CertificateParams::new(vec![agent_name(instance)?])?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, agent_name(instance)?);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(serial.to_rcgen());
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params);
        csr.params = params;
        let cert = csr.signed_by(&self.cert, &self.key)?;
        Ok(Issued {
            pem: cert.pem(),
            info: cert_info(cert.der())?,
        })
    }

    /// A new key and client certificate for the console to talk to `instance`'s agent.
    pub fn issue_console_client(
        &self,
        instance: &str,
        validity: Validity,
        serial: Serial,
    ) -> Result<(Issued, KeyPem)> {
        let key = KeyPem::generate()?;
        let name = console_name(instance)?;
        let mut params = CertificateParams::new(vec![name.clone()])?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(serial.to_rcgen());
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params);
        let cert = params.signed_by(&key.key_pair()?, &self.cert, &self.key)?;
        let issued = Issued {
            pem: cert.pem(),
            info: cert_info(cert.der())?,
        };
        Ok((issued, key))
    }
}

impl Serial {
    fn to_rcgen(&self) -> SerialNumber {
        SerialNumber::from_slice(self.as_bytes())
    }
}

/// Check that `ca_pem`'s key signed `cert_pem`.
pub fn verify_issued_by(cert_pem: &str, ca_pem: &str) -> Result<()> {
    let der = |pem: &str, what| {
        CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::BadPem {
            what,
            detail: e.to_string(),
        })
    };
    let (cert_der, ca_der) = (
        der(cert_pem, "certificate")?,
        der(ca_pem, "CA certificate")?,
    );
    let (cert, ca) = (
        parse_x509(&cert_der, "certificate")?,
        parse_x509(&ca_der, "CA certificate")?,
    );
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|_| Error::KeyMismatch)
}

fn parse_x509<'a>(
    der: &'a [u8],
    what: &'static str,
) -> Result<x509_parser::certificate::X509Certificate<'a>> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| Error::BadPem {
            what,
            detail: e.to_string(),
        })
}

/// Whether `cert_pem` certifies `key`'s public key.
pub fn cert_matches_key(cert_pem: &str, key: &KeyPem) -> Result<bool> {
    Ok(parse_cert(cert_pem)?.public_key == key.public_key_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid time")
    }

    fn serial(n: u8) -> Serial {
        Serial::from_bytes(&[0x10, n, 1, 2, 3, 4, 5, 6])
    }

    #[test]
    fn a_signed_csr_carries_the_ca_names_and_the_agent_key() {
        let ca = FleetCa::generate(Validity::starting(now(), Duration::days(365)), serial(1))
            .expect("CA");
        let agent_key = KeyPem::generate().expect("agent key");
        // The CSR asks for another name; the CA decides the name from the instance.
        let csr = agent_key.agent_csr("mallory").expect("csr");
        let issued = ca
            .sign_agent_csr(
                &csr,
                "alpha",
                Validity::starting(now(), CERT_LIFETIME),
                serial(2),
            )
            .expect("signed");
        assert_eq!(
            issued.info.dns_names,
            vec!["alpha.gatehouse.invalid".to_owned()],
            "the name comes from the enrolled instance, not the CSR"
        );
        assert!(
            cert_matches_key(&issued.pem, &agent_key).expect("parse"),
            "the certificate must certify the agent's own key"
        );
        assert_eq!(
            issued.info.serial,
            serial(2),
            "serial is the one the console chose"
        );
    }

    #[test]
    fn a_reloaded_ca_issues_certificates_that_chain_to_the_original() {
        let validity = Validity::starting(now(), Duration::days(365));
        let ca = FleetCa::generate(validity, serial(1)).expect("CA");
        let pem = ca.cert_pem();
        let reloaded = FleetCa::from_pem(&pem, &ca.key_pem()).expect("reload from PEM");
        let (client, _key) = reloaded
            .issue_console_client("alpha", Validity::starting(now(), CERT_LIFETIME), serial(3))
            .expect("issue");
        let ca_der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("ca der");
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).expect("parse ca");
        let client_der = CertificateDer::from_pem_slice(client.pem.as_bytes()).expect("der");
        let (_, client_cert) = x509_parser::parse_x509_certificate(&client_der).expect("parse");
        client_cert
            .verify_signature(Some(ca_cert.public_key()))
            .expect("a certificate from the reloaded CA verifies against the original CA");
    }

    #[test]
    fn a_ca_key_that_does_not_match_is_refused() {
        let validity = Validity::starting(now(), Duration::days(365));
        let ca = FleetCa::generate(validity, serial(1)).expect("CA");
        let other = KeyPem::generate().expect("key");
        let err = FleetCa::from_pem(&ca.cert_pem(), &other).expect_err("mismatched key");
        assert_eq!(
            err.code(),
            "key_mismatch",
            "a CA certificate with another key is refused"
        );
    }

    #[test]
    fn renewal_is_due_at_two_thirds_of_life() {
        let v = Validity {
            not_before: now(),
            not_after: now() + Duration::days(30),
        };
        assert_eq!(v.renew_at(), now() + Duration::days(20), "2/3 of 30 days");
    }

    #[test]
    fn instance_names_are_dns_labels() {
        assert!(
            agent_name("alpha-1").is_ok(),
            "a DNS label is a valid instance name"
        );
        for bad in ["", "-x", "Alpha", "a.b", "a b", &"x".repeat(41)] {
            assert_eq!(
                agent_name(bad).expect_err("refused").code(),
                "bad_name",
                "{bad:?} must be refused: names become DNS labels"
            );
        }
    }

    #[test]
    fn key_debug_is_redacted() {
        let key = KeyPem::generate().expect("key");
        let printed = format!("{key:?}");
        assert!(
            !printed.contains("PRIVATE"),
            "Debug never prints a private key: {printed}"
        );
    }
}

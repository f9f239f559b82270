//! Authenticode signatures: the PKCS#7 `SignedData` of a `WIN_CERTIFICATE`, read for the
//! names in it (who signed, which certificates came along). Nothing is verified
//! cryptographically: this is evidence of *who claims* to have signed, which is what the
//! Secure Boot readiness rule (BOOT-008) needs offline.
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType OID (1.2.840.113549.1.7.2), [0] EXPLICIT SignedData }
//! SignedData  ::= SEQUENCE { version, digestAlgorithms SET, contentInfo SEQUENCE,
//!                            [0] IMPLICIT certificates OPTIONAL, [1] crls OPTIONAL,
//!                            signerInfos SET OF SignerInfo }
//! SignerInfo  ::= SEQUENCE { version, issuerAndSerialNumber SEQUENCE { Name, INTEGER } | [0] skid, ... }
//! Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version OPTIONAL, serial, sigAlg, issuer Name,
//!                            validity, subject Name, ... }, sigAlg, signature }
//! ```

use super::der::{hex, oid, tag, Der, DerError, Name};
use serde::Serialize;

/// Most certificates read from one signature.
const MAX_ITEMS: usize = 32;

/// Most issuer links followed from the signer towards a root.
const MAX_CHAIN: usize = 8;

/// The Microsoft third-party UEFI CAs whose signatures Azure's UEFI db trusts (shim).
pub const MICROSOFT_UEFI_CAS: [&str; 2] = [
    "Microsoft Corporation UEFI CA 2011",
    "Microsoft UEFI CA 2023",
];

/// Subject and issuer of one certificate carried in the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateNames {
    /// Subject, OpenSSL one-line form (`/C=US/O=…/CN=…`).
    pub subject: String,
    /// Subject commonName.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    /// Issuer, one-line form.
    pub issuer: String,
    /// Issuer commonName.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_cn: Option<String>,
    /// Serial number, lowercase hex of the DER integer bytes.
    pub serial: String,
}

/// One Authenticode signature (one `WIN_CERTIFICATE` of type PKCS_SIGNED_DATA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// Issuer of the signing certificate, as the SignerInfo names it (one-line form); what
    /// `sbverify --list` prints as "image signature issuers".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_issuer: Option<String>,
    /// commonName of `signer_issuer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_issuer_cn: Option<String>,
    /// The signing certificate's subject, when the certificate is included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_subject: Option<String>,
    /// commonName of `signer_subject`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_subject_cn: Option<String>,
    /// Every certificate included, in order.
    pub certificates: Vec<CertificateNames>,
    /// The chain from the signer (issuer links within the included certificates) reaches one
    /// of [`MICROSOFT_UEFI_CAS`].
    pub microsoft_uefi_ca: bool,
}

/// Why a signature blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// DER structure error.
    Der(DerError),
    /// The content type is not signedData.
    NotSignedData,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Der(e) => write!(f, "{e}"),
            SignatureError::NotSignedData => write!(f, "PKCS#7 content type is not signedData"),
        }
    }
}

impl From<DerError> for SignatureError {
    fn from(e: DerError) -> Self {
        SignatureError::Der(e)
    }
}

fn certificate(der: &[u8]) -> Result<CertificateNames, DerError> {
    let cert = Der::new(der).expect(tag::SEQUENCE)?;
    let mut c = cert.reader();
    let tbs = c.expect(tag::SEQUENCE)?;
    let mut t = tbs.reader();
    t.optional(tag::CONTEXT_0)?; // version
    let serial = t.expect(tag::INTEGER)?;
    t.expect(tag::SEQUENCE)?; // signature algorithm
    let issuer = Name::parse(&t.read()?)?;
    t.expect(tag::SEQUENCE)?; // validity
    let subject = Name::parse(&t.read()?)?;
    Ok(CertificateNames {
        subject: subject.oneline(),
        subject_cn: subject.common_name().map(str::to_string),
        issuer: issuer.oneline(),
        issuer_cn: issuer.common_name().map(str::to_string),
        serial: hex(serial.value),
    })
}

/// Reads the names of a PKCS#7 `ContentInfo` holding `SignedData`.
pub fn parse_signed_data(der: &[u8]) -> Result<Signature, SignatureError> {
    let ci = Der::new(der).expect(tag::SEQUENCE)?;
    let mut r = ci.reader();
    let ct = r.expect(tag::OID)?;
    if ct.value != oid::SIGNED_DATA {
        return Err(SignatureError::NotSignedData);
    }
    let explicit = r.expect(tag::CONTEXT_0)?;
    let sd = explicit.reader().expect(tag::SEQUENCE)?;
    let mut s = sd.reader();
    s.expect(tag::INTEGER)?; // version
    s.expect(tag::SET)?; // digestAlgorithms
    s.expect(tag::SEQUENCE)?; // contentInfo (SpcIndirectDataContent)
    let mut certificates = Vec::new();
    if let Some(certs) = s.optional(tag::CONTEXT_0)? {
        let mut cr = certs.reader();
        while !cr.is_empty() && certificates.len() < MAX_ITEMS {
            let one = cr.read()?;
            // Non-X.509 choices (tagged attribute/other certificates) are skipped.
            if one.tag == tag::SEQUENCE {
                certificates.push(certificate(one.raw)?);
            }
        }
    }
    s.optional(tag::CONTEXT_1)?; // crls
    let infos = s.expect(tag::SET)?;
    let mut ir = infos.reader();
    let mut signer_issuer = None;
    let mut signer_serial = None;
    // Authenticode has exactly one SignerInfo; take the first.
    if !ir.is_empty() {
        let si = ir.expect(tag::SEQUENCE)?;
        let mut sr = si.reader();
        sr.expect(tag::INTEGER)?;
        if sr.peek_tag() == Some(tag::SEQUENCE) {
            let ias = sr.read()?;
            let mut ar = ias.reader();
            signer_issuer = Some(Name::parse(&ar.read()?)?);
            signer_serial = Some(hex(ar.expect(tag::INTEGER)?.value));
        }
    }
    let issuer_line = signer_issuer.as_ref().map(Name::oneline);
    let signer = certificates.iter().find(|c| {
        Some(&c.issuer) == issuer_line.as_ref() && Some(&c.serial) == signer_serial.as_ref()
    });
    let microsoft_uefi_ca = chain_reaches_microsoft(
        signer_issuer.as_ref().and_then(Name::common_name),
        issuer_line.as_deref(),
        &certificates,
    );
    Ok(Signature {
        signer_issuer_cn: signer_issuer
            .as_ref()
            .and_then(Name::common_name)
            .map(str::to_string),
        signer_issuer: issuer_line,
        signer_subject: signer.map(|c| c.subject.clone()),
        signer_subject_cn: signer.and_then(|c| c.subject_cn.clone()),
        certificates,
        microsoft_uefi_ca,
    })
}

fn is_microsoft_uefi_ca(cn: Option<&str>) -> bool {
    cn.is_some_and(|cn| MICROSOFT_UEFI_CAS.contains(&cn))
}

/// Walks issuer links from the signer's issuer up through the included certificates.
fn chain_reaches_microsoft(
    issuer_cn: Option<&str>,
    issuer: Option<&str>,
    certs: &[CertificateNames],
) -> bool {
    if is_microsoft_uefi_ca(issuer_cn) {
        return true;
    }
    let mut current = issuer.map(str::to_string);
    for _ in 0..MAX_CHAIN {
        let Some(name) = current else { return false };
        let Some(c) = certs
            .iter()
            .find(|c| c.subject == name && c.issuer != c.subject)
        else {
            return false;
        };
        if is_microsoft_uefi_ca(c.issuer_cn.as_deref()) {
            return true;
        }
        current = Some(c.issuer.clone());
    }
    false
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = value.len();
        if n < 0x80 {
            out.push(n as u8);
        } else if n < 0x100 {
            out.extend([0x81, n as u8]);
        } else {
            out.extend([0x82, (n >> 8) as u8, n as u8]);
        }
        out.extend_from_slice(value);
        out
    }

    fn name(cn: &str) -> Vec<u8> {
        let mut atv = tlv(tag::OID, oid::CN);
        atv.extend(tlv(tag::UTF8_STRING, cn.as_bytes()));
        tlv(tag::SEQUENCE, &tlv(tag::SET, &tlv(tag::SEQUENCE, &atv)))
    }

    fn cert(subject: &str, issuer: &str, serial: u8) -> Vec<u8> {
        let mut tbs = tlv(tag::CONTEXT_0, &tlv(tag::INTEGER, &[2]));
        tbs.extend(tlv(tag::INTEGER, &[serial]));
        tbs.extend(tlv(tag::SEQUENCE, &[]));
        tbs.extend(name(issuer));
        tbs.extend(tlv(tag::SEQUENCE, &[]));
        tbs.extend(name(subject));
        let mut c = tlv(tag::SEQUENCE, &tbs);
        c.extend(tlv(tag::SEQUENCE, &[]));
        c.extend(tlv(0x03, &[0]));
        tlv(tag::SEQUENCE, &c)
    }

    /// A SignedData carrying `certs` (subject CN, issuer CN, serial), signed by the certificate
    /// `signer` = (issuer CN, serial).
    pub(crate) fn signed_data(certs: &[(&str, &str, u8)], signer: (&str, u8)) -> Vec<u8> {
        let mut sd = tlv(tag::INTEGER, &[1]);
        sd.extend(tlv(tag::SET, &[]));
        sd.extend(tlv(tag::SEQUENCE, &[]));
        let all: Vec<u8> = certs.iter().flat_map(|(s, i, n)| cert(s, i, *n)).collect();
        sd.extend(tlv(tag::CONTEXT_0, &all));
        let mut ias = name(signer.0);
        ias.extend(tlv(tag::INTEGER, &[signer.1]));
        let mut si = tlv(tag::INTEGER, &[1]);
        si.extend(tlv(tag::SEQUENCE, &ias));
        si.extend(tlv(tag::SEQUENCE, &[]));
        sd.extend(tlv(tag::SET, &tlv(tag::SEQUENCE, &si)));
        let mut ci = tlv(tag::OID, oid::SIGNED_DATA);
        ci.extend(tlv(tag::CONTEXT_0, &tlv(tag::SEQUENCE, &sd)));
        tlv(tag::SEQUENCE, &ci)
    }

    #[test]
    fn shim_like_signature() {
        let d = signed_data(
            &[
                (
                    "Microsoft Windows UEFI Driver Publisher",
                    "Microsoft Corporation UEFI CA 2011",
                    7,
                ),
                (
                    "Microsoft Corporation UEFI CA 2011",
                    "Microsoft Corporation Third Party Marketplace Root",
                    9,
                ),
            ],
            ("Microsoft Corporation UEFI CA 2011", 7),
        );
        let s = parse_signed_data(&d).unwrap();
        assert_eq!(
            s.signer_issuer_cn.as_deref(),
            Some("Microsoft Corporation UEFI CA 2011")
        );
        assert_eq!(
            s.signer_subject_cn.as_deref(),
            Some("Microsoft Windows UEFI Driver Publisher")
        );
        assert_eq!(s.certificates.len(), 2);
        assert_eq!(s.certificates[1].serial, "09");
        assert!(s.microsoft_uefi_ca);
    }

    #[test]
    fn chain_through_intermediate_and_distro_key() {
        let d = signed_data(
            &[
                ("leaf", "intermediate", 1),
                ("intermediate", "Microsoft UEFI CA 2023", 2),
            ],
            ("intermediate", 1),
        );
        assert!(parse_signed_data(&d).unwrap().microsoft_uefi_ca);
        let d = signed_data(
            &[(
                "Debian Secure Boot Signer 2022 - grub2",
                "Debian Secure Boot CA",
                3,
            )],
            ("Debian Secure Boot CA", 3),
        );
        let s = parse_signed_data(&d).unwrap();
        assert!(!s.microsoft_uefi_ca);
        assert_eq!(
            s.signer_subject.as_deref(),
            Some("/CN=Debian Secure Boot Signer 2022 - grub2")
        );
        // an issuer loop terminates
        let d = signed_data(&[("a", "b", 1), ("b", "a", 2)], ("a", 9));
        assert!(!parse_signed_data(&d).unwrap().microsoft_uefi_ca);
    }

    #[test]
    fn not_signed_data() {
        let mut ci = tlv(
            tag::OID,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01],
        );
        ci.extend(tlv(tag::CONTEXT_0, &[]));
        assert_eq!(
            parse_signed_data(&tlv(tag::SEQUENCE, &ci)),
            Err(SignatureError::NotSignedData)
        );
    }

    #[test]
    fn truncated_and_mutated_never_panic() {
        let d = signed_data(
            &[("leaf", "Microsoft UEFI CA 2023", 1), ("x", "y", 2)],
            ("Microsoft UEFI CA 2023", 1),
        );
        for cut in 0..d.len() {
            assert!(parse_signed_data(&d[..cut]).is_err(), "cut {cut}");
        }
        let mut seed = 0xdead_beefu32;
        for _ in 0..50_000 {
            let mut m = d.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let i = (seed >> 8) as usize % m.len();
                m[i] = (seed >> 24) as u8;
            }
            let _ = parse_signed_data(&m);
        }
        // hostile lengths and garbage
        for junk in [
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            vec![0x30, 0x80, 0x00, 0x00],
            vec![0xff; 64],
            vec![0x30; 4096],
        ] {
            assert!(parse_signed_data(&junk).is_err());
        }
    }
}

//! Where the disk goes: a page blob or a managed disk's upload URL, with the SAS that
//! authorizes it kept secret.

use crate::secret::{redact, Secret};
use crate::shared_key;
use url::Url;

/// What kind of destination the URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A page blob in a storage account: created (or resumed) by vhdprep.
    PageBlob,
    /// A managed disk's upload URL (`az disk grant-access --access-level Write`): the blob
    /// exists already, at the size given to `az disk create --upload-size-bytes`, and takes
    /// only page writes.
    ManagedDisk,
}

/// An upload destination.
#[derive(Debug, Clone)]
pub struct Target {
    /// The blob URL without its query.
    url: Url,
    /// The SAS query, if the URL had one.
    sas: Option<Secret>,
    /// Page blob or managed disk.
    pub kind: TargetKind,
}

/// Why a destination cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The text is not a URL (its text is not repeated: it may hold a secret).
    #[error("--to is not a URL ({0})")]
    NotAUrl(String),
    /// Not http(s).
    #[error("{0}: only https:// (or http:// to a local emulator) URLs are uploaded to")]
    Scheme(String),
    /// No container/blob in the path.
    #[error("{0}: the URL names no blob (expected https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB?SAS)")]
    NoBlob(String),
    /// No SAS in the URL.
    #[error("{0}: the URL carries no SAS token (sig=...); give the SAS URL, or a connection string in AZURE_STORAGE_CONNECTION_STRING with --container and --blob")]
    NoSas(String),
    /// A connection string that cannot be used.
    #[error("the connection string {0}")]
    ConnectionString(String),
}

/// True for the host of a managed disk's upload URL (`md-....blob.storage.azure.net`).
fn is_managed_disk_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host.starts_with("md-") && host.ends_with(".blob.storage.azure.net")
}

impl Target {
    /// A SAS URL (`https://account.blob.core.windows.net/container/blob?sv=...&sig=...`), or
    /// a managed disk's upload URL.
    pub fn from_sas_url(text: &str) -> Result<Target, TargetError> {
        let url = Url::parse(text.trim()).map_err(|e| TargetError::NotAUrl(e.to_string()))?;
        let shown = display_url(&url);
        if !matches!(url.scheme(), "https" | "http") {
            return Err(TargetError::Scheme(shown));
        }
        let segments = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).count())
            .unwrap_or(0);
        let host = url.host_str().unwrap_or("");
        // Path-style URLs (an emulator on an IP address) carry the account first.
        let path_style = url
            .host()
            .is_some_and(|h| !matches!(h, url::Host::Domain(_)))
            || host == "localhost";
        if segments < if path_style { 3 } else { 2 } {
            return Err(TargetError::NoBlob(shown));
        }
        let query = url.query().unwrap_or("").to_string();
        if !query
            .split('&')
            .any(|kv| kv.to_ascii_lowercase().starts_with("sig="))
        {
            return Err(TargetError::NoSas(shown));
        }
        let kind = if is_managed_disk_host(host) {
            TargetKind::ManagedDisk
        } else {
            TargetKind::PageBlob
        };
        let mut bare = url.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        Ok(Target {
            url: bare,
            sas: Some(Secret::new(query)),
            kind,
        })
    }

    /// A blob named by a storage account connection string (`AccountName=...;AccountKey=...`,
    /// with `EndpointSuffix` or `BlobEndpoint`, or `UseDevelopmentStorage=true`), a container
    /// and a blob name. With an account key, a service SAS for this blob alone (read, create,
    /// write) is signed here, valid until `expiry` (UTC, `YYYY-MM-DDThh:mm:ssZ`).
    pub fn from_connection_string(
        conn: &Secret,
        container: &str,
        blob: &str,
        expiry: &str,
    ) -> Result<Target, TargetError> {
        let mut fields = std::collections::HashMap::new();
        for part in conn.expose().split(';').filter(|p| !p.trim().is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(TargetError::ConnectionString(
                    "has a part without '=' (expected KEY=VALUE;KEY=VALUE...)".into(),
                ));
            };
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let dev = fields
            .get("usedevelopmentstorage")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let account = match (fields.get("accountname"), dev) {
            (Some(a), _) => a.clone(),
            (None, true) => "devstoreaccount1".to_string(),
            (None, false) => {
                return Err(TargetError::ConnectionString("names no AccountName".into()))
            }
        };
        let endpoint = if let Some(e) = fields.get("blobendpoint") {
            e.trim_end_matches('/').to_string()
        } else if dev {
            format!("http://127.0.0.1:10000/{account}")
        } else {
            let proto = fields
                .get("defaultendpointsprotocol")
                .map(String::as_str)
                .unwrap_or("https");
            let suffix = fields
                .get("endpointsuffix")
                .map(String::as_str)
                .unwrap_or("core.windows.net");
            format!("{proto}://{account}.blob.{suffix}")
        };
        if container.is_empty() || blob.is_empty() {
            return Err(TargetError::ConnectionString(
                "needs --container and --blob".into(),
            ));
        }
        let blob_path: Vec<String> = blob.split('/').map(encode_segment).collect();
        let url_text = format!(
            "{endpoint}/{}/{}",
            encode_segment(container),
            blob_path.join("/")
        );
        let url = Url::parse(&url_text).map_err(|e| {
            TargetError::ConnectionString(format!("gives no usable blob URL ({e})"))
        })?;
        let sas = if let Some(s) = fields.get("sharedaccesssignature") {
            Secret::new(s.trim_start_matches('?').to_string())
        } else {
            let key = match (fields.get("accountkey"), dev) {
                (Some(k), _) => Secret::new(k.clone()),
                (None, true) => Secret::new(AZURITE_KEY),
                (None, false) => {
                    return Err(TargetError::ConnectionString(
                        "has neither AccountKey nor SharedAccessSignature".into(),
                    ))
                }
            };
            shared_key::blob_sas(&account, &key, container, blob, "rcw", expiry)
                .map_err(|e| TargetError::ConnectionString(format!("cannot sign a SAS: {e}")))?
        };
        Ok(Target {
            url,
            sas: Some(sas),
            kind: TargetKind::PageBlob,
        })
    }

    /// The URL to show: no query, so no SAS.
    pub fn display(&self) -> String {
        let bare = display_url(&self.url);
        match self.sas {
            Some(_) => format!("{bare}?<SAS hidden>"),
            None => bare,
        }
    }

    /// The URL the SDK calls, SAS included (never shown).
    pub(crate) fn request_url(&self) -> Url {
        let mut u = self.url.clone();
        if let Some(s) = &self.sas {
            u.set_query(Some(s.expose()));
        }
        u
    }
}

/// Azurite's well-known development account key (public, documented by Microsoft).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// `url` without query or fragment, for messages.
fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let had_query = u.query().is_some();
    u.set_query(None);
    u.set_fragment(None);
    let s = redact(u.as_str());
    if had_query {
        format!("{s}?<SAS hidden>")
    } else {
        s
    }
}

/// Percent-encodes one path segment of a blob name.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAS: &str = "sv=2022-11-02&sr=b&sp=rcw&se=2030-01-01T00%3A00%3A00Z&sig=c2VjcmV0";

    #[test]
    fn sas_urls_are_parsed_and_never_shown_with_their_signature() {
        let t = Target::from_sas_url(&format!(
            "https://acct.blob.core.windows.net/images/disk.vhd?{SAS}"
        ))
        .unwrap();
        assert_eq!(t.kind, TargetKind::PageBlob);
        assert_eq!(
            t.display(),
            "https://acct.blob.core.windows.net/images/disk.vhd?<SAS hidden>"
        );
        assert!(!format!("{t:?}").contains("c2VjcmV0"));
        assert!(t.request_url().as_str().ends_with("sig=c2VjcmV0"));
        let md = Target::from_sas_url(&format!(
            "https://md-impexp-abc.z22.blob.storage.azure.net/xyz/abcd?{SAS}"
        ))
        .unwrap();
        assert_eq!(md.kind, TargetKind::ManagedDisk);
        // Azurite's path-style URL: the account is the first segment.
        assert!(Target::from_sas_url(&format!(
            "http://127.0.0.1:10000/devstoreaccount1/c/b?{SAS}"
        ))
        .is_ok());
        assert!(matches!(
            Target::from_sas_url(&format!("http://127.0.0.1:10000/devstoreaccount1/c?{SAS}")),
            Err(TargetError::NoBlob(_))
        ));
        for (bad, what) in [
            ("not a url sig=c2VjcmV0", "not a URL"),
            (
                "ftp://a.blob.core.windows.net/c/b?sig=c2VjcmV0",
                "only https",
            ),
            ("https://a.blob.core.windows.net/c/b", "no SAS"),
            (
                "https://a.blob.core.windows.net/c?sig=c2VjcmV0",
                "names no blob",
            ),
        ] {
            let e = Target::from_sas_url(bad).unwrap_err().to_string();
            assert!(e.contains(what), "{bad}: {e}");
            assert!(!e.contains("c2VjcmV0"), "{e}");
        }
    }

    #[test]
    fn connection_strings_give_a_signed_blob_url() {
        let conn = Secret::new(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5LWZvci10ZXN0cw==;EndpointSuffix=core.windows.net",
        );
        let t = Target::from_connection_string(&conn, "images", "d/x.vhd", "2030-01-02T03:04:05Z")
            .unwrap();
        assert_eq!(
            t.display(),
            "https://acct.blob.core.windows.net/images/d/x.vhd?<SAS hidden>"
        );
        assert!(t
            .request_url()
            .as_str()
            .ends_with("sig=KgxvOB92kznSf9uh3BZAWCPTfQsl0elHg1jf%2FaElab8%3D"));
        let dev = Target::from_connection_string(
            &Secret::new("UseDevelopmentStorage=true"),
            "images",
            "b.vhd",
            "2030-01-02T03:04:05Z",
        )
        .unwrap();
        assert_eq!(
            dev.display(),
            "http://127.0.0.1:10000/devstoreaccount1/images/b.vhd?<SAS hidden>"
        );
        for bad in ["AccountName=a", "garbage", "AccountName=a;AccountKey=!!!"] {
            let e = Target::from_connection_string(&Secret::new(bad), "c", "b", "x")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("the connection string"), "{e}");
            assert!(!e.contains("!!!"));
        }
    }
}

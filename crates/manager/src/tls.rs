//! The serving certificate of the webhook and metrics servers.
//!
//! Two ways, as the user's set-up decides:
//! - **Someone else manages it** (cert-manager, or the test environment): `tls.crt`/`tls.key`
//!   are in `--webhook-cert-dir`; we only read them (again whenever they change, see
//!   `certwatch`), and cert-manager's CA injector fills the CRDs' caBundle.
//! - **No cert-manager**: the manager issues a CA and a serving certificate itself and keeps
//!   them in a Secret in its own namespace, so every replica serves the same certificate
//!   (each issuing its own would leave the CRDs trusting only the last one to start).
//!   `issued_ca` is then set and the caller puts it into the CRDs' caBundle.

use crate::certwatch::{self, CertWatcher};
use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WantsServerCert;
use rustls::ConfigBuilder;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tracing::info;

/// The Secret holding the self-issued CA and serving certificate (in the manager's namespace).
pub const SECRET_NAME: &str = "capd-webhook-service-cert";
/// The Service the CRDs' conversion webhook names (manifests/webhook).
pub const SERVICE_NAME: &str = capd_api::crd::WEBHOOK_SERVICE;

pub struct Serving {
    pub config: Arc<rustls::ServerConfig>,
    /// The CA (PEM) when the manager issued the certificate itself.
    pub issued_ca: Option<String>,
}

/// PEM material as stored: CA certificate, serving certificate, serving key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

pub struct Options<'a> {
    pub cert_dir: &'a Path,
    pub cert_name: &'a str,
    pub key_name: &'a str,
    pub namespace: &'a str,
    /// Extra host names/IPs the certificate must cover (the `--webhook-url` host).
    pub extra_hosts: Vec<String>,
    pub min_tls13: bool,
    pub cipher_suites: &'a [String],
}

pub async fn load_or_issue(client: &kube::Client, o: &Options<'_>) -> Result<Serving> {
    let (crt, key) = (o.cert_dir.join(o.cert_name), o.cert_dir.join(o.key_name));
    if crt.exists() && key.exists() {
        // cert-manager renews these in place: serve through a watcher that re-reads them.
        let provider = crypto(o)?;
        let watcher = Arc::new(CertWatcher::new(crt, key, provider.clone())?);
        let config = watched_config(provider, watcher.clone(), o)?;
        watcher.spawn(certwatch::POLL);
        info!(dir = %o.cert_dir.display(), every = ?certwatch::POLL, "serving with the certificate in --webhook-cert-dir, re-read when it changes");
        return Ok(Serving {
            config,
            issued_ca: None,
        });
    }
    let m = secret_material(client, o).await?;
    info!(secret = %format!("{}/{SECRET_NAME}", o.namespace), "serving with the manager's own certificate (no cert-manager certificate in --webhook-cert-dir)");
    Ok(Serving {
        config: server_config(&m.cert, &m.key, o)?,
        issued_ca: Some(m.ca),
    })
}

/// The Secret's material; created on first use. Two replicas starting at once: one create
/// wins, the other reads what it wrote.
async fn secret_material(client: &kube::Client, o: &Options<'_>) -> Result<Material> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), o.namespace);
    let what = format!("Secret {}/{SECRET_NAME}", o.namespace);
    if let Some(s) = secrets
        .get_opt(SECRET_NAME)
        .await
        .with_context(|| format!("reading {what}"))?
    {
        return from_secret(&s)
            .with_context(|| format!("{what} (delete it to have a new certificate issued)"));
    }
    let m = issue(&hosts(o.namespace, &o.extra_hosts))?;
    let secret = to_secret(&m);
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(m),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let s = secrets
                .get(SECRET_NAME)
                .await
                .with_context(|| format!("reading {what}"))?;
            from_secret(&s).with_context(|| what.clone())
        }
        Err(e) => Err(e).with_context(|| format!("creating {what}")),
    }
}

/// Names the serving certificate covers: the Service in every spelling the API server may
/// use, and loopback for a manager run outside the cluster.
pub fn hosts(namespace: &str, extra: &[String]) -> Vec<String> {
    let mut h = vec![
        SERVICE_NAME.to_string(),
        format!("{SERVICE_NAME}.{namespace}"),
        format!("{SERVICE_NAME}.{namespace}.svc"),
        format!("{SERVICE_NAME}.{namespace}.svc.cluster.local"),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for e in extra {
        if !h.contains(e) {
            h.push(e.clone());
        }
    }
    h
}

pub fn issue(hosts: &[String]) -> Result<Material> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "capd-rs-webhook-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_after = rcgen::date_time_ymd(2125, 1, 1);
    let ca_cert = ca.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    for h in hosts {
        p.subject_alt_names
            .push(match h.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    h.clone()
                        .try_into()
                        .with_context(|| format!("{h:?} is not a DNS name"))?,
                ),
            });
    }
    p.distinguished_name.push(DnType::CommonName, SERVICE_NAME);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_after = rcgen::date_time_ymd(2125, 1, 1);
    let cert = p.signed_by(&key, &issuer)?;
    Ok(Material {
        ca: ca_pem,
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

fn to_secret(m: &Material) -> Secret {
    let data: BTreeMap<String, ByteString> =
        [("ca.crt", &m.ca), ("tls.crt", &m.cert), ("tls.key", &m.key)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect();
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(SECRET_NAME.into()),
            labels: Some(
                [(
                    "cluster.x-k8s.io/provider".to_string(),
                    "infrastructure-docker".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    }
}

fn from_secret(s: &Secret) -> Result<Material> {
    let get = |k: &str| -> Result<String> {
        let v = s
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .with_context(|| format!("data.{k} missing"))?;
        String::from_utf8(v.0.clone()).with_context(|| format!("data.{k} is not PEM text"))
    };
    Ok(Material {
        ca: get("ca.crt")?,
        cert: get("tls.crt")?,
        key: get("tls.key")?,
    })
}

fn server_config(
    cert_pem: &str,
    key_pem: &str,
    o: &Options<'_>,
) -> Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading the serving certificate (PEM)")?;
    anyhow::ensure!(
        !certs.is_empty(),
        "the serving certificate file holds no certificate"
    );
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .context("reading the serving key (PEM)")?;
    let config = builder(crypto(o)?, o)?
        .with_single_cert(certs, key)
        .context("the serving certificate and key do not match")?;
    Ok(finish(config))
}

/// The same TLS options as [`server_config`], with the certificate taken from `watcher` on
/// every handshake.
pub(crate) fn watched_config(
    provider: Arc<CryptoProvider>,
    watcher: Arc<CertWatcher>,
    o: &Options<'_>,
) -> Result<Arc<rustls::ServerConfig>> {
    Ok(finish(builder(provider, o)?.with_cert_resolver(watcher)))
}

/// The crypto provider narrowed to `--tls-cipher-suites`.
fn crypto(o: &Options<'_>) -> Result<Arc<CryptoProvider>> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !o.cipher_suites.is_empty() {
        // Go applies the list to TLS 1.0–1.2 only: TLS 1.3's suites always stay.
        let wanted = |s: &rustls::SupportedCipherSuite| {
            s.version() == &rustls::version::TLS13
                || o.cipher_suites.iter().any(|n| suite_named(n, s))
        };
        for name in o.cipher_suites {
            anyhow::ensure!(
                provider.cipher_suites.iter().any(|s| suite_named(name, s)),
                "--tls-cipher-suites: {name} is not a cipher suite this build serves"
            );
        }
        provider.cipher_suites.retain(wanted);
    }
    Ok(Arc::new(provider))
}

/// `--tls-min-version` applied; the certificate is the caller's.
fn builder(
    provider: Arc<CryptoProvider>,
    o: &Options<'_>,
) -> Result<ConfigBuilder<rustls::ServerConfig, WantsServerCert>> {
    let versions: &[&rustls::SupportedProtocolVersion] = if o.min_tls13 {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .context("--tls-min-version/--tls-cipher-suites: no usable combination")?
        .with_no_client_auth())
}

fn finish(mut config: rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Go's cipher-suite names (what `--tls-cipher-suites` takes) against rustls' IANA-style
/// ones: Go writes TLS 1.3 suites `TLS_AES_...` (rustls: `TLS13_AES_...`) and drops
/// `_SHA256` from the ChaCha20 suites.
fn suite_named(go: &str, suite: &rustls::SupportedCipherSuite) -> bool {
    let ours = format!("{:?}", suite.suite());
    go == ours
        || ours
            .strip_prefix("TLS13_")
            .is_some_and(|r| go.strip_prefix("TLS_") == Some(r))
        || ours.strip_suffix("_SHA256") == Some(go)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(dir: &'a Path, suites: &'a [String]) -> Options<'a> {
        Options {
            cert_dir: dir,
            cert_name: "tls.crt",
            key_name: "tls.key",
            namespace: "capd-system",
            extra_hosts: vec![],
            min_tls13: false,
            cipher_suites: suites,
        }
    }

    #[test]
    fn issued_material_round_trips_through_the_secret_and_serves() {
        let m = issue(&hosts("capd-system", &["manager.example".into()])).unwrap();
        assert_eq!(from_secret(&to_secret(&m)).unwrap(), m);
        let dir = std::env::temp_dir();
        assert!(server_config(&m.cert, &m.key, &opts(&dir, &[])).is_ok());
        // The serving certificate chains to the CA and names the Service and loopback.
        let (_, cert) = x509_parser::pem::parse_x509_pem(m.cert.as_bytes()).unwrap();
        let cert = cert.parse_x509().unwrap();
        let sans = format!(
            "{:?}",
            cert.subject_alternative_name()
                .unwrap()
                .unwrap()
                .value
                .general_names
        );
        for want in [
            "capd-webhook-service.capd-system.svc",
            "localhost",
            "manager.example",
        ] {
            assert!(sans.contains(want), "{want} not in {sans}");
        }
        let (_, ca) = x509_parser::pem::parse_x509_pem(m.ca.as_bytes()).unwrap();
        assert_eq!(cert.issuer(), ca.parse_x509().unwrap().subject());
    }

    #[test]
    fn a_secret_without_a_key_names_the_field() {
        let mut s = to_secret(&issue(&hosts("ns", &[])).unwrap());
        s.data.as_mut().unwrap().remove("tls.key");
        assert!(format!("{:#}", from_secret(&s).unwrap_err()).contains("data.tls.key missing"));
    }

    #[test]
    fn unknown_cipher_suites_and_mismatched_keys_are_refused() {
        let m = issue(&["localhost".into()]).unwrap();
        let other = issue(&["localhost".into()]).unwrap();
        let dir = std::env::temp_dir();
        let bad = vec!["TLS_NO_SUCH_SUITE".to_string()];
        assert!(format!(
            "{:#}",
            server_config(&m.cert, &m.key, &opts(&dir, &bad)).unwrap_err()
        )
        .contains("TLS_NO_SUCH_SUITE"));
        let good: Vec<String> = [
            "TLS_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        ]
        .map(String::from)
        .to_vec();
        assert!(server_config(&m.cert, &m.key, &opts(&dir, &good)).is_ok());
        assert!(format!(
            "{:#}",
            server_config(&m.cert, &other.key, &opts(&dir, &[])).unwrap_err()
        )
        .contains("do not match"));
    }
}

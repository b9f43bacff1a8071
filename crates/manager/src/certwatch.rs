//! Serves the certificate in `--webhook-cert-dir` and picks up a rotated one without a
//! restart (what controller-runtime's certwatcher does for CAPD).
//!
//! cert-manager renews by rewriting the Secret; the kubelet swaps the mounted files in
//! through a symlink. Rather than trust the mtime seen through that link, the files are
//! re-read on a timer and compared by content (a rewrite of the same bytes is no change,
//! and no inotify dependency is needed); a new pair is served only once
//! both parse and the key belongs to the certificate, so a half-written rotation keeps the
//! old certificate until the pair is whole again.

use anyhow::{Context as _, Result};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tracing::{info, warn};

/// How often the files are re-read. cert-manager renews well ahead of expiry, so seconds
/// of delay do not matter; the cost is reading two small files.
pub const POLL: Duration = Duration::from_secs(10);

/// A content fingerprint of the certificate and key files as last read.
type Fingerprint = (u64, u64);

#[derive(Debug)]
pub struct CertWatcher {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The pair last looked at, served or not: a broken pair is reported once, not on
    /// every tick, and a later change to either file is tried again.
    seen: Mutex<Fingerprint>,
}

impl CertWatcher {
    /// Reads the pair once; an unusable pair at start is an error (nothing to fall back on).
    pub fn new(
        cert_path: PathBuf,
        key_path: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self> {
        let (cert_pem, key_pem) = read_pair(&cert_path, &key_path)?;
        let ck = certified_key(&cert_path, &cert_pem, &key_path, &key_pem, &provider)?;
        Ok(Self {
            seen: Mutex::new(fingerprint(&cert_pem, &key_pem)),
            current: RwLock::new(Arc::new(ck)),
            cert_path,
            key_path,
            provider,
        })
    }

    /// Re-reads the files: `Ok(true)` when a new pair is now served, `Ok(false)` when the
    /// files did not change since the last look, an error (naming the file) when the new
    /// content is unusable; the certificate served before stays in every case but `true`.
    pub fn reload(&self) -> Result<bool> {
        // Held throughout so two reloads cannot interleave their check and swap.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (cert_pem, key_pem) = read_pair(&self.cert_path, &self.key_path)?;
        let fp = fingerprint(&cert_pem, &key_pem);
        if fp == *seen {
            return Ok(false);
        }
        *seen = fp;
        let ck = certified_key(
            &self.cert_path,
            &cert_pem,
            &self.key_path,
            &key_pem,
            &self.provider,
        )?;
        // A poisoned lock still holds a whole Arc (the write is a single assignment).
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ck);
        Ok(true)
    }

    /// The chain served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Polls the files every `every` for the life of the process.
    pub fn spawn(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick fires at once; the pair was just read by `new`.
            tick.tick().await;
            loop {
                tick.tick().await;
                let w = self.clone();
                // File reads and key parsing block; keep them off the async workers.
                match tokio::task::spawn_blocking(move || w.reload()).await {
                    Ok(Ok(true)) => info!(
                        cert = %self.cert_path.display(),
                        key = %self.key_path.display(),
                        "serving the rotated certificate"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => warn!(
                        error = %format!("{e:#}"),
                        "the certificate files changed but cannot be served; keeping the current certificate"
                    ),
                    Err(e) => warn!(error = %e, "reloading the certificate failed"),
                }
            }
        })
    }
}

impl ResolvesServerCert for CertWatcher {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read_pair(cert_path: &Path, key_path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    // `fs::read` follows the kubelet's symlinks to the file currently swapped in.
    let cert =
        std::fs::read(cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
    let key = std::fs::read(key_path).with_context(|| format!("reading {}", key_path.display()))?;
    Ok((cert, key))
}

fn fingerprint(cert_pem: &[u8], key_pem: &[u8]) -> Fingerprint {
    let hash = |b: &[u8]| {
        let mut h = DefaultHasher::new();
        b.hash(&mut h);
        h.finish()
    };
    (hash(cert_pem), hash(key_pem))
}

fn certified_key(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert_path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: holds no certificate",
        cert_path.display()
    );
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .with_context(|| format!("{}: not a PEM private key", key_path.display()))?;
    // Also checks the key against the leaf's public key, so a pair caught mid-rotation
    // (new certificate, old key) is refused rather than served and failing every handshake.
    CertifiedKey::from_der(certs, key, provider).with_context(|| {
        format!(
            "{} and {}: not a usable pair (does the key belong to the certificate?)",
            cert_path.display(),
            key_path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{issue, Material};

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("capd-certwatch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn write(dir: &Path, cert: &str, key: &str) {
        std::fs::write(dir.join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join("tls.key"), key).unwrap();
    }

    fn leaf_der(pem: &str) -> Vec<u8> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
            .to_vec()
    }

    fn watcher(dir: &Path) -> CertWatcher {
        CertWatcher::new(
            dir.join("tls.crt"),
            dir.join("tls.key"),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .unwrap()
    }

    fn served(w: &CertWatcher) -> Vec<u8> {
        w.current().cert[0].to_vec()
    }

    fn pair() -> Material {
        issue(&["localhost".into()]).unwrap()
    }

    #[test]
    fn a_rotated_pair_is_served_after_reload() {
        let dir = temp_dir("rotate");
        let (a, b) = (pair(), pair());
        write(&dir.0, &a.cert, &a.key);
        let w = watcher(&dir.0);
        assert_eq!(served(&w), leaf_der(&a.cert));
        assert!(!w.reload().unwrap(), "nothing changed yet");

        write(&dir.0, &b.cert, &b.key);
        assert!(w.reload().unwrap());
        assert_eq!(served(&w), leaf_der(&b.cert));
        assert_ne!(leaf_der(&a.cert), leaf_der(&b.cert));
        assert!(!w.reload().unwrap(), "the same pair again is no change");
    }

    #[test]
    fn a_broken_pair_keeps_the_old_certificate_and_names_the_file() {
        let dir = temp_dir("broken");
        let (a, b) = (pair(), pair());
        write(&dir.0, &a.cert, &a.key);
        let w = watcher(&dir.0);

        // B's certificate with A's key: the key does not belong to it.
        write(&dir.0, &b.cert, &a.key);
        let e = format!("{:#}", w.reload().unwrap_err());
        assert!(e.contains("tls.crt") && e.contains("tls.key"), "{e}");
        assert_eq!(served(&w), leaf_der(&a.cert));

        // B's certificate cut off mid-way (a half-written file).
        let cut = &b.cert[..b.cert.len() / 2];
        write(&dir.0, cut, &b.key);
        let e = format!("{:#}", w.reload().unwrap_err());
        assert!(e.contains("tls.crt"), "{e}");
        assert_eq!(served(&w), leaf_der(&a.cert));

        // The pair made whole is served.
        write(&dir.0, &b.cert, &b.key);
        assert!(w.reload().unwrap());
        assert_eq!(served(&w), leaf_der(&b.cert));
    }

    #[test]
    fn a_missing_file_keeps_the_old_certificate() {
        let dir = temp_dir("missing");
        let a = pair();
        write(&dir.0, &a.cert, &a.key);
        let w = watcher(&dir.0);
        std::fs::remove_file(dir.0.join("tls.key")).unwrap();
        let e = format!("{:#}", w.reload().unwrap_err());
        assert!(e.contains("tls.key"), "{e}");
        assert_eq!(served(&w), leaf_der(&a.cert));
    }

    /// Through a real handshake with the server config main.rs serves: the client sees B
    /// once the files rotated and `reload` ran, without a new acceptor.
    #[tokio::test]
    async fn the_tls_server_hands_out_the_rotated_certificate() {
        let dir = temp_dir("handshake");
        let (a, b) = (pair(), pair());
        write(&dir.0, &a.cert, &a.key);
        let w = Arc::new(watcher(&dir.0));
        let opts = crate::tls::Options {
            cert_dir: &dir.0,
            cert_name: "tls.crt",
            key_name: "tls.key",
            namespace: "capd-system",
            extra_hosts: vec![],
            min_tls13: false,
            cipher_suites: &[],
        };
        let config = crate::tls::watched_config(
            Arc::new(rustls::crypto::ring::default_provider()),
            w.clone(),
            &opts,
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(sock).await;
                });
            }
        });

        let mut roots = rustls::RootCertStore::empty();
        for ca in [&a.ca, &b.ca] {
            roots
                .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
                .unwrap();
        }
        let client = tokio_rustls::TlsConnector::from(Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        ));
        let peer = || async {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let tls = client
                .connect("localhost".try_into().unwrap(), tcp)
                .await
                .unwrap();
            tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
        };

        assert_eq!(peer().await, leaf_der(&a.cert));
        write(&dir.0, &b.cert, &b.key);
        assert!(w.reload().unwrap());
        assert_eq!(peer().await, leaf_der(&b.cert));
    }
}

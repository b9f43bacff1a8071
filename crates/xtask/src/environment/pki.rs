//! The environment's certificates: one CA signs the kube-apiserver serving cert, the
//! admin client cert (system:masters) and the webhook serving cert of the Cluster API
//! managers; plus the service-account signing key. Generated once, then reused.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca_crt(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn apiserver_crt(&self) -> PathBuf {
        self.dir.join("apiserver.crt")
    }
    pub fn apiserver_key(&self) -> PathBuf {
        self.dir.join("apiserver.key")
    }
    pub fn admin_crt(&self) -> PathBuf {
        self.dir.join("admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }
    pub fn sa_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    pub fn sa_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }
    /// Directory with `tls.crt`/`tls.key` for every webhook server on 127.0.0.1.
    pub fn webhook_dir(&self) -> PathBuf {
        self.dir.join("webhook")
    }

    fn all(&self) -> Vec<PathBuf> {
        vec![
            self.ca_crt(),
            self.ca_key(),
            self.apiserver_crt(),
            self.apiserver_key(),
            self.admin_crt(),
            self.admin_key(),
            self.sa_key(),
            self.sa_pub(),
            self.webhook_dir().join("tls.crt"),
            self.webhook_dir().join("tls.key"),
        ]
    }

    pub fn complete(&self) -> bool {
        self.all().iter().all(|p| p.exists())
    }

    /// Generates every file (all of them, so they always come from the same CA).
    pub fn generate(&self) -> Result<()> {
        std::fs::create_dir_all(self.webhook_dir())?;
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "capd-rs-testenv-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let ca_cert = ca.self_signed(&ca_key)?;
        write(&self.ca_crt(), &ca_cert.pem())?;
        write(&self.ca_key(), &ca_key.serialize_pem())?;
        let issuer = Issuer::new(ca, ca_key);

        let serving_sans = vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ];
        let ips = ["127.0.0.1", "10.0.0.1", "::1"];
        leaf(
            &issuer,
            "kube-apiserver",
            None,
            &serving_sans,
            &ips,
            true,
            &self.apiserver_crt(),
            &self.apiserver_key(),
        )?;
        leaf(
            &issuer,
            "capd-rs-admin",
            Some("system:masters"),
            &[],
            &[],
            false,
            &self.admin_crt(),
            &self.admin_key(),
        )?;
        leaf(
            &issuer,
            "capd-rs-webhooks",
            None,
            &["localhost".to_string()],
            &["127.0.0.1"],
            true,
            &self.webhook_dir().join("tls.crt"),
            &self.webhook_dir().join("tls.key"),
        )?;

        let sa = KeyPair::generate()?;
        write(&self.sa_key(), &sa.serialize_pem())?;
        write(&self.sa_pub(), &sa.public_key_pem())?;
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    org: Option<&str>,
    dns: &[String],
    ips: &[&str],
    server: bool,
    crt: &Path,
    key: &Path,
) -> Result<()> {
    let k = KeyPair::generate()?;
    let mut p = CertificateParams::new(dns.to_vec())?;
    for ip in ips {
        p.subject_alt_names
            .push(SanType::IpAddress(ip.parse().context("parsing SAN IP")?));
    }
    p.distinguished_name.push(DnType::CommonName, cn);
    if let Some(o) = org {
        p.distinguished_name.push(DnType::OrganizationName, o);
    }
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    p.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = p.signed_by(&k, issuer)?;
    write(crt, &cert.pem())?;
    write(key, &k.serialize_pem())
}

fn write(path: &Path, pem: &str) -> Result<()> {
    crate::support::steps::write_file(path, pem)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// An admin kubeconfig with the certificates embedded, so it works from anywhere.
pub fn kubeconfig(pki: &Pki, server: &str) -> Result<String> {
    use base64_embed as b64;
    let ca = std::fs::read(pki.ca_crt())?;
    let crt = std::fs::read(pki.admin_crt())?;
    let key = std::fs::read(pki.admin_key())?;
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "capd-rs-testenv", "cluster": {"server": server, "certificate-authority-data": b64(&ca)}}],
        "users": [{"name": "capd-rs-admin", "user": {"client-certificate-data": b64(&crt), "client-key-data": b64(&key)}}],
        "contexts": [{"name": "capd-rs-testenv", "context": {"cluster": "capd-rs-testenv", "user": "capd-rs-admin"}}],
        "current-context": "capd-rs-testenv",
    });
    Ok(serde_yaml_ng::to_string(&doc)?)
}

/// Standard base64 (the kubeconfig `*-data` fields).
pub fn base64_embed(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_embed(b""), "");
        assert_eq!(base64_embed(b"f"), "Zg==");
        assert_eq!(base64_embed(b"fo"), "Zm8=");
        assert_eq!(base64_embed(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn generates_a_complete_pki() {
        let dir = std::env::temp_dir().join(format!("pki-test-{}", std::process::id()));
        let pki = Pki { dir: dir.clone() };
        assert!(!pki.complete());
        pki.generate().unwrap();
        assert!(pki.complete());
        let crt = std::fs::read_to_string(pki.apiserver_crt()).unwrap();
        assert!(crt.starts_with("-----BEGIN CERTIFICATE-----"));
        let kc = kubeconfig(&pki, "https://127.0.0.1:1").unwrap();
        assert!(kc.contains("client-certificate-data"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

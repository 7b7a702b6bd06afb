//! What the switch keeps in its data directory besides records: its
//! self-signed certificate (made on first start) and the local admin token
//! the CLI on the same machine uses.

use std::fs;
use std::io::Write;
use std::path::Path;

use quinn::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ServerError;
use crate::wire::cert_fingerprint;

pub const CERT_FILE: &str = "cert.der";
pub const KEY_FILE: &str = "key.der";
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
pub const ADDR_FILE: &str = "server.addr";

/// The switch's TLS identity.
pub struct TlsIdentity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: String,
}

/// Loads the certificate and key, making them on first start.
pub fn load_or_create_identity(dir: &Path) -> Result<TlsIdentity, ServerError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let io = |what: &str, e: std::io::Error| ServerError::DataDir(format!("{what}: {e}"));
    let (cert, key) = if cert_path.exists() && key_path.exists() {
        let cert = fs::read(&cert_path).map_err(|e| io("reading cert.der", e))?;
        let key = fs::read(&key_path).map_err(|e| io("reading key.der", e))?;
        (cert, key)
    } else {
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "callswitch".into()])
                .map_err(|e| ServerError::Tls(format!("generating a certificate: {e}")))?;
        let cert = made.cert.der().to_vec();
        let key = made.signing_key.serialize_der();
        write_private(&key_path, &key).map_err(|e| io("writing key.der", e))?;
        fs::write(&cert_path, &cert).map_err(|e| io("writing cert.der", e))?;
        (cert, key)
    };
    Ok(TlsIdentity {
        fingerprint: cert_fingerprint(&cert),
        cert: CertificateDer::from(cert),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    })
}

/// Loads the local admin token, making a random one on first start.
pub fn load_or_create_admin_token(dir: &Path) -> Result<String, ServerError> {
    let path = dir.join(ADMIN_TOKEN_FILE);
    if let Ok(text) = fs::read_to_string(&path) {
        let token = text.trim().to_string();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let bytes: [u8; 24] = rand::random();
    let token = format!("admin-{}", hex::encode(bytes));
    write_private(&path, token.as_bytes())
        .map_err(|e| ServerError::DataDir(format!("writing admin.token: {e}")))?;
    Ok(token)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

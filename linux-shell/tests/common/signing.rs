//! Ed25519-signed eyas manifests (core/MANIFEST-FORMAT.md), signed with openssl.

use std::path::{Path, PathBuf};
use std::process::Command;

use eyas_core::verify::{MAX_MANIFEST_LEN, Manifest};
use sha2::{Digest, Sha256};

use super::run;

pub struct Signer {
    pub key: PathBuf,
    pub public: [u8; 32],
}

impl Signer {
    pub fn new(dir: &Path, name: &str) -> Self {
        super::require_tool("openssl");
        let key = dir.join(format!("{name}.pem"));
        let der = dir.join(format!("{name}.pub.der"));
        run(Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key));
        run(Command::new("openssl")
            .arg("pkey")
            .arg("-in")
            .arg(&key)
            .args(["-pubout", "-outform", "DER", "-out"])
            .arg(&der));
        let public =
            eyas_core::verify::public_key_from_spki_der(&std::fs::read(&der).expect("der"))
                .expect("spki");
        Self { key, public }
    }

    pub fn public_hex(&self) -> String {
        self.public.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Writes `<bundle>.manifest` next to `bundle` and returns its path.
    pub fn sign(&self, bundle: &Path, compatible: &str, version: &str) -> PathBuf {
        let data = std::fs::read(bundle).expect("bundle");
        let m = Manifest {
            compatible,
            version,
            size: data.len() as u64,
            sha256: Sha256::digest(&data).into(),
        };
        let mut buf = [0u8; MAX_MANIFEST_LEN];
        let n = m.encode(&mut buf).expect("encode");
        let record = bundle.with_extension("record");
        let sig = bundle.with_extension("sig");
        std::fs::write(&record, &buf[..n]).expect("write");
        run(Command::new("openssl")
            .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
            .arg(&self.key)
            .arg("-in")
            .arg(&record)
            .arg("-out")
            .arg(&sig));
        let mut file = buf[..n].to_vec();
        file.extend(std::fs::read(&sig).expect("sig"));
        let out = PathBuf::from(format!("{}.manifest", bundle.display()));
        std::fs::write(&out, file).expect("write");
        out
    }
}

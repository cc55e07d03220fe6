//! Signed-manifest check before install (`[eyas] manifest_signature`), using `eyas_core::verify`.
//!
//! When the policy is not `off`, the bundle file is streamed once more through the core's
//! `Verifier` together with its `<bundle>.manifest` artifact (format: core/MANIFEST-FORMAT.md),
//! so size, hawkBit digest, signature, compatible and manifest digest are all decided by the
//! core. The manifest is accepted if any configured public key verifies it.

use std::io::Read;
use std::path::Path;

use eyas_core::verify::{
    ArtifactSpec, MAX_MANIFEST_LEN, Manifest, ManifestError, Policy, Verifier,
};

use crate::config::SignaturePolicy;

fn policy(p: SignaturePolicy) -> Policy {
    match p {
        SignaturePolicy::Off => Policy::Off,
        SignaturePolicy::IfPresent => Policy::IfPresent,
        SignaturePolicy::Required => Policy::Required,
    }
}

/// Checks `bundle` (announced by hawkBit as `spec`) against `manifest_file` under `policy`.
/// `compatible` is the device's (RAUC's `Compatible`). Returns a reason with the core's code.
pub fn check_bundle(
    bundle: &Path,
    spec: &ArtifactSpec,
    manifest_file: Option<&Path>,
    signature_policy: SignaturePolicy,
    keys: &[[u8; 32]],
    compatible: &str,
) -> Result<(), String> {
    if signature_policy == SignaturePolicy::Off {
        return Ok(());
    }
    let mut verifier = Verifier::new(spec, policy(signature_policy))
        .map_err(|e| format!("{}: {e:?}", bundle.display()))?;
    let mut f = std::fs::File::open(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", bundle.display()))?;
        if n == 0 {
            break;
        }
        if let Err(e) = verifier.update(&buf[..n]) {
            return Err(format!("{}: {e:?}", bundle.display()));
        }
    }
    let manifest_bytes = match manifest_file {
        Some(p) => {
            let len = std::fs::metadata(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .len();
            if len > MAX_MANIFEST_LEN as u64 {
                Some(Err(ManifestError::TooLong))
            } else {
                Some(Ok(
                    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?
                ))
            }
        }
        None => None,
    };
    let manifest: Option<Result<Manifest<'_>, ManifestError>> = match &manifest_bytes {
        None => None,
        Some(Err(e)) => Some(Err(*e)),
        Some(Ok(bytes)) => {
            let mut result = Err(ManifestError::BadSignature);
            for key in keys {
                result = Manifest::verify_signed(bytes, key);
                if result.is_ok() {
                    break;
                }
            }
            Some(result)
        }
    };
    verifier
        .finish(compatible, manifest)
        .map(|_| ())
        .map_err(|e| format!("{}: {e} ({})", bundle.display(), e.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    use sha2::{Digest, Sha256};

    struct Signer {
        key: std::path::PathBuf,
        public: [u8; 32],
    }

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is required");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn signer(dir: &Path, name: &str) -> Signer {
        let key = format!("{name}.pem");
        let der = format!("{name}.pub.der");
        openssl(dir, &["genpkey", "-algorithm", "ed25519", "-out", &key]);
        openssl(
            dir,
            &[
                "pkey", "-in", &key, "-pubout", "-outform", "DER", "-out", &der,
            ],
        );
        let der = std::fs::read(dir.join(der)).expect("der");
        let public = eyas_core::verify::public_key_from_spki_der(&der).expect("ed25519 spki");
        Signer {
            key: dir.join(key),
            public,
        }
    }

    fn sign_manifest(
        dir: &Path,
        s: &Signer,
        compatible: &str,
        bundle: &[u8],
    ) -> std::path::PathBuf {
        let m = Manifest {
            compatible,
            version: "1.1.0",
            size: bundle.len() as u64,
            sha256: Sha256::digest(bundle).into(),
        };
        let mut buf = [0u8; MAX_MANIFEST_LEN];
        let n = m.encode(&mut buf).expect("encode");
        let record = dir.join("record.bin");
        std::fs::write(&record, &buf[..n]).expect("write");
        let key = s.key.to_string_lossy().into_owned();
        openssl(
            dir,
            &[
                "pkeyutl",
                "-sign",
                "-inkey",
                &key,
                "-rawin",
                "-in",
                "record.bin",
                "-out",
                "sig.bin",
            ],
        );
        let mut file = buf[..n].to_vec();
        file.extend(std::fs::read(dir.join("sig.bin")).expect("sig"));
        let path = dir.join("bundle.raucb.manifest");
        std::fs::write(&path, file).expect("write");
        path
    }

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, ArtifactSpec, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tmp");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let bundle = dir.path().join("bundle.raucb");
        std::fs::write(&bundle, &data).expect("write");
        let spec = ArtifactSpec {
            size: data.len() as u64,
            sha256: Some(Sha256::digest(&data).into()),
            sha1: None,
        };
        (dir, bundle, spec, data)
    }

    #[test]
    fn openssl_signed_manifest_is_accepted_and_every_failure_has_a_code() {
        let (dir, bundle, spec, data) = setup();
        let good = signer(dir.path(), "good");
        let evil = signer(dir.path(), "evil");
        let keys = [evil.public, good.public];
        let manifest = sign_manifest(dir.path(), &good, "ota-agent-test", &data);
        let check = |m: Option<&Path>, p: SignaturePolicy, keys: &[[u8; 32]], compat: &str| {
            check_bundle(&bundle, &spec, m, p, keys, compat)
        };
        check(
            Some(&manifest),
            SignaturePolicy::Required,
            &keys,
            "ota-agent-test",
        )
        .expect("valid manifest, second key");
        let e = check(
            Some(&manifest),
            SignaturePolicy::Required,
            &[evil.public],
            "ota-agent-test",
        )
        .expect_err("wrong key");
        assert!(e.contains("manifest-bad-signature"), "{e}");
        let e = check(
            Some(&manifest),
            SignaturePolicy::Required,
            &keys,
            "other-board",
        )
        .expect_err("incompatible");
        assert!(e.contains("incompatible"), "{e}");
        let e =
            check(None, SignaturePolicy::Required, &keys, "ota-agent-test").expect_err("missing");
        assert!(e.contains("manifest-missing"), "{e}");
        check(None, SignaturePolicy::IfPresent, &keys, "ota-agent-test")
            .expect("if-present without manifest");
        check(None, SignaturePolicy::Off, &[], "x").expect("off checks nothing");
        // A bundle changed after signing (hawkBit digest updated too) fails on the manifest digest.
        let mut tampered = data.clone();
        tampered[10] ^= 1;
        std::fs::write(&bundle, &tampered).expect("write");
        let spec2 = ArtifactSpec {
            size: tampered.len() as u64,
            sha256: Some(Sha256::digest(&tampered).into()),
            sha1: None,
        };
        let e = check_bundle(
            &bundle,
            &spec2,
            Some(&manifest),
            SignaturePolicy::Required,
            &keys,
            "ota-agent-test",
        )
        .expect_err("tampered");
        assert!(e.contains("manifest-sha256-mismatch"), "{e}");
    }
}

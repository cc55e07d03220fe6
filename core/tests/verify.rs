//! `verify`: the openssl-made manifest vector, every error path, and property tests.

use std::path::PathBuf;

use ed25519_dalek::{Signer as _, SigningKey};
use eyas_core::verify::{
    ArtifactSpec, EncodeError, HashAlgo, KeyError, MAX_COMPATIBLE_LEN, MAX_MANIFEST_LEN,
    MAX_RECORD_LEN, MAX_VERSION_LEN, Manifest, ManifestCollector, ManifestError, NewError, Policy,
    UpdateError, Verifier, VerifyError, ed25519_verify_strict, is_manifest_for,
    public_key_from_spki_der,
};
use proptest::prelude::*;

fn vector(name: &str) -> Vec<u8> {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "vectors",
        "manifest",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn hex<const N: usize>(s: &str) -> [u8; N] {
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

// From coreutils sha256sum / sha1sum of tests/vectors/manifest/bundle.bin.
const BUNDLE_SHA256: &str = "809ae44ad0b291a9d43834773e69be5fe060e576492eed25ca27d682dd0269bc";
const BUNDLE_SHA1: &str = "74c152b3b6289ccf0e4911239177a81750bacbbf";

fn vector_key() -> [u8; 32] {
    public_key_from_spki_der(&vector("pub.der")).unwrap()
}

fn spec(size: u64) -> ArtifactSpec {
    ArtifactSpec {
        size,
        sha256: Some(hex(BUNDLE_SHA256)),
        sha1: None,
    }
}

fn run(
    spec: &ArtifactSpec,
    policy: Policy,
    data: &[u8],
    chunk: usize,
    manifest: Option<Result<Manifest<'_>, ManifestError>>,
) -> Result<eyas_core::verify::Verified, VerifyError> {
    let mut v = Verifier::new(spec, policy)?;
    for c in data.chunks(chunk.max(1)) {
        v.update(c)?;
    }
    v.finish("eyas-test", manifest)
}

/// A test signing key (not the vector's: its private key was never kept).
fn test_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn sign(m: &Manifest<'_>, key: &SigningKey) -> Vec<u8> {
    let mut buf = [0u8; MAX_RECORD_LEN];
    let n = m.encode(&mut buf).unwrap();
    sign_raw(&buf[..n], key)
}

fn sign_raw(record: &[u8], key: &SigningKey) -> Vec<u8> {
    let mut out = record.to_vec();
    out.extend_from_slice(&key.sign(record).to_bytes());
    out
}

fn bundle_manifest(bundle: &[u8]) -> Manifest<'static> {
    use sha2::Digest as _;
    Manifest {
        compatible: "eyas-test",
        version: "1.0",
        size: bundle.len() as u64,
        sha256: sha2::Sha256::digest(bundle).into(),
    }
}

// ---------------------------------------------------------------- the openssl vector

#[test]
fn openssl_vector_verifies() {
    let bundle = vector("bundle.bin");
    let file = vector("bundle.bin.manifest");
    let key = vector_key();
    let m = Manifest::verify_signed(&file, &key).unwrap();
    assert_eq!(m.compatible, "eyas-test");
    assert_eq!(m.version, "2026.11.0");
    assert_eq!(m.size, 10_000);
    assert_eq!(m.sha256, hex::<32>(BUNDLE_SHA256));
    // Our encoder produces exactly the bytes the shell script produced.
    let mut buf = [0u8; MAX_RECORD_LEN];
    let n = m.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], &vector("manifest.bin")[..]);
    assert_eq!(n, m.encoded_len());
    // And the full streamed verification passes with every policy, in odd chunk sizes.
    for policy in [Policy::Off, Policy::IfPresent, Policy::Required] {
        for chunk in [1, 7, 4096, 10_000, 1 << 20] {
            let ok = run(&spec(10_000), policy, &bundle, chunk, Some(Ok(m))).unwrap();
            assert_eq!(ok.size, 10_000);
            assert_eq!(ok.manifest_checked, policy != Policy::Off);
            assert_eq!(
                ok.manifest_version.as_deref(),
                (policy != Policy::Off).then_some("2026.11.0")
            );
        }
    }
}

#[test]
fn openssl_vector_tampering_is_caught() {
    let file = vector("bundle.bin.manifest");
    let key = vector_key();
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            Manifest::verify_signed(&bad, &key),
            Err(ManifestError::BadSignature),
            "byte {i}"
        );
    }
    // Another key.
    let other = test_key().verifying_key().to_bytes();
    assert_eq!(
        Manifest::verify_signed(&file, &other),
        Err(ManifestError::BadSignature)
    );
}

#[test]
fn spki_der_is_checked() {
    let der = vector("pub.der");
    assert_eq!(public_key_from_spki_der(&der).unwrap(), der[12..]);
    assert_eq!(
        public_key_from_spki_der(&der[..43]),
        Err(KeyError::NotEd25519Spki)
    );
    let mut longer = der.clone();
    longer.push(0);
    assert_eq!(
        public_key_from_spki_der(&longer),
        Err(KeyError::NotEd25519Spki)
    );
    let mut other_alg = der.clone();
    other_alg[8] = 0x71; // Ed448 OID 1.3.101.113
    assert_eq!(
        public_key_from_spki_der(&other_alg),
        Err(KeyError::NotEd25519Spki)
    );
    assert_eq!(public_key_from_spki_der(&[]), Err(KeyError::NotEd25519Spki));
}

// ---------------------------------------------------------------- size and digest

#[test]
fn no_digest_is_rejected() {
    let s = ArtifactSpec {
        size: 1,
        sha256: None,
        sha1: None,
    };
    assert_eq!(
        Verifier::new(&s, Policy::Off).err(),
        Some(NewError::NoDigest)
    );
    assert_eq!(VerifyError::from(NewError::NoDigest), VerifyError::NoDigest);
}

#[test]
fn first_byte_past_size_is_rejected() {
    let bundle = vector("bundle.bin");
    let mut v = Verifier::new(&spec(10_000), Policy::Off).unwrap();
    v.update(&bundle[..9_990]).unwrap();
    assert_eq!(v.remaining(), 10);
    // A chunk that crosses the end: 10 bytes are taken, the 11th is rejected.
    assert_eq!(
        v.update(&[0u8; 11]),
        Err(UpdateError::TooLong {
            size: 10_000,
            accepted: 10
        })
    );
    assert_eq!(v.received(), 10_000);
    assert_eq!(v.update(&[]), Err(UpdateError::Failed));
    assert_eq!(v.finish("eyas-test", None), Err(VerifyError::TooLong));

    // Exactly at the end, then one more byte in its own chunk.
    let mut v = Verifier::new(&spec(10_000), Policy::Off).unwrap();
    v.update(&bundle).unwrap();
    v.update(&[]).unwrap();
    assert_eq!(
        v.update(&[0]),
        Err(UpdateError::TooLong {
            size: 10_000,
            accepted: 0
        })
    );
    assert_eq!(VerifyError::from(UpdateError::Failed), VerifyError::TooLong);
}

#[test]
fn short_artifact_is_rejected() {
    let bundle = vector("bundle.bin");
    assert_eq!(
        run(&spec(10_000), Policy::Off, &bundle[..9_999], 100, None),
        Err(VerifyError::TooShort {
            expected: 10_000,
            received: 9_999
        })
    );
    assert_eq!(
        run(&spec(10_000), Policy::Off, &[], 1, None),
        Err(VerifyError::TooShort {
            expected: 10_000,
            received: 0
        })
    );
}

#[test]
fn sha256_mismatch() {
    let mut bundle = vector("bundle.bin");
    bundle[5_000] ^= 0x80;
    assert_eq!(
        run(&spec(10_000), Policy::Off, &bundle, 333, None),
        Err(VerifyError::DigestMismatch(HashAlgo::Sha256))
    );
}

#[test]
fn sha1_is_used_without_sha256() {
    let bundle = vector("bundle.bin");
    let s = ArtifactSpec {
        size: 10_000,
        sha256: None,
        sha1: Some(hex(BUNDLE_SHA1)),
    };
    let ok = run(&s, Policy::Off, &bundle, 999, None).unwrap();
    // SHA-256 is still computed (for manifests and reporting).
    assert_eq!(ok.sha256, hex::<32>(BUNDLE_SHA256));
    let mut bad = bundle.clone();
    bad[0] ^= 1;
    assert_eq!(
        run(&s, Policy::Off, &bad, 999, None),
        Err(VerifyError::DigestMismatch(HashAlgo::Sha1))
    );
    // With both, SHA-256 decides and a wrong SHA-1 is ignored.
    let both = ArtifactSpec {
        sha1: Some([0; 20]),
        ..spec(10_000)
    };
    assert!(run(&both, Policy::Off, &bundle, 999, None).is_ok());
}

#[test]
fn empty_artifact() {
    use sha2::Digest as _;
    let s = ArtifactSpec {
        size: 0,
        sha256: Some(sha2::Sha256::digest(b"").into()),
        sha1: None,
    };
    assert!(run(&s, Policy::Off, &[], 1, None).is_ok());
}

// ---------------------------------------------------------------- manifest policy

#[test]
fn policy_decides_about_missing_and_bad_manifests() {
    let bundle = vector("bundle.bin");
    let s = spec(10_000);
    assert!(run(&s, Policy::Off, &bundle, 512, None).is_ok());
    assert!(run(&s, Policy::IfPresent, &bundle, 512, None).is_ok());
    assert_eq!(
        run(&s, Policy::Required, &bundle, 512, None),
        Err(VerifyError::ManifestMissing)
    );
    let bad = Some(Err(ManifestError::BadSignature));
    assert!(run(&s, Policy::Off, &bundle, 512, bad).is_ok());
    for p in [Policy::IfPresent, Policy::Required] {
        assert_eq!(
            run(&s, p, &bundle, 512, bad),
            Err(VerifyError::Manifest(ManifestError::BadSignature))
        );
    }
    assert_eq!(Policy::default(), Policy::IfPresent);
}

#[test]
fn manifest_must_match_device_and_bundle() {
    let bundle = vector("bundle.bin");
    let key = test_key();
    let pk = key.verifying_key().to_bytes();
    let good = bundle_manifest(&bundle);
    let cases = [
        (
            Manifest {
                compatible: "other-board",
                ..good
            },
            VerifyError::Incompatible,
        ),
        (
            Manifest {
                size: 10_001,
                ..good
            },
            VerifyError::ManifestSizeMismatch,
        ),
        (
            Manifest {
                sha256: [0; 32],
                ..good
            },
            VerifyError::ManifestDigestMismatch,
        ),
    ];
    for (m, want) in cases {
        let file = sign(&m, &key);
        let parsed = Manifest::verify_signed(&file, &pk);
        assert_eq!(parsed, Ok(m));
        assert_eq!(
            run(&spec(10_000), Policy::Required, &bundle, 64, Some(parsed)),
            Err(want)
        );
    }
    let file = sign(&good, &key);
    let parsed = Manifest::verify_signed(&file, &pk).unwrap();
    let v = Verifier::new(&spec(10_000), Policy::Required).unwrap();
    assert_eq!(v.precheck("eyas-test", &parsed), Ok(()));
    assert_eq!(v.precheck("x", &parsed), Err(VerifyError::Incompatible));
    let wrong_size = Manifest { size: 1, ..parsed };
    assert_eq!(
        v.precheck("eyas-test", &wrong_size),
        Err(VerifyError::ManifestSizeMismatch)
    );
    assert!(
        run(
            &spec(10_000),
            Policy::Required,
            &bundle,
            64,
            Some(Ok(parsed))
        )
        .is_ok()
    );
}

// ---------------------------------------------------------------- manifest decoding

#[test]
fn decode_errors() {
    let key = test_key();
    let pk = key.verifying_key().to_bytes();
    let m = bundle_manifest(b"abc");
    let mut rec = [0u8; MAX_RECORD_LEN];
    let n = m.encode(&mut rec).unwrap();
    let rec = &rec[..n];
    assert_eq!(Manifest::decode(rec), Ok(m));

    assert_eq!(
        Manifest::decode(&[]),
        Err(ManifestError::Truncated { needed: 1 })
    );
    let mut v2 = rec.to_vec();
    v2[0] = 2;
    assert_eq!(
        Manifest::decode(&v2),
        Err(ManifestError::UnsupportedVersion { found: 2 })
    );
    // Truncated fields and trailing bytes.
    for cut in 1..n {
        assert_eq!(
            Manifest::decode(&rec[..cut]),
            Err(ManifestError::Malformed),
            "cut {cut}"
        );
    }
    let mut trailing = rec.to_vec();
    trailing.push(0);
    assert_eq!(Manifest::decode(&trailing), Err(ManifestError::Malformed));
    // Bad UTF-8 in compatible.
    let mut bad_utf8 = rec.to_vec();
    bad_utf8[2] = 0xff;
    assert_eq!(Manifest::decode(&bad_utf8), Err(ManifestError::Malformed));
    // Non-canonical varint for the size (3 = 0x83 0x00), re-signed: still rejected.
    let mut noncanon = Vec::new();
    noncanon.extend_from_slice(&[1, 9]);
    noncanon.extend_from_slice(b"eyas-test");
    noncanon.extend_from_slice(&[3]);
    noncanon.extend_from_slice(b"1.0");
    noncanon.extend_from_slice(&[0x83, 0x00]);
    noncanon.extend_from_slice(&m.sha256);
    assert_eq!(Manifest::decode(&noncanon), Err(ManifestError::Malformed));
    let signed = sign_raw(&noncanon, &key);
    assert_eq!(
        Manifest::verify_signed(&signed, &pk),
        Err(ManifestError::Malformed)
    );
    // Field limits.
    let long = "x".repeat(MAX_COMPATIBLE_LEN + 1);
    for bad in [
        Manifest {
            compatible: "",
            ..m
        },
        Manifest {
            compatible: &long,
            ..m
        },
        Manifest {
            version: &"v".repeat(MAX_VERSION_LEN + 1),
            ..m
        },
    ] {
        let mut rec = vec![1u8];
        for s in [bad.compatible, bad.version] {
            rec.push(s.len() as u8);
            rec.extend_from_slice(s.as_bytes());
        }
        rec.push(3);
        rec.extend_from_slice(&bad.sha256);
        assert!(
            matches!(
                Manifest::decode(&rec),
                Err(ManifestError::FieldLength | ManifestError::TooLong)
            ),
            "{bad:?}"
        );
        let mut out = [0u8; 512];
        assert_eq!(bad.encode(&mut out), Err(EncodeError::FieldLength));
    }
    let empty_compat = [&[1u8, 0, 0, 3][..], &m.sha256].concat();
    assert_eq!(
        Manifest::decode(&empty_compat),
        Err(ManifestError::FieldLength)
    );
    let mut too_long = vec![1u8];
    too_long.resize(MAX_RECORD_LEN + 1, 0);
    assert_eq!(Manifest::decode(&too_long), Err(ManifestError::TooLong));
    // Empty version is allowed.
    let no_version = Manifest { version: "", ..m };
    let mut out = [0u8; MAX_RECORD_LEN];
    let n = no_version.encode(&mut out).unwrap();
    assert_eq!(Manifest::decode(&out[..n]), Ok(no_version));
}

#[test]
fn signed_file_length_and_key_errors() {
    let key = test_key();
    let pk = key.verifying_key().to_bytes();
    let file = sign(&bundle_manifest(b"x"), &key);
    assert!(matches!(
        Manifest::verify_signed(&file[..100], &pk),
        Err(ManifestError::Truncated { needed: 101 })
    ));
    let mut long = file.clone();
    long.resize(MAX_MANIFEST_LEN + 1, 0);
    assert_eq!(
        Manifest::verify_signed(&long, &pk),
        Err(ManifestError::TooLong)
    );
    // A y coordinate that is not on the curve (found by trial; dalek rejects it).
    let not_a_point = (0u8..=255)
        .map(|b| [b; 32])
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
        .unwrap();
    assert_eq!(
        Manifest::verify_signed(&file, &not_a_point),
        Err(ManifestError::BadPublicKey)
    );
}

#[test]
fn encode_needs_n_bytes() {
    let m = bundle_manifest(b"hello");
    let need = m.encoded_len();
    let mut small = vec![0u8; need - 1];
    assert_eq!(
        m.encode(&mut small),
        Err(EncodeError::BufferTooSmall { required: need })
    );
    let mut exact = vec![0u8; need];
    assert_eq!(m.encode(&mut exact), Ok(need));
}

#[test]
fn collector_streams_into_caller_buffer() {
    let file = vector("bundle.bin.manifest");
    let key = vector_key();
    let mut buf = [0u8; MAX_MANIFEST_LEN];
    let mut c = ManifestCollector::new(&mut buf);
    for chunk in file.chunks(5) {
        c.feed(chunk).unwrap();
    }
    assert_eq!(c.bytes(), &file[..]);
    assert_eq!(c.verify(&key).unwrap().version, "2026.11.0");

    let mut small = [0u8; 100];
    let mut c = ManifestCollector::new(&mut small);
    c.feed(&file[..60]).unwrap();
    assert_eq!(
        c.feed(&file[60..]),
        Err(ManifestError::BufferTooSmall { required: 119 })
    );
    assert_eq!(c.bytes().len(), 60);

    let mut big = [0u8; 1024];
    let mut c = ManifestCollector::new(&mut big);
    c.feed(&[0u8; MAX_MANIFEST_LEN]).unwrap();
    assert_eq!(c.feed(&[0]), Err(ManifestError::TooLong));
    assert_eq!(c.feed(&[]), Err(ManifestError::TooLong));
    assert_eq!(c.verify(&key), Err(ManifestError::TooLong));
}

#[test]
fn manifest_artifact_name() {
    assert!(is_manifest_for("update.raucb", "update.raucb.manifest"));
    assert!(!is_manifest_for("update.raucb", "update.raucb"));
    assert!(!is_manifest_for("update.raucb", "other.raucb.manifest"));
    assert!(!is_manifest_for(
        "update.raucb",
        "update.raucb.manifest.sig"
    ));
}

#[test]
fn error_codes_are_distinct_and_stable() {
    let all = [
        VerifyError::NoDigest,
        VerifyError::TooLong,
        VerifyError::TooShort {
            expected: 1,
            received: 0,
        },
        VerifyError::DigestMismatch(HashAlgo::Sha256),
        VerifyError::DigestMismatch(HashAlgo::Sha1),
        VerifyError::ManifestMissing,
        VerifyError::Manifest(ManifestError::BadSignature),
        VerifyError::Manifest(ManifestError::BadPublicKey),
        VerifyError::Manifest(ManifestError::UnsupportedVersion { found: 9 }),
        VerifyError::Manifest(ManifestError::Malformed),
        VerifyError::Incompatible,
        VerifyError::ManifestSizeMismatch,
        VerifyError::ManifestDigestMismatch,
    ];
    let mut codes: Vec<u16> = all.iter().map(VerifyError::code).collect();
    let mut names: Vec<&str> = all.iter().map(VerifyError::as_str).collect();
    codes.sort_unstable();
    codes.dedup();
    names.sort_unstable();
    names.dedup();
    assert_eq!(codes.len(), all.len());
    assert_eq!(names.len(), all.len());
    assert_eq!(
        VerifyError::Manifest(ManifestError::BadSignature).code(),
        11
    );
    assert_eq!(
        VerifyError::TooLong.to_string(),
        "verification failed: too-long (code 2)"
    );
    assert_eq!(
        VerifyError::from(ManifestError::Malformed),
        VerifyError::Manifest(ManifestError::Malformed)
    );
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Any chunking of the bundle gives the same verdict as feeding it whole.
    #[test]
    fn chunking_does_not_matter(cuts in proptest::collection::vec(0usize..10_000, 0..20), flip in proptest::option::of(0usize..10_000)) {
        let mut bundle = vector("bundle.bin");
        if let Some(i) = flip {
            bundle[i] ^= 0x40;
        }
        let whole = run(&spec(10_000), Policy::Off, &bundle, 10_000, None);
        let mut cuts = cuts;
        cuts.push(0);
        cuts.push(10_000);
        cuts.sort_unstable();
        let mut v = Verifier::new(&spec(10_000), Policy::Off).unwrap();
        for w in cuts.windows(2) {
            v.update(&bundle[w[0]..w[1]]).unwrap();
        }
        prop_assert_eq!(v.finish("eyas-test", None), whole.clone());
        prop_assert_eq!(whole.is_ok(), flip.is_none());
    }

    /// Arbitrary manifest bytes never panic, and anything decoded re-encodes to the same bytes.
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let pk = test_key().verifying_key().to_bytes();
        let _ = Manifest::verify_signed(&bytes, &pk);
        if let Ok(m) = Manifest::decode(&bytes) {
            let mut out = [0u8; MAX_RECORD_LEN];
            let n = m.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..n], &bytes[..]);
        }
    }

    /// encode → sign → verify_signed round-trips every valid manifest.
    #[test]
    fn roundtrip(compatible in "[a-z0-9-]{1,64}", version in "\\PC{0,16}", size in any::<u64>(), sha in any::<[u8; 32]>()) {
        prop_assume!(version.len() <= MAX_VERSION_LEN);
        let key = test_key();
        let m = Manifest { compatible: &compatible, version: &version, size, sha256: sha };
        let file = sign(&m, &key);
        prop_assert!(file.len() <= MAX_MANIFEST_LEN);
        prop_assert_eq!(Manifest::verify_signed(&file, &key.verifying_key().to_bytes()), Ok(m));
    }
}

#[test]
fn manifest_checked_after_the_bundle() {
    let bundle = vector("bundle.bin");
    let file = vector("bundle.bin.manifest");
    let key = vector_key();
    let mut ok = run(&spec(10_000), Policy::Off, &bundle, 4096, None).unwrap();
    assert!(!ok.manifest_checked);
    assert_eq!(
        ok.check_manifest(Policy::Required, "eyas-test", None),
        Err(VerifyError::ManifestMissing)
    );
    assert_eq!(
        ok.check_manifest(
            Policy::Required,
            "other",
            Some(Manifest::verify_signed(&file, &key))
        ),
        Err(VerifyError::Incompatible)
    );
    assert!(!ok.manifest_checked);
    ok.check_manifest(
        Policy::Required,
        "eyas-test",
        Some(Manifest::verify_signed(&file, &key)),
    )
    .unwrap();
    assert!(ok.manifest_checked);
    assert_eq!(ok.manifest_version.as_deref(), Some("2026.11.0"));
}

// ---------------------------------------------------------------- Ed25519 against ed25519-dalek

fn dalek_strict(msg: &[u8], sig: &[u8; 64], key: &[u8; 32]) -> Result<(), ManifestError> {
    let k =
        ed25519_dalek::VerifyingKey::from_bytes(key).map_err(|_| ManifestError::BadPublicKey)?;
    k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .map_err(|_| ManifestError::BadSignature)
}

#[test]
fn rfc8032_vectors() {
    // RFC 8032 §7.1 TEST 1 and TEST 2 (the public key is derived and the signature recomputed by
    // ed25519-dalek's signer too, so a mistyped vector fails loudly).
    let cases: [(&str, &str, &[u8], &str); 2] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            b"",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            &[0x72],
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];
    for (secret, public, msg, sig) in cases {
        let sk = SigningKey::from_bytes(&hex(secret));
        let pk: [u8; 32] = hex(public);
        let sig: [u8; 64] = hex(sig);
        assert_eq!(sk.verifying_key().to_bytes(), pk);
        assert_eq!(sk.sign(msg).to_bytes(), sig);
        assert_eq!(ed25519_verify_strict(msg, &sig, &pk), Ok(()));
        let mut bad = sig;
        bad[63] ^= 0x01;
        assert_eq!(
            ed25519_verify_strict(msg, &bad, &pk),
            Err(ManifestError::BadSignature)
        );
    }
}

#[test]
fn strict_rules_match_dalek_on_edge_cases() {
    let sk = test_key();
    let pk = sk.verifying_key().to_bytes();
    let msg = b"edge cases";
    let sig = sk.sign(msg).to_bytes();
    assert_eq!(ed25519_verify_strict(msg, &sig, &pk), Ok(()));
    // s + l: same point equation, non-canonical scalar -> rejected by both.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut s_plus_l = sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        s_plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    assert_eq!(
        dalek_strict(msg, &s_plus_l, &pk),
        Err(ManifestError::BadSignature)
    );
    assert_eq!(
        ed25519_verify_strict(msg, &s_plus_l, &pk),
        Err(ManifestError::BadSignature)
    );
    // Small-order key (the identity) and small-order R.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for (sig, key) in [
        (sig, identity),
        (
            {
                let mut x = sig;
                x[..32].copy_from_slice(&identity);
                x
            },
            pk,
        ),
    ] {
        assert_eq!(
            ed25519_verify_strict(msg, &sig, &key),
            dalek_strict(msg, &sig, &key)
        );
        assert!(ed25519_verify_strict(msg, &sig, &key).is_err());
    }
    // A key that is not a point.
    let not_a_point = (0u8..=255)
        .map(|b| [b; 32])
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
        .unwrap();
    assert_eq!(
        ed25519_verify_strict(msg, &sig, &not_a_point),
        Err(ManifestError::BadPublicKey)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// Valid signatures, and the same with one bit flipped in the message, signature or key:
    /// exactly the verdicts of ed25519-dalek's verify_strict.
    #[test]
    fn same_verdicts_as_dalek_verify_strict(
        seed in any::<[u8; 32]>(),
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        flip in proptest::option::of((0usize..3, any::<usize>(), 0u8..8)),
    ) {
        let sk = SigningKey::from_bytes(&seed);
        let mut pk = sk.verifying_key().to_bytes();
        let mut sig = sk.sign(&msg).to_bytes();
        let mut msg = msg;
        if let Some((what, pos, bit)) = flip {
            match what {
                0 if !msg.is_empty() => { let n = msg.len(); msg[pos % n] ^= 1 << bit; }
                1 => sig[pos % 64] ^= 1 << bit,
                _ => pk[pos % 32] ^= 1 << bit,
            }
        }
        let ours = ed25519_verify_strict(&msg, &sig, &pk);
        prop_assert_eq!(ours, dalek_strict(&msg, &sig, &pk));
        if flip.is_none() {
            prop_assert_eq!(ours, Ok(()));
        }
    }

    /// Random signatures and keys: the same verdicts too (mostly rejections of both kinds).
    #[test]
    fn random_inputs_same_verdicts(sig in any::<[u8; 32]>(), s in any::<[u8; 32]>(), key in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut full = [0u8; 64];
        full[..32].copy_from_slice(&sig);
        full[32..].copy_from_slice(&s);
        prop_assert_eq!(ed25519_verify_strict(&msg, &full, &key), dalek_strict(&msg, &full, &key));
    }
}

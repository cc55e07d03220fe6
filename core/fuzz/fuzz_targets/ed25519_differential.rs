//! `verify::ed25519_verify_strict` against ed25519-dalek's `verify_strict` on arbitrary
//! (key, signature, message): the verdicts must be identical. Half of the inputs are turned into a
//! valid signature first (key from a seed, then one byte of key/signature/message perturbed), so the
//! accept path and near misses are covered, not only early rejections.
#![no_main]

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use eyas_core::verify::{ManifestError, ed25519_verify_strict};
use libfuzzer_sys::fuzz_target;

fn reference(msg: &[u8], sig: &[u8; 64], key: &[u8; 32]) -> Result<(), ManifestError> {
    let k = VerifyingKey::from_bytes(key).map_err(|_| ManifestError::BadPublicKey)?;
    k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .map_err(|_| ManifestError::BadSignature)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 99 {
        return;
    }
    let mode = data[0];
    let mut key: [u8; 32] = data[1..33].try_into().expect("32");
    let mut sig: [u8; 64] = data[33..97].try_into().expect("64");
    let mut msg = data[97..].to_vec();
    if mode & 1 == 1 {
        let sk = SigningKey::from_bytes(&key);
        key = sk.verifying_key().to_bytes();
        sig = sk.sign(&msg).to_bytes();
        let at = usize::from(data[1]);
        match (mode >> 1) % 4 {
            0 => {}
            1 => sig[at % 64] ^= data[2] | 1,
            2 => key[at % 32] ^= data[2] | 1,
            _ => {
                if !msg.is_empty() {
                    let n = msg.len();
                    msg[at % n] ^= data[2] | 1;
                }
            }
        }
    }
    let ours = ed25519_verify_strict(&msg, &sig, &key);
    assert_eq!(ours, reference(&msg, &sig, &key));
});

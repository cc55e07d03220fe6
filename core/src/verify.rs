//! Streaming verification of a downloaded artifact, before anything is installed.
//!
//! Three checks, all fed chunk by chunk as the bytes arrive (any chunk size, caller-owned buffers,
//! nothing allocated):
//!
//! 1. **Exact size**: the first byte past the announced `size` is rejected ([`UpdateError::TooLong`]);
//!    too few bytes fail at [`Verifier::finish`].
//! 2. **Digest** from the hawkBit artifact: SHA-256, or SHA-1 when the server sent no SHA-256.
//!    (sha2 keeps its runtime-detected SHA-NI / ARMv8 hardware path; no feature disables it.)
//! 3. **Signed manifest** (optional, per [`Policy`]): a second artifact `<bundle>.manifest` in the same
//!    chunk holding a postcard-encoded [`Manifest`] (format version, compatible, version, size,
//!    SHA-256) followed by an Ed25519 signature over those bytes. The byte layout and how to sign
//!    one with openssl are in `core/MANIFEST-FORMAT.md`.
//!
//! ```
//! use eyas_core::verify::{ArtifactSpec, Policy, Verifier};
//! let bundle = b"bundle bytes";
//! # use sha2::Digest as _;
//! let sha256: [u8; 32] = sha2::Sha256::digest(bundle).into();
//! let spec = ArtifactSpec { size: bundle.len() as u64, sha256: Some(sha256), sha1: None };
//! let mut v = Verifier::new(&spec, Policy::Off).unwrap();
//! for chunk in bundle.chunks(5) {
//!     v.update(chunk).unwrap();
//! }
//! let ok = v.finish("my-board", None).unwrap();
//! assert_eq!(ok.sha256, sha256);
//! ```
//!
//! Every failure maps to a [`VerifyError`] with a stable [`VerifyError::code`] for the DDI feedback.

use crate::sha1_small::Sha1;
use crate::varint::Reader;
use heapless::String;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The manifest format version this crate writes and reads.
pub const MANIFEST_FORMAT_VERSION: u8 = 1;
/// Maximum length of [`Manifest::compatible`] in bytes.
pub const MAX_COMPATIBLE_LEN: usize = 64;
/// Maximum length of [`Manifest::version`] in bytes.
pub const MAX_VERSION_LEN: usize = 64;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Maximum length of an encoded manifest record (format byte, two length-prefixed strings, a
/// 10-byte varint, 32 digest bytes).
pub const MAX_RECORD_LEN: usize = 1 + 1 + MAX_COMPATIBLE_LEN + 1 + MAX_VERSION_LEN + 10 + 32;
/// Maximum length of a `<bundle>.manifest` artifact: record + signature.
pub const MAX_MANIFEST_LEN: usize = MAX_RECORD_LEN + SIGNATURE_LEN;
/// Suffix of the manifest artifact's filename.
pub const MANIFEST_SUFFIX: &str = ".manifest";

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410); the 32 key bytes follow.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Whether a signed manifest is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Policy {
    /// Ignore manifests; size and hawkBit digest only.
    Off,
    /// Check the manifest if the chunk has one; accept bundles without.
    #[default]
    IfPresent,
    /// Every bundle needs a valid manifest.
    Required,
}

/// Which digest a mismatch refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HashAlgo {
    /// SHA-256.
    Sha256,
    /// SHA-1.
    Sha1,
}

/// What the server announced for the artifact (hawkBit `size` and `hashes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactSpec {
    /// Exact size in bytes.
    pub size: u64,
    /// `hashes.sha256`, if the server sent it.
    pub sha256: Option<[u8; 32]>,
    /// `hashes.sha1`, used only when there is no SHA-256.
    pub sha1: Option<[u8; 20]>,
}

/// A decoded manifest record. The strings borrow from the manifest bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest<'a> {
    /// Must equal the device's compatible string (RAUC `compatible=`).
    pub compatible: &'a str,
    /// The bundle's version (free text, e.g. `2026.11.1`).
    pub version: &'a str,
    /// Exact size of the bundle in bytes.
    pub size: u64,
    /// SHA-256 of the bundle.
    pub sha256: [u8; 32],
}

/// The encoded record, field for field (the format version byte comes first).
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    format_version: u8,
    #[serde(borrow)]
    compatible: &'a str,
    #[serde(borrow)]
    version: &'a str,
    size: u64,
    sha256: [u8; 32],
}

/// Why a manifest could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ManifestError {
    /// Shorter than a record plus a signature: needs at least `needed` bytes.
    Truncated {
        /// Minimum length.
        needed: usize,
    },
    /// Longer than [`MAX_MANIFEST_LEN`].
    TooLong,
    /// The caller's buffer is too small: it needs `required` bytes.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// The public key is not a valid Ed25519 point.
    BadPublicKey,
    /// The signature does not verify with the public key (strict RFC 8032 verification).
    BadSignature,
    /// The format version byte is not [`MANIFEST_FORMAT_VERSION`].
    UnsupportedVersion {
        /// The version found.
        found: u8,
    },
    /// The record is not a valid postcard encoding (bad varint, bad UTF-8, short field, trailing
    /// bytes, or a non-canonical encoding).
    Malformed,
    /// `compatible` is empty or longer than [`MAX_COMPATIBLE_LEN`], or `version` is longer than
    /// [`MAX_VERSION_LEN`].
    FieldLength,
}

/// Why [`Manifest::encode`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small: it needs `required` bytes.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// A field violates the limits ([`ManifestError::FieldLength`]).
    FieldLength,
}

/// Why an SPKI public key could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum KeyError {
    /// Not a 44-byte DER Ed25519 `SubjectPublicKeyInfo`.
    NotEd25519Spki,
}

/// Why the server's artifact description cannot be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NewError {
    /// Neither SHA-256 nor SHA-1 was given.
    NoDigest,
}

/// Why a chunk was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum UpdateError {
    /// More bytes than the announced size arrived; `accepted` bytes of this chunk were the last
    /// ones within `size`.
    TooLong {
        /// The announced size.
        size: u64,
        /// How many bytes of the rejected chunk were hashed.
        accepted: usize,
    },
    /// An earlier chunk was already rejected.
    Failed,
}

/// Why a verification failed. Stop before install and report [`VerifyError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum VerifyError {
    /// The server sent no usable digest.
    NoDigest,
    /// More bytes arrived than announced.
    TooLong,
    /// Fewer bytes arrived than announced.
    TooShort {
        /// Announced size.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The computed digest differs from the server's.
    DigestMismatch(HashAlgo),
    /// [`Policy::Required`] and the chunk has no manifest.
    ManifestMissing,
    /// The manifest is unusable.
    Manifest(ManifestError),
    /// The manifest is for another device class.
    Incompatible,
    /// The manifest's size differs from the bundle's.
    ManifestSizeMismatch,
    /// The manifest's SHA-256 differs from the bundle's.
    ManifestDigestMismatch,
}

impl VerifyError {
    /// A stable short code for status reports (`EYAS-V<nn>`-style numbering is `code()`).
    #[must_use]
    pub const fn code(&self) -> u16 {
        match self {
            Self::NoDigest => 1,
            Self::TooLong => 2,
            Self::TooShort { .. } => 3,
            Self::DigestMismatch(HashAlgo::Sha256) => 4,
            Self::DigestMismatch(HashAlgo::Sha1) => 5,
            Self::ManifestMissing => 10,
            Self::Manifest(ManifestError::BadSignature) => 11,
            Self::Manifest(ManifestError::BadPublicKey) => 12,
            Self::Manifest(ManifestError::UnsupportedVersion { .. }) => 13,
            Self::Manifest(_) => 14,
            Self::Incompatible => 15,
            Self::ManifestSizeMismatch => 16,
            Self::ManifestDigestMismatch => 17,
        }
    }

    /// A stable machine-readable name, e.g. `manifest-bad-signature`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::NoDigest => "no-digest",
            Self::TooLong => "too-long",
            Self::TooShort { .. } => "too-short",
            Self::DigestMismatch(HashAlgo::Sha256) => "sha256-mismatch",
            Self::DigestMismatch(HashAlgo::Sha1) => "sha1-mismatch",
            Self::ManifestMissing => "manifest-missing",
            Self::Manifest(ManifestError::BadSignature) => "manifest-bad-signature",
            Self::Manifest(ManifestError::BadPublicKey) => "manifest-bad-key",
            Self::Manifest(ManifestError::UnsupportedVersion { .. }) => {
                "manifest-unsupported-version"
            }
            Self::Manifest(_) => "manifest-malformed",
            Self::Incompatible => "incompatible",
            Self::ManifestSizeMismatch => "manifest-size-mismatch",
            Self::ManifestDigestMismatch => "manifest-sha256-mismatch",
        }
    }
}

impl core::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "verification failed: {} (code {})",
            self.as_str(),
            self.code()
        )
    }
}

impl From<ManifestError> for VerifyError {
    fn from(e: ManifestError) -> Self {
        Self::Manifest(e)
    }
}

impl From<NewError> for VerifyError {
    fn from(e: NewError) -> Self {
        match e {
            NewError::NoDigest => Self::NoDigest,
        }
    }
}

impl From<UpdateError> for VerifyError {
    fn from(_: UpdateError) -> Self {
        Self::TooLong
    }
}

const fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

impl Manifest<'_> {
    fn check_fields(&self) -> bool {
        !self.compatible.is_empty()
            && self.compatible.len() <= MAX_COMPATIBLE_LEN
            && self.version.len() <= MAX_VERSION_LEN
    }

    /// Length of the encoded record.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        1 + varint_len(self.compatible.len() as u64)
            + self.compatible.len()
            + varint_len(self.version.len() as u64)
            + self.version.len()
            + varint_len(self.size)
            + 32
    }

    /// Encodes the record (the bytes that get signed) into `out`; returns the length written.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] (nothing useful is written), [`EncodeError::FieldLength`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if !self.check_fields() {
            return Err(EncodeError::FieldLength);
        }
        let required = self.encoded_len();
        if out.len() < required {
            return Err(EncodeError::BufferTooSmall { required });
        }
        let wire = Wire {
            format_version: MANIFEST_FORMAT_VERSION,
            compatible: self.compatible,
            version: self.version,
            size: self.size,
            sha256: self.sha256,
        };
        postcard::to_slice(&wire, out)
            .map(|s| s.len())
            .map_err(|_| EncodeError::BufferTooSmall { required })
    }

    /// Decodes a record (without signature). Strict: exactly one canonical encoding is accepted,
    /// with no trailing bytes.
    ///
    /// # Errors
    /// [`ManifestError::UnsupportedVersion`], [`ManifestError::Malformed`],
    /// [`ManifestError::FieldLength`], [`ManifestError::TooLong`], [`ManifestError::Truncated`].
    #[inline(never)]
    pub fn decode(record: &[u8]) -> Result<Manifest<'_>, ManifestError> {
        let Some(&version) = record.first() else {
            return Err(ManifestError::Truncated { needed: 1 });
        };
        if version != MANIFEST_FORMAT_VERSION {
            return Err(ManifestError::UnsupportedVersion { found: version });
        }
        if record.len() > MAX_RECORD_LEN {
            return Err(ManifestError::TooLong);
        }
        // The postcard layout of `Wire`, read by hand (no serde deserializer in an MCU image;
        // a test holds this to `postcard::take_from_bytes::<Wire>`).
        let mut r = Reader::new(record);
        let m = Self::read_wire(&mut r).ok_or(ManifestError::Malformed)?;
        if !r.rest().is_empty() {
            return Err(ManifestError::Malformed);
        }
        if !m.check_fields() {
            return Err(ManifestError::FieldLength);
        }
        // Exactly one encoding: a varint that is not in its shortest form (which postcard
        // accepts) is rejected; re-encoding the record gives the same bytes.
        if !r.canonical {
            return Err(ManifestError::Malformed);
        }
        Ok(m)
    }

    fn read_wire<'r>(r: &mut Reader<'r>) -> Option<Manifest<'r>> {
        let _format_version = r.byte()?;
        let compatible = r.str()?;
        let version = r.str()?;
        let size = r.u64()?;
        let sha256 = r.bytes(32)?.try_into().ok()?;
        Some(Manifest {
            compatible,
            version,
            size,
            sha256,
        })
    }

    /// Checks a `<bundle>.manifest` artifact (`record || signature`, signature = the last 64 bytes)
    /// against `public_key` and decodes the record.
    ///
    /// # Errors
    /// Any [`ManifestError`]; the signature is checked before the record is decoded.
    pub fn verify_signed<'m>(
        manifest_file: &'m [u8],
        public_key: &[u8; PUBLIC_KEY_LEN],
    ) -> Result<Manifest<'m>, ManifestError> {
        const MIN: usize = 1 + 1 + 1 + 1 + 1 + 32 + SIGNATURE_LEN;
        if manifest_file.len() < MIN {
            return Err(ManifestError::Truncated { needed: MIN });
        }
        if manifest_file.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::TooLong);
        }
        let (record, sig) = manifest_file.split_at(manifest_file.len() - SIGNATURE_LEN);
        check_signature(record, sig, public_key)?;
        Self::decode(record)
    }
}

/// Verifies a pure Ed25519 signature over `message` with the strict rules described at
/// [`Manifest::verify_signed`]: the same verdicts as `ed25519_dalek`'s `verify_strict`, with a
/// small stack (about 3 KB on Cortex-M4 instead of about 8 KB).
///
/// # Errors
/// [`ManifestError::BadPublicKey`] if `public_key` is not a curve point,
/// [`ManifestError::BadSignature`] otherwise.
pub fn ed25519_verify_strict(
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
    public_key: &[u8; PUBLIC_KEY_LEN],
) -> Result<(), ManifestError> {
    check_signature(message, signature, public_key)
}

/// Strict Ed25519 verification (RFC 8032 §5.1.7 plus ed25519-dalek's `verify_strict` rules), built
/// so that its peak stack stays small on an MCU.
///
/// Accepts exactly what `ed25519_dalek::VerifyingKey::verify_strict` accepts (a property test
/// checks the two against each other): `A` and `R` must decompress, neither may have small order,
/// `s` must be canonical (< ℓ), and `[s]B − [k]A` with `k = SHA-512(R ‖ A ‖ M) mod ℓ` must
/// compress to exactly the bytes of `R`.
///
/// `verify_strict` computes `[s]B − [k]A` in one variable-time double-base multiplication whose
/// frame (two 8-point tables, two 256-entry NAFs) needs about 8.2 KB of stack on Cortex-M4. Here
/// the two products are computed one after the other by double-and-add (see `ed`), each in its
/// own out-of-line frame: slower, a fraction of the stack and of the flash. All inputs are
/// public, so constant time is not needed.
#[inline(never)]
fn check_signature(
    record: &[u8],
    sig: &[u8],
    public_key: &[u8; PUBLIC_KEY_LEN],
) -> Result<(), ManifestError> {
    let (Some(r_bytes), Some(s_bytes)) = (sig.get(..32), sig.get(32..SIGNATURE_LEN)) else {
        return Err(ManifestError::Malformed);
    };
    let r_bytes: [u8; 32] = r_bytes.try_into().map_err(|_| ManifestError::Malformed)?;
    let s_bytes: [u8; 32] = s_bytes.try_into().map_err(|_| ManifestError::Malformed)?;
    let a = ed::decompress(public_key).ok_or(ManifestError::BadPublicKey)?;
    let s = ed::canonical_scalar(s_bytes).ok_or(ManifestError::BadSignature)?;
    let r = ed::decompress(&r_bytes).ok_or(ManifestError::BadSignature)?;
    if ed::is_small_order(&r) || ed::is_small_order(&a) {
        return Err(ManifestError::BadSignature);
    }
    let k = ed::challenge(&r_bytes, public_key, record);
    let sb = ed::mul_base(&s);
    let ka = ed::mul(&a, &k);
    if ed::compress_difference(&sb, &ka) == r_bytes {
        Ok(())
    } else {
        Err(ManifestError::BadSignature)
    }
}

/// The curve steps of [`check_signature`], each out of line so that only one large frame is live.
///
/// Scalars stay plain little-endian bytes: the two products are computed by double-and-add over
/// their bits with the curve's (complete) point addition, and `k` is reduced mod ℓ bit by bit.
/// That keeps curve25519-dalek's `Scalar` arithmetic (Montgomery multiplication, radix-16
/// recoding, lookup tables: about 3.5 KB of Cortex-M flash) out of the image; it is slower, but
/// a manifest is checked once per update and all inputs are public (no constant time needed).
mod ed {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::traits::Identity as _;
    use sha2::{Digest as _, Sha512};

    /// ℓ − 1 (the group order minus one), little-endian.
    const L_MINUS_1: [u8; 32] = [
        0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[inline(never)]
    pub(super) fn decompress(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
        CompressedEdwardsY(*bytes).decompress()
    }

    /// `a > ℓ − 1`, i.e. `a ≥ ℓ` (little-endian).
    fn at_least_l(a: &[u8; 32]) -> bool {
        // Compare from the most significant byte down.
        for (x, l) in a.iter().rev().zip(L_MINUS_1.iter().rev()) {
            if x != l {
                return x > l;
            }
        }
        false
    }

    /// `bytes` if it is a canonical scalar (< ℓ), as `Scalar::from_canonical_bytes`.
    #[inline(never)]
    pub(super) fn canonical_scalar(bytes: [u8; 32]) -> Option<[u8; 32]> {
        (!at_least_l(&bytes)).then_some(bytes)
    }

    /// `wide mod ℓ` for a 512-bit little-endian number, one bit at a time (most significant
    /// first): `r ← 2r + bit`, minus ℓ when that reaches ℓ. `r < ℓ < 2²⁵³` before each step, so
    /// `2r + 1` fits 32 bytes.
    fn reduce_wide(wide: &[u8; 64]) -> [u8; 32] {
        let mut r = [0u8; 32];
        for byte in wide.iter().rev() {
            for bit in (0..8).rev() {
                let mut carry = (byte >> bit) & 1;
                for x in &mut r {
                    let next = *x >> 7;
                    *x = (*x << 1) | carry;
                    carry = next;
                }
                if at_least_l(&r) {
                    // r − ℓ = r − (ℓ − 1) − 1
                    let mut borrow = 1u16;
                    for (x, l) in r.iter_mut().zip(L_MINUS_1) {
                        let d = u16::from(*x)
                            .wrapping_sub(u16::from(l))
                            .wrapping_sub(borrow);
                        *x = d as u8;
                        borrow = (d >> 15) & 1;
                    }
                }
            }
        }
        r
    }

    /// `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
    #[inline(never)]
    pub(super) fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> [u8; 32] {
        let mut h = Sha512::new();
        h.update(r);
        h.update(a);
        h.update(message);
        let wide: [u8; 64] = h.finalize().into();
        reduce_wide(&wide)
    }

    /// `[scalar]P` for a little-endian scalar, by double-and-add (variable time).
    #[inline(never)]
    pub(super) fn mul(p: &EdwardsPoint, scalar: &[u8; 32]) -> EdwardsPoint {
        let mut acc = EdwardsPoint::identity();
        for byte in scalar.iter().rev() {
            for bit in (0..8).rev() {
                acc = acc + acc;
                if (byte >> bit) & 1 == 1 {
                    acc += p;
                }
            }
        }
        acc
    }

    /// `[8]P` is the identity (`EdwardsPoint::is_small_order`), through [`mul`] and compression
    /// (injective) instead of another doubling and comparison routine.
    #[inline(never)]
    pub(super) fn is_small_order(p: &EdwardsPoint) -> bool {
        let mut eight = [0u8; 32];
        eight[0] = 8;
        let mut identity = [0u8; 32];
        identity[0] = 1;
        mul(p, &eight).compress().to_bytes() == identity
    }

    /// `[s]B` for the Ed25519 base point `B`.
    pub(super) fn mul_base(s: &[u8; 32]) -> EdwardsPoint {
        mul(&ED25519_BASEPOINT_POINT, s)
    }

    #[inline(never)]
    pub(super) fn compress_difference(a: &EdwardsPoint, b: &EdwardsPoint) -> [u8; 32] {
        (a - b).compress().to_bytes()
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::scalar::Scalar;
        use proptest::prelude::*;

        #[test]
        fn l_minus_1_is_minus_one() {
            assert_eq!((-Scalar::ONE).to_bytes(), L_MINUS_1);
        }

        fn reference(bytes: [u8; 32]) -> Option<[u8; 32]> {
            Option::<Scalar>::from(Scalar::from_canonical_bytes(bytes)).map(|s| s.to_bytes())
        }

        #[test]
        fn canonical_edges() {
            let mut l = L_MINUS_1;
            l[0] += 1; // ℓ
            let mut l1 = l;
            l1[0] += 1; // ℓ + 1
            let mut hi = [0u8; 32];
            hi[31] = 0x80;
            let mut top = [0xff; 32];
            top[31] = 0x0f; // < ℓ only in the top byte
            for b in [[0u8; 32], [0xff; 32], L_MINUS_1, l, l1, hi, top] {
                assert_eq!(canonical_scalar(b), reference(b), "{b:02x?}");
            }
        }

        #[test]
        fn reduce_edges() {
            let mut cases = [[0u8; 64], [0xff; 64], [0u8; 64], [0u8; 64]];
            cases[2][..32].copy_from_slice(&L_MINUS_1);
            cases[3][..32].copy_from_slice(&L_MINUS_1);
            cases[3][0] += 1; // ℓ
            for w in cases {
                assert_eq!(
                    reduce_wide(&w),
                    Scalar::from_bytes_mod_order_wide(&w).to_bytes()
                );
            }
        }

        proptest! {
            #[test]
            fn canonical_matches_dalek(mut b in any::<[u8; 32]>(), top in 0u8..0x20) {
                b[31] = top; // around ℓ's top byte (0x10) so both outcomes occur
                prop_assert_eq!(canonical_scalar(b), reference(b));
            }

            #[test]
            fn reduce_matches_dalek(lo in any::<[u8; 32]>(), hi in any::<[u8; 32]>()) {
                let mut w = [0u8; 64];
                w[..32].copy_from_slice(&lo);
                w[32..].copy_from_slice(&hi);
                prop_assert_eq!(reduce_wide(&w), Scalar::from_bytes_mod_order_wide(&w).to_bytes());
            }

            #[test]
            fn small_order_matches_dalek(seed in any::<[u8; 32]>(), t in 0usize..8, prime in any::<bool>()) {
                let p = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(seed));
                for q in [EIGHT_TORSION[t], if prime { p } else { p + EIGHT_TORSION[t] }] {
                    prop_assert_eq!(is_small_order(&q), q.is_small_order());
                }
            }

            #[test]
            fn mul_matches_dalek(k in any::<[u8; 32]>(), seed in any::<[u8; 32]>(), t in 0usize..8) {
                let p = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(seed));
                let kr = Scalar::from_bytes_mod_order(k);
                // prime order: any k, reduced or not
                prop_assert_eq!(mul(&p, &k), p * kr);
                // with a torsion component: the canonical k that check_signature uses
                let q = p + EIGHT_TORSION[t];
                prop_assert_eq!(mul(&q, &kr.to_bytes()), q * kr);
            }
        }
    }
}

/// Extracts the raw 32-byte key from a DER Ed25519 `SubjectPublicKeyInfo` (what
/// `openssl pkey -pubout -outform DER` writes).
///
/// # Errors
/// [`KeyError::NotEd25519Spki`].
pub fn public_key_from_spki_der(der: &[u8]) -> Result<[u8; PUBLIC_KEY_LEN], KeyError> {
    match der.split_at_checked(SPKI_ED25519_PREFIX.len()) {
        Some((prefix, key)) if prefix == SPKI_ED25519_PREFIX => {
            key.try_into().map_err(|_| KeyError::NotEd25519Spki)
        }
        _ => Err(KeyError::NotEd25519Spki),
    }
}

/// `true` if `candidate` is the manifest artifact of `bundle` (`<bundle>.manifest`).
#[must_use]
pub fn is_manifest_for(bundle: &str, candidate: &str) -> bool {
    candidate
        .strip_suffix(MANIFEST_SUFFIX)
        .is_some_and(|b| b == bundle)
}

/// Collects a manifest artifact into a caller-owned buffer as its chunks arrive.
#[derive(Debug)]
pub struct ManifestCollector<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl<'b> ManifestCollector<'b> {
    /// Collects into `buf` (at most [`MAX_MANIFEST_LEN`] bytes are ever needed).
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            overflow: false,
        }
    }

    /// Appends a chunk.
    ///
    /// # Errors
    /// [`ManifestError::TooLong`] past [`MAX_MANIFEST_LEN`]; [`ManifestError::BufferTooSmall`] if the
    /// caller's buffer cannot hold the bytes so far. Either error is sticky.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ManifestError> {
        let total = self.len.saturating_add(chunk.len());
        if self.overflow || total > MAX_MANIFEST_LEN {
            self.overflow = true;
            return Err(ManifestError::TooLong);
        }
        let Some(dst) = self.buf.get_mut(self.len..total) else {
            return Err(ManifestError::BufferTooSmall { required: total });
        };
        dst.copy_from_slice(chunk);
        self.len = total;
        Ok(())
    }

    /// Bytes collected so far.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Verifies the collected manifest ([`Manifest::verify_signed`]).
    ///
    /// # Errors
    /// As [`Manifest::verify_signed`]; [`ManifestError::TooLong`] after an overflow.
    pub fn verify(&self, public_key: &[u8; PUBLIC_KEY_LEN]) -> Result<Manifest<'_>, ManifestError> {
        if self.overflow {
            return Err(ManifestError::TooLong);
        }
        Manifest::verify_signed(self.bytes(), public_key)
    }
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Bytes received (= the announced size).
    pub size: u64,
    /// SHA-256 of the artifact (computed whenever it was needed: server digest or manifest).
    pub sha256: [u8; 32],
    /// `true` if a signed manifest was checked.
    pub manifest_checked: bool,
    /// The manifest's version, if one was checked.
    pub manifest_version: Option<String<MAX_VERSION_LEN>>,
}

/// Streams an artifact through the size and digest checks; see the module docs.
#[derive(Clone)]
pub struct Verifier {
    spec: ArtifactSpec,
    policy: Policy,
    received: u64,
    failed: bool,
    sha256: Sha256,
    sha1: Option<Sha1>,
}

impl core::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Verifier")
            .field("spec", &self.spec)
            .field("policy", &self.policy)
            .field("received", &self.received)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts verifying an artifact described by `spec`.
    ///
    /// # Errors
    /// [`NewError::NoDigest`] if the server gave neither SHA-256 nor SHA-1.
    pub fn new(spec: &ArtifactSpec, policy: Policy) -> Result<Self, NewError> {
        let sha1 = match (spec.sha256, spec.sha1) {
            (Some(_), _) => None,
            (None, Some(_)) => Some(Sha1::new()),
            (None, None) => return Err(NewError::NoDigest),
        };
        Ok(Self {
            spec: *spec,
            policy,
            received: 0,
            failed: false,
            sha256: Sha256::new(),
            sha1,
        })
    }

    /// Bytes accepted so far.
    #[must_use]
    pub const fn received(&self) -> u64 {
        self.received
    }

    /// Bytes still expected.
    #[must_use]
    pub const fn remaining(&self) -> u64 {
        self.spec.size.saturating_sub(self.received)
    }

    /// The policy this verifier applies at [`Verifier::finish`].
    #[must_use]
    pub const fn policy(&self) -> Policy {
        self.policy
    }

    /// Early manifest check, e.g. when the manifest arrives before the bundle: compatible and size.
    /// [`Verifier::finish`] repeats these checks and adds the digest.
    ///
    /// # Errors
    /// [`VerifyError::Incompatible`], [`VerifyError::ManifestSizeMismatch`].
    pub fn precheck(&self, compatible: &str, manifest: &Manifest<'_>) -> Result<(), VerifyError> {
        if manifest.compatible != compatible {
            return Err(VerifyError::Incompatible);
        }
        if manifest.size != self.spec.size {
            return Err(VerifyError::ManifestSizeMismatch);
        }
        Ok(())
    }

    /// Feeds the next chunk (any length, including 0).
    ///
    /// # Errors
    /// [`UpdateError::TooLong`] if the chunk goes past the announced size (the verifier is then
    /// failed); [`UpdateError::Failed`] after an earlier error.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), UpdateError> {
        if self.failed {
            return Err(UpdateError::Failed);
        }
        let room = self.remaining();
        let fits = usize::try_from(room).map_or(chunk.len(), |r| r.min(chunk.len()));
        let (ok, over) = chunk.split_at(fits);
        self.sha256.update(ok);
        if let Some(h) = self.sha1.as_mut() {
            h.update(ok);
        }
        self.received += ok.len() as u64;
        if over.is_empty() {
            Ok(())
        } else {
            self.failed = true;
            Err(UpdateError::TooLong {
                size: self.spec.size,
                accepted: fits,
            })
        }
    }

    /// Finishes: checks the size, the server's digest and, per the policy, the manifest.
    ///
    /// `manifest` is `None` if the chunk has no `<bundle>.manifest` artifact, otherwise the result of
    /// [`Manifest::verify_signed`] / [`ManifestCollector::verify`]. With [`Policy::Off`] it is
    /// ignored. `compatible` is the device's compatible string.
    ///
    /// # Errors
    /// The first failing check as a [`VerifyError`].
    pub fn finish(
        self,
        compatible: &str,
        manifest: Option<Result<Manifest<'_>, ManifestError>>,
    ) -> Result<Verified, VerifyError> {
        if self.failed {
            return Err(VerifyError::TooLong);
        }
        if self.received != self.spec.size {
            return Err(VerifyError::TooShort {
                expected: self.spec.size,
                received: self.received,
            });
        }
        let sha256: [u8; 32] = self.sha256.finalize().into();
        match (self.spec.sha256, self.spec.sha1, self.sha1) {
            (Some(want), _, _) if want != sha256 => {
                return Err(VerifyError::DigestMismatch(HashAlgo::Sha256));
            }
            (None, Some(want), Some(h)) => {
                let got: [u8; 20] = h.finalize();
                if got != want {
                    return Err(VerifyError::DigestMismatch(HashAlgo::Sha1));
                }
            }
            _ => {}
        }
        let mut v = Verified {
            size: self.received,
            sha256,
            manifest_checked: false,
            manifest_version: None,
        };
        v.check_manifest(self.policy, compatible, manifest)?;
        Ok(v)
    }
}

impl Verified {
    /// Applies the manifest policy to an artifact whose size and digest already verified (what
    /// [`Verifier::finish`] does last). Use it directly when the manifest artifact arrives after
    /// the bundle was verified: finish the bundle with [`Policy::Off`], keep the [`Verified`], and
    /// check the manifest once it is downloaded — still before installing.
    ///
    /// # Errors
    /// [`VerifyError::ManifestMissing`], [`VerifyError::Manifest`], [`VerifyError::Incompatible`],
    /// [`VerifyError::ManifestSizeMismatch`], [`VerifyError::ManifestDigestMismatch`].
    pub fn check_manifest(
        &mut self,
        policy: Policy,
        compatible: &str,
        manifest: Option<Result<Manifest<'_>, ManifestError>>,
    ) -> Result<(), VerifyError> {
        let manifest = match (policy, manifest) {
            (Policy::Off, _) | (Policy::IfPresent, None) => return Ok(()),
            (Policy::Required, None) => return Err(VerifyError::ManifestMissing),
            (_, Some(m)) => m?,
        };
        if manifest.compatible != compatible {
            return Err(VerifyError::Incompatible);
        }
        if manifest.size != self.size {
            return Err(VerifyError::ManifestSizeMismatch);
        }
        if manifest.sha256 != self.sha256 {
            return Err(VerifyError::ManifestDigestMismatch);
        }
        self.manifest_checked = true;
        // Fits: decode checked the length.
        self.manifest_version = String::try_from(manifest.version).ok();
        Ok(())
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;
    use proptest::prelude::*;

    /// The decoder this replaced: postcard, then re-encoding must give the same bytes.
    fn reference(record: &[u8]) -> Result<Manifest<'_>, ManifestError> {
        let Some(&version) = record.first() else {
            return Err(ManifestError::Truncated { needed: 1 });
        };
        if version != MANIFEST_FORMAT_VERSION {
            return Err(ManifestError::UnsupportedVersion { found: version });
        }
        if record.len() > MAX_RECORD_LEN {
            return Err(ManifestError::TooLong);
        }
        let (wire, rest): (Wire<'_>, _) =
            postcard::take_from_bytes(record).map_err(|_| ManifestError::Malformed)?;
        if !rest.is_empty() {
            return Err(ManifestError::Malformed);
        }
        let m = Manifest {
            compatible: wire.compatible,
            version: wire.version,
            size: wire.size,
            sha256: wire.sha256,
        };
        if !m.check_fields() {
            return Err(ManifestError::FieldLength);
        }
        let mut buf = [0u8; MAX_RECORD_LEN];
        match m.encode(&mut buf) {
            Ok(n) if buf.get(..n) == Some(record) => Ok(m),
            _ => Err(ManifestError::Malformed),
        }
    }

    proptest! {
        #[test]
        fn decode_is_the_postcard_decoder(
            compatible in "[a-z-]{0,40}",
            version in "[0-9.ä]{0,40}",
            size in any::<u64>(),
            sha256 in any::<[u8; 32]>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in any::<usize>(),
            extra in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let m = Manifest { compatible: &compatible, version: &version, size, sha256 };
            let mut buf = [0u8; MAX_RECORD_LEN + 8];
            let n = m.encode(&mut buf).unwrap_or(0);
            let mut v = buf[..n].to_vec();
            if !v.is_empty() {
                for (pos, byte) in edits {
                    let i = 1 + pos % v.len().max(2).saturating_sub(1);
                    if i < v.len() {
                        v[i] = byte;
                    }
                }
                v.truncate(cut % (v.len() + 1) + v.len() / 2);
            }
            v.extend_from_slice(&extra);
            prop_assert_eq!(Manifest::decode(&v), reference(&v));
        }

        #[test]
        fn noise_decodes_like_postcard(mut v in proptest::collection::vec(any::<u8>(), 0..90)) {
            if let Some(b) = v.first_mut() {
                *b = MANIFEST_FORMAT_VERSION;
            }
            prop_assert_eq!(Manifest::decode(&v), reference(&v));
        }
    }

    #[test]
    fn non_canonical_varints_are_rejected_like_before() {
        let m = Manifest {
            compatible: "c",
            version: "v",
            size: 5,
            sha256: [7; 32],
        };
        let mut buf = [0u8; MAX_RECORD_LEN];
        let n = m.encode(&mut buf).unwrap();
        let ok = &buf[..n];
        assert_eq!(Manifest::decode(ok), Ok(m));
        // size 5 as [0x85, 0x00]
        let mut v = ok[..5].to_vec();
        v.extend_from_slice(&[0x85, 0x00]);
        v.extend_from_slice(&[7; 32]);
        assert_eq!(Manifest::decode(&v), Err(ManifestError::Malformed));
        assert_eq!(Manifest::decode(&v), reference(&v));
    }
}

//! FNV-1a (64-bit): a tiny, fast, non-cryptographic hash, one implementation for the whole
//! project. The client remembers hrefs by it instead of storing them; the shell derives its
//! jitter seed from the device name with it. Never use it where someone could choose input to
//! collide on purpose.

/// The FNV-1a 64 offset basis (the hash of no bytes).
pub(crate) const FNV1A64_EMPTY: u64 = 0xcbf2_9ce4_8422_2325;
const FNV1A64_PRIME: u64 = 0x0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes`.
///
/// ```
/// assert_eq!(eyas_core::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(eyas_core::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_extend(FNV1A64_EMPTY, bytes)
}

/// Continue the hash `h` (of earlier bytes) with `bytes`: hashing in pieces equals hashing the
/// whole.
pub(crate) fn fnv1a64_extend(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV1A64_PRIME))
}

#[cfg(test)]
mod tests {
    use super::{FNV1A64_EMPTY, fnv1a64, fnv1a64_extend};

    #[test]
    fn reference_vectors_and_pieces() {
        // from the FNV reference test suite (draft-eastlake-fnv)
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        let h = fnv1a64_extend(fnv1a64_extend(FNV1A64_EMPTY, b"foo"), b"bar");
        assert_eq!(h, fnv1a64(b"foobar"));
    }
}

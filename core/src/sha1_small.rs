//! A small SHA-1 (FIPS 180-4), written as one rolled loop.
//!
//! SHA-1 is only used for artifacts whose server gives no SHA-256 (hawkBit always sends both,
//! so on a device it is a fallback that rarely runs). The `sha1` crate's software backend is
//! fully unrolled: about 2.9 KB of Cortex-M flash, against a few hundred bytes here. Speed is
//! not a concern for a fallback digest.

/// Streaming SHA-1.
#[derive(Clone)]
pub(crate) struct Sha1 {
    h: [u32; 5],
    block: [u8; 64],
    /// Bytes in `block`.
    fill: usize,
    /// Total message length in bytes.
    len: u64,
}

impl Sha1 {
    pub(crate) const fn new() -> Self {
        Self {
            h: [
                0x6745_2301,
                0xefcd_ab89,
                0x98ba_dcfe,
                0x1032_5476,
                0xc3d2_e1f0,
            ],
            block: [0; 64],
            fill: 0,
            len: 0,
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let n = (64 - self.fill).min(data.len());
            let (head, rest) = data.split_at(n);
            self.block[self.fill..self.fill + n].copy_from_slice(head);
            self.fill += n;
            data = rest;
            if self.fill == 64 {
                self.compress();
                self.fill = 0;
            }
        }
    }

    pub(crate) fn finalize(mut self) -> [u8; 20] {
        let bits = self.len.wrapping_mul(8);
        self.update(&[0x80]);
        while self.fill != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 20];
        for (o, h) in out.chunks_exact_mut(4).zip(self.h) {
            o.copy_from_slice(&h.to_be_bytes());
        }
        out
    }

    #[inline(never)]
    fn compress(&mut self) {
        let mut w = [0u32; 16];
        for (w, b) in w.iter_mut().zip(self.block.chunks_exact(4)) {
            *w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }
        let [mut a, mut b, mut c, mut d, mut e] = self.h;
        for i in 0..80 {
            if i >= 16 {
                let x = w[(i + 13) % 16] ^ w[(i + 8) % 16] ^ w[(i + 2) % 16] ^ w[i % 16];
                w[i % 16] = x.rotate_left(1);
            }
            let (f, k) = match i / 20 {
                0 => ((b & c) | (!b & d), 0x5a82_7999),
                1 => (b ^ c ^ d, 0x6ed9_eba1),
                2 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(w[i % 16]);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (h, v) in self.h.iter_mut().zip([a, b, c, d, e]) {
            *h = h.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sha1;
    use ::sha1::Digest as _;
    use proptest::prelude::*;

    fn reference(data: &[u8]) -> [u8; 20] {
        ::sha1::Sha1::digest(data).into()
    }

    #[test]
    fn known_vectors() {
        let abc = Sha1::new();
        let mut abc2 = abc.clone();
        abc2.update(b"abc");
        assert_eq!(
            abc2.finalize(),
            [
                0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
                0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d
            ]
        );
        assert_eq!(abc.finalize(), reference(b""));
        // every length around the padding boundaries
        let data: [u8; 200] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        for n in 0..data.len() {
            let mut h = Sha1::new();
            h.update(&data[..n]);
            assert_eq!(h.finalize(), reference(&data[..n]), "len {n}");
        }
    }

    proptest! {
        #[test]
        fn matches_sha1_crate_in_any_chunking(
            data in proptest::collection::vec(any::<u8>(), 0..400),
            cut in 0usize..400,
        ) {
            let cut = cut.min(data.len());
            let mut h = Sha1::new();
            h.update(&data[..cut]);
            h.update(&data[cut..]);
            prop_assert_eq!(h.finalize(), reference(&data));
        }
    }
}

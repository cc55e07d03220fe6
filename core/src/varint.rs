//! A hand-written reader/writer for the few postcard encodings the persistent record and the
//! signed manifest use (raw bytes, LEB128 varints, length-prefixed UTF-8 strings), with
//! postcard 1's exact acceptance rules. postcard's serde (de)serializers cost about 4 KB of
//! Cortex-M flash for two small fixed layouts; postcard stays the reference in the tests.

/// Reads from the front of a byte slice; every method returns `None` on malformed input.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// `false` once a varint was not in its shortest form (postcard accepts those).
    pub(crate) canonical: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            canonical: true,
        }
    }

    /// What is left.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    /// A postcard bool: exactly 0 or 1.
    pub(crate) fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// A varint of an unsigned integer of `bits` bits: at most `ceil(bits / 7)` bytes, and the
    /// last possible byte may only carry the remaining high bits (postcard's rule).
    fn varint(&mut self, bits: u32) -> Option<u64> {
        let max_bytes = bits.div_ceil(7);
        let max_last = (1u8 << (bits % 7)) - 1;
        let mut out = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > max_last {
                    return None;
                }
                if i > 0 && b == 0 {
                    self.canonical = false; // a trailing zero group: not the shortest form
                }
                return Some(out);
            }
        }
        None
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.varint(16).map(|v| v as u16)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.varint(32).map(|v| v as u32)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.varint(64)
    }

    pub(crate) fn usize(&mut self) -> Option<usize> {
        self.varint(usize::BITS).map(|v| v as usize)
    }

    /// A length-prefixed UTF-8 string.
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let n = self.usize()?;
        core::str::from_utf8(self.bytes(n)?).ok()
    }
}

/// Writes into the front of a byte buffer; every method returns `None` when it is full.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> Option<()> {
        self.buf
            .get_mut(self.len..self.len + b.len())?
            .copy_from_slice(b);
        self.len += b.len();
        Some(())
    }

    pub(crate) fn byte(&mut self, b: u8) -> Option<()> {
        self.bytes(&[b])
    }

    /// The shortest varint of `v`.
    pub(crate) fn varint(&mut self, mut v: u64) -> Option<()> {
        loop {
            let low = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                return self.byte(low);
            }
            self.byte(low | 0x80)?;
        }
    }

    pub(crate) fn str(&mut self, s: &str) -> Option<()> {
        self.varint(s.len() as u64)?;
        self.bytes(s.as_bytes())
    }
}

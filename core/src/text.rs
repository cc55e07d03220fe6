//! Tiny text helpers used instead of `core::fmt` on the paths a device runs: `write!` drags the
//! whole formatting machinery (and every `Display` impl it reaches) into an MCU image, several KB
//! of flash for a few numbers and concatenations.

use heapless::String;

/// The digits of a number, kept inline (no allocation, no `core::fmt`).
pub(crate) struct Num {
    buf: [u8; 20],
    start: usize,
}

impl Num {
    /// Decimal digits of `n`, as `{}` prints it.
    pub(crate) fn dec(n: u64) -> Self {
        Self::radix(n, 10)
    }

    /// Lower-case hex digits of `n` without a prefix, as `{:x}` prints it.
    pub(crate) fn hex(n: u64) -> Self {
        Self::radix(n, 16)
    }

    fn radix(mut n: u64, radix: u64) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = DIGITS[(n % radix) as usize];
            n /= radix;
            if n == 0 {
                break;
            }
        }
        Self { buf, start }
    }

    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[self.start..]).unwrap_or("")
    }
}

/// Appends `parts` in order and stops at the first one that does not fit, exactly as `write!`
/// into a `heapless::String` does (each part goes in whole or not at all).
#[inline(always)]
pub(crate) fn cat<const N: usize>(out: &mut String<N>, parts: &[&str]) -> Result<(), ()> {
    cat_view(out.as_mut_view(), parts)
}

/// [`cat`] for any capacity (one copy in flash).
#[inline(never)]
fn cat_view(out: &mut heapless::string::StringView, parts: &[&str]) -> Result<(), ()> {
    for p in parts {
        out.push_str(p).map_err(|_| ())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    #[test]
    fn num_matches_fmt() {
        for n in [
            0u64,
            1,
            9,
            10,
            15,
            16,
            255,
            4096,
            99_999,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut d: String<24> = String::new();
            write!(d, "{n}").unwrap();
            assert_eq!(Num::dec(n).as_str(), d.as_str());
            let mut h: String<24> = String::new();
            write!(h, "{n:x}").unwrap();
            assert_eq!(Num::hex(n).as_str(), h.as_str());
        }
    }

    #[test]
    fn cat_stops_like_write() {
        let mut a: String<8> = String::new();
        let mut b: String<8> = String::new();
        let ra = cat(&mut a, &["abc", "12345", "x"]);
        let rb = write!(b, "abc{}x", core::hint::black_box(12345));
        assert_eq!(ra.is_err(), rb.is_err());
        assert_eq!(a, b);
        let mut a: String<8> = String::new();
        let mut b: String<8> = String::new();
        let ra = cat(&mut a, &["abc", "1234", "x"]);
        let rb = write!(b, "abc{}x", core::hint::black_box(1234));
        assert_eq!(ra.is_err(), rb.is_err());
        assert_eq!(a, b);
    }
}

//! Semihosting output without `core::fmt`: `say!(a, b, …)` prints each argument in turn (strings
//! as they are, integers in decimal, `Hex2` as two hex digits). `hprintln!` with arguments
//! formats through `core::fmt`, which costs several KB of flash for what is only text and
//! numbers here.

use cortex_m_semihosting::export::hstdout_str;

/// Something [`say!`] can print.
pub trait Show {
    fn show(&self);
}

impl Show for str {
    fn show(&self) {
        hstdout_str(self);
    }
}

impl<T: Show + ?Sized> Show for &T {
    fn show(&self) {
        (**self).show();
    }
}

impl<const N: usize> Show for heapless::String<N> {
    fn show(&self) {
        hstdout_str(self.as_str());
    }
}

impl Show for bool {
    fn show(&self) {
        hstdout_str(if *self { "true" } else { "false" });
    }
}

/// Decimal digits of `n` (as `{}` prints it).
fn dec(mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    hstdout_str(core::str::from_utf8(&buf[i..]).unwrap_or("?"));
}

macro_rules! show_unsigned {
    ($($t:ty),*) => {$(
        impl Show for $t {
            fn show(&self) {
                dec(*self as u64);
            }
        }
    )*};
}
show_unsigned!(u8, u16, u32, u64, usize);

/// A byte as two lower-case hex digits (`{:02x}`).
pub struct Hex2(pub u8);

impl Show for Hex2 {
    fn show(&self) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let b = [
            HEX[usize::from(self.0 >> 4)],
            HEX[usize::from(self.0 & 0xf)],
        ];
        hstdout_str(core::str::from_utf8(&b).unwrap_or("??"));
    }
}

/// `Some(true)` / `Some(false)` / `None` (`{:?}` of an `Option<bool>`).
#[cfg(feature = "client")]
pub struct DebugOptBool(pub Option<bool>);

#[cfg(feature = "client")]
impl Show for DebugOptBool {
    fn show(&self) {
        hstdout_str(match self.0 {
            Some(true) => "Some(true)",
            Some(false) => "Some(false)",
            None => "None",
        });
    }
}

/// Prints every argument in turn, without `core::fmt`.
macro_rules! say {
    ($($e:expr),* $(,)?) => {{
        $( $crate::out::Show::show(&$e); )*
    }};
}
pub(crate) use say;

//! `fw_env.config` (legacy format), parsed the way libubootenv 0.3.2 parses it, so eyas reads
//! the `/etc/fw_env.config` a device already has.
//!
//! One line per copy: `device offset env_size [sector_size [num_sectors [disable_lock]]]`.
//! * lines whose first byte is `#` are comments; blank lines are ignored;
//! * `offset` is read like C `%lli`: `0x…` hex, a leading `0` octal, otherwise decimal, and a
//!   minus sign means "from the end of the device";
//! * `env_size`, `sector_size` and `num_sectors` are **always hex** (`%zx`), with or without `0x`
//!   (`4000` is 0x4000);
//! * `disable_lock` is decimal (`%d`); anything after the last field is ignored;
//! * one device line = single copy, two = redundant; lines after the second are not read.
//!
//! Where libubootenv would *silently skip* a line that names a device but has no parsable
//! offset or size, eyas reports an error with the line number instead: a half-read config
//! could turn a redundant env into a single one.

use core::fmt;

/// Number of device lines that matter (two copies at most).
pub const MAX_COPIES: usize = 2;

/// One device line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwEnvDevice<'a> {
    /// Device or file path, as written.
    pub path: &'a str,
    /// Offset in bytes; negative = from the end of the device.
    pub offset: i64,
    /// Size of the copy (hex in the file).
    pub env_size: u64,
    /// Erase sector size (hex), if given.
    pub sector_size: Option<u64>,
    /// Number of sectors (hex), if given.
    pub num_sectors: Option<u64>,
    /// The 6th field (disable MTD lock), if given.
    pub disable_lock: Option<i32>,
    /// 1-based line number in the file.
    pub line: usize,
}

impl FwEnvDevice<'_> {
    /// True for MTD character devices (`/dev/mtdN`): NOR flash uses the boolean flags scheme.
    #[must_use]
    pub fn is_mtd(&self) -> bool {
        self.path.starts_with("/dev/mtd")
    }
    /// True for UBI volumes (`/dev/ubiX_Y`).
    #[must_use]
    pub fn is_ubi(&self) -> bool {
        self.path.starts_with("/dev/ubi")
    }
}

/// A parsed config: one or two copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwEnvConfig<'a> {
    /// Copy 0.
    pub first: FwEnvDevice<'a>,
    /// Copy 1 (redundant env).
    pub second: Option<FwEnvDevice<'a>>,
}

impl<'a> FwEnvConfig<'a> {
    /// The devices in order.
    pub fn devices(&self) -> impl Iterator<Item = &FwEnvDevice<'a>> {
        core::iter::once(&self.first).chain(self.second.as_ref())
    }
}

/// What is wrong with a config line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The line names a device but no offset (C `%lli`).
    MissingOffset,
    /// The line has a device and offset but no hex env size.
    MissingSize,
    /// env_size is zero (libubootenv rejects this too).
    ZeroSize,
    /// A number does not fit in 64 bits.
    NumberOverflow,
    /// The two copies have different sizes.
    SizeMismatch,
    /// No device line at all.
    NoDevice,
    /// The file is not UTF-8.
    NotUtf8,
}

/// A config error with its 1-based line (0 = the file as a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number (0 when the error is about the whole file).
    pub line: usize,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        f.write_str(match self.kind {
            ConfigErrorKind::MissingOffset => "expected `device offset env_size` but the offset is missing or not a number (C %lli: 0x.. hex, 0.. octal, decimal, '-' = from the end)",
            ConfigErrorKind::MissingSize => "expected `device offset env_size` but the env size is missing or not hex (sizes are always hex, e.g. 4000 or 0x4000)",
            ConfigErrorKind::ZeroSize => "env size is 0",
            ConfigErrorKind::NumberOverflow => "number does not fit in 64 bits",
            ConfigErrorKind::SizeMismatch => "the two copies have different env sizes; both lines must use the same size",
            ConfigErrorKind::NoDevice => "no device line found (expected `device offset env_size`, one line per copy)",
            ConfigErrorKind::NotUtf8 => "file is not UTF-8 text",
        })
    }
}

impl core::error::Error for ConfigError {}

/// A scanf-like cursor over one line.
struct Scan<'a> {
    s: &'a [u8],
    pos: usize,
}

#[derive(Clone, Copy)]
enum Base {
    /// `%i`: prefix decides.
    Auto,
    /// `%x`.
    Hex,
    /// `%d`.
    Dec,
}

enum Num {
    Ok(i128),
    None,
    Overflow,
}

impl<'a> Scan<'a> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn token(&mut self) -> Option<&'a [u8]> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len() && !self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }
    fn digit(b: u8, radix: u32) -> Option<u32> {
        char::from(b).to_digit(radix)
    }
    fn number(&mut self, base: Base) -> Num {
        self.skip_ws();
        let start = self.pos;
        let mut p = self.pos;
        let neg = match self.s.get(p) {
            Some(b'-') => {
                p += 1;
                true
            }
            Some(b'+') => {
                p += 1;
                false
            }
            _ => false,
        };
        let has_0x = self.s.get(p) == Some(&b'0') && matches!(self.s.get(p + 1), Some(b'x' | b'X'));
        let has_0x_digits = has_0x
            && self
                .s
                .get(p + 2)
                .and_then(|&b| Self::digit(b, 16))
                .is_some();
        let radix = match base {
            Base::Dec => 10,
            Base::Hex => {
                if has_0x_digits {
                    p += 2;
                }
                16
            }
            Base::Auto => {
                if has_0x_digits {
                    p += 2;
                    16
                } else if self.s.get(p) == Some(&b'0') {
                    8
                } else {
                    10
                }
            }
        };
        let mut val: i128 = 0;
        let mut digits = 0;
        let mut overflow = false;
        while let Some(d) = self.s.get(p).and_then(|&b| Self::digit(b, radix)) {
            val = val * i128::from(radix) + i128::from(d);
            if val > i128::from(u64::MAX) {
                overflow = true;
                val = i128::from(u64::MAX);
            }
            digits += 1;
            p += 1;
        }
        if digits == 0 {
            self.pos = start;
            return Num::None;
        }
        self.pos = p;
        if overflow {
            return Num::Overflow;
        }
        Num::Ok(if neg { -val } else { val })
    }
}

/// Parses the text of a `fw_env.config`.
pub fn parse(text: &str) -> Result<FwEnvConfig<'_>, ConfigError> {
    let mut found: [Option<FwEnvDevice<'_>>; MAX_COPIES] = [None, None];
    let mut n = 0;
    for (idx, line) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        if line.starts_with('#') {
            continue;
        }
        let mut sc = Scan {
            s: line.as_bytes(),
            pos: 0,
        };
        let Some(path) = sc.token() else { continue };
        if path.starts_with(b"#") {
            // An indented comment: libubootenv skips it too (it fails to scan an offset).
            continue;
        }
        let err = |kind| ConfigError { line: lineno, kind };
        let path = core::str::from_utf8(path).map_err(|_| err(ConfigErrorKind::NotUtf8))?;
        let offset = match sc.number(Base::Auto) {
            Num::Ok(v) => i64::try_from(v).map_err(|_| err(ConfigErrorKind::NumberOverflow))?,
            Num::None => return Err(err(ConfigErrorKind::MissingOffset)),
            Num::Overflow => return Err(err(ConfigErrorKind::NumberOverflow)),
        };
        let hex = |sc: &mut Scan<'_>| -> Result<Option<u64>, ConfigError> {
            match sc.number(Base::Hex) {
                // C's %zx accepts a sign and wraps; a negative size is nonsense, so reject it.
                Num::Ok(v) => u64::try_from(v)
                    .map(Some)
                    .map_err(|_| err(ConfigErrorKind::NumberOverflow)),
                Num::None => Ok(None),
                Num::Overflow => Err(err(ConfigErrorKind::NumberOverflow)),
            }
        };
        let env_size = hex(&mut sc)?.ok_or(err(ConfigErrorKind::MissingSize))?;
        if env_size == 0 {
            return Err(err(ConfigErrorKind::ZeroSize));
        }
        let sector_size = hex(&mut sc)?;
        let num_sectors = if sector_size.is_some() {
            hex(&mut sc)?
        } else {
            None
        };
        let disable_lock = if num_sectors.is_some() {
            match sc.number(Base::Dec) {
                Num::Ok(v) => {
                    Some(i32::try_from(v).map_err(|_| err(ConfigErrorKind::NumberOverflow))?)
                }
                Num::None => None,
                Num::Overflow => return Err(err(ConfigErrorKind::NumberOverflow)),
            }
        } else {
            None
        };
        found[n] = Some(FwEnvDevice {
            path,
            offset,
            env_size,
            sector_size,
            num_sectors,
            disable_lock,
            line: lineno,
        });
        n += 1;
        if n == MAX_COPIES {
            break;
        }
    }
    let [first, second] = found;
    let first = first.ok_or(ConfigError {
        line: 0,
        kind: ConfigErrorKind::NoDevice,
    })?;
    if let Some(s) = &second
        && s.env_size != first.env_size
    {
        return Err(ConfigError {
            line: s.line,
            kind: ConfigErrorKind::SizeMismatch,
        });
    }
    Ok(FwEnvConfig { first, second })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libubootenv_number_rules() {
        let c = parse(
            "# comment\n\n/dev/mmcblk0 0x3e0000 0x20000\n/dev/mmcblk0 -0x20000 20000 1000 4 1\n",
        )
        .unwrap();
        assert_eq!(c.first.offset, 0x3e0000);
        assert_eq!(c.first.env_size, 0x20000);
        let s = c.second.unwrap();
        assert_eq!(s.offset, -0x20000);
        assert_eq!(s.env_size, 0x20000);
        assert_eq!(s.sector_size, Some(0x1000));
        assert_eq!(s.num_sectors, Some(4));
        assert_eq!(s.disable_lock, Some(1));
        assert_eq!(s.line, 4);
        // Decimal and octal offsets; sizes are hex even without 0x (16384 = 0x16384).
        let c = parse("f 16384 16384\n").unwrap();
        assert_eq!((c.first.offset, c.first.env_size), (16384, 0x16384));
        let c = parse("f 010 10").unwrap();
        assert_eq!((c.first.offset, c.first.env_size), (8, 0x10));
        assert!(c.second.is_none());
        // Trailing garbage after the fields is ignored, like sscanf.
        let c = parse("f 0 4000 # copy 0\n").unwrap();
        assert_eq!(c.first.sector_size, None);
    }

    #[test]
    fn errors_have_lines() {
        assert_eq!(
            parse("# x\n/dev/x zz 4000\n").unwrap_err(),
            ConfigError {
                line: 2,
                kind: ConfigErrorKind::MissingOffset
            }
        );
        assert_eq!(
            parse("/dev/x 0\n").unwrap_err(),
            ConfigError {
                line: 1,
                kind: ConfigErrorKind::MissingSize
            }
        );
        assert_eq!(
            parse("/dev/x 0 0\n").unwrap_err().kind,
            ConfigErrorKind::ZeroSize
        );
        assert_eq!(
            parse("a 0 4000\nb 0 2000\n").unwrap_err(),
            ConfigError {
                line: 2,
                kind: ConfigErrorKind::SizeMismatch
            }
        );
        assert_eq!(
            parse("# only\n   \n").unwrap_err().kind,
            ConfigErrorKind::NoDevice
        );
        assert_eq!(
            parse("a 0xffffffffffffffffff 4000").unwrap_err().kind,
            ConfigErrorKind::NumberOverflow
        );
    }
}

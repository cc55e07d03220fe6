//! U-Boot environment images: single and redundant copies, CRC-32 in either byte order, the
//! incremental and boolean flags schemes, and one-write updates of any number of variables.
//!
//! # Layout
//! | layout | bytes of one copy of size `S` |
//! |---|---|
//! | single | `crc32 (4) · data (S-4)` |
//! | redundant | `crc32 (4) · flags (1) · data (S-5)` ×2 |
//!
//! `data` is `name=value\0…name=value\0\0` plus whatever follows (padding or stale bytes, all
//! covered by the CRC; the flags byte is not).
//!
//! # Which copy is current (redundant)
//! | copy 0 CRC | copy 1 CRC | flags | current |
//! |---|---|---|---|
//! | ok | bad | – | 0 |
//! | bad | ok | – | 1 |
//! | bad | bad | – | none: [`EnvError::NoValidCopy`] |
//! | ok | ok | (255, 0) | 1 (wrap) |
//! | ok | ok | (0, 255) | 0 (wrap) |
//! | ok | ok | f1 > f0 | 1 |
//! | ok | ok | otherwise (incl. equal) | 0 |
//!
//! The boolean scheme (NOR, libubootenv) then overrides: flags1 == 0xFF → 1, else flags0 == 0xFF → 0.
//!
//! # Writing
//! A write builds the whole new copy (variables sorted by name in byte order, as libubootenv and
//! U-Boot's `env export` do), CRC over the full data area, flags = current + 1 (incremental,
//! 255 wraps to 0) or 1 (boolean), and goes to the **non-current** copy only. See
//! [`store::UbootStore`] for the storage side.
//!
//! # Example (no_std, caller-owned buffers)
//! ```
//! use eyas_bootloader_glue::uboot::{self, EnvFormat, Tail};
//! const SIZE: usize = 0x100;
//! let fmt = EnvFormat::redundant(SIZE);
//! let mut img = [0u8; 2 * SIZE];
//! let vars = [("BOOT_ORDER", "A B"), ("BOOT_A_LEFT", "3"), ("BOOT_B_LEFT", "3")];
//! uboot::make_copy(&fmt, vars.iter().copied(), 0xFF, 1, &mut img[..SIZE]).unwrap();
//! img.copy_within(..SIZE, SIZE);
//! let (c0, c1) = img.split_at(SIZE);
//! let cur = uboot::decode(&fmt, c0, c1).unwrap();
//! // mark-bad B as ONE write: both variables in the same new copy.
//! let changes = [("BOOT_ORDER", Some("A")), ("BOOT_B_LEFT", Some("0"))];
//! let mut out = [0u8; SIZE];
//! let target = uboot::build_copy(&fmt, Some(&cur), c0, changes.iter().copied(), Tail::Fill(0), &mut out).unwrap();
//! assert_eq!(target, 1); // never the current copy
//! assert_eq!(out[4], 2); // flags = current + 1
//! let new = uboot::decode(&fmt, c0, &out).unwrap();
//! assert_eq!(new.current, 1);
//! assert_eq!(new.env.get_str("BOOT_ORDER"), Some("A"));
//! ```

pub mod config;
pub mod store;

use crate::Change;
use crate::crc::crc32;
use core::fmt;

/// Size of the CRC field.
pub const CRC_LEN: usize = 4;
/// Size of the flags field of a redundant copy.
pub const FLAGS_LEN: usize = 1;
/// Smallest copy size accepted (header + `\0\0`).
pub const MIN_COPY_SIZE: usize = CRC_LEN + FLAGS_LEN + 2;

/// One copy or two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One copy without flags byte (not power-fail safe to write).
    Single,
    /// Two copies, each with a flags byte.
    Redundant,
}

/// Byte order of the stored CRC (the target CPU's native order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcEndian {
    /// Little-endian (ARM, x86; mkenvimage default).
    Little,
    /// Big-endian (mkenvimage `-b`, PowerPC, MIPS BE).
    Big,
}

/// How the flags byte of a redundant pair marks the current copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagScheme {
    /// A serial number, +1 per write, 255 wraps to 0 (files, block devices, NAND, UBI).
    Incremental,
    /// Active = 1, obsolete = 0; after writing the new copy the old copy's flags byte is cleared
    /// in place (NOR, which can clear bits without an erase).
    Boolean,
}

/// What goes behind the `\0\0` terminator of a new copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Fill with this byte (0x00 or 0xFF are the usual choices).
    Fill(u8),
    /// Exactly what libubootenv 0.3.2's `fw_setenv` leaves there: the bytes of copy 0 as read,
    /// with the first `=` of each parsed variable replaced by `\0` when copy 0 was the current
    /// copy. Deterministic, and it makes eyas's writes byte-identical to `fw_setenv`'s.
    LikeFwSetenv,
}

/// The shape of an environment on its medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvFormat {
    /// Single or redundant.
    pub layout: Layout,
    /// Size of one copy in bytes (`CONFIG_ENV_SIZE`).
    pub copy_size: usize,
    /// Byte order of the CRC.
    pub endian: CrcEndian,
    /// Flags scheme (ignored for [`Layout::Single`]).
    pub flags: FlagScheme,
}

impl EnvFormat {
    /// A redundant, little-endian, incremental format of `copy_size` bytes per copy.
    #[must_use]
    pub const fn redundant(copy_size: usize) -> Self {
        Self {
            layout: Layout::Redundant,
            copy_size,
            endian: CrcEndian::Little,
            flags: FlagScheme::Incremental,
        }
    }
    /// A single-copy, little-endian format.
    #[must_use]
    pub const fn single(copy_size: usize) -> Self {
        Self {
            layout: Layout::Single,
            copy_size,
            endian: CrcEndian::Little,
            flags: FlagScheme::Incremental,
        }
    }
    /// Offset of the data area inside a copy.
    #[must_use]
    pub const fn data_offset(&self) -> usize {
        match self.layout {
            Layout::Single => CRC_LEN,
            Layout::Redundant => CRC_LEN + FLAGS_LEN,
        }
    }
    /// Number of copies.
    #[must_use]
    pub const fn copies(&self) -> usize {
        match self.layout {
            Layout::Single => 1,
            Layout::Redundant => 2,
        }
    }
    fn check_size(&self, len: usize) -> Result<(), EnvError> {
        if self.copy_size < MIN_COPY_SIZE {
            return Err(EnvError::CopyTooSmall {
                size: self.copy_size,
            });
        }
        if len != self.copy_size {
            return Err(EnvError::WrongCopyLength {
                expected: self.copy_size,
                got: len,
            });
        }
        Ok(())
    }
}

/// Errors of the U-Boot environment codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvError {
    /// The configured copy size cannot hold a header and an empty environment.
    CopyTooSmall {
        /// Configured size.
        size: usize,
    },
    /// A copy buffer does not have the configured size.
    WrongCopyLength {
        /// Configured size.
        expected: usize,
        /// Buffer length.
        got: usize,
    },
    /// Neither copy has a valid CRC.
    NoValidCopy,
    /// The variable list runs to the end of the data area without the `\0\0` terminator.
    Unterminated,
    /// The new variables do not fit into the data area: nothing was written.
    EnvFull {
        /// Bytes the new environment needs (including the terminator).
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A variable name is empty or contains `=` or NUL.
    InvalidName,
    /// A value contains NUL.
    InvalidValue,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CopyTooSmall { size } => write!(
                f,
                "U-Boot env copy size {size:#x} is too small; check the env size in fw_env.config"
            ),
            Self::WrongCopyLength { expected, got } => write!(
                f,
                "U-Boot env copy is {got:#x} bytes, expected {expected:#x}; check the env size in fw_env.config"
            ),
            Self::NoValidCopy => write!(
                f,
                "no U-Boot env copy has a valid CRC; check offsets/sizes in fw_env.config, or explicitly ask for the default environment"
            ),
            Self::Unterminated => write!(
                f,
                "U-Boot env data has no \\0\\0 terminator; the env is corrupt or the size is wrong"
            ),
            Self::EnvFull { needed, available } => write!(
                f,
                "U-Boot env full: the new variables need {needed} bytes but the env holds {available}; nothing was written (delete unused variables or enlarge CONFIG_ENV_SIZE)"
            ),
            Self::InvalidName => write!(
                f,
                "invalid U-Boot variable name (empty, or contains '=' or NUL)"
            ),
            Self::InvalidValue => write!(f, "invalid U-Boot variable value (contains NUL)"),
        }
    }
}

impl core::error::Error for EnvError {}

/// What a reader found in one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyStatus {
    /// The stored CRC matches the data area.
    pub crc_ok: bool,
    /// The flags byte (redundant layout only).
    pub flags: Option<u8>,
}

/// Checks the CRC of one copy and reads its flags byte.
pub fn check_copy(fmt: &EnvFormat, copy: &[u8]) -> Result<CopyStatus, EnvError> {
    fmt.check_size(copy.len())?;
    let stored = [copy[0], copy[1], copy[2], copy[3]];
    let stored = match fmt.endian {
        CrcEndian::Little => u32::from_le_bytes(stored),
        CrcEndian::Big => u32::from_be_bytes(stored),
    };
    let crc_ok = crc32(&copy[fmt.data_offset()..]) == stored;
    let flags = match fmt.layout {
        Layout::Single => None,
        Layout::Redundant => Some(copy[CRC_LEN]),
    };
    Ok(CopyStatus { crc_ok, flags })
}

/// Picks the current copy from the two copies' status (see the module table). `None` when no
/// copy is valid.
#[must_use]
pub fn select_current(scheme: FlagScheme, c0: CopyStatus, c1: CopyStatus) -> Option<usize> {
    match (c0.crc_ok, c1.crc_ok) {
        (false, false) => None,
        (true, false) => Some(0),
        (false, true) => Some(1),
        (true, true) => {
            let f0 = c0.flags.unwrap_or(0);
            let f1 = c1.flags.unwrap_or(0);
            let mut current = usize::from(f1 > f0);
            match scheme {
                FlagScheme::Incremental => {
                    if f0 == 0xFF && f1 == 0 {
                        current = 1;
                    } else if f1 == 0xFF && f0 == 0 {
                        current = 0;
                    }
                }
                FlagScheme::Boolean => {
                    if f1 == 0xFF {
                        current = 1;
                    } else if f0 == 0xFF {
                        current = 0;
                    }
                }
            }
            Some(current)
        }
    }
}

/// A parsed view of one copy's data area.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The variable region (up to, not including, the terminating empty string).
    vars: &'a [u8],
}

impl<'a> Env<'a> {
    /// Parses a data area (the bytes after CRC and flags). Fails only when the strings run to
    /// the end of the area without a terminator.
    pub fn parse(data: &'a [u8]) -> Result<Self, EnvError> {
        let mut pos = 0;
        loop {
            if pos >= data.len() {
                return Err(EnvError::Unterminated);
            }
            if data[pos] == 0 {
                return Ok(Self { vars: &data[..pos] });
            }
            match data[pos..].iter().position(|&b| b == 0) {
                Some(n) => pos += n + 1,
                None => return Err(EnvError::Unterminated),
            }
        }
    }

    /// An empty environment.
    #[must_use]
    pub const fn empty() -> Self {
        Self { vars: &[] }
    }

    /// Every `name=value` string in stored order (duplicates included; strings without `=` are
    /// skipped, as U-Boot and libubootenv do).
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone + 'a {
        self.vars.split(|&b| b == 0).filter_map(|s| {
            let eq = s.iter().position(|&b| b == b'=')?;
            Some((&s[..eq], &s[eq + 1..]))
        })
    }

    /// The value of `name` (the last occurrence wins, as when U-Boot imports the env).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.iter()
            .filter(|(n, _)| *n == name.as_bytes())
            .last()
            .map(|(_, v)| v)
    }

    /// The value of `name` as UTF-8 (`None` if absent or not UTF-8).
    #[must_use]
    pub fn get_str(&self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Length of the variable region in bytes (without the terminator).
    #[must_use]
    pub fn vars_len(&self) -> usize {
        self.vars.len()
    }
}

/// A decoded image (one or two copies) with the current copy chosen.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// The format the image was decoded with.
    pub format: EnvFormat,
    /// Status of each copy (`[1]` is meaningless for single layout).
    pub status: [CopyStatus; 2],
    /// Index of the current copy.
    pub current: usize,
    /// The current copy's variables.
    pub env: Env<'a>,
}

/// Decodes an image given as its copies (`copy1` is ignored for [`Layout::Single`]).
pub fn decode<'a>(
    fmt: &EnvFormat,
    copy0: &'a [u8],
    copy1: &'a [u8],
) -> Result<Image<'a>, EnvError> {
    let s0 = check_copy(fmt, copy0)?;
    let (s1, current) = match fmt.layout {
        Layout::Single => {
            let s1 = CopyStatus {
                crc_ok: false,
                flags: None,
            };
            (s1, if s0.crc_ok { Some(0) } else { None })
        }
        Layout::Redundant => {
            let s1 = check_copy(fmt, copy1)?;
            (s1, select_current(fmt.flags, s0, s1))
        }
    };
    let current = current.ok_or(EnvError::NoValidCopy)?;
    let data = if current == 0 { copy0 } else { copy1 };
    let env = Env::parse(&data[fmt.data_offset()..])?;
    Ok(Image {
        format: *fmt,
        status: [s0, s1],
        current,
        env,
    })
}

fn validate_changes<'c, I>(changes: I) -> Result<(), EnvError>
where
    I: Iterator<Item = Change<'c>>,
{
    for (name, value) in changes {
        if name.is_empty() || name.bytes().any(|b| b == b'=' || b == 0) {
            return Err(EnvError::InvalidName);
        }
        if value.is_some_and(|v| v.as_bytes().contains(&0)) {
            return Err(EnvError::InvalidValue);
        }
    }
    Ok(())
}

/// The final value of `name` after `changes` (last change wins; `Some("")` deletes, as U-Boot's
/// `setenv name ""` does). `None` = absent.
fn final_value<'a, 'c, I>(env: &Env<'a>, changes: I, name: &[u8]) -> Option<&'a [u8]>
where
    I: Iterator<Item = Change<'c>>,
    'c: 'a,
{
    let mut changed: Option<Option<&'c str>> = None;
    for (n, v) in changes {
        if n.as_bytes() == name {
            changed = Some(v);
        }
    }
    match changed {
        Some(Some(v)) if !v.is_empty() => Some(v.as_bytes()),
        Some(_) => None,
        None => env
            .iter()
            .filter(|(n, _)| *n == name)
            .last()
            .map(|(_, v)| v),
    }
}

/// True when applying `changes` to `env` changes nothing (then `fw_setenv` writes nothing, and
/// neither do we).
pub fn is_noop<'a, 'c, I>(env: &Env<'a>, changes: I) -> bool
where
    I: Iterator<Item = Change<'c>> + Clone,
    'c: 'a,
{
    changes
        .clone()
        .all(|(name, _)| final_value(env, changes.clone(), name.as_bytes()) == env.get(name))
}

/// The smallest name strictly greater than `after` among the env's names and the changed names.
fn next_name<'a, 'c, I>(env: &Env<'a>, changes: I, after: Option<&[u8]>) -> Option<&'a [u8]>
where
    I: Iterator<Item = Change<'c>>,
    'c: 'a,
{
    let mut best: Option<&'a [u8]> = None;
    let mut consider = |n: &'a [u8]| {
        if after.is_some_and(|a| n <= a) {
            return;
        }
        if best.is_none_or(|b| n < b) {
            best = Some(n);
        }
    };
    env.iter().for_each(|(n, _)| consider(n));
    changes.for_each(|(n, _)| consider(n.as_bytes()));
    best
}

/// Serializes `env` with `changes` applied, sorted by name, into `data` (a whole data area),
/// starting at offset 0 and ending with the extra `\0`. Bytes after that are left as they are.
/// Returns the number of bytes written. On [`EnvError::EnvFull`], `data` may be partly written
/// but nothing has reached storage.
pub fn serialize_into<'a, 'c, I>(
    env: &Env<'a>,
    changes: I,
    data: &mut [u8],
) -> Result<usize, EnvError>
where
    I: Iterator<Item = Change<'c>> + Clone,
    'c: 'a,
{
    validate_changes(changes.clone())?;
    // Measure first so that a full env is reported with the size it would need.
    let mut needed = 1usize; // the terminating empty string
    let mut after: Option<&[u8]> = None;
    while let Some(name) = next_name(env, changes.clone(), after) {
        if let Some(v) = final_value(env, changes.clone(), name) {
            needed += name.len() + 1 + v.len() + 1;
        }
        after = Some(name);
    }
    if needed > data.len() {
        return Err(EnvError::EnvFull {
            needed,
            available: data.len(),
        });
    }
    let mut pos = 0;
    let mut after: Option<&[u8]> = None;
    while let Some(name) = next_name(env, changes.clone(), after) {
        if let Some(v) = final_value(env, changes.clone(), name) {
            for part in [name, b"=", v, b"\0"] {
                data[pos..pos + part.len()].copy_from_slice(part);
                pos += part.len();
            }
        }
        after = Some(name);
    }
    data[pos] = 0;
    Ok(pos + 1)
}

/// Builds a complete new copy into `out` (`out.len() == format.copy_size`).
///
/// * `img`: the decoded current image (or `None` to write `changes` onto an empty env, which is
///   what "use the defaults" means when no copy is valid);
/// * `copy0`: the raw bytes of copy 0 (only read for [`Tail::LikeFwSetenv`]);
/// * returns the index of the copy `out` must be written to (the non-current one).
pub fn build_copy<'a, 'c, I>(
    fmt: &EnvFormat,
    img: Option<&Image<'a>>,
    copy0: &[u8],
    changes: I,
    tail: Tail,
    out: &mut [u8],
) -> Result<usize, EnvError>
where
    I: Iterator<Item = Change<'c>> + Clone,
    'c: 'a,
{
    fmt.check_size(out.len())?;
    let off = fmt.data_offset();
    match tail {
        Tail::Fill(b) => out.fill(b),
        Tail::LikeFwSetenv => {
            fmt.check_size(copy0.len())?;
            out.copy_from_slice(copy0);
            if let Some(img) = img.filter(|i| i.current == 0) {
                // libubootenv parses the current copy in place, cutting each string at its '='.
                let region = &mut out[off..off + img.env.vars_len()];
                for s in region.split_mut(|&b| b == 0) {
                    if let Some(eq) = s.iter().position(|&b| b == b'=') {
                        s[eq] = 0;
                    }
                }
            }
        }
    }
    let empty = Env::empty();
    let env = img.map_or(&empty, |i| &i.env);
    serialize_into(env, changes, &mut out[off..])?;
    let (target, flags) = match fmt.layout {
        Layout::Single => (0, None),
        Layout::Redundant => {
            let (cur, cur_flags) = match img {
                Some(i) => (i.current, i.status[i.current].flags.unwrap_or(0)),
                // No valid copy: like libubootenv, treat copy 0 as current.
                None => (0, copy0.get(CRC_LEN).copied().unwrap_or(0)),
            };
            let flags = match fmt.flags {
                FlagScheme::Incremental => cur_flags.wrapping_add(1),
                FlagScheme::Boolean => 1,
            };
            (1 - cur, Some(flags))
        }
    };
    if let Some(f) = flags {
        out[CRC_LEN] = f;
    }
    let crc = crc32(&out[off..]);
    let crc = match fmt.endian {
        CrcEndian::Little => crc.to_le_bytes(),
        CrcEndian::Big => crc.to_be_bytes(),
    };
    out[..CRC_LEN].copy_from_slice(&crc);
    Ok(target)
}

/// Builds a fresh copy from a list of variables (like `mkenvimage`): variables in the given
/// order, then `\0`, padding `pad`, flags `flags` for the redundant layout.
pub fn make_copy<'c, I>(
    fmt: &EnvFormat,
    vars: I,
    pad: u8,
    flags: u8,
    out: &mut [u8],
) -> Result<(), EnvError>
where
    I: Iterator<Item = (&'c str, &'c str)> + Clone,
{
    fmt.check_size(out.len())?;
    validate_changes(vars.clone().map(|(n, v)| (n, Some(v))))?;
    out.fill(pad);
    let off = fmt.data_offset();
    let data = &mut out[off..];
    let needed = vars
        .clone()
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum::<usize>()
        + 1;
    if needed > data.len() {
        return Err(EnvError::EnvFull {
            needed,
            available: data.len(),
        });
    }
    let mut pos = 0;
    for (n, v) in vars {
        for part in [n.as_bytes(), b"=", v.as_bytes(), b"\0"] {
            data[pos..pos + part.len()].copy_from_slice(part);
            pos += part.len();
        }
    }
    data[pos] = 0;
    if fmt.layout == Layout::Redundant {
        out[CRC_LEN] = flags;
    }
    let crc = crc32(&out[off..]);
    let crc = match fmt.endian {
        CrcEndian::Little => crc.to_le_bytes(),
        CrcEndian::Big => crc.to_be_bytes(),
    };
    out[..CRC_LEN].copy_from_slice(&crc);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_table() {
        let s = |ok, f| CopyStatus {
            crc_ok: ok,
            flags: Some(f),
        };
        let inc = FlagScheme::Incremental;
        assert_eq!(select_current(inc, s(true, 255), s(true, 0)), Some(1));
        assert_eq!(select_current(inc, s(true, 0), s(true, 255)), Some(0));
        assert_eq!(select_current(inc, s(true, 5), s(true, 5)), Some(0));
        assert_eq!(select_current(inc, s(true, 200), s(true, 10)), Some(0));
        assert_eq!(select_current(inc, s(true, 2), s(true, 3)), Some(1));
        assert_eq!(select_current(inc, s(false, 9), s(true, 3)), Some(1));
        assert_eq!(select_current(inc, s(true, 1), s(false, 3)), Some(0));
        assert_eq!(select_current(inc, s(false, 1), s(false, 3)), None);
        let b = FlagScheme::Boolean;
        assert_eq!(select_current(b, s(true, 1), s(true, 0)), Some(0));
        assert_eq!(select_current(b, s(true, 0), s(true, 1)), Some(1));
        assert_eq!(select_current(b, s(true, 1), s(true, 1)), Some(0));
        assert_eq!(select_current(b, s(true, 0), s(true, 0xFF)), Some(1));
        assert_eq!(select_current(b, s(true, 0xFF), s(true, 1)), Some(0));
    }

    #[test]
    fn parse_stops_at_terminator_and_skips_strings_without_eq() {
        let data = b"a=1\0junk\0b=2\0a=3\0\0stale=9\0\0";
        let env = Env::parse(data).unwrap();
        assert_eq!(env.iter().count(), 3);
        assert_eq!(env.get_str("a"), Some("3"));
        assert_eq!(env.get("stale"), None);
        assert_eq!(Env::parse(b"a=1\0b=2").unwrap_err(), EnvError::Unterminated);
        assert_eq!(Env::parse(b"a=1\0").unwrap_err(), EnvError::Unterminated);
        assert_eq!(Env::parse(b"").unwrap_err(), EnvError::Unterminated);
        assert_eq!(Env::parse(b"\0").unwrap().iter().count(), 0);
    }

    #[test]
    fn serialize_sorted_and_full() {
        let env = Env::parse(b"b=2\0a=1\0c=3\0\0").unwrap();
        let ch = [("c", None), ("B", Some("x")), ("a", Some(""))];
        let mut out = [0xAAu8; 32];
        let n = serialize_into(&env, ch.iter().copied(), &mut out).unwrap();
        assert_eq!(&out[..n], b"B=x\0b=2\0\0");
        assert_eq!(out[n], 0xAA);
        let mut small = [0u8; 8];
        assert_eq!(
            serialize_into(&env, ch.iter().copied(), &mut small),
            Err(EnvError::EnvFull {
                needed: 9,
                available: 8
            })
        );
        assert_eq!(
            serialize_into(&env, [("a=b", Some("1"))].into_iter(), &mut out),
            Err(EnvError::InvalidName)
        );
        assert_eq!(
            serialize_into(&env, [("", Some("1"))].into_iter(), &mut out),
            Err(EnvError::InvalidName)
        );
        assert_eq!(
            serialize_into(&env, [("a", Some("1\0"))].into_iter(), &mut out),
            Err(EnvError::InvalidValue)
        );
        assert!(is_noop(&env, [("a", Some("1")), ("zz", None)].into_iter()));
        assert!(!is_noop(&env, [("a", Some("2"))].into_iter()));
    }
}

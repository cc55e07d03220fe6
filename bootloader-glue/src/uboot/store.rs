//! A U-Boot environment on a [`Storage`]: load (pick the current copy), and apply a whole change
//! set in **one** write of the non-current copy, then sync. The current copy is never written,
//! except for the one-byte "obsolete" flag of the boolean (NOR) scheme, which only clears bits
//! and is written after the new copy is durable.
//!
//! | step | what a power cut leaves |
//! |---|---|
//! | before the write | old state (current copy untouched) |
//! | during the write (torn, bits) | new copy's CRC is bad → old state |
//! | after the write, before sync | either, both are complete copies |
//! | boolean: before clearing the old flag | both flags 1 → copy 0 wins: old or new, both valid |
//!
//! The caller provides every buffer, so this works without `alloc`.

use super::{
    Env, EnvError, EnvFormat, FlagScheme, Image, Layout, Tail, build_copy, decode, is_noop,
};
use crate::Change;
use crate::storage::Storage;
use core::fmt;

/// One copy's location: its medium and offset.
#[derive(Debug)]
pub struct CopyLocation<S> {
    /// The medium holding the copy.
    pub storage: S,
    /// Byte offset of the copy on it (already resolved; negative config offsets are resolved by
    /// the caller against the device size).
    pub offset: u64,
}

/// Errors of a [`UbootStore`].
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError<E> {
    /// The env itself (CRC, format, full, names).
    Env(EnvError),
    /// The medium failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// Which copy.
        copy: usize,
        /// The medium's error.
        err: E,
    },
    /// A write to a single-copy env was asked for without allowing it (it overwrites the only
    /// copy in place: a power cut can leave no valid env).
    UnsafeSingleCopy,
    /// A scratch buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// On an erasable medium the copy does not start on an erase block.
    Misaligned {
        /// Which copy.
        copy: usize,
    },
    /// On an erasable medium the copy is not a whole number of erase blocks: erasing it would
    /// also erase whatever shares its last block (possibly the current copy). Nothing was
    /// written.
    PartialEraseBlock {
        /// Which copy.
        copy: usize,
        /// The medium's erase block size.
        erase_size: u64,
    },
}

impl<E> From<EnvError> for StoreError<E> {
    fn from(e: EnvError) -> Self {
        Self::Env(e)
    }
}

impl<E: fmt::Display> fmt::Display for StoreError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(e) => e.fmt(f),
            Self::Io { op, copy, err } => write!(f, "U-Boot env copy {copy}: {op} failed: {err}"),
            Self::UnsafeSingleCopy => f.write_str(
                "refusing to rewrite a single-copy U-Boot env in place (a power cut would leave no valid env); configure a redundant env (two lines in fw_env.config) or set allow-single-copy-write",
            ),
            Self::BufferTooSmall { needed } => write!(f, "scratch buffer too small: {needed} bytes needed"),
            Self::Misaligned { copy } => write!(f, "U-Boot env copy {copy} does not start on an erase block of its flash"),
            Self::PartialEraseBlock { copy, erase_size } => write!(f, "U-Boot env copy {copy} is not a whole number of {erase_size:#x}-byte erase blocks; erasing it would also erase what shares its last block (possibly the other copy), so nothing was written (make the env size a multiple of the erase size)"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for StoreError<E> {}

/// What an [`UbootStore::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Every change was a no-op; nothing was written (as `fw_setenv` does).
    Unchanged,
    /// The new env went to `copy` with flags byte `flags` (`None` for a single copy).
    Written {
        /// Copy index written.
        copy: usize,
        /// Its flags byte.
        flags: Option<u8>,
    },
}

/// Options for [`UbootStore::apply`].
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions<'d> {
    /// Tail bytes behind the terminator.
    pub tail: Tail,
    /// When no copy is valid: start from this env instead of failing. `None` (the default)
    /// makes [`EnvError::NoValidCopy`] an error.
    pub defaults: Option<Env<'d>>,
    /// Allow rewriting a single-copy env in place.
    pub allow_single_copy_write: bool,
}

impl Default for ApplyOptions<'_> {
    fn default() -> Self {
        Self {
            tail: Tail::LikeFwSetenv,
            defaults: None,
            allow_single_copy_write: false,
        }
    }
}

/// A U-Boot environment on one or two [`CopyLocation`]s.
#[derive(Debug)]
pub struct UbootStore<S> {
    /// The image format.
    pub format: EnvFormat,
    /// Copy 0.
    pub copy0: CopyLocation<S>,
    /// Copy 1 (redundant layout only).
    pub copy1: Option<CopyLocation<S>>,
}

impl<S: Storage> UbootStore<S> {
    fn loc(&mut self, copy: usize) -> Option<&mut CopyLocation<S>> {
        if copy == 0 {
            Some(&mut self.copy0)
        } else {
            self.copy1.as_mut()
        }
    }

    /// Reads the raw copies into `buf` (`copies × copy_size` bytes).
    pub fn read_raw(&mut self, buf: &mut [u8]) -> Result<(), StoreError<S::Error>> {
        let size = self.format.copy_size;
        let n = self.format.copies();
        let needed = n.saturating_mul(size);
        if buf.len() < needed {
            return Err(StoreError::BufferTooSmall { needed });
        }
        for copy in 0..n {
            let dst = &mut buf[copy * size..(copy + 1) * size];
            let loc = self
                .loc(copy)
                .ok_or(StoreError::Env(EnvError::NoValidCopy))?;
            loc.storage
                .read(loc.offset, dst)
                .map_err(|err| StoreError::Io {
                    op: "read",
                    copy,
                    err,
                })?;
        }
        Ok(())
    }

    /// Reads and decodes the env. `buf` must hold all copies (`copies × copy_size` bytes); the
    /// returned image borrows it.
    pub fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Image<'b>, StoreError<S::Error>> {
        self.read_raw(buf)?;
        let size = self.format.copy_size;
        let buf: &'b [u8] = buf;
        let (c0, c1) = match self.format.layout {
            Layout::Single => (&buf[..size], &buf[..size]),
            Layout::Redundant => (&buf[..size], &buf[size..2 * size]),
        };
        Ok(decode(&self.format, c0, c1)?)
    }

    /// Applies every change in one write of the non-current copy, then syncs.
    ///
    /// `scratch` must hold `(copies + 1) × copy_size` bytes. A full env, an invalid name, or no
    /// valid copy (without `defaults`) is an error **before anything is written**.
    pub fn apply<'c, I>(
        &mut self,
        changes: I,
        opts: &ApplyOptions<'_>,
        scratch: &mut [u8],
    ) -> Result<Applied, StoreError<S::Error>>
    where
        I: Iterator<Item = Change<'c>> + Clone,
    {
        let fmt = self.format;
        let size = fmt.copy_size;
        let n = fmt.copies();
        let needed = (n + 1).saturating_mul(size);
        if scratch.len() < needed {
            return Err(StoreError::BufferTooSmall { needed });
        }
        if fmt.layout == Layout::Single && !opts.allow_single_copy_write {
            return Err(StoreError::UnsafeSingleCopy);
        }
        let (raw, out) = scratch.split_at_mut(n * size);
        let out = &mut out[..size];
        self.read_raw(raw)?;
        let copy0 = &raw[..size];
        let copy1 = if n == 2 { &raw[size..2 * size] } else { copy0 };
        let (target, flags) = match decode(&fmt, copy0, copy1) {
            Ok(img) => {
                if is_noop(&img.env, changes.clone()) {
                    return Ok(Applied::Unchanged);
                }
                let t = build_copy(&fmt, Some(&img), copy0, changes, opts.tail, out)?;
                (t, img)
            }
            Err(EnvError::NoValidCopy) => {
                let Some(defaults) = opts.defaults else {
                    return Err(EnvError::NoValidCopy.into());
                };
                // Build on the defaults as if they were the (invalid) copy 0.
                let fake = Image {
                    format: fmt,
                    status: [super::CopyStatus {
                        crc_ok: false,
                        flags: copy0.get(super::CRC_LEN).copied(),
                    }; 2],
                    current: 0,
                    env: defaults,
                };
                let t = build_copy(&fmt, Some(&fake), copy0, changes, opts.tail, out)?;
                (t, fake)
            }
            Err(e) => return Err(e.into()),
        };
        let old = flags.current;
        let new_flags = (fmt.layout == Layout::Redundant).then(|| out[super::CRC_LEN]);
        self.write_copy(target, out)?;
        if fmt.layout == Layout::Redundant
            && fmt.flags == FlagScheme::Boolean
            && flags.status[old].crc_ok
        {
            // Mark the old copy obsolete: clears bits only, no erase needed.
            let loc = self
                .loc(old)
                .ok_or(StoreError::Env(EnvError::NoValidCopy))?;
            let at = loc.offset + super::CRC_LEN as u64;
            loc.storage.write(at, &[0]).map_err(|err| StoreError::Io {
                op: "write obsolete flag",
                copy: old,
                err,
            })?;
            loc.storage.sync().map_err(|err| StoreError::Io {
                op: "sync",
                copy: old,
                err,
            })?;
        }
        Ok(Applied::Written {
            copy: target,
            flags: new_flags,
        })
    }

    /// Erases (if the medium needs it), writes and syncs one whole copy.
    pub fn write_copy(&mut self, copy: usize, data: &[u8]) -> Result<(), StoreError<S::Error>> {
        let size = self.format.copy_size as u64;
        let loc = self
            .loc(copy)
            .ok_or(StoreError::Env(EnvError::NoValidCopy))?;
        if let Some(es) = loc.storage.erase_size().filter(|&e| e > 0) {
            if loc.offset % es != 0 {
                return Err(StoreError::Misaligned { copy });
            }
            if !size.is_multiple_of(es) {
                return Err(StoreError::PartialEraseBlock {
                    copy,
                    erase_size: es,
                });
            }
            let len = size;
            loc.storage
                .erase(loc.offset, len)
                .map_err(|err| StoreError::Io {
                    op: "erase",
                    copy,
                    err,
                })?;
        }
        loc.storage
            .write(loc.offset, data)
            .map_err(|err| StoreError::Io {
                op: "write",
                copy,
                err,
            })?;
        loc.storage.sync().map_err(|err| StoreError::Io {
            op: "sync",
            copy,
            err,
        })?;
        Ok(())
    }
}

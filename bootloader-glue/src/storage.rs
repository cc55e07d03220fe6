//! The medium every store writes to: a byte-addressed device that may need erasing first.
//!
//! Files and block devices need no erase (`erase_size() == None`); NOR flash needs a sector
//! erase before any bit can go from 0 back to 1. The power-cut doubles in the tests implement
//! this trait and enforce those rules.

use core::fmt;

/// A byte-addressed medium (file, block device, flash partition, RAM double).
pub trait Storage {
    /// The medium's own error type.
    type Error: fmt::Debug + fmt::Display;
    /// Reads `buf.len()` bytes at `offset`.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes (programs) `data` at `offset`. On erasable media the range must be erased first,
    /// except that clearing bits (1 → 0) is always allowed.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error>;
    /// Erases `len` bytes at `offset` (to 0xFF). Only called when `erase_size()` is `Some`, with
    /// ranges aligned to it.
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), Self::Error>;
    /// Makes every earlier write durable (fsync).
    fn sync(&mut self) -> Result<(), Self::Error>;
    /// The erase block size, or `None` for media that can be rewritten in place.
    fn erase_size(&self) -> Option<u64>;
}

/// A `Storage` over a caller-owned byte slice (no erase needed). Useful for tooling that already
/// has the image in memory, and for tests.
#[derive(Debug)]
pub struct SliceStorage<'a> {
    bytes: &'a mut [u8],
}

impl<'a> SliceStorage<'a> {
    /// Wraps `bytes`.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Self { bytes }
    }
    /// The current contents.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }
}

/// Access outside a [`SliceStorage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange {
    /// Requested offset.
    pub offset: u64,
    /// Requested length.
    pub len: usize,
    /// Size of the medium.
    pub size: usize,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "access of {} bytes at offset {:#x} is outside the {}-byte medium",
            self.len, self.offset, self.size
        )
    }
}

impl SliceStorage<'_> {
    fn range(&self, offset: u64, len: usize) -> Result<core::ops::Range<usize>, OutOfRange> {
        let err = OutOfRange {
            offset,
            len,
            size: self.bytes.len(),
        };
        let start = usize::try_from(offset).map_err(|_| err)?;
        let end = start.checked_add(len).ok_or(err)?;
        if end > self.bytes.len() {
            return Err(err);
        }
        Ok(start..end)
    }
}

impl Storage for SliceStorage<'_> {
    type Error = OutOfRange;
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let r = self.range(offset, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), OutOfRange> {
        let r = self.range(offset, data.len())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), OutOfRange> {
        let l = usize::try_from(len).unwrap_or(usize::MAX);
        let r = self.range(offset, l)?;
        self.bytes[r].fill(0xFF);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), OutOfRange> {
        Ok(())
    }
    fn erase_size(&self) -> Option<u64> {
        None
    }
}

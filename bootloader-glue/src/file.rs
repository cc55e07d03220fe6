//! File and block-device access (feature `std`): the codecs of this crate on real paths.
//!
//! * U-Boot: [`UbootFile::open`] reads a `fw_env.config` (libubootenv rules) and opens the
//!   copies it names. MTD/UBI devices are refused with a clear error (use files or block
//!   devices, e.g. eMMC partitions).
//! * GRUB: [`GrubFile`] rewrites the block through a temporary file, fsync and rename, then
//!   fsyncs the directory (safer than `grub-editenv`, which truncates and rewrites in place).
//! * Barebox: [`BareboxFile`] opens a state description (dtb) and a storage file.
#![allow(clippy::std_instead_of_core)]

use crate::Change;
use crate::barebox::{self, StateDesc};
use crate::grub;
use crate::storage::Storage;
use crate::uboot::config::{self, FwEnvConfig};
use crate::uboot::store::{Applied, ApplyOptions, CopyLocation, StoreError, UbootStore};
use crate::uboot::{self, CrcEndian, EnvFormat, FlagScheme, Layout, Tail};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Largest U-Boot env copy accepted from a `fw_env.config` (buffers are allocated per copy).
pub const MAX_ENV_SIZE: usize = 16 << 20;

/// Largest grubenv, dtb or `fw_env.config` read into memory (a misconfigured path, e.g. a whole
/// disk, must not allocate its size).
pub const MAX_SMALL_FILE: u64 = 1 << 20;

/// Reads a small file whole; a larger one (or a device) is an error naming the limit.
fn read_small(path: &Path, what: &'static str) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let f = File::open(path).map_err(io_err(path, "open"))?;
    let mut b = Vec::new();
    f.take(MAX_SMALL_FILE + 1)
        .read_to_end(&mut b)
        .map_err(io_err(path, "read"))?;
    if b.len() as u64 > MAX_SMALL_FILE {
        return Err(FileError::Unsupported {
            path: path.to_path_buf(),
            why: what,
        });
    }
    Ok(b)
}

/// A file or block device as a [`Storage`] (no erase; `sync` = fsync).
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    writable: bool,
    path: PathBuf,
}

impl FileStorage {
    /// Opens `path` read-only.
    pub fn open_read(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            writable: false,
            path: path.to_path_buf(),
        })
    }
    /// Opens `path` for reading and writing.
    pub fn open_rw(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: OpenOptions::new().read(true).write(true).open(path)?,
            writable: true,
            path: path.to_path_buf(),
        })
    }
    /// Size in bytes (works for block devices too).
    pub fn size(&mut self) -> io::Result<u64> {
        self.file.seek(SeekFrom::End(0))
    }
    /// What the path names, whatever path reached it: the device number for a block device,
    /// else the filesystem's (device, inode).
    fn identity(&self) -> io::Result<(bool, u64, u64)> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = self.file.metadata()?;
        Ok(if m.file_type().is_block_device() {
            (true, m.rdev(), 0)
        } else {
            (false, m.dev(), m.ino())
        })
    }
}

impl Storage for FileStorage {
    type Error = io::Error;
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{} ends before {:#x} (offset {offset:#x} + {:#x} bytes); check the offset and size in the configuration",
                        self.path.display(),
                        offset + buf.len() as u64,
                        buf.len()
                    ),
                )
            } else {
                e
            }
        })
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} could not be opened for writing (read-only medium, missing permission, or eMMC boot partition with force_ro)",
                    self.path.display()
                ),
            ));
        }
        self.file.write_all_at(data, offset)
    }
    fn erase(&mut self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }
    fn erase_size(&self) -> Option<u64> {
        None
    }
}

/// Errors of the file layer: what failed, on which path.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileError {
    /// Reading or writing a path failed.
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        err: io::Error,
    },
    /// `fw_env.config` is malformed (`path:line: …`).
    Config {
        /// The config path.
        path: PathBuf,
        /// The parse error (with its line).
        err: config::ConfigError,
    },
    /// The device type is not supported for writing.
    Unsupported {
        /// The device path.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// A negative offset points before the start of the device.
    OffsetOutOfRange {
        /// The device path.
        path: PathBuf,
        /// The configured offset.
        offset: i64,
    },
    /// U-Boot env error.
    Uboot {
        /// The config or image path.
        path: PathBuf,
        /// The store error.
        err: StoreError<io::Error>,
    },
    /// GRUB env error.
    Grub {
        /// The grubenv path.
        path: PathBuf,
        /// The codec error.
        err: grub::GrubError,
    },
    /// Barebox state error.
    Barebox {
        /// The dtb or storage path.
        path: PathBuf,
        /// The codec error.
        err: barebox::StateError,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, op, err } => write!(f, "{}: {op} failed: {err}", path.display()),
            Self::Config { path, err } => {
                if err.line > 0 {
                    write!(f, "{}:{}: {}", path.display(), err.line, ErrNoLine(err))
                } else {
                    write!(f, "{}: {err}", path.display())
                }
            }
            Self::Unsupported { path, why } => write!(f, "{}: {why}", path.display()),
            Self::OffsetOutOfRange { path, offset } => {
                write!(
                    f,
                    "{}: offset {offset} (from the end) is before the start of the device; check fw_env.config",
                    path.display()
                )
            }
            Self::Uboot { path, err } => write!(f, "{}: {err}", path.display()),
            Self::Grub { path, err } => write!(f, "{}: {err}", path.display()),
            Self::Barebox { path, err } => write!(f, "{}: {err}", path.display()),
        }
    }
}

struct ErrNoLine<'a>(&'a config::ConfigError);
impl fmt::Display for ErrNoLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        config::ConfigError {
            line: 0,
            kind: self.0.kind,
        }
        .fmt(f)
    }
}

impl std::error::Error for FileError {}

fn io_err<'p>(path: &'p Path, op: &'static str) -> impl FnOnce(io::Error) -> FileError + 'p {
    move |err| FileError::Io {
        path: path.to_path_buf(),
        op,
        err,
    }
}

/// Options for opening a U-Boot env.
#[derive(Debug, Clone, Copy)]
pub struct UbootOptions {
    /// Byte order of the CRC.
    pub endian: CrcEndian,
    /// Allow rewriting a single-copy env in place (not power-cut safe).
    pub allow_single_copy_write: bool,
    /// What goes behind the terminator.
    pub tail: Tail,
}

impl Default for UbootOptions {
    fn default() -> Self {
        Self {
            endian: CrcEndian::Little,
            allow_single_copy_write: false,
            tail: Tail::LikeFwSetenv,
        }
    }
}

/// A U-Boot env described by a `fw_env.config`.
#[derive(Debug)]
pub struct UbootFile {
    config_path: PathBuf,
    store: UbootStore<FileStorage>,
    opts: UbootOptions,
}

/// The variables of an env, in stored order (last duplicate wins in [`Vars::get`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(pub Vec<(String, String)>);

impl Vars {
    /// The value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl UbootFile {
    /// Opens the copies named by the `fw_env.config` at `config_path`.
    pub fn open(config_path: &Path, opts: UbootOptions) -> Result<Self, FileError> {
        let text = read_small(
            config_path,
            "fw_env.config is larger than 1 MiB; check that this path names the config file, not the env device",
        )?;
        let text = std::str::from_utf8(&text).map_err(|_| FileError::Config {
            path: config_path.to_path_buf(),
            err: config::ConfigError {
                line: 0,
                kind: config::ConfigErrorKind::NotUtf8,
            },
        })?;
        let cfg = config::parse(text).map_err(|err| FileError::Config {
            path: config_path.to_path_buf(),
            err,
        })?;
        Self::from_config(config_path, &cfg, opts)
    }

    /// Opens the copies of an already parsed config.
    pub fn from_config(
        config_path: &Path,
        cfg: &FwEnvConfig<'_>,
        opts: UbootOptions,
    ) -> Result<Self, FileError> {
        let mut locs = Vec::new();
        for dev in cfg.devices() {
            let path = PathBuf::from(dev.path);
            if dev.is_mtd() || dev.is_ubi() {
                return Err(FileError::Unsupported {
                    path,
                    why: "MTD/UBI env devices are not supported by eyas yet (files and block devices are); keep using fw_setenv there",
                });
            }
            let mut st = FileStorage::open_rw(&path)
                .or_else(|_| FileStorage::open_read(&path))
                .map_err(io_err(&path, "open"))?;
            let offset = if dev.offset < 0 {
                let size = st.size().map_err(io_err(&path, "size"))?;
                size.checked_sub(dev.offset.unsigned_abs())
                    .ok_or(FileError::OffsetOutOfRange {
                        path: path.clone(),
                        offset: dev.offset,
                    })?
            } else {
                dev.offset.unsigned_abs()
            };
            locs.push(CopyLocation {
                storage: st,
                offset,
            });
        }
        let size = usize::try_from(cfg.first.env_size)
            .ok()
            .filter(|&s| s <= MAX_ENV_SIZE)
            .ok_or_else(|| FileError::Unsupported {
                path: config_path.to_path_buf(),
                why: "env size is larger than 16 MiB; check the size column of fw_env.config (it is hex)",
            })?;
        if let [a, b] = locs.as_slice() {
            let same = a.storage.identity().map_err(io_err(config_path, "stat"))?
                == b.storage.identity().map_err(io_err(config_path, "stat"))?;
            let size64 = size as u64;
            let overlap = a.offset < b.offset.saturating_add(size64)
                && b.offset < a.offset.saturating_add(size64);
            if same && overlap {
                return Err(FileError::Unsupported {
                    path: config_path.to_path_buf(),
                    why: "the two env copies overlap on the same device, so writing one would destroy the other; fix the offsets in fw_env.config (copy 1 must start at least env_size after copy 0)",
                });
            }
        }
        let mut it = locs.into_iter();
        let copy0 = it.next().ok_or(FileError::Config {
            path: config_path.to_path_buf(),
            err: config::ConfigError {
                line: 0,
                kind: config::ConfigErrorKind::NoDevice,
            },
        })?;
        let copy1 = it.next();
        let layout = if copy1.is_some() {
            Layout::Redundant
        } else {
            Layout::Single
        };
        let format = EnvFormat {
            layout,
            copy_size: size,
            endian: opts.endian,
            flags: FlagScheme::Incremental,
        };
        Ok(Self {
            config_path: config_path.to_path_buf(),
            store: UbootStore {
                format,
                copy0,
                copy1,
            },
            opts,
        })
    }

    /// The format in use.
    #[must_use]
    pub fn format(&self) -> EnvFormat {
        self.store.format
    }

    fn err(&self, err: StoreError<io::Error>) -> FileError {
        FileError::Uboot {
            path: self.config_path.clone(),
            err,
        }
    }

    /// Reads the current copy's variables. No valid copy is an error.
    pub fn read(&mut self) -> Result<Vars, FileError> {
        let mut buf = vec![0u8; self.store.format.copies() * self.store.format.copy_size];
        let img = self.store.load(&mut buf).map_err(|e| FileError::Uboot {
            path: self.config_path.clone(),
            err: e,
        })?;
        Ok(Vars(
            img.env
                .iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(n).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
        ))
    }

    /// Applies all `changes` in one write of the non-current copy, then fsync.
    pub fn apply(&mut self, changes: &[Change<'_>]) -> Result<Applied, FileError> {
        self.apply_with_defaults(changes, None)
    }

    /// Like [`Self::apply`], but when no copy is valid, starts from `defaults`
    /// (`name=value` pairs) instead of failing.
    pub fn apply_with_defaults(
        &mut self,
        changes: &[Change<'_>],
        defaults: Option<&[(&str, &str)]>,
    ) -> Result<Applied, FileError> {
        let fmt = self.store.format;
        let mut scratch = vec![0u8; (fmt.copies() + 1) * fmt.copy_size];
        let mut dbuf = Vec::new();
        if let Some(d) = defaults {
            for (n, v) in d {
                dbuf.extend_from_slice(n.as_bytes());
                dbuf.push(b'=');
                dbuf.extend_from_slice(v.as_bytes());
                dbuf.push(0);
            }
            dbuf.push(0);
        }
        let defaults_env = if defaults.is_some() {
            Some(uboot::Env::parse(&dbuf).map_err(|e| self.err(StoreError::Env(e)))?)
        } else {
            None
        };
        let opts = ApplyOptions {
            tail: self.opts.tail,
            defaults: defaults_env,
            allow_single_copy_write: self.opts.allow_single_copy_write,
        };
        let r = self
            .store
            .apply(changes.iter().copied(), &opts, &mut scratch);
        r.map_err(|e| self.err(e))
    }
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory.
///
/// When `path` is a symlink (e.g. `/boot/grub2/grubenv -> ../efi/EFI/<os>/grubenv`), the file it
/// points to is replaced, not the link: renaming over the link would leave the bootloader reading
/// the old target. The replaced file keeps its permission bits.
pub fn replace_file(path: &Path, data: &[u8]) -> Result<(), FileError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let (resolved, mode) = match std::fs::canonicalize(path) {
        Ok(real) => {
            let meta = std::fs::metadata(&real).map_err(io_err(&real, "stat"))?;
            (real, Some(meta.permissions().mode() & 0o7777))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (path.to_path_buf(), None),
        Err(e) => return Err(io_err(path, "resolve")(e)),
    };
    let path = resolved.as_path();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.eyas-tmp"));
    let mut f = File::create(&tmp).map_err(io_err(&tmp, "create"))?;
    if let Some(mode) = mode {
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io_err(&tmp, "chmod"))?;
    }
    f.write_all(data).map_err(io_err(&tmp, "write"))?;
    f.sync_all().map_err(io_err(&tmp, "fsync"))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path, "rename"))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync directory"))?;
    Ok(())
}

const GRUBENV_TOO_LARGE: &str = "the GRUB environment block is larger than 1 MiB (GRUB's is 1024 bytes); check that grubenv names the grubenv file, not a disk";

/// A `grubenv` file.
#[derive(Debug, Clone)]
pub struct GrubFile {
    path: PathBuf,
}

impl GrubFile {
    /// Uses the block at `path`.
    #[must_use]
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// Reads the block and its variables (values unescaped).
    pub fn read(&self) -> Result<Vars, FileError> {
        let b = read_small(&self.path, GRUBENV_TOO_LARGE)?;
        let env = grub::GrubEnv::parse(&b).map_err(|err| FileError::Grub {
            path: self.path.clone(),
            err,
        })?;
        Ok(Vars(
            env.iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(n).into_owned(),
                        String::from_utf8_lossy(&v.bytes().collect::<Vec<u8>>()).into_owned(),
                    )
                })
                .collect(),
        ))
    }

    /// Applies all changes: temporary file + fsync + rename. Returns `false` when nothing
    /// changed (then nothing is written).
    pub fn apply(&self, changes: &[Change<'_>]) -> Result<bool, FileError> {
        let b = read_small(&self.path, GRUBENV_TOO_LARGE)?;
        let mut out = vec![0u8; b.len()];
        let changed =
            grub::apply(&b, changes.iter().copied(), &mut out).map_err(|err| FileError::Grub {
                path: self.path.clone(),
                err,
            })?;
        if changed {
            replace_file(&self.path, &out)?;
        }
        Ok(changed)
    }
}

/// A Barebox state: its description (from a dtb) and its storage file.
#[derive(Debug)]
pub struct BareboxFile {
    dtb_path: PathBuf,
    storage_path: PathBuf,
    desc: StateDesc,
}

impl BareboxFile {
    /// Reads the `barebox,state` node named `state_name` (alias; `None` = `state`) from the dtb
    /// at `dtb_path`; the buckets live in `storage_path` at the partition's start.
    pub fn open(
        dtb_path: &Path,
        state_name: Option<&str>,
        storage_path: &Path,
    ) -> Result<Self, FileError> {
        let dtb = read_small(
            dtb_path,
            "the barebox state dtb is larger than 1 MiB; check that barebox-dtb names the dtb, not the state partition",
        )?;
        let desc = StateDesc::from_dtb(&dtb, state_name).map_err(|err| FileError::Barebox {
            path: dtb_path.to_path_buf(),
            err,
        })?;
        Ok(Self {
            dtb_path: dtb_path.to_path_buf(),
            storage_path: storage_path.to_path_buf(),
            desc,
        })
    }

    /// The state description.
    #[must_use]
    pub fn desc(&self) -> &StateDesc {
        &self.desc
    }

    /// The dtb path.
    #[must_use]
    pub fn dtb_path(&self) -> &Path {
        &self.dtb_path
    }

    fn serr(&self, err: barebox::StateError) -> FileError {
        FileError::Barebox {
            path: self.storage_path.clone(),
            err,
        }
    }

    /// Loads the values: from the first valid bucket, or the defaults when `use_defaults` and no
    /// bucket is valid. Does not repair other buckets (reads never write).
    pub fn read(&self) -> Result<barebox::Values, FileError> {
        let mut st = FileStorage::open_read(&self.storage_path)
            .map_err(io_err(&self.storage_path, "open"))?;
        let mut buf = vec![0u8; self.desc.stride as usize];
        match barebox::load(&self.desc, &mut st, &mut buf) {
            Ok(l) => Ok(l.values),
            Err(barebox::LoadError::Io(e)) => Err(io_err(&self.storage_path, "read")(e)),
            Err(barebox::LoadError::State(e)) => Err(self.serr(e)),
        }
    }

    /// Loads like barebox/dt-utils do: the first valid bucket, or the defaults when every bucket
    /// is empty or invalid (no meta data header found).
    pub fn read_or_defaults(&self) -> Result<barebox::Values, FileError> {
        match self.read() {
            Err(FileError::Barebox {
                err: barebox::StateError::NoValidBucket,
                ..
            }) => Ok(self.desc.defaults()),
            r => r,
        }
    }

    /// Applies `changes` (`name` = dotted variable name without the state name, e.g.
    /// `bootstate.system0.priority`; decimal values) to the current values (or defaults) and
    /// saves all buckets (in reverse order), each synced.
    ///
    /// Like `barebox-state -s`, a storage without any valid bucket gets the full state (defaults
    /// plus changes) written even when the changes alter nothing; a valid storage whose values
    /// would not change is not written.
    pub fn apply(&self, changes: &[Change<'_>]) -> Result<barebox::Values, FileError> {
        let (mut values, stored) = match self.read() {
            Ok(v) => (v, true),
            Err(FileError::Barebox {
                err: barebox::StateError::NoValidBucket,
                ..
            }) => (self.desc.defaults(), false),
            Err(e) => return Err(e),
        };
        let before = values.clone();
        for (n, v) in changes {
            self.desc
                .set(&mut values, n, *v)
                .map_err(|e| self.serr(e))?;
        }
        if stored && values == before {
            return Ok(values);
        }
        let mut st =
            FileStorage::open_rw(&self.storage_path).map_err(io_err(&self.storage_path, "open"))?;
        let mut buf = vec![0u8; self.desc.stride as usize];
        barebox::save(&self.desc, &values, &mut st, &mut buf).map_err(|e| match e {
            barebox::SaveError::Io(e) => io_err(&self.storage_path, "write")(e),
            barebox::SaveError::State(e) => self.serr(e),
        })?;
        Ok(values)
    }
}

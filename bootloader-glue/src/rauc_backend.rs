//! RAUC's custom bootloader backend protocol (`[handlers] bootloader-custom-backend=`), backed by
//! eyas's one-write transitions from `eyas_core::slots`.
//!
//! | call | output | what is written |
//! |---|---|---|
//! | `get-primary` | bootname of the primary slot | nothing |
//! | `set-primary <bn>` | – | `slots::mark_active`, one write |
//! | `get-state <bn>` | `good` or `bad` | nothing |
//! | `set-state <bn> good` | – | `slots::mark_good`, one write |
//! | `set-state <bn> bad` | – | `slots::mark_bad`, one write (refused for the last bootable slot; see `reset-when-exhausted`) |
//! | `get-current` | booted bootname from the kernel command line | nothing |
//!
//! Exit code 0 on success, 1 on any error (message on stderr), 2 on a usage error. Reads never
//! write. RAUC passes only the verb and its arguments, so the backend's own settings come from a
//! file: [`BackendConfig::load_default`] reads `$EYAS_BOOTLOADER_CONF`, or
//! `/etc/eyas/bootloader.conf` (format in the crate README).
#![allow(clippy::std_instead_of_core)]

use crate::file::{BareboxFile, FileError, GrubFile, UbootFile, UbootOptions, Vars};
use crate::uboot::{CrcEndian, Tail};
use eyas_core::slots::{Backend, BootState, Booted, Config, Transition};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Default configuration path.
pub const DEFAULT_CONF: &str = "/etc/eyas/bootloader.conf";
/// Environment variable overriding [`DEFAULT_CONF`].
pub const CONF_ENV: &str = "EYAS_BOOTLOADER_CONF";
/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a failed operation.
pub const EXIT_ERROR: i32 = 1;
/// Exit code for a usage error.
pub const EXIT_USAGE: i32 = 2;

/// Where the boot state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// A U-Boot environment described by a `fw_env.config`.
    Uboot {
        /// Path of the `fw_env.config` (default `/etc/fw_env.config`).
        fw_env_config: PathBuf,
        /// CRC byte order.
        endian: CrcEndian,
        /// Allow in-place rewrites of a single-copy env (not power-cut safe).
        allow_single_copy_write: bool,
    },
    /// A GRUB environment block.
    Grub {
        /// Path of the `grubenv` (default `/boot/grub/grubenv`).
        grubenv: PathBuf,
    },
    /// A Barebox state.
    Barebox {
        /// The dtb holding the `barebox,state` node.
        dtb: PathBuf,
        /// The state's alias name (default `state`).
        state_name: Option<String>,
        /// The file or partition holding the buckets (at offset 0).
        storage: PathBuf,
    },
}

/// The backend's configuration (see the crate README for the file format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// Where the state lives.
    pub storage: Storage,
    /// Slot bootnames, in `global.bootchooser.targets` order for Barebox.
    pub bootnames: Vec<String>,
    /// Attempts written by mark-good.
    pub boot_attempts: u32,
    /// Attempts written by mark-active.
    pub boot_attempts_primary: u32,
    /// Whether the bootloader resets the counters when every slot is exhausted
    /// (`reset-when-exhausted`; `eyas_core::slots::Config::reset_when_exhausted`). Default: the
    /// bootloader's own behaviour, yes for U-Boot and GRUB (their reference scripts), no for
    /// Barebox (set yes only if `global.bootchooser.reset_attempts` contains `all-zero`).
    pub reset_when_exhausted: bool,
    /// Where `get-current` reads the kernel command line (default `/proc/cmdline`).
    pub cmdline: PathBuf,
}

/// A configuration error: `path:line: what`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    /// The config file.
    pub path: PathBuf,
    /// 1-based line (0 = the file as a whole).
    pub line: usize,
    /// What is wrong and what to do.
    pub msg: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.msg)
        } else {
            write!(f, "{}: {}", self.path.display(), self.msg)
        }
    }
}

impl std::error::Error for ConfError {}

impl BackendConfig {
    /// Reads `$EYAS_BOOTLOADER_CONF`, else [`DEFAULT_CONF`].
    pub fn load_default() -> Result<Self, ConfError> {
        let p =
            std::env::var_os(CONF_ENV).map_or_else(|| PathBuf::from(DEFAULT_CONF), PathBuf::from);
        Self::load(&p)
    }

    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfError {
            path: path.to_path_buf(),
            line: 0,
            msg: format!("cannot read the eyas bootloader config: {e} (set {CONF_ENV} or create {DEFAULT_CONF})"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses `key = value` lines (`#` comments, blank lines ignored).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfError> {
        let err = |line: usize, msg: String| ConfError {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let mut kv: Vec<(usize, String, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                return Err(err(i + 1, format!("expected `key = value`, got `{l}`")));
            };
            let k = k.trim().to_string();
            if kv.iter().any(|(_, kk, _)| *kk == k) {
                return Err(err(i + 1, format!("`{k}` is set twice")));
            }
            kv.push((i + 1, k, v.trim().to_string()));
        }
        let get = |k: &str| {
            kv.iter()
                .find(|(_, kk, _)| kk == k)
                .map(|(l, _, v)| (*l, v.clone()))
        };
        const KNOWN: [&str; 13] = [
            "bootloader",
            "bootnames",
            "boot-attempts",
            "boot-attempts-primary",
            "reset-when-exhausted",
            "fw-env-config",
            "crc-endian",
            "allow-single-copy-write",
            "grubenv",
            "barebox-dtb",
            "barebox-state-name",
            "barebox-storage",
            "cmdline",
        ];
        if let Some((l, k, _)) = kv.iter().find(|(_, k, _)| !KNOWN.contains(&k.as_str())) {
            return Err(err(
                *l,
                format!("unknown key `{k}` (known: {})", KNOWN.join(", ")),
            ));
        }
        let num =
            |k: &str| -> Result<u32, ConfError> {
                match get(k) {
                    None => Ok(eyas_core::slots::DEFAULT_BOOT_ATTEMPTS),
                    Some((l, v)) => v.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        err(l, format!("`{k}` must be a positive number, got `{v}`"))
                    }),
                }
            };
        let path_of = |k: &str, default: Option<&str>| -> Result<PathBuf, ConfError> {
            get(k)
                .map(|(_, v)| v)
                .or(default.map(str::to_string))
                .map(PathBuf::from)
                .ok_or_else(|| err(0, format!("`{k}` is required for this bootloader")))
        };
        let (bl_line, bl) = get("bootloader").ok_or_else(|| {
            err(
                0,
                "`bootloader` is required (uboot, barebox or grub)".into(),
            )
        })?;
        let storage = match bl.as_str() {
            "uboot" => {
                let endian = match get("crc-endian") {
                    None => CrcEndian::Little,
                    Some((_, v)) if v == "little" => CrcEndian::Little,
                    Some((_, v)) if v == "big" => CrcEndian::Big,
                    Some((l, v)) => {
                        return Err(err(
                            l,
                            format!("`crc-endian` must be little or big, got `{v}`"),
                        ));
                    }
                };
                let allow = match get("allow-single-copy-write") {
                    None => false,
                    Some((_, v)) if v == "yes" || v == "true" => true,
                    Some((_, v)) if v == "no" || v == "false" => false,
                    Some((l, v)) => {
                        return Err(err(
                            l,
                            format!("`allow-single-copy-write` must be yes or no, got `{v}`"),
                        ));
                    }
                };
                Storage::Uboot {
                    fw_env_config: path_of("fw-env-config", Some("/etc/fw_env.config"))?,
                    endian,
                    allow_single_copy_write: allow,
                }
            }
            "grub" => Storage::Grub {
                grubenv: path_of("grubenv", Some("/boot/grub/grubenv"))?,
            },
            "barebox" => Storage::Barebox {
                dtb: path_of("barebox-dtb", None)?,
                state_name: get("barebox-state-name").map(|(_, v)| v),
                storage: path_of("barebox-storage", None)?,
            },
            other => {
                return Err(err(
                    bl_line,
                    format!("unknown bootloader `{other}` (uboot, barebox or grub)"),
                ));
            }
        };
        let backend = match storage {
            Storage::Uboot { .. } => Backend::UBoot,
            Storage::Grub { .. } => Backend::Grub,
            Storage::Barebox { .. } => Backend::Barebox,
        };
        let reset_when_exhausted = match get("reset-when-exhausted") {
            None => Config::new(backend).reset_when_exhausted,
            Some((_, v)) if v == "yes" || v == "true" => true,
            Some((_, v)) if v == "no" || v == "false" => false,
            Some((l, v)) => {
                return Err(err(
                    l,
                    format!("`reset-when-exhausted` must be yes or no, got `{v}`"),
                ));
            }
        };
        let (bn_line, bn) = get("bootnames")
            .ok_or_else(|| err(0, "`bootnames` is required, e.g. `bootnames = A B`".into()))?;
        let bootnames: Vec<String> = bn.split_whitespace().map(str::to_string).collect();
        let cfg = Self {
            storage,
            bootnames,
            boot_attempts: num("boot-attempts")?,
            boot_attempts_primary: num("boot-attempts-primary")?,
            reset_when_exhausted,
            cmdline: path_of("cmdline", Some("/proc/cmdline"))?,
        };
        // Validate the bootnames the way slots does.
        let names: Vec<&str> = cfg.bootnames.iter().map(String::as_str).collect();
        BootState::initial(cfg.slots_config(), &names)
            .map_err(|e| err(bn_line, format!("bootnames: {e}")))?;
        Ok(cfg)
    }

    /// The `slots` configuration.
    #[must_use]
    pub fn slots_config(&self) -> Config {
        let backend = match self.storage {
            Storage::Uboot { .. } => Backend::UBoot,
            Storage::Grub { .. } => Backend::Grub,
            Storage::Barebox { .. } => Backend::Barebox,
        };
        Config::new(backend)
            .with_attempts(self.boot_attempts, self.boot_attempts_primary)
            .with_reset_when_exhausted(self.reset_when_exhausted)
    }
}

/// Errors of one backend call.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendError {
    /// Storage access failed.
    File(FileError),
    /// The stored variables are not a valid boot state.
    State(eyas_core::slots::FromVarsError),
    /// A bootname that is not in `bootnames`.
    UnknownBootname(String),
    /// The operation was refused (e.g. marking the last bootable slot bad).
    Refused(&'static str),
    /// The kernel command line names no slot.
    NoCurrent(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(e) => e.fmt(f),
            Self::State(e) => write!(f, "stored boot state is invalid: {e}"),
            Self::UnknownBootname(b) => write!(
                f,
                "unknown bootname `{b}` (not in `bootnames` of the eyas bootloader config)"
            ),
            Self::Refused(why) => f.write_str(why),
            Self::NoCurrent(why) => write!(f, "cannot tell the booted slot: {why}"),
        }
    }
}

impl std::error::Error for BackendError {}

impl From<FileError> for BackendError {
    fn from(e: FileError) -> Self {
        Self::File(e)
    }
}

/// The configured store, opened.
enum Opened {
    Uboot(UbootFile),
    Grub(GrubFile),
    Barebox(Box<BareboxFile>),
}

impl Opened {
    fn open(cfg: &BackendConfig) -> Result<Self, BackendError> {
        Ok(match &cfg.storage {
            Storage::Uboot {
                fw_env_config,
                endian,
                allow_single_copy_write,
            } => Self::Uboot(UbootFile::open(
                fw_env_config,
                UbootOptions {
                    endian: *endian,
                    allow_single_copy_write: *allow_single_copy_write,
                    tail: Tail::LikeFwSetenv,
                },
            )?),
            Storage::Grub { grubenv } => Self::Grub(GrubFile::new(grubenv)),
            Storage::Barebox {
                dtb,
                state_name,
                storage,
            } => Self::Barebox(Box::new(BareboxFile::open(
                dtb,
                state_name.as_deref(),
                storage,
            )?)),
        })
    }

    fn vars(&mut self) -> Result<Vars, BackendError> {
        Ok(match self {
            Self::Uboot(u) => u.read()?,
            Self::Grub(g) => g.read()?,
            Self::Barebox(b) => {
                // Barebox itself boots with the defaults when no bucket is valid.
                let v = b.read_or_defaults()?;
                let d = b.desc();
                Vars(
                    d.vars
                        .iter()
                        .filter_map(|var| {
                            d.get(&v, &var.name)
                                .map(|n| (var.name.as_str().to_string(), n.to_string()))
                        })
                        .collect(),
                )
            }
        })
    }

    fn apply(&mut self, t: &Transition) -> Result<(), BackendError> {
        let changes: Vec<(&str, Option<&str>)> = t.changes().collect();
        if changes.is_empty() && !matches!(self, Self::Barebox(_)) {
            return Ok(());
        }
        match self {
            Self::Uboot(u) => {
                u.apply(&changes)?;
            }
            Self::Grub(g) => {
                g.apply(&changes)?;
            }
            Self::Barebox(b) => {
                b.apply(&changes)?;
            }
        }
        Ok(())
    }
}

/// Reads the boot state the way `eyas_core::slots` sees it.
pub fn read_state(cfg: &BackendConfig) -> Result<BootState, BackendError> {
    let mut st = Opened::open(cfg)?;
    let vars = st.vars()?;
    let names: Vec<&str> = cfg.bootnames.iter().map(String::as_str).collect();
    BootState::from_vars(cfg.slots_config(), &names, |n| vars.get(n)).map_err(BackendError::State)
}

/// Writes one `eyas_core::slots` transition (computed from [`read_state`]) in one write.
pub fn apply_transition(cfg: &BackendConfig, t: &Transition) -> Result<(), BackendError> {
    Opened::open(cfg)?.apply(t)
}

fn slot(cfg: &BackendConfig, state: &BootState, bn: &str) -> Result<usize, BackendError> {
    let _ = cfg;
    state
        .slot_index(bn)
        .ok_or_else(|| BackendError::UnknownBootname(bn.to_string()))
}

/// One backend operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// `get-primary`.
    GetPrimary,
    /// `set-primary <bn>`.
    SetPrimary(&'a str),
    /// `get-state <bn>`.
    GetState(&'a str),
    /// `set-state <bn> good|bad`.
    SetState(&'a str, bool),
    /// `get-current`.
    GetCurrent,
}

/// Parses RAUC's argv (without the program name).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Option<Op<'_>> {
    let a: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    Some(match a.as_slice() {
        ["get-primary"] => Op::GetPrimary,
        ["set-primary", bn] => Op::SetPrimary(bn),
        ["get-state", bn] => Op::GetState(bn),
        ["set-state", bn, "good"] => Op::SetState(bn, true),
        ["set-state", bn, "bad"] => Op::SetState(bn, false),
        ["get-current"] => Op::GetCurrent,
        _ => return None,
    })
}

/// Executes one operation; returns what to print on stdout (may be empty).
pub fn execute(op: Op<'_>, cfg: &BackendConfig) -> Result<String, BackendError> {
    if op == Op::GetCurrent {
        return current(cfg);
    }
    let mut store = Opened::open(cfg)?;
    let vars = store.vars()?;
    let names: Vec<&str> = cfg.bootnames.iter().map(String::as_str).collect();
    let state = BootState::from_vars(cfg.slots_config(), &names, |n| vars.get(n))
        .map_err(BackendError::State)?;
    match op {
        Op::GetPrimary => {
            let p = state.primary().ok_or(BackendError::Refused(
                "no slot is bootable, so there is no primary",
            ))?;
            Ok(state.bootname(p).unwrap_or_default().to_string())
        }
        Op::GetState(bn) => {
            let s = slot(cfg, &state, bn)?;
            Ok(if state.is_good(s) { "good" } else { "bad" }.to_string())
        }
        Op::SetPrimary(bn) => {
            let s = slot(cfg, &state, bn)?;
            let t = state
                .mark_active(s)
                .map_err(|_| BackendError::UnknownBootname(bn.to_string()))?;
            store.apply(&t)?;
            Ok(String::new())
        }
        Op::SetState(bn, true) => {
            let s = slot(cfg, &state, bn)?;
            let t = state
                .mark_good(s)
                .map_err(|_| BackendError::UnknownBootname(bn.to_string()))?;
            store.apply(&t)?;
            Ok(String::new())
        }
        Op::SetState(bn, false) => {
            let s = slot(cfg, &state, bn)?;
            let t = state.mark_bad(s).map_err(|e| match e {
                eyas_core::slots::MarkBadError::LastBootableSlot => {
                    BackendError::Refused("refusing to mark the last bootable slot bad: the bootloader could not boot anything afterwards")
                }
                _ => BackendError::UnknownBootname(bn.to_string()),
            })?;
            store.apply(&t)?;
            Ok(String::new())
        }
        Op::GetCurrent => current(cfg),
    }
}

/// `get-current`: the booted bootname from the kernel command line (does not read the state, so
/// it works even when the stored env is damaged).
fn current(cfg: &BackendConfig) -> Result<String, BackendError> {
    let names: Vec<&str> = cfg.bootnames.iter().map(String::as_str).collect();
    let state = BootState::initial(cfg.slots_config(), &names)
        .map_err(BackendError::State)?
        .into_state();
    let cmdline = std::fs::read_to_string(&cfg.cmdline)
        .map_err(|e| BackendError::NoCurrent(format!("{}: {e}", cfg.cmdline.display())))?;
    match state.booted_slot(&cmdline) {
        Ok(Booted::Slot(s)) => Ok(state.bootname(s).unwrap_or_default().to_string()),
        Ok(_) => Err(BackendError::NoCurrent(
            "the kernel command line says the system runs outside any slot (rauc.external / NFS root)".into(),
        )),
        Err(e) => Err(BackendError::NoCurrent(format!("{e:?} in {}", cfg.cmdline.display()))),
    }
}

/// RAUC's custom-backend entry point: `args` = verb and arguments (no program name). Prints the
/// answer on `stdout`, errors on `stderr`, returns the exit code.
pub fn run<S: AsRef<str>>(
    args: &[S],
    cfg: &BackendConfig,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let Some(op) = parse_args(args) else {
        let got: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let _ = writeln!(
            stderr,
            "eyas bootloader: unknown call {got:?}; expected get-primary | set-primary <bootname> | get-state <bootname> | set-state <bootname> good|bad | get-current"
        );
        return EXIT_USAGE;
    };
    match execute(op, cfg) {
        Ok(out) => {
            if !out.is_empty() && writeln!(stdout, "{out}").is_err() {
                return EXIT_ERROR;
            }
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(stderr, "eyas bootloader: {e}");
            EXIT_ERROR
        }
    }
}

/// Loads the config from `$EYAS_BOOTLOADER_CONF` / [`DEFAULT_CONF`] and calls [`run`] with the
/// process's stdout and stderr.
pub fn run_from_env<S: AsRef<str>>(args: &[S]) -> i32 {
    let mut err = std::io::stderr();
    match BackendConfig::load_default() {
        Ok(cfg) => run(args, &cfg, &mut std::io::stdout(), &mut err),
        Err(e) => {
            let _ = writeln!(err, "eyas bootloader: {e}");
            EXIT_ERROR
        }
    }
}

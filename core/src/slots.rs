//! A/B (…N) boot slots and boot-attempt accounting, with RAUC's semantics.
//!
//! This module is the single place where eyas decides what the bootloader variables must look like.
//! It models N ≥ 2 boot slots (each identified by its *bootname*, RAUC's `bootname=`) for three
//! bootloader backends, exactly as RAUC's backends and the reference boot scripts use them:
//!
//! | backend | variables | mark good | mark bad | mark active |
//! |---|---|---|---|---|
//! | [`Backend::UBoot`] | `BOOT_ORDER` (space separated), `BOOT_<bn>_LEFT` (**hex**) | `LEFT=attempts` | drop from `BOOT_ORDER`, `LEFT=0` | `LEFT=attempts_primary`, put first in `BOOT_ORDER` |
//! | [`Backend::Barebox`] | `bootstate.<bn>.priority`, `bootstate.<bn>.remaining_attempts` (decimal) | `remaining_attempts=attempts` | `priority=0`, `remaining_attempts=0` | `priority=20`, other non-zero priorities `10`, `remaining_attempts=attempts_primary` |
//! | [`Backend::Grub`] | `ORDER`, `<bn>_OK`, `<bn>_TRY` (`0`/`1`) | `OK=1 TRY=0` | `OK=0 TRY=0` (stays in `ORDER`) | `OK=1 TRY=0`, put first in `ORDER` |
//!
//! The bootloader's own step ([`BootState::boot`]) is modelled as well: the U-Boot `contrib/uboot.sh`
//! walk-and-decrement, barebox's bootchooser (highest priority with attempts left, decrement,
//! `last_chosen`), and GRUB's `contrib/grub.conf` one-try walk.
//!
//! Where RAUC and the bootloader read the same U-Boot variables differently (a missing
//! `BOOT_x_LEFT`/`BOOT_ORDER`, a `LEFT` spelled `0x3`), the state keeps both readings: the queries
//! ([`BootState::is_good`], [`BootState::primary`]) answer what RAUC 1.8 answers, the bootloader
//! step and [`BootState::is_bootable`] (the mark-bad guard) follow the boot script. Order entries
//! that are not configured bootnames (a recovery entry) are kept in place and never chosen. What
//! the bootloader does when every attempt is used up is [`Config::reset_when_exhausted`], which
//! defaults to each bootloader's own behaviour. Details: [`BootState::from_vars`].
//!
//! Every operation is pure: it takes `&self` and returns a [`Transition`], the complete set of
//! variable changes plus the resulting state. The storage layer (`eyas-bootloader-glue`) writes one
//! transition in **one** atomic write (one `fw_setenv` image, one barebox-state save, one grubenv
//! rewrite). Variables that keep their value are not part of the change set; a variable that was
//! absent is always written when an operation sets it.
//!
//! Reading state: [`BootState::from_vars`] takes a lookup closure over the stored variables.
//! Booted-slot detection from the kernel command line: [`BootState::booted_slot`].
//!
//! # Example
//! ```
//! use eyas_core::slots::{Backend, BootState};
//! let env = [("BOOT_ORDER", "A B"), ("BOOT_A_LEFT", "3"), ("BOOT_B_LEFT", "3")];
//! let lookup = |name: &str| env.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
//! let state = BootState::from_vars(Backend::UBoot, &["A", "B"], lookup).unwrap();
//! let t = state.mark_active(1).unwrap();
//! let changes: Vec<_> = t.changes().collect();
//! assert_eq!(changes, [("BOOT_ORDER", Some("B A"))]);
//! assert_eq!(t.state().primary(), Some(1));
//! ```

use crate::text::{Num, cat};

use heapless::{String, Vec};

/// Maximum number of boot slots.
pub const MAX_SLOTS: usize = 4;
/// Minimum number of boot slots.
pub const MIN_SLOTS: usize = 2;
/// Maximum length of a bootname in bytes.
pub const MAX_BOOTNAME_LEN: usize = 16;
/// Maximum length of a variable name (`bootstate.<bootname>.remaining_attempts` is the longest).
pub const MAX_VAR_NAME_LEN: usize =
    "bootstate.".len() + MAX_BOOTNAME_LEN + ".remaining_attempts".len();
/// Maximum number of entries in `BOOT_ORDER` / `ORDER` that are not configured bootnames (e.g. a
/// recovery entry). They are kept in place.
pub const MAX_FOREIGN_IN_ORDER: usize = 4;
/// Maximum bytes of those entries together, joined by single spaces (kept small: every
/// [`BootState`] and [`Transition`] carries them, also on an MCU stack).
pub const MAX_FOREIGN_ORDER_TEXT: usize = 24;
/// Maximum length of a variable value (`BOOT_ORDER` with every slot and the foreign entries is the
/// longest).
pub const MAX_VALUE_LEN: usize = MAX_SLOTS * (MAX_BOOTNAME_LEN + 1) + MAX_FOREIGN_ORDER_TEXT + 1;
/// Entries of an order: the slots, then foreign entries.
const MAX_ORDER: usize = MAX_SLOTS + MAX_FOREIGN_IN_ORDER;
/// Order entries `>= FOREIGN` are foreign entry `code - FOREIGN` (the nth word of `foreign`).
const FOREIGN: u8 = MAX_SLOTS as u8;
/// Maximum number of variable changes in one transition.
pub const MAX_CHANGES: usize = 2 + 2 * MAX_SLOTS;
/// Default for [`Config::boot_attempts`] and [`Config::boot_attempts_primary`] (RAUC's default).
pub const DEFAULT_BOOT_ATTEMPTS: u32 = 3;
/// Barebox priority RAUC gives the slot it marks active.
pub const BAREBOX_PRIMARY_PRIORITY: u32 = 20;
/// Barebox priority RAUC gives every other enabled slot when it marks one active.
pub const BAREBOX_SECONDARY_PRIORITY: u32 = 10;

// One presence bit per variable: ORDER, last_chosen, then three per slot.
const _: () = assert!(2 + 3 * MAX_SLOTS <= 32);
const _: () = assert!(MAX_VALUE_LEN >= 10);

/// Which bootloader holds the boot state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Backend {
    /// U-Boot environment: `BOOT_ORDER`, `BOOT_<bn>_LEFT` (hex).
    UBoot,
    /// Barebox state + bootchooser: `bootstate.<bn>.priority`, `bootstate.<bn>.remaining_attempts`.
    Barebox,
    /// GRUB environment block: `ORDER`, `<bn>_OK`, `<bn>_TRY`.
    Grub,
}

/// Accounting parameters. Build with [`Config::new`] or `Backend::into()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Config {
    /// The bootloader backend.
    pub backend: Backend,
    /// Attempts written by mark-good (RAUC `boot-attempts`; U-Boot and Barebox only). Also the
    /// bootloader's own reset value: U-Boot's boot script defaults a missing `BOOT_x_LEFT` to it
    /// and resets to it when every slot is exhausted.
    pub boot_attempts: u32,
    /// Attempts written by mark-active (RAUC `boot-attempts-primary`; U-Boot and Barebox only).
    pub boot_attempts_primary: u32,
    /// What the bootloader does when no slot has attempts left. `true` models the reference
    /// scripts: U-Boot `contrib/uboot.sh` resets every `BOOT_x_LEFT` and resets the board, GRUB
    /// `contrib/grub.conf` boots rescue and clears `TRY` of every `OK` slot, barebox with
    /// `global.bootchooser.reset_attempts=all-zero` resets the attempts of enabled targets and
    /// boots. `false`: nothing is chosen and nothing changes (barebox without `all-zero`).
    ///
    /// The default is each bootloader's own: `true` for U-Boot and GRUB (their reference scripts,
    /// boot-state.md §1.3, §1.5), `false` for Barebox, whose `reset_attempts` is empty unless the
    /// board sets it (§3.4). It decides what [`BootState::is_bootable`] means, and so what
    /// mark-bad refuses: without the reset an exhausted slot does not count as bootable.
    pub reset_when_exhausted: bool,
}

impl Config {
    /// RAUC's defaults for `backend` (3 attempts) and the bootloader's own
    /// [`reset_when_exhausted`](Config::reset_when_exhausted) (U-Boot, GRUB: yes; Barebox: no).
    #[must_use]
    pub const fn new(backend: Backend) -> Self {
        Self {
            backend,
            boot_attempts: DEFAULT_BOOT_ATTEMPTS,
            boot_attempts_primary: DEFAULT_BOOT_ATTEMPTS,
            reset_when_exhausted: !matches!(backend, Backend::Barebox),
        }
    }

    /// Sets [`Config::boot_attempts`] and [`Config::boot_attempts_primary`].
    #[must_use]
    pub const fn with_attempts(mut self, boot_attempts: u32, boot_attempts_primary: u32) -> Self {
        self.boot_attempts = boot_attempts;
        self.boot_attempts_primary = boot_attempts_primary;
        self
    }

    /// Sets [`Config::reset_when_exhausted`].
    #[must_use]
    pub const fn with_reset_when_exhausted(mut self, reset: bool) -> Self {
        self.reset_when_exhausted = reset;
        self
    }

    /// How many boots a freshly activated slot gets before the bootloader falls back
    /// (`boot_attempts_primary`; always 1 for GRUB, which has one try per slot).
    #[must_use]
    pub const fn trial_boots(&self) -> u32 {
        match self.backend {
            Backend::Grub => 1,
            _ => self.boot_attempts_primary,
        }
    }
}

impl From<Backend> for Config {
    fn from(backend: Backend) -> Self {
        Self::new(backend)
    }
}

/// Which variable of the boot state (for error reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum VarKind {
    /// `BOOT_ORDER` (U-Boot) or `ORDER` (GRUB).
    Order,
    /// `bootstate.last_chosen` (Barebox).
    LastChosen,
    /// `BOOT_<bn>_LEFT` (U-Boot) or `bootstate.<bn>.remaining_attempts` (Barebox).
    Attempts,
    /// `bootstate.<bn>.priority` (Barebox).
    Priority,
    /// `<bn>_OK` (GRUB).
    Ok,
    /// `<bn>_TRY` (GRUB).
    Try,
}

/// Why [`BootState::from_vars`] (or [`BootState::initial`]) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FromVarsError {
    /// Fewer than [`MIN_SLOTS`] or more than [`MAX_SLOTS`] bootnames were given.
    SlotCount {
        /// The number of bootnames given.
        given: usize,
    },
    /// A bootname is empty, longer than [`MAX_BOOTNAME_LEN`] or not `[A-Za-z0-9_-]+`.
    InvalidBootname {
        /// Index of the bootname.
        slot: u8,
    },
    /// The same bootname was given twice.
    DuplicateBootname {
        /// Index of the second occurrence.
        slot: u8,
    },
    /// An attempts value in the [`Config`] is 0.
    InvalidConfig,
    /// A variable holds a value the backend would not write (e.g.
    /// `bootstate.system0.priority=zz`). U-Boot `BOOT_x_LEFT` and GRUB `x_OK`/`x_TRY` never fail:
    /// they are read as RAUC reads them (see [`BootState::from_vars`]).
    InvalidValue {
        /// The slot the variable belongs to, `None` for `ORDER`/`last_chosen`.
        slot: Option<u8>,
        /// The variable.
        var: VarKind,
    },
    /// A Barebox variable is missing (barebox-state always has every variable).
    MissingVariable {
        /// The slot the variable belongs to.
        slot: u8,
        /// The variable.
        var: VarKind,
    },
    /// Not returned any more: an `ORDER`/`BOOT_ORDER` entry that is not a configured bootname is
    /// kept (see [`FromVarsError::OrderOverCapacity`]).
    UnknownBootnameInOrder,
    /// `ORDER`/`BOOT_ORDER` names a bootname twice.
    DuplicateInOrder,
    /// `ORDER`/`BOOT_ORDER` holds more than [`MAX_FOREIGN_IN_ORDER`] entries that are not
    /// configured bootnames, or more than [`MAX_FOREIGN_ORDER_TEXT`] bytes of them.
    OrderOverCapacity,
}

impl core::fmt::Display for FromVarsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::SlotCount { given } => {
                write!(f, "{given} slots given, need {MIN_SLOTS}..={MAX_SLOTS}")
            }
            Self::InvalidBootname { slot } => write!(f, "bootname of slot {slot} is invalid"),
            Self::DuplicateBootname { slot } => write!(f, "bootname of slot {slot} is a duplicate"),
            Self::InvalidConfig => f.write_str("boot attempts must be at least 1"),
            Self::InvalidValue { slot, var } => {
                write!(f, "invalid value of {var:?} (slot {slot:?})")
            }
            Self::MissingVariable { slot, var } => write!(f, "missing {var:?} of slot {slot}"),
            Self::UnknownBootnameInOrder => f.write_str("boot order names an unknown bootname"),
            Self::DuplicateInOrder => f.write_str("boot order names a bootname twice"),
            Self::OrderOverCapacity => write!(
                f,
                "boot order holds more than {MAX_FOREIGN_IN_ORDER} unknown entries or more than {MAX_FOREIGN_ORDER_TEXT} bytes of them"
            ),
        }
    }
}

/// Why mark-good or mark-active failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MarkError {
    /// The slot index is out of range.
    NoSuchSlot,
}

/// Why mark-bad failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MarkBadError {
    /// The slot index is out of range.
    NoSuchSlot,
    /// The bootloader could never choose any slot afterwards (no slot
    /// [is bootable](BootState::is_bootable): with [`Config::reset_when_exhausted`] off, a slot
    /// whose attempts are used up does not count). eyas refuses this (RAUC does not).
    LastBootableSlot,
}

/// Why booted-slot detection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CmdlineError {
    /// Neither `rauc.slot=`, `bootchooser.active=`/`bootstate.active=`, `rauc.external` nor
    /// `root=/dev/nfs` is on the command line.
    NoSlotInfo,
    /// The command line names a bootname that is not configured.
    UnknownBootname,
}

/// Which slot runs, as read from the kernel command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Booted {
    /// Booted from this slot (index into the bootnames).
    Slot(usize),
    /// Booted from outside any slot (`rauc.external`, `root=/dev/nfs`): every slot is inactive.
    External,
}

/// One variable, identified independently of the backend spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarId {
    Order,
    LastChosen,
    Attempts(u8),
    Priority(u8),
    Ok(u8),
    Try(u8),
}

impl VarId {
    const fn bit(self) -> u32 {
        let i = match self {
            Self::Order => 0,
            Self::LastChosen => 1,
            Self::Attempts(s) => 2 + 3 * s as u32,
            Self::Priority(s) | Self::Ok(s) => 3 + 3 * s as u32,
            Self::Try(s) => 4 + 3 * s as u32,
        };
        1 << i
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct SlotVars {
    /// U-Boot `LEFT`, Barebox `remaining_attempts`, as RAUC's get-state reads it (a missing U-Boot
    /// `LEFT` is 0).
    attempts: u32,
    /// Barebox `priority`. U-Boot has no priority, so there this field holds `LEFT` as the boot
    /// script reads it ([`SlotVars::boot_left`]); sharing the field keeps [`BootState`] small on
    /// an MCU stack. GRUB: unused (0).
    priority: u32,
    /// U-Boot `LEFT` is not stored (missing or empty).
    unset: bool,
    /// GRUB `OK`.
    ok: bool,
    /// GRUB `TRY`.
    tried: bool,
}

impl SlotVars {
    /// U-Boot: `LEFT` as the boot script reads it (a missing one is the script's default); equal
    /// to `attempts` once an operation has written the variable.
    const fn boot_left(&self) -> u32 {
        self.priority
    }

    /// U-Boot: sets what the boot script reads, where it differs from RAUC's reading.
    fn set_boot_left(&mut self, v: u32) {
        self.priority = v;
    }

    /// U-Boot: `BOOT_x_LEFT` as an operation (or the boot script) writes it.
    fn set_left(&mut self, v: u32) {
        self.attempts = v;
        self.priority = v;
        self.unset = false;
    }
}

/// The boot state of all slots as the bootloader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    config: Config,
    names: Vec<String<MAX_BOOTNAME_LEN>, MAX_SLOTS>,
    slots: [SlotVars; MAX_SLOTS],
    /// Boot order (U-Boot, GRUB): slot indices, and `FOREIGN + k` for the kth word of `foreign`.
    order: Vec<u8, MAX_ORDER>,
    /// Order entries that are not configured bootnames, kept in place and never chosen.
    foreign: String<MAX_FOREIGN_ORDER_TEXT>,
    /// U-Boot `BOOT_ORDER` is not stored: RAUC reads every slot as bad, the boot script uses
    /// `order` (all bootnames).
    order_unset: bool,
    /// Barebox `last_chosen` (1-based, 0 = unknown); only kept up to date if the state has it.
    last_chosen: Option<u32>,
    /// One bit per variable that is stored (see `VarId::bit`).
    present: u32,
}

/// Bytes of change text (names and values) one transition can hold: the worst case over the
/// backends (Barebox: every priority, every remaining_attempts and last_chosen).
pub const MAX_TRANSITION_TEXT: usize = max3(
    "BOOT_ORDER".len() + MAX_VALUE_LEN + MAX_SLOTS * ("BOOT__LEFT".len() + MAX_BOOTNAME_LEN + 8),
    MAX_SLOTS
        * ("bootstate..priority".len()
            + MAX_BOOTNAME_LEN
            + 10
            + "bootstate..remaining_attempts".len()
            + MAX_BOOTNAME_LEN
            + 10)
        + "bootstate.last_chosen".len()
        + 10,
    "ORDER".len()
        + MAX_VALUE_LEN
        + MAX_SLOTS * ("_OK".len() + MAX_BOOTNAME_LEN + 1 + "_TRY".len() + MAX_BOOTNAME_LEN + 1),
);

const fn max3(a: usize, b: usize, c: usize) -> usize {
    let m = if a > b { a } else { b };
    if m > c { m } else { c }
}

const _: () = assert!(MAX_TRANSITION_TEXT <= u16::MAX as usize);

/// Where one change's text sits in [`Transition`]'s text buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    name_end: u16,
    /// `value_end == name_end` and `delete` = no value.
    value_end: u16,
    delete: bool,
}

/// The result of one operation: the variable changes to write in one atomic write, and the state
/// after them.
///
/// The change text lives in one fixed buffer ([`MAX_TRANSITION_TEXT`] bytes) so that a transition
/// stays small on an MCU stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    state: BootState,
    /// Variables the operation set, in the order it set them (rendered by `finish`).
    touched: Vec<VarId, MAX_CHANGES>,
    text: String<MAX_TRANSITION_TEXT>,
    spans: Vec<Span, MAX_CHANGES>,
}

impl Transition {
    /// The changes, as `(name, value)`; `value == None` means delete. The order is the order in
    /// which RAUC sets them; a storage layer that writes them together need not care.
    pub fn changes(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        let mut start = 0usize;
        self.spans.iter().map(move |sp| {
            let name_end = usize::from(sp.name_end);
            let value_end = usize::from(sp.value_end);
            let name = self.text.get(start..name_end).unwrap_or("");
            let value = if sp.delete {
                None
            } else {
                Some(self.text.get(name_end..value_end).unwrap_or(""))
            };
            start = value_end;
            (name, value)
        })
    }

    /// Number of changes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// `true` if nothing has to be written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The state after the changes are written.
    #[must_use]
    pub fn state(&self) -> &BootState {
        &self.state
    }

    /// Consumes the transition, returning the new state.
    #[must_use]
    pub fn into_state(self) -> BootState {
        self.state
    }
}

/// The result of the bootloader's choose-and-decrement step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BootStep {
    /// The slot the bootloader boots, or `None` (U-Boot: board reset; GRUB: rescue; Barebox: fail).
    pub chosen: Option<usize>,
    /// What the bootloader writes before booting (it may be empty).
    pub transition: Transition,
}

/// `true` if the U-Boot script reaches `saveenv`: it does when it chooses a slot, and when it
/// resets the counters; without the reset step nothing is written.
fn pick_or_reset_saves(st: &BootState, reset: bool) -> bool {
    reset || st.order_slots().any(|i| st.slots[i].boot_left() > 0)
}

fn valid_bootname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_BOOTNAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// C's `strtoull(s, NULL, base)` in the C locale, for `base` 16 or 0 (what RAUC 1.8's
/// `g_ascii_strtoull` does, never checking the end pointer): leading `isspace` bytes, an optional
/// `+`/`-`, then for base 16 an optional `0x`/`0X` before a hex digit; for base 0 `0x`/`0X` before
/// a hex digit selects 16, another leading `0` selects 8, else 10. Then digits up to the first
/// other byte; no digits is 0, overflow is `ULLONG_MAX`, `-` negates modulo 2^64.
fn c_strtoull(s: &str, base: u32) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    {
        i += 1;
    }
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let hex_prefix = b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let radix = match base {
        0 if hex_prefix => 16,
        0 if b.get(i) == Some(&b'0') => 8,
        0 => 10,
        r => r,
    };
    if hex_prefix && radix == 16 {
        i += 2;
    }
    let mut v: u64 = 0;
    for d in b
        .get(i..)
        .unwrap_or_default()
        .iter()
        .map_while(|&c| char::from(c).to_digit(radix))
    {
        v = match v
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(d.into()))
        {
            Some(v) => v,
            None => return u64::MAX,
        };
    }
    if negative { v.wrapping_neg() } else { v }
}

/// `BOOT_x_LEFT` as RAUC 1.8 reads it: `g_ascii_strtoull(value, NULL, 16)` (see [`c_strtoull`]),
/// saturated to `u32` (RAUC only asks `> 0`).
fn uboot_left_rauc(s: &str) -> u32 {
    u32::try_from(c_strtoull(s, 16)).unwrap_or(u32::MAX)
}

/// `BOOT_x_LEFT` as `contrib/uboot.sh` reads it: `test 0x${BOOT_x_LEFT} -gt 0` (the `0x` prefix
/// makes U-Boot's `simple_strtol` read hex) and `setexpr` both take the hex digits up to the first
/// other byte, so a value that starts with anything else (a space, a sign, another `0x`) is 0.
/// Saturated to `u32` (32-bit U-Boot's wrap-around above 0x7fffffff is not modelled).
fn uboot_left_script(s: &str) -> u32 {
    let mut v: u32 = 0;
    for d in s.bytes().map_while(|c| char::from(c).to_digit(16)) {
        v = v.saturating_mul(16).saturating_add(d);
    }
    v
}

/// Parses a non-empty run of digits in `radix` (no sign, no prefix) into a `u32`.
fn parse_u32(s: &str, radix: u32) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| char::from(b).is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(s, radix).ok()
}

/// GRUB `x_OK` / `x_TRY` as RAUC 1.8 reads them (`g_ascii_strtoull(value, NULL, 0)`; good is
/// `OK == 1 && TRY == 0`) and as `contrib/grub.conf` does (`[ "$OK" -eq 1 -a "$TRY" -eq 0 ]`,
/// GRUB's `test` reads `grub_strtosl(s, 0, 0)`): `(value, is the plain 0/1 spelling)`.
fn grub_flag(s: &str, is_ok: bool) -> (bool, bool) {
    let n = c_strtoull(s, 0);
    let v = if is_ok { n == 1 } else { n != 0 };
    (v, s == if v { "1" } else { "0" })
}

/// Splits a kernel command line into parameters: whitespace separates, double quotes group.
fn cmdline_params(cmdline: &str) -> impl Iterator<Item = &str> {
    let bytes = cmdline.as_bytes();
    let mut pos = 0;
    core::iter::from_fn(move || {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let mut quoted = false;
        while pos < bytes.len() && (quoted || !bytes[pos].is_ascii_whitespace()) {
            if bytes[pos] == b'"' {
                quoted = !quoted;
            }
            pos += 1;
        }
        cmdline.get(start..pos)
    })
}

/// `s.split(' ')` by bytes: the same pieces (empty ones included) without `str`'s pattern
/// searcher and `memchr` in an MCU image.
struct SpaceSplit<'a>(Option<&'a str>);

impl<'a> Iterator for SpaceSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.0?;
        match s.bytes().position(|b| b == b' ') {
            Some(i) => {
                self.0 = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                self.0 = None;
                Some(s)
            }
        }
    }
}

/// `s.contains(&b)` without `memchr` (which `[u8]::contains` uses) in an MCU image.
#[allow(clippy::manual_contains)] // on purpose: a plain loop is smaller than memchr
fn has_byte(s: &[u8], b: u8) -> bool {
    s.iter().any(|&x| x == b)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

impl BootState {
    /// Reads the boot state from stored variables.
    ///
    /// `config` is a [`Config`] or just a [`Backend`] (RAUC defaults). `bootnames` are the slots'
    /// bootnames (`A`, `B` for U-Boot/GRUB; `system0`, `system1` for Barebox); slot indices used by
    /// every other method index into this list, and it is also barebox's
    /// `global.bootchooser.targets` order. `lookup` returns a stored variable's value by name
    /// (Barebox names are `bootstate.<bn>.priority`, `bootstate.<bn>.remaining_attempts`,
    /// `bootstate.last_chosen`).
    ///
    /// Missing variables (an empty U-Boot value is the same as a missing one, as in U-Boot):
    /// * U-Boot has two readers that disagree, and the state keeps both views. The queries
    ///   ([`is_good`](BootState::is_good), [`primary`](BootState::primary),
    ///   [`attempts_left`](BootState::attempts_left)) answer what RAUC 1.8 answers: libubootenv's
    ///   `fw_printenv NAME` prints `NAME=` for a missing variable, so a missing `BOOT_x_LEFT` is 0
    ///   attempts and a missing `BOOT_ORDER` is empty, i.e. the slot is bad (boot-state.md §2.6).
    ///   The bootloader step ([`boot`](BootState::boot), and [`is_bootable`](BootState::is_bootable)
    ///   which guards mark-bad) follows `contrib/uboot.sh` (§1.3): `BOOT_ORDER` = all bootnames,
    ///   `BOOT_x_LEFT` = `boot_attempts`, and its `saveenv` stores those defaults. An operation that
    ///   sets a missing variable always writes it; [`all_vars`](BootState::all_vars) leaves it
    ///   missing.
    /// * GRUB: `ORDER` = all bootnames, `x_OK=0`, `x_TRY=0` (`contrib/grub.conf`).
    /// * Barebox state always holds every variable, so a missing one is an error (`last_chosen` is
    ///   optional).
    ///
    /// Numbers are read as RAUC 1.8 reads them (C `strtoull`, never checking for trailing bytes,
    /// verified with real RAUC 1.8): U-Boot `BOOT_x_LEFT` in base 16 (`0x3`, ` 3`, `+3`, `3zz` are
    /// 3; `zz` is 0; `-1` is huge), GRUB `x_OK`/`x_TRY` in base 0 (`0x1`, `01`, ` 1` are 1; `2`
    /// is not OK). GRUB's `test` in `contrib/grub.conf` reads them the same way; U-Boot's boot
    /// script reads `0x${BOOT_x_LEFT}`, so for it only leading hex digits count (`0x3` is 0).
    /// A spelling other than the one eyas writes is rewritten when an operation sets the variable.
    /// Barebox values are plain decimal `uint32`s printed by barebox-state (§1.4), anything else
    /// is [`FromVarsError::InvalidValue`].
    ///
    /// An `ORDER`/`BOOT_ORDER` entry that is not one of `bootnames` (e.g. a recovery entry, `A B R`)
    /// is kept in place: written values preserve it, [`order`](BootState::order) and the
    /// bootloader step skip it (neither reference script has a branch for it), and mark-active /
    /// mark-bad move only the managed slot around it. That is what RAUC 1.8's U-Boot backend does
    /// (verified: `A R B` → mark-bad B → `A R` → mark-active B → `B A R`); RAUC's GRUB set-primary
    /// rebuilds `ORDER` from the configured slots and would drop it, eyas keeps it. Up to
    /// [`MAX_FOREIGN_IN_ORDER`] such entries of together [`MAX_FOREIGN_ORDER_TEXT`] bytes fit;
    /// more is [`FromVarsError::OrderOverCapacity`].
    ///
    /// # Errors
    /// [`FromVarsError`] for a bad bootname list or config, and for any value the backend would
    /// not write.
    pub fn from_vars<'v, F>(
        config: impl Into<Config>,
        bootnames: &[&str],
        mut lookup: F,
    ) -> Result<Self, FromVarsError>
    where
        F: FnMut(&str) -> Option<&'v str>,
    {
        let mut st = Self::empty(config.into(), bootnames)?;
        let n = st.names.len();
        let cfg = st.config;
        match cfg.backend {
            Backend::UBoot => {
                st.read_order(&mut lookup, "BOOT_ORDER", true)?;
                st.order_unset = st.present & VarId::Order.bit() == 0;
                for i in 0..n {
                    let id = VarId::Attempts(i as u8);
                    let name = st.var_name(id);
                    let slot = &mut st.slots[i];
                    match lookup(&name).filter(|v| !v.is_empty()) {
                        // RAUC: `strtoull("", 16)` = 0, bad; the script: its default.
                        None => {
                            slot.attempts = 0;
                            slot.set_boot_left(cfg.boot_attempts);
                            slot.unset = true;
                        }
                        Some(v) => {
                            let (rauc, script) = (uboot_left_rauc(v), uboot_left_script(v));
                            slot.set_left(rauc);
                            slot.set_boot_left(script);
                            // Any other spelling is rewritten when an operation sets it.
                            if script == rauc && Num::hex(rauc.into()).as_str() == v {
                                st.present |= id.bit();
                            }
                        }
                    }
                }
            }
            Backend::Barebox => {
                for i in 0..n {
                    for (id, var) in [
                        (VarId::Priority(i as u8), VarKind::Priority),
                        (VarId::Attempts(i as u8), VarKind::Attempts),
                    ] {
                        let name = st.var_name(id);
                        let v = lookup(&name)
                            .ok_or(FromVarsError::MissingVariable { slot: i as u8, var })?;
                        let v = parse_u32(v, 10).ok_or(FromVarsError::InvalidValue {
                            slot: Some(i as u8),
                            var,
                        })?;
                        match id {
                            VarId::Priority(_) => st.slots[i].priority = v,
                            _ => st.slots[i].attempts = v,
                        }
                        st.present |= id.bit();
                    }
                }
                if let Some(v) = lookup(&st.var_name(VarId::LastChosen)) {
                    st.last_chosen = Some(parse_u32(v, 10).ok_or(FromVarsError::InvalidValue {
                        slot: None,
                        var: VarKind::LastChosen,
                    })?);
                    st.present |= VarId::LastChosen.bit();
                }
            }
            Backend::Grub => {
                st.read_order(&mut lookup, "ORDER", false)?;
                for i in 0..n {
                    for id in [VarId::Ok(i as u8), VarId::Try(i as u8)] {
                        let name = st.var_name(id);
                        let Some(v) = lookup(&name) else { continue };
                        let is_ok = matches!(id, VarId::Ok(_));
                        let (v, plain) = grub_flag(v, is_ok);
                        if is_ok {
                            st.slots[i].ok = v;
                        } else {
                            st.slots[i].tried = v;
                        }
                        // Any other spelling is rewritten when an operation sets it.
                        if plain {
                            st.present |= id.bit();
                        }
                    }
                }
            }
        }
        Ok(st)
    }

    /// A fresh state as a device is provisioned: every slot good (U-Boot `BOOT_x_LEFT=boot_attempts`,
    /// Barebox `priority=20 remaining_attempts=boot_attempts`, GRUB `x_OK=1 x_TRY=0`), order = the
    /// bootnames' order. The returned transition writes every variable.
    ///
    /// # Errors
    /// As [`BootState::from_vars`] for the bootname list and config.
    pub fn initial(
        config: impl Into<Config>,
        bootnames: &[&str],
    ) -> Result<Transition, FromVarsError> {
        let mut st = Self::empty(config.into(), bootnames)?;
        let attempts = st.config.boot_attempts;
        let backend = st.config.backend;
        // Only the backend's own fields are set, so states compare equal to what `from_vars` reads.
        for s in st.slots.iter_mut().take(st.names.len()) {
            match backend {
                Backend::UBoot => s.set_left(attempts),
                Backend::Barebox => {
                    s.attempts = attempts;
                    s.priority = BAREBOX_PRIMARY_PRIORITY;
                }
                Backend::Grub => s.ok = true,
            }
        }
        Ok(st.all_vars())
    }

    fn empty(config: Config, bootnames: &[&str]) -> Result<Self, FromVarsError> {
        if config.boot_attempts == 0 || config.boot_attempts_primary == 0 {
            return Err(FromVarsError::InvalidConfig);
        }
        if !(MIN_SLOTS..=MAX_SLOTS).contains(&bootnames.len()) {
            return Err(FromVarsError::SlotCount {
                given: bootnames.len(),
            });
        }
        let mut names = Vec::new();
        let mut order = Vec::new();
        for (i, bn) in bootnames.iter().enumerate() {
            let slot = i as u8;
            if !valid_bootname(bn) {
                return Err(FromVarsError::InvalidBootname { slot });
            }
            if bootnames[..i].contains(bn) {
                return Err(FromVarsError::DuplicateBootname { slot });
            }
            let name =
                String::try_from(*bn).map_err(|_| FromVarsError::InvalidBootname { slot })?;
            names.push(name).map_err(|_| FromVarsError::SlotCount {
                given: bootnames.len(),
            })?;
            order.push(slot).map_err(|_| FromVarsError::SlotCount {
                given: bootnames.len(),
            })?;
        }
        Ok(Self {
            config,
            names,
            slots: [SlotVars::default(); MAX_SLOTS],
            order,
            foreign: String::new(),
            order_unset: false,
            last_chosen: None,
            present: 0,
        })
    }

    fn read_order<'v, F>(
        &mut self,
        lookup: &mut F,
        name: &str,
        empty_is_missing: bool,
    ) -> Result<(), FromVarsError>
    where
        F: FnMut(&str) -> Option<&'v str>,
    {
        let Some(v) = lookup(name) else { return Ok(()) };
        if empty_is_missing && v.is_empty() {
            return Ok(());
        }
        let mut order: Vec<u8, MAX_ORDER> = Vec::new();
        let mut foreign: String<MAX_FOREIGN_ORDER_TEXT> = String::new();
        let mut n_foreign = 0usize;
        for word in SpaceSplit(Some(v)).filter(|w| !w.is_empty()) {
            let code = match self.slot_index(word) {
                Some(idx) => {
                    let idx = idx as u8;
                    if has_byte(&order, idx) {
                        return Err(FromVarsError::DuplicateInOrder);
                    }
                    idx
                }
                None => {
                    let sep = if n_foreign > 0 { " " } else { "" };
                    if n_foreign >= MAX_FOREIGN_IN_ORDER || cat(&mut foreign, &[sep, word]).is_err()
                    {
                        return Err(FromVarsError::OrderOverCapacity);
                    }
                    n_foreign += 1;
                    FOREIGN + (n_foreign - 1) as u8
                }
            };
            // Capacity: at most MAX_SLOTS distinct slots plus MAX_FOREIGN_IN_ORDER foreign entries.
            order
                .push(code)
                .map_err(|_| FromVarsError::OrderOverCapacity)?;
        }
        if order.is_empty() {
            // The bootloader would find nothing to boot (U-Boot: endless resets, GRUB: rescue).
            return Err(FromVarsError::InvalidValue {
                slot: None,
                var: VarKind::Order,
            });
        }
        self.order = order;
        self.foreign = foreign;
        self.present |= VarId::Order.bit();
        Ok(())
    }

    /// The configuration this state was read with.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Number of slots.
    #[must_use]
    pub fn slot_count(&self) -> usize {
        self.names.len()
    }

    /// The bootname of `slot`.
    #[must_use]
    pub fn bootname(&self, slot: usize) -> Option<&str> {
        self.names.get(slot).map(String::as_str)
    }

    /// The slot index of `bootname`.
    #[must_use]
    pub fn slot_index(&self, bootname: &str) -> Option<usize> {
        self.names.iter().position(|n| n == bootname)
    }

    /// The boot order as slot indices (U-Boot `BOOT_ORDER`, GRUB `ORDER`; for Barebox the slots
    /// with priority > 0, highest first).
    ///
    /// Order entries that are not configured bootnames are skipped.
    pub fn order(&self) -> impl Iterator<Item = usize> + '_ {
        let mut buf: Vec<u8, MAX_ORDER> = match self.config.backend {
            Backend::Barebox => self.barebox_sorted().into_iter().collect(),
            _ => self.order.clone(),
        };
        if self.config.backend == Backend::Barebox {
            buf.retain(|&i| self.slots[usize::from(i)].priority > 0);
        }
        buf.into_iter()
            .map(usize::from)
            .filter(|&i| i < self.slot_count())
    }

    /// The managed slots in `order`, skipping foreign entries.
    fn order_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.order
            .iter()
            .map(|&i| usize::from(i))
            .filter(|&i| i < self.slot_count())
    }

    /// Remaining boot attempts of `slot` as RAUC reads them (U-Boot `LEFT`, 0 if missing; Barebox
    /// `remaining_attempts`; GRUB: 1 if `OK=1 TRY=0`, else 0).
    #[must_use]
    pub fn attempts_left(&self, slot: usize) -> Option<u32> {
        if slot >= self.slot_count() {
            return None;
        }
        let s = &self.slots[slot];
        Some(match self.config.backend {
            Backend::Grub => u32::from(s.ok && !s.tried),
            _ => s.attempts,
        })
    }

    /// RAUC's get-state: `true` if `slot` is good.
    #[must_use]
    pub fn is_good(&self, slot: usize) -> bool {
        if slot >= self.slot_count() {
            return false;
        }
        let s = &self.slots[slot];
        let in_order = has_byte(&self.order, slot as u8);
        match self.config.backend {
            // RAUC reads a missing BOOT_ORDER / BOOT_x_LEFT as empty / 0.
            Backend::UBoot => !self.order_unset && in_order && s.attempts > 0,
            Backend::Barebox => s.priority > 0 && s.attempts > 0,
            Backend::Grub => in_order && s.ok && !s.tried,
        }
    }

    /// RAUC's get-primary: the slot the bootloader would try first.
    #[must_use]
    pub fn primary(&self) -> Option<usize> {
        match self.config.backend {
            Backend::Barebox => self
                .barebox_sorted()
                .into_iter()
                .map(usize::from)
                .find(|&i| self.is_good(i)),
            _ => self.order_slots().find(|&i| self.is_good(i)),
        }
    }

    /// `true` if the bootloader can choose `slot` now, or after its reset-when-exhausted step when
    /// [`Config::reset_when_exhausted`] is on. Without that step a slot with no attempts left is
    /// not bootable (barebox's default). This is the bootloader's view (U-Boot: what the boot
    /// script reads, see [`BootState::from_vars`]).
    #[must_use]
    pub fn is_bootable(&self, slot: usize) -> bool {
        if slot >= self.slot_count() {
            return false;
        }
        let s = &self.slots[slot];
        let in_order = has_byte(&self.order, slot as u8);
        if !self.config.reset_when_exhausted {
            return match self.config.backend {
                // What the boot script reads (it defaults a missing BOOT_ORDER / LEFT).
                Backend::UBoot => in_order && s.boot_left() > 0,
                _ => self.is_good(slot),
            };
        }
        match self.config.backend {
            Backend::UBoot => in_order,
            Backend::Barebox => s.priority > 0,
            Backend::Grub => in_order && s.ok,
        }
    }

    /// `true` if at least one slot [is bootable](BootState::is_bootable).
    #[must_use]
    pub fn has_bootable(&self) -> bool {
        (0..self.slot_count()).any(|i| self.is_bootable(i))
    }

    /// Barebox `last_chosen` (1-based; `None` if the state has no such variable).
    #[must_use]
    pub const fn last_chosen(&self) -> Option<u32> {
        self.last_chosen
    }

    /// Mark `slot` good (`rauc status mark-good`): reset its attempts counter.
    ///
    /// # Errors
    /// [`MarkError::NoSuchSlot`].
    pub fn mark_good(&self, slot: usize) -> Result<Transition, MarkError> {
        if slot >= self.slot_count() {
            return Err(MarkError::NoSuchSlot);
        }
        let mut t = self.begin();
        let s = slot as u8;
        match self.config.backend {
            Backend::UBoot => {
                t.state.slots[slot].set_left(self.config.boot_attempts);
                t.touch(self, VarId::Attempts(s));
            }
            Backend::Barebox => {
                t.state.slots[slot].attempts = self.config.boot_attempts;
                t.touch(self, VarId::Attempts(s));
            }
            Backend::Grub => {
                t.state.slots[slot].ok = true;
                t.state.slots[slot].tried = false;
                t.touch(self, VarId::Ok(s));
                t.touch(self, VarId::Try(s));
            }
        }
        t.finish(self);
        Ok(t)
    }

    /// Mark `slot` bad (`rauc status mark-bad`; also the first step of an install into it).
    ///
    /// # Errors
    /// [`MarkBadError::NoSuchSlot`]; [`MarkBadError::LastBootableSlot`] if afterwards no slot
    /// [is bootable](BootState::is_bootable).
    pub fn mark_bad(&self, slot: usize) -> Result<Transition, MarkBadError> {
        if slot >= self.slot_count() {
            return Err(MarkBadError::NoSuchSlot);
        }
        let mut t = self.begin();
        let s = slot as u8;
        match self.config.backend {
            Backend::UBoot => {
                t.state.order.retain(|&i| i != s);
                t.state.order_unset = false;
                t.state.slots[slot].set_left(0);
                t.touch(self, VarId::Order);
                t.touch(self, VarId::Attempts(s));
            }
            Backend::Barebox => {
                t.state.slots[slot].priority = 0;
                t.state.slots[slot].attempts = 0;
                t.touch(self, VarId::Priority(s));
                t.touch(self, VarId::Attempts(s));
            }
            Backend::Grub => {
                t.state.slots[slot].ok = false;
                t.state.slots[slot].tried = false;
                t.touch(self, VarId::Ok(s));
                t.touch(self, VarId::Try(s));
            }
        }
        if !t.state.has_bootable() {
            return Err(MarkBadError::LastBootableSlot);
        }
        t.finish(self);
        Ok(t)
    }

    /// Mark `slot` active (`rauc status mark-active`; the last step of an install into it): make it
    /// the primary with a fresh trial budget.
    ///
    /// # Errors
    /// [`MarkError::NoSuchSlot`].
    pub fn mark_active(&self, slot: usize) -> Result<Transition, MarkError> {
        if slot >= self.slot_count() {
            return Err(MarkError::NoSuchSlot);
        }
        let mut t = self.begin();
        let s = slot as u8;
        match self.config.backend {
            Backend::UBoot => {
                t.state.slots[slot].set_left(self.config.boot_attempts_primary);
                t.state.put_first(s);
                t.state.order_unset = false;
                t.touch(self, VarId::Attempts(s));
                t.touch(self, VarId::Order);
            }
            Backend::Barebox => {
                for i in 0..self.slot_count() {
                    let p = &mut t.state.slots[i].priority;
                    if i == slot {
                        *p = BAREBOX_PRIMARY_PRIORITY;
                    } else if *p != 0 {
                        *p = BAREBOX_SECONDARY_PRIORITY;
                    }
                    t.touch(self, VarId::Priority(i as u8));
                }
                t.state.slots[slot].attempts = self.config.boot_attempts_primary;
                t.touch(self, VarId::Attempts(s));
            }
            Backend::Grub => {
                t.state.slots[slot].ok = true;
                t.state.slots[slot].tried = false;
                t.state.put_first(s);
                t.touch(self, VarId::Ok(s));
                t.touch(self, VarId::Try(s));
                t.touch(self, VarId::Order);
            }
        }
        t.finish(self);
        Ok(t)
    }

    /// The bootloader's own step at power-on: choose a slot and consume one attempt (U-Boot
    /// `contrib/uboot.sh`, barebox bootchooser, GRUB `contrib/grub.conf`). See
    /// [`Config::reset_when_exhausted`] for what happens when no slot qualifies.
    #[must_use]
    pub fn boot(&self) -> BootStep {
        let mut t = self.begin();
        let n = self.slot_count();
        let reset = self.config.reset_when_exhausted;
        let chosen = match self.config.backend {
            Backend::UBoot => {
                // `test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"` (and the same for every
                // LEFT): the defaults live in the script's env, and `saveenv` stores them.
                let save = pick_or_reset_saves(self, reset);
                if save && self.order_unset {
                    t.state.order_unset = false;
                    t.touch(self, VarId::Order);
                }
                for i in 0..n {
                    let sv = &mut t.state.slots[i];
                    if save && sv.unset {
                        sv.set_left(sv.boot_left());
                        t.touch(self, VarId::Attempts(i as u8));
                    }
                }
                // `test 0x${BOOT_x_LEFT} -gt 0`, `setexpr BOOT_x_LEFT ${BOOT_x_LEFT} - 1`.
                let pick = self.order_slots().find(|&i| self.slots[i].boot_left() > 0);
                if let Some(i) = pick {
                    let left = self.slots[i].boot_left() - 1;
                    t.state.slots[i].set_left(left);
                    t.touch(self, VarId::Attempts(i as u8));
                } else if reset {
                    for i in 0..n {
                        t.state.slots[i].set_left(self.config.boot_attempts);
                        t.touch(self, VarId::Attempts(i as u8));
                    }
                }
                pick
            }
            Backend::Barebox => {
                // Targets with priority 0 lose their attempts on load.
                for i in 0..n {
                    if t.state.slots[i].priority == 0 && t.state.slots[i].attempts != 0 {
                        t.state.slots[i].attempts = 0;
                        t.touch(self, VarId::Attempts(i as u8));
                    }
                }
                let enabled = |st: &Self, i: usize| st.slots[i].priority > 0;
                if reset
                    && (0..n).any(|i| enabled(&t.state, i))
                    && (0..n).all(|i| !enabled(&t.state, i) || t.state.slots[i].attempts == 0)
                {
                    for i in 0..n {
                        if enabled(&t.state, i) {
                            t.state.slots[i].attempts = self.config.boot_attempts;
                            t.touch(self, VarId::Attempts(i as u8));
                        }
                    }
                }
                let pick = t
                    .state
                    .barebox_sorted()
                    .into_iter()
                    .map(usize::from)
                    .find(|&i| t.state.slots[i].priority > 0 && t.state.slots[i].attempts > 0);
                if let Some(i) = pick {
                    t.state.slots[i].attempts -= 1;
                    t.touch(self, VarId::Attempts(i as u8));
                    if self.last_chosen.is_some() {
                        t.state.last_chosen = Some(i as u32 + 1);
                        t.touch(self, VarId::LastChosen);
                    }
                }
                pick
            }
            Backend::Grub => {
                // An entry without a branch in grub.conf changes nothing and is never chosen.
                let mut pick = None;
                for i in self.order_slots() {
                    let s = self.slots[i];
                    t.state.slots[i].tried = true;
                    if s.ok && !s.tried {
                        pick = Some(i);
                        break;
                    }
                }
                if pick.is_none() && reset {
                    for i in 0..n {
                        if t.state.slots[i].ok {
                            t.state.slots[i].tried = false;
                        }
                    }
                }
                // `save_env` writes every slot variable and ORDER.
                t.touch(self, VarId::Order);
                for i in 0..n {
                    t.touch(self, VarId::Ok(i as u8));
                    t.touch(self, VarId::Try(i as u8));
                }
                pick
            }
        };
        t.finish(self);
        BootStep {
            chosen,
            transition: t,
        }
    }

    /// Booted-slot detection from the kernel command line (RAUC's order): `rauc.external` or
    /// `root=/dev/nfs` → [`Booted::External`]; else `rauc.slot=<bootname>`; else
    /// `bootchooser.active=` / `bootstate.active=` (barebox). The first parameter of each kind wins.
    ///
    /// # Errors
    /// [`CmdlineError::NoSlotInfo`] if none is present, [`CmdlineError::UnknownBootname`] if the
    /// named bootname is not configured.
    pub fn booted_slot(&self, cmdline: &str) -> Result<Booted, CmdlineError> {
        let mut rauc_slot = None;
        let mut bootchooser = None;
        for p in cmdline_params(cmdline) {
            if p == "rauc.external" || p == "root=/dev/nfs" {
                return Ok(Booted::External);
            }
            if let Some(v) = p.strip_prefix("rauc.slot=") {
                rauc_slot.get_or_insert(unquote(v));
            } else if let Some(v) = p
                .strip_prefix("bootchooser.active=")
                .or_else(|| p.strip_prefix("bootstate.active="))
            {
                bootchooser.get_or_insert(unquote(v));
            }
        }
        let name = rauc_slot.or(bootchooser).ok_or(CmdlineError::NoSlotInfo)?;
        self.slot_index(name)
            .map(Booted::Slot)
            .ok_or(CmdlineError::UnknownBootname)
    }

    /// A transition that (re)writes every variable with its current value, e.g. to repair or
    /// provision storage.
    #[must_use]
    pub fn all_vars(&self) -> Transition {
        let mut base = self.clone();
        base.present = 0;
        let mut t = self.begin();
        // A U-Boot LEFT that the script reads differently from RAUC is written as RAUC reads it.
        if self.config.backend == Backend::UBoot {
            for s in &mut t.state.slots {
                if !s.unset {
                    s.set_boot_left(s.attempts);
                }
            }
        }
        for id in self.var_ids() {
            t.touch(&base, id);
        }
        t.finish(&base);
        t
    }

    // ---- internals ----

    fn begin(&self) -> Transition {
        Transition {
            state: self.clone(),
            touched: Vec::new(),
            text: String::new(),
            spans: Vec::new(),
        }
    }

    fn var_ids(&self) -> Vec<VarId, MAX_CHANGES> {
        let mut v: Vec<VarId, MAX_CHANGES> = Vec::new();
        let n = self.slot_count() as u8;
        // Capacity: 1 + 2 * MAX_SLOTS <= MAX_CHANGES for every backend.
        match self.config.backend {
            Backend::UBoot => {
                let _ = v.push(VarId::Order);
                for s in 0..n {
                    let _ = v.push(VarId::Attempts(s));
                }
            }
            Backend::Barebox => {
                for s in 0..n {
                    let _ = v.push(VarId::Priority(s));
                    let _ = v.push(VarId::Attempts(s));
                }
                if self.last_chosen.is_some() {
                    let _ = v.push(VarId::LastChosen);
                }
            }
            Backend::Grub => {
                let _ = v.push(VarId::Order);
                for s in 0..n {
                    let _ = v.push(VarId::Ok(s));
                    let _ = v.push(VarId::Try(s));
                }
            }
        }
        v
    }

    fn put_first(&mut self, slot: u8) {
        let mut order: Vec<u8, MAX_ORDER> = Vec::new();
        let _ = order.push(slot);
        for &i in self.order.iter().filter(|&&i| i != slot) {
            let _ = order.push(i);
        }
        self.order = order;
    }

    /// Slot indices by descending priority, ties in bootname order (barebox's sorted list).
    fn barebox_sorted(&self) -> Vec<u8, MAX_SLOTS> {
        let mut v: Vec<u8, MAX_SLOTS> = (0..self.slot_count() as u8).collect();
        // Stable insertion sort (at most MAX_SLOTS elements).
        for k in 1..v.len() {
            let mut j = k;
            while j > 0
                && self.slots[usize::from(v[j - 1])].priority
                    < self.slots[usize::from(v[j])].priority
            {
                v.swap(j - 1, j);
                j -= 1;
            }
        }
        v
    }

    fn var_name(&self, id: VarId) -> String<MAX_VAR_NAME_LEN> {
        let mut s = String::new();
        let bn = |slot: u8| self.names.get(usize::from(slot)).map_or("", String::as_str);
        // Every name fits MAX_VAR_NAME_LEN by construction (bootnames are length-checked).
        let _ = match (self.config.backend, id) {
            (Backend::UBoot, VarId::Order) => cat(&mut s, &["BOOT_ORDER"]),
            (Backend::Grub, VarId::Order) => cat(&mut s, &["ORDER"]),
            (Backend::UBoot, VarId::Attempts(i)) => cat(&mut s, &["BOOT_", bn(i), "_LEFT"]),
            (_, VarId::Attempts(i)) => cat(&mut s, &["bootstate.", bn(i), ".remaining_attempts"]),
            (_, VarId::Priority(i)) => cat(&mut s, &["bootstate.", bn(i), ".priority"]),
            (_, VarId::LastChosen) => cat(&mut s, &["bootstate.last_chosen"]),
            (_, VarId::Ok(i)) => cat(&mut s, &[bn(i), "_OK"]),
            (_, VarId::Try(i)) => cat(&mut s, &[bn(i), "_TRY"]),
            (_, VarId::Order) => cat(&mut s, &["ORDER"]),
        };
        s
    }

    fn var_value(&self, id: VarId) -> Option<String<MAX_VALUE_LEN>> {
        let mut s: String<MAX_VALUE_LEN> = String::new();
        // Every value fits MAX_VALUE_LEN by construction.
        let _ = match id {
            VarId::Order if self.order_unset => return None,
            VarId::Attempts(i) if self.slots[usize::from(i)].unset => return None,
            VarId::Order => {
                for (k, &i) in self.order.iter().enumerate() {
                    if k > 0 {
                        let _ = s.push(' ');
                    }
                    let word = match i.checked_sub(FOREIGN) {
                        Some(f) => SpaceSplit(Some(&self.foreign)).nth(usize::from(f)),
                        None => self.bootname(usize::from(i)),
                    };
                    let _ = s.push_str(word.unwrap_or(""));
                }
                if s.is_empty() && self.config.backend == Backend::UBoot {
                    // U-Boot has no empty variables; unreachable through the guarded operations.
                    return None;
                }
                Ok(())
            }
            VarId::LastChosen => cat(
                &mut s,
                &[Num::dec(self.last_chosen.unwrap_or(0).into()).as_str()],
            ),
            VarId::Attempts(i) => {
                let v = self.slots[usize::from(i)].attempts;
                let digits = if self.config.backend == Backend::UBoot {
                    Num::hex(v.into())
                } else {
                    Num::dec(v.into())
                };
                cat(&mut s, &[digits.as_str()])
            }
            VarId::Priority(i) => cat(
                &mut s,
                &[Num::dec(self.slots[usize::from(i)].priority.into()).as_str()],
            ),
            VarId::Ok(i) => cat(
                &mut s,
                &[if self.slots[usize::from(i)].ok {
                    "1"
                } else {
                    "0"
                }],
            ),
            VarId::Try(i) => cat(
                &mut s,
                &[if self.slots[usize::from(i)].tried {
                    "1"
                } else {
                    "0"
                }],
            ),
        };
        Some(s)
    }
}

impl Transition {
    /// Records `id` as set by the operation (rendered into changes by [`Transition::finish`]).
    fn touch(&mut self, _old: &BootState, id: VarId) {
        if !self.touched.contains(&id) {
            // Capacity: an operation touches at most MAX_CHANGES distinct variables.
            let _ = self.touched.push(id);
        }
    }

    /// Renders the touched variables: one change for each that was absent in `old` or whose
    /// value differs, and marks them present in the new state.
    fn finish(&mut self, old: &BootState) {
        let touched = core::mem::take(&mut self.touched);
        for &id in &touched {
            let new_value = self.state.var_value(id);
            let was_present = old.present & id.bit() != 0;
            if new_value.is_some() {
                self.state.present |= id.bit();
            } else {
                self.state.present &= !id.bit();
            }
            let changed = match (was_present, &new_value) {
                (true, v) => old.var_value(id) != *v,
                (false, v) => v.is_some(),
            };
            if changed {
                let name = self.state.var_name(id);
                // Capacity: MAX_TRANSITION_TEXT bounds every backend's full variable set.
                let _ = self.text.push_str(&name);
                let name_end = self.text.len() as u16;
                if let Some(v) = &new_value {
                    let _ = self.text.push_str(v);
                }
                let _ = self.spans.push(Span {
                    name_end,
                    value_end: self.text.len() as u16,
                    delete: new_value.is_none(),
                });
            }
        }
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn space_split_is_str_split() {
        for s in ["", " ", "A", "A B", " A  B ", "A  ", "  R A B", "x y z w"] {
            assert!(SpaceSplit(Some(s)).eq(s.split(' ')), "{s:?}");
            for b in 0..4u8 {
                assert_eq!(
                    has_byte(s.as_bytes(), b'A' + b),
                    s.as_bytes().contains(&(b'A' + b))
                );
            }
        }
    }
}

//! Power cuts over the whole RAUC cycle: provision → boot attempt → mark-good → install
//! (mark-bad other, mark-active other) → boot attempts → mark-good (success path) or fallback
//! (failure path) → mark-good of the fallback slot.
//!
//! A storage double enforces the medium (NOR: a program can only clear bits, so every 0→1 needs
//! an erase first; files: anything) and cuts power at every single medium operation of every
//! transition in four ways: the whole operation lost, the operation done and power lost right
//! after, a torn operation (all but the last byte), and random bit damage inside the range
//! (three seeds). After each cut the stored state must read back as exactly the old or the new
//! state, and a bootable slot must exist. The bootloader side of the cycle is an independent model
//! of RAUC's `contrib/uboot.sh` (choose, decrement in hex, saveenv, reset-and-fallback) running
//! against the stored env; its choices are cross-checked with `eyas_core::slots`.

mod support;

use eyas_bootloader_glue::barebox::{self, StateDesc};
use eyas_bootloader_glue::storage::Storage;
use eyas_bootloader_glue::uboot::store::{ApplyOptions, CopyLocation, StoreError, UbootStore};
use eyas_bootloader_glue::uboot::{self, EnvFormat, FlagScheme, Tail};
use eyas_core::slots::{Backend, BootState, Config};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use support::{Rng, uboot_script, vectors};

type Vars = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// The operation never reaches the medium.
    Lost,
    /// The operation completes, then power is lost.
    After,
    /// All but the last byte of the operation reach the medium.
    Torn,
    /// A random part of the operation reaches the medium and random bits are damaged.
    Bits(u64),
}

const CUTS: [Cut; 6] = [
    Cut::Lost,
    Cut::After,
    Cut::Torn,
    Cut::Bits(1),
    Cut::Bits(2),
    Cut::Bits(3),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum MediumError {
    PowerLost,
    NotErased { offset: usize },
    Misaligned,
}

impl fmt::Display for MediumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Debug)]
struct Medium {
    bytes: Vec<u8>,
    /// `Some(erase block size)` for NOR.
    nor: Option<usize>,
    ops: usize,
    cut_at: Option<(usize, Cut)>,
    dead: bool,
    violations: Vec<MediumError>,
}

impl Medium {
    fn new(bytes: Vec<u8>, nor: Option<usize>) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            bytes,
            nor,
            ops: 0,
            cut_at: None,
            dead: false,
            violations: Vec::new(),
        }))
    }

    /// Counts one operation; returns the cut to apply to it, if this is the one.
    fn step(&mut self) -> Result<Option<Cut>, MediumError> {
        if self.dead {
            return Err(MediumError::PowerLost);
        }
        let i = self.ops;
        self.ops += 1;
        match self.cut_at {
            Some((at, cut)) if at == i => {
                self.dead = true;
                Ok(Some(cut))
            }
            _ => Ok(None),
        }
    }

    fn program(&mut self, off: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let cur = self.bytes[off + i];
            if self.nor.is_some() {
                if b & !cur != 0 {
                    self.violations
                        .push(MediumError::NotErased { offset: off + i });
                }
                self.bytes[off + i] = cur & b;
            } else {
                self.bytes[off + i] = b;
            }
        }
    }

    fn damage(&mut self, off: usize, len: usize, seed: u64, fill: Option<u8>) {
        let mut rng =
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (off as u64) ^ ((len as u64) << 32) | 1);
        for i in 0..len {
            if rng.chance(30) {
                let cur = self.bytes[off + i];
                self.bytes[off + i] = match (fill, self.nor) {
                    // An interrupted erase leaves random bits set.
                    (Some(_), _) => cur | (rng.next() as u8),
                    // An interrupted NOR program only clears some bits.
                    (None, Some(_)) => cur & (rng.next() as u8),
                    (None, None) => rng.next() as u8,
                };
            }
        }
    }
}

#[derive(Clone)]
struct Handle(Rc<RefCell<Medium>>);

impl Storage for Handle {
    type Error = MediumError;
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), MediumError> {
        let m = self.0.borrow();
        if m.dead {
            return Err(MediumError::PowerLost);
        }
        let o = offset as usize;
        buf.copy_from_slice(&m.bytes[o..o + buf.len()]);
        Ok(())
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        let mut m = self.0.borrow_mut();
        // Files and block devices persist a write sector by sector: each sector is one
        // operation that a cut can hit.
        let chunk = if m.nor.is_some() {
            data.len().max(1)
        } else {
            FILE_SECTOR
        };
        let mut o = offset as usize;
        for part in data.chunks(chunk) {
            match m.step()? {
                None | Some(Cut::After) => m.program(o, part),
                Some(Cut::Lost) => {}
                Some(Cut::Torn) => m.program(o, &part[..part.len() - 1]),
                Some(Cut::Bits(seed)) => {
                    let keep = (seed as usize * 7919) % part.len();
                    m.program(o, &part[..keep]);
                    m.damage(o, part.len(), seed, None);
                }
            }
            if m.dead {
                return Err(MediumError::PowerLost);
            }
            o += part.len();
        }
        Ok(())
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), MediumError> {
        let mut m = self.0.borrow_mut();
        let (o, l) = (offset as usize, len as usize);
        let es = m.nor.ok_or(MediumError::Misaligned)?;
        if o % es != 0 || l % es != 0 {
            m.violations.push(MediumError::Misaligned);
        }
        match m.step()? {
            None | Some(Cut::After) => m.bytes[o..o + l].fill(0xFF),
            Some(Cut::Lost) => {}
            Some(Cut::Torn) => m.bytes[o..o + l - 1].fill(0xFF),
            Some(Cut::Bits(seed)) => m.damage(o, l, seed, Some(0xFF)),
        }
        if m.dead {
            Err(MediumError::PowerLost)
        } else {
            Ok(())
        }
    }
    fn sync(&mut self) -> Result<(), MediumError> {
        if self.0.borrow().dead {
            Err(MediumError::PowerLost)
        } else {
            Ok(())
        }
    }
    fn erase_size(&self) -> Option<u64> {
        self.0.borrow().nor.map(|e| e as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// U-Boot

const ENV: usize = 0x400;
/// Sector size of the file/block-device double.
const FILE_SECTOR: usize = 0x100;
const UB_NAMES: [&str; 2] = ["A", "B"];

fn ub_format(nor: bool) -> EnvFormat {
    EnvFormat {
        flags: if nor {
            FlagScheme::Boolean
        } else {
            FlagScheme::Incremental
        },
        ..EnvFormat::redundant(ENV)
    }
}

fn ub_store(m: &Rc<RefCell<Medium>>, nor: bool) -> UbootStore<Handle> {
    UbootStore {
        format: ub_format(nor),
        copy0: CopyLocation {
            storage: Handle(m.clone()),
            offset: 0,
        },
        copy1: Some(CopyLocation {
            storage: Handle(m.clone()),
            offset: ENV as u64,
        }),
    }
}

/// What the bootloader (or a fresh Linux boot) reads: the current copy's variables.
fn ub_read(bytes: &[u8], nor: bool) -> Option<Vars> {
    let img = uboot::decode(&ub_format(nor), &bytes[..ENV], &bytes[ENV..2 * ENV]).ok()?;
    Some(
        img.env
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect(),
    )
}

fn state_of(backend: Backend, names: &[&str], vars: &Vars) -> BootState {
    BootState::from_vars(Config::new(backend), names, |n| {
        vars.get(n).map(String::as_str)
    })
    .expect("stored vars are a valid boot state")
}

use support::ChangeList;

fn apply_vars(v: &Vars, ch: &ChangeList) -> Vars {
    let mut v = v.clone();
    for (n, val) in ch {
        match val {
            Some(x) if !x.is_empty() => {
                v.insert(n.clone(), x.clone());
            }
            _ => {
                v.remove(n);
            }
        }
    }
    v
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Boot,
    MarkGood(usize),
    MarkBad(usize),
    MarkActive(usize),
}

/// Computes one transition's change list from the stored vars, cross-checking the boot script
/// with `slots::BootState::boot`.
fn ub_changes(step: Step, vars: &Vars) -> (ChangeList, Option<&'static str>) {
    let st = state_of(Backend::UBoot, &UB_NAMES, vars);
    let own = |t: eyas_core::slots::Transition| -> ChangeList {
        t.changes()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect()
    };
    match step {
        Step::Boot => {
            let (chosen, ch) = uboot_script(vars);
            let model = st.boot();
            assert_eq!(
                model.chosen.map(|i| UB_NAMES[i]),
                chosen,
                "slots::boot and the boot script disagree on {vars:?}"
            );
            assert_eq!(
                apply_vars(vars, &ch),
                apply_vars(vars, &own(model.transition)),
                "slots::boot and the boot script write different envs from {vars:?}"
            );
            (ch, chosen)
        }
        Step::MarkGood(s) => (own(st.mark_good(s).unwrap()), None),
        Step::MarkBad(s) => (own(st.mark_bad(s).unwrap()), None),
        Step::MarkActive(s) => (own(st.mark_active(s).unwrap()), None),
    }
}

fn ub_apply(
    m: &Rc<RefCell<Medium>>,
    nor: bool,
    ch: &ChangeList,
) -> Result<(), StoreError<MediumError>> {
    let mut st = ub_store(m, nor);
    let mut scratch = vec![0u8; 3 * ENV];
    let borrowed: Vec<(&str, Option<&str>)> =
        ch.iter().map(|(n, v)| (n.as_str(), v.as_deref())).collect();
    st.apply(
        borrowed.iter().copied(),
        &ApplyOptions {
            tail: Tail::Fill(0),
            ..ApplyOptions::default()
        },
        &mut scratch,
    )
    .map(|_| ())
}

/// The RAUC cycles: boot, mark-good, install B, then either B fails three boots and falls back
/// to A, or B is marked good.
fn cycles() -> Vec<(&'static str, Vec<Step>)> {
    use Step::*;
    let head = vec![Boot, MarkGood(0), MarkBad(1), MarkActive(1), Boot];
    let mut fallback = head.clone();
    fallback.extend([Boot, Boot, Boot, MarkGood(0), Boot, MarkBad(1)]);
    let mut success = head;
    success.extend([
        MarkGood(1),
        Boot,
        MarkBad(0),
        MarkActive(0),
        Boot,
        MarkGood(0),
    ]);
    vec![("fallback", fallback), ("success", success)]
}

fn run_uboot(nor: bool) -> (usize, Vec<Option<&'static str>>) {
    let init = BootState::initial(Backend::UBoot, &UB_NAMES).unwrap();
    let init_vars: Vec<(String, String)> = init
        .changes()
        .map(|(n, v)| (n.to_string(), v.unwrap().to_string()))
        .collect();
    let mut copy = vec![0u8; ENV];
    uboot::make_copy(
        &ub_format(nor),
        init_vars.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        0xFF,
        1,
        &mut copy,
    )
    .unwrap();
    let mut image = copy.clone();
    // Copy 1 starts erased/obsolete (NOR) or as a duplicate (files).
    if nor {
        image.extend(std::iter::repeat_n(0xFFu8, ENV));
    } else {
        image.extend_from_slice(&copy);
    }
    let mut cut_points = 0;
    let mut choices = Vec::new();
    for (name, steps) in cycles() {
        let m = Medium::new(image.clone(), nor.then_some(ENV));
        for (i, step) in steps.iter().enumerate() {
            let before = m.borrow().bytes.clone();
            let old = ub_read(&before, nor).expect("a valid env before every step");
            let (ch, chosen) = ub_changes(*step, &old);
            if matches!(step, Step::Boot) {
                choices.push(chosen);
            }
            let new = apply_vars(&old, &ch);
            // Dry run: count the medium operations of this transition.
            m.borrow_mut().ops = 0;
            ub_apply(&m, nor, &ch).unwrap_or_else(|e| panic!("{name} step {i} {step:?}: {e}"));
            let after = m.borrow().bytes.clone();
            let n_ops = m.borrow().ops;
            assert!(
                m.borrow().violations.is_empty(),
                "{:?}",
                m.borrow().violations
            );
            assert_eq!(ub_read(&after, nor).as_ref(), Some(&new), "{name} step {i}");
            for op in 0..n_ops {
                for cut in CUTS {
                    let mut mm = m.borrow_mut();
                    mm.bytes = before.clone();
                    mm.ops = 0;
                    mm.dead = false;
                    mm.cut_at = Some((op, cut));
                    drop(mm);
                    let r = ub_apply(&m, nor, &ch);
                    let mut mm = m.borrow_mut();
                    assert!(mm.dead, "cut at op {op} never fired");
                    assert!(
                        r.is_err() || op + 1 == n_ops,
                        "{name} step {i}: apply returned Ok although power was lost at op {op} of {n_ops}"
                    );
                    assert!(
                        mm.violations.is_empty(),
                        "{name} step {i} {cut:?} op {op}: medium violated: {:?}",
                        mm.violations
                    );
                    let got = ub_read(&mm.bytes, nor);
                    assert!(
                        got.as_ref() == Some(&old) || got.as_ref() == Some(&new),
                        "{name} step {i} {step:?}, cut {cut:?} at op {op}: read back {got:?}, expected old {old:?} or new {new:?}"
                    );
                    let st = state_of(Backend::UBoot, &UB_NAMES, got.as_ref().unwrap());
                    assert!(
                        st.has_bootable(),
                        "{name} step {i}: no bootable slot after the cut"
                    );
                    // The boot script still chooses a slot (possibly after its reset step).
                    let (c, _) = uboot_script(got.as_ref().unwrap());
                    let (c2, _) = uboot_script(&apply_vars(
                        got.as_ref().unwrap(),
                        &uboot_script(got.as_ref().unwrap()).1,
                    ));
                    assert!(
                        c.is_some() || c2.is_some(),
                        "{name} step {i}: bootloader finds nothing to boot"
                    );
                    mm.cut_at = None;
                    mm.dead = false;
                    cut_points += 1;
                }
            }
            let mut mm = m.borrow_mut();
            mm.bytes = after;
            mm.cut_at = None;
        }
    }
    (cut_points, choices)
}

#[test]
fn uboot_power_cuts_files_incremental() {
    let (n, choices) = run_uboot(false);
    // The boot script's choices over both cycles: fallback = A, B, B, B, A(fallback), A; success = A, B, B, A.
    assert_eq!(
        choices,
        [
            Some("A"),
            Some("B"),
            Some("B"),
            Some("B"),
            Some("A"),
            Some("A"),
            Some("A"),
            Some("B"),
            Some("B"),
            Some("A")
        ]
    );
    println!(
        "U-Boot env on files (incremental flags): {n} cut points exercised, every one read back old or new with a bootable slot"
    );
    assert!(n >= 500, "{n}");
}

#[test]
fn uboot_power_cuts_nor_boolean() {
    let (n, _) = run_uboot(true);
    println!(
        "U-Boot env on NOR (boolean flags, erase-before-write enforced): {n} cut points exercised, every one read back old or new with a bootable slot"
    );
    assert!(n >= 300, "{n}");
}

/// A single-copy env is not power-cut safe: the double shows it, which is why eyas refuses to
/// rewrite one unless allowed.
#[test]
fn single_copy_is_not_power_safe_and_refused_by_default() {
    let m = Medium::new(vec![0xFF; ENV], None);
    let mut copy = vec![0u8; ENV];
    uboot::make_copy(
        &EnvFormat::single(ENV),
        [("BOOT_ORDER", "A B")].into_iter(),
        0xFF,
        0,
        &mut copy,
    )
    .unwrap();
    m.borrow_mut().bytes = copy;
    let mut st = UbootStore {
        format: EnvFormat::single(ENV),
        copy0: CopyLocation {
            storage: Handle(m.clone()),
            offset: 0,
        },
        copy1: None,
    };
    let mut scratch = vec![0u8; 2 * ENV];
    assert!(matches!(
        st.apply(
            [("X", Some("1"))].into_iter(),
            &ApplyOptions::default(),
            &mut scratch
        ),
        Err(StoreError::UnsafeSingleCopy)
    ));
    m.borrow_mut().cut_at = Some((0, Cut::Bits(1)));
    let opts = ApplyOptions {
        allow_single_copy_write: true,
        ..ApplyOptions::default()
    };
    assert!(
        st.apply([("X", Some("1"))].into_iter(), &opts, &mut scratch)
            .is_err()
    );
    let b = m.borrow().bytes.clone();
    assert!(
        uboot::decode(&EnvFormat::single(ENV), &b, &[]).is_err(),
        "a damaged single-copy write leaves no valid env"
    );
}

// ---------------------------------------------------------------------------------------------
// Barebox (raw format, direct storage, 3 buckets)

const BB_NAMES: [&str; 2] = ["system0", "system1"];

fn bb_desc() -> StateDesc {
    StateDesc::from_dtb(
        &std::fs::read(vectors().join("barebox/state-partuuid.dtb")).unwrap(),
        None,
    )
    .unwrap()
}

fn bb_read(d: &StateDesc, bytes: &[u8]) -> Option<Vars> {
    let mut h = bytes.to_vec();
    let mut s = eyas_bootloader_glue::storage::SliceStorage::new(&mut h);
    let mut buf = vec![0u8; d.stride as usize];
    let l = barebox::load(d, &mut s, &mut buf).ok()?;
    Some(
        d.vars
            .iter()
            .map(|v| {
                (
                    v.name.to_string(),
                    d.get(&l.values, &v.name).unwrap().to_string(),
                )
            })
            .collect(),
    )
}

fn bb_apply(
    m: &Rc<RefCell<Medium>>,
    d: &StateDesc,
    old: &Vars,
    ch: &ChangeList,
) -> Result<(), barebox::SaveError<MediumError>> {
    let mut v = d.defaults();
    for (n, val) in old.iter() {
        d.set(&mut v, n, Some(val)).unwrap();
    }
    for (n, val) in ch {
        d.set(&mut v, n, val.as_deref()).unwrap();
    }
    let mut buf = vec![0u8; d.stride as usize];
    barebox::save(d, &v, &mut Handle(m.clone()), &mut buf)
}

#[test]
fn barebox_power_cuts_direct_buckets() {
    let d = bb_desc();
    let init = BootState::initial(Backend::Barebox, &BB_NAMES).unwrap();
    let init_ch: ChangeList = init
        .changes()
        .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
        .collect();
    let m = Medium::new(vec![0u8; 0x8000], None);
    bb_apply(&m, &d, &BTreeMap::new(), &init_ch).unwrap();
    let image = m.borrow().bytes.clone();
    let mut cut_points = 0;
    for (name, steps) in cycles() {
        let m = Medium::new(image.clone(), None);
        for (i, step) in steps.iter().enumerate() {
            let before = m.borrow().bytes.clone();
            let old = bb_read(&d, &before).expect("valid state before every step");
            let st = state_of(Backend::Barebox, &BB_NAMES, &old);
            let t = match step {
                Step::Boot => st.boot().transition,
                Step::MarkGood(s) => st.mark_good(*s).unwrap(),
                Step::MarkBad(s) => st.mark_bad(*s).unwrap(),
                Step::MarkActive(s) => st.mark_active(*s).unwrap(),
            };
            let ch: ChangeList = t
                .changes()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect();
            let new = apply_vars(&old, &ch);
            m.borrow_mut().ops = 0;
            bb_apply(&m, &d, &old, &ch).unwrap();
            let after = m.borrow().bytes.clone();
            let n_ops = m.borrow().ops;
            assert_eq!(n_ops, barebox::BUCKETS);
            assert_eq!(bb_read(&d, &after).as_ref(), Some(&new));
            for op in 0..n_ops {
                for cut in CUTS {
                    {
                        let mut mm = m.borrow_mut();
                        mm.bytes = before.clone();
                        mm.ops = 0;
                        mm.dead = false;
                        mm.cut_at = Some((op, cut));
                    }
                    let r = bb_apply(&m, &d, &old, &ch);
                    let mut mm = m.borrow_mut();
                    assert!(mm.dead && (r.is_err() || op + 1 == n_ops));
                    let got = bb_read(&d, &mm.bytes);
                    assert!(
                        got.as_ref() == Some(&old) || got.as_ref() == Some(&new),
                        "{name} step {i} {step:?}, cut {cut:?} at bucket write {op}: read back {got:?}"
                    );
                    assert!(
                        state_of(Backend::Barebox, &BB_NAMES, got.as_ref().unwrap()).has_bootable()
                    );
                    mm.cut_at = None;
                    mm.dead = false;
                    cut_points += 1;
                }
            }
            let mut mm = m.borrow_mut();
            mm.bytes = after;
        }
    }
    println!(
        "Barebox state (raw, direct, 3 buckets): {cut_points} cut points exercised, every one read back old or new with a bootable slot"
    );
    assert!(cut_points >= 200, "{cut_points}");
}

/// Compounding damage: a long random walk over the RAUC operations and bootloader boots, with a
/// power cut (random kind, random operation) in a third of the writes and no repair in between.
/// Every state along the way must decode, be old-or-new of its transition, and stay bootable.
fn random_walk_uboot(nor: bool, seed: u64, steps: usize) -> usize {
    let init = BootState::initial(Backend::UBoot, &UB_NAMES).unwrap();
    let init_vars: Vec<(String, String)> = init
        .changes()
        .map(|(n, v)| (n.to_string(), v.unwrap().to_string()))
        .collect();
    let mut copy = vec![0u8; ENV];
    uboot::make_copy(
        &ub_format(nor),
        init_vars.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        0xFF,
        1,
        &mut copy,
    )
    .unwrap();
    let mut image = copy.clone();
    image.extend(std::iter::repeat_n(0xFFu8, ENV));
    let m = Medium::new(image, nor.then_some(ENV));
    let mut rng = Rng(seed);
    let mut cuts = 0;
    for i in 0..steps {
        let old =
            ub_read(&m.borrow().bytes, nor).unwrap_or_else(|| panic!("step {i}: no valid env"));
        let st = state_of(Backend::UBoot, &UB_NAMES, &old);
        let step = match rng.below(5) {
            0 | 1 => Step::Boot,
            2 => Step::MarkGood(rng.below(2) as usize),
            3 => Step::MarkActive(rng.below(2) as usize),
            _ => Step::MarkBad(rng.below(2) as usize),
        };
        if let Step::MarkBad(s) = step
            && st.mark_bad(s).is_err()
        {
            continue; // refused: it would leave nothing bootable
        }
        let (ch, _) = ub_changes(step, &old);
        let new = apply_vars(&old, &ch);
        {
            let mut mm = m.borrow_mut();
            mm.ops = 0;
            mm.dead = false;
            mm.cut_at = rng.chance(33).then(|| {
                (
                    rng.below(3) as usize,
                    CUTS[rng.below(CUTS.len() as u64) as usize],
                )
            });
        }
        let _ = ub_apply(&m, nor, &ch);
        let mut mm = m.borrow_mut();
        if mm.dead {
            cuts += 1;
        }
        assert!(mm.violations.is_empty(), "{:?}", mm.violations);
        let got = ub_read(&mm.bytes, nor);
        assert!(
            got.as_ref() == Some(&old) || got.as_ref() == Some(&new),
            "step {i} {step:?}: {got:?} is neither {old:?} nor {new:?}"
        );
        assert!(
            state_of(Backend::UBoot, &UB_NAMES, got.as_ref().unwrap()).has_bootable(),
            "step {i}: nothing bootable"
        );
        mm.cut_at = None;
        mm.dead = false;
    }
    cuts
}

#[test]
fn uboot_random_walk_with_compounding_cuts() {
    let mut total = 0;
    for seed in 1..=4 {
        total += random_walk_uboot(false, seed, 400);
        total += random_walk_uboot(true, seed + 100, 400);
    }
    println!(
        "U-Boot random walks (files + NOR, 3200 steps): {total} power cuts landed, no repair in between, always old-or-new and bootable"
    );
    assert!(total > 300, "{total}");
}

#[test]
fn barebox_random_walk_with_compounding_cuts() {
    // barebox's default (no reset_attempts) and a board with reset_attempts=all-zero.
    let cuts = barebox_random_walk(false, 77) + barebox_random_walk(true, 78);
    println!(
        "Barebox random walks (2 x 1500 steps): {cuts} power cuts landed, no repair in between, always old-or-new, never made unbootable by eyas"
    );
    assert!(cuts > 600, "{cuts}");
}

/// One random walk of boots and RAUC operations with power cuts. With `reset` a bootable target
/// always remains; without it the walk's unconfirmed boots can use up every attempt (barebox
/// then boots nothing), but no eyas operation takes away the last bootable target.
fn barebox_random_walk(reset: bool, seed: u64) -> usize {
    let d = bb_desc();
    let cfg = Config::new(Backend::Barebox).with_reset_when_exhausted(reset);
    let state_of = |_: Backend, names: &[&str], vars: &Vars| {
        BootState::from_vars(cfg, names, |n| vars.get(n).map(String::as_str)).unwrap()
    };
    let init = BootState::initial(cfg, &BB_NAMES).unwrap();
    let init_ch: ChangeList = init
        .changes()
        .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
        .collect();
    let m = Medium::new(vec![0u8; 0x8000], None);
    bb_apply(&m, &d, &BTreeMap::new(), &init_ch).unwrap();
    let mut rng = Rng(seed);
    let mut cuts = 0;
    for i in 0..1500 {
        let old =
            bb_read(&d, &m.borrow().bytes).unwrap_or_else(|| panic!("step {i}: no valid bucket"));
        let st = state_of(Backend::Barebox, &BB_NAMES, &old);
        let s = rng.below(2) as usize;
        let op = rng.below(5);
        let t = match op {
            0 | 1 => st.boot().transition,
            2 => st.mark_good(s).unwrap(),
            3 => st.mark_active(s).unwrap(),
            _ => match st.mark_bad(s) {
                Ok(t) => t,
                Err(_) => continue,
            },
        };
        let ch: ChangeList = t
            .changes()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect();
        let new = apply_vars(&old, &ch);
        {
            let mut mm = m.borrow_mut();
            mm.ops = 0;
            mm.dead = false;
            mm.cut_at = rng.chance(33).then(|| {
                (
                    rng.below(3) as usize,
                    CUTS[rng.below(CUTS.len() as u64) as usize],
                )
            });
        }
        let _ = bb_apply(&m, &d, &old, &ch);
        let mut mm = m.borrow_mut();
        cuts += usize::from(mm.dead);
        let got = bb_read(&d, &mm.bytes);
        assert!(
            got.as_ref() == Some(&old) || got.as_ref() == Some(&new),
            "step {i}: {got:?}"
        );
        let bootable = state_of(Backend::Barebox, &BB_NAMES, got.as_ref().unwrap()).has_bootable();
        if reset {
            assert!(bootable, "step {i}");
        } else if op >= 2 {
            assert!(
                bootable || !st.has_bootable(),
                "step {i}: op {op} took the last target"
            );
        }
        mm.cut_at = None;
        mm.dead = false;
    }
    cuts
}

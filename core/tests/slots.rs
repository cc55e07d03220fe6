//! `slots`: error paths, the bootloader step per backend, booted-slot detection, and property
//! tests over random operation sequences.

use std::collections::BTreeMap;

use eyas_core::slots::{
    Backend, BootState, Booted, CmdlineError, Config, FromVarsError, MAX_BOOTNAME_LEN, MAX_CHANGES,
    MAX_FOREIGN_IN_ORDER, MAX_FOREIGN_ORDER_TEXT, MAX_SLOTS, MAX_VALUE_LEN, MAX_VAR_NAME_LEN,
    MarkBadError, MarkError, Transition, VarKind,
};
use proptest::prelude::*;

type Vars = BTreeMap<String, String>;

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn read(cfg: impl Into<Config>, names: &[&str], v: &Vars) -> Result<BootState, FromVarsError> {
    BootState::from_vars(cfg, names, |n: &str| v.get(n).map(String::as_str))
}

fn apply(v: &mut Vars, t: &Transition) {
    for (k, val) in t.changes() {
        match val {
            Some(val) => v.insert(k.to_string(), val.to_string()),
            None => v.remove(k),
        };
    }
}

fn changes(t: &Transition) -> Vec<(String, Option<String>)> {
    t.changes()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

fn ch(k: &str, v: &str) -> (String, Option<String>) {
    (k.to_string(), Some(v.to_string()))
}

const AB: &[&str] = &["A", "B"];
const SYS: &[&str] = &["system0", "system1"];

// ---------------------------------------------------------------- from_vars errors

#[test]
fn slot_count_is_checked() {
    let v = Vars::new();
    assert_eq!(
        read(Backend::UBoot, &["A"], &v),
        Err(FromVarsError::SlotCount { given: 1 })
    );
    assert_eq!(
        read(Backend::UBoot, &["A", "B", "C", "D", "E"], &v),
        Err(FromVarsError::SlotCount { given: 5 })
    );
    assert!(read(Backend::UBoot, &["A", "B", "C", "D"][..MAX_SLOTS], &v).is_ok());
}

#[test]
fn bootnames_are_checked() {
    let v = Vars::new();
    let long = "x".repeat(MAX_BOOTNAME_LEN + 1);
    let ok = "x".repeat(MAX_BOOTNAME_LEN);
    for bad in ["", "a b", "a.b", "a=b", long.as_str(), "ä"] {
        assert_eq!(
            read(Backend::Grub, &["A", bad], &v),
            Err(FromVarsError::InvalidBootname { slot: 1 }),
            "{bad:?}"
        );
    }
    assert!(read(Backend::Grub, &["A", ok.as_str()], &v).is_ok());
    assert_eq!(
        read(Backend::Grub, &["A", "B", "A"], &v),
        Err(FromVarsError::DuplicateBootname { slot: 2 })
    );
}

#[test]
fn zero_attempts_config_is_rejected() {
    let v = Vars::new();
    let cfg = Config::new(Backend::UBoot).with_attempts(0, 3);
    assert_eq!(read(cfg, AB, &v), Err(FromVarsError::InvalidConfig));
    let cfg = Config::new(Backend::UBoot).with_attempts(3, 0);
    assert_eq!(read(cfg, AB, &v), Err(FromVarsError::InvalidConfig));
    assert_eq!(
        BootState::initial(cfg, AB).err(),
        Some(FromVarsError::InvalidConfig)
    );
}

/// RAUC 1.8 reads `BOOT_x_LEFT` with `g_ascii_strtoull(value, NULL, 16)` and never looks at the
/// end pointer (src/bootloaders/uboot.c; boot-state.md §1.3 "parsed base-16"). Every value below
/// was run through real RAUC 1.8 (§1.8 oracle, `rauc status --detailed`): `0x3`, `0X3`, ` 3`,
/// `\t3`, `+3`, `-1`, `3zz` are good; `-0`, `zz`, `0x`, `` are bad. The boot script instead
/// tests `0x${BOOT_x_LEFT} -gt 0`, so a value that does not start with a hex digit is 0 to it
/// (`0x0x3`, `0x 3`, `0x+3`), and `3zz` is 3.
#[test]
fn uboot_left_is_read_like_rauc_strtoull() {
    // (value, RAUC's attempts, the script boots it)
    let cases: &[(&str, u32, bool)] = &[
        ("0", 0, false),
        ("3", 3, true),
        ("a", 10, true),
        ("F", 15, true),
        ("10", 16, true),
        ("ffffffff", u32::MAX, true),
        ("0x3", 3, false),
        ("0X3", 3, false),
        (" 3", 3, false),
        ("\t3", 3, false),
        ("\n\x0b\x0c\r 3", 3, false),
        ("+3", 3, false),
        ("-1", u32::MAX, false),
        ("-0", 0, false),
        ("+", 0, false),
        ("zz", 0, false),
        ("g", 0, false),
        ("0x", 0, false),
        ("0xg", 0, false),
        ("3zz", 3, true),
        ("3 ", 3, true),
        ("03", 3, true),
        // strtoull saturates at ULLONG_MAX; the model saturates at u32::MAX (> 0 either way).
        ("100000000", u32::MAX, true),
        ("ffffffffffffffffffff", u32::MAX, true),
    ];
    for &(val, rauc, boots) in cases {
        let v = vars(&[
            ("BOOT_ORDER", "B A"),
            ("BOOT_A_LEFT", "3"),
            ("BOOT_B_LEFT", val),
        ]);
        let st = read(Backend::UBoot, AB, &v).unwrap_or_else(|e| panic!("{val:?}: {e:?}"));
        assert_eq!(st.attempts_left(1), Some(rauc), "{val:?}");
        assert_eq!(st.is_good(1), rauc > 0, "{val:?}");
        assert_eq!(st.primary(), Some(if rauc > 0 { 1 } else { 0 }), "{val:?}");
        let step = st.boot();
        assert_eq!(step.chosen, Some(if boots { 1 } else { 0 }), "{val:?}");
        // Whatever the stored spelling, mark-good stores the plain hex value.
        let t = st.mark_good(1).unwrap();
        let want = if val == "3" {
            vec![]
        } else {
            vec![ch("BOOT_B_LEFT", "3")]
        };
        assert_eq!(changes(&t), want, "{val:?}");
    }
    // The script decrements what `setexpr` reads (hex digits up to the first other byte).
    let v = vars(&[
        ("BOOT_ORDER", "A B"),
        ("BOOT_A_LEFT", "3zz"),
        ("BOOT_B_LEFT", "3"),
    ]);
    let step = read(Backend::UBoot, AB, &v).unwrap().boot();
    assert_eq!(changes(&step.transition), [ch("BOOT_A_LEFT", "2")]);
    // all_vars repairs a spelling to RAUC's value.
    let v = vars(&[
        ("BOOT_ORDER", "A B"),
        ("BOOT_A_LEFT", "0x3"),
        ("BOOT_B_LEFT", "3"),
    ]);
    let all = read(Backend::UBoot, AB, &v).unwrap().all_vars();
    assert_eq!(changes(&all)[1], ch("BOOT_A_LEFT", "3"));
    assert_eq!(all.state().boot().chosen, Some(0));
}

/// RAUC 1.8's get-state reads a missing (or empty) `BOOT_x_LEFT` as 0, i.e. bad: libubootenv's
/// `fw_printenv BOOT_B_LEFT` prints `BOOT_B_LEFT=` and `strtoull("", 16)` is 0 (boot-state.md §2.6,
/// re-checked with the RAUC 1.8 oracle of §1.8). The reference boot script (`contrib/uboot.sh`,
/// §1.3) instead defaults it (`test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3`), and its
/// `saveenv` persists the default.
#[test]
fn uboot_missing_left_is_bad_for_rauc_but_the_script_defaults_it() {
    for missing in [None, Some("")] {
        let mut v = vars(&[("BOOT_ORDER", "B A"), ("BOOT_A_LEFT", "3")]);
        if let Some(m) = missing {
            v.insert("BOOT_B_LEFT".into(), m.into());
        }
        let cfg = Config::new(Backend::UBoot).with_attempts(5, 3);
        let st = read(cfg, AB, &v).unwrap();
        // The query side (get-state / get-primary) agrees with RAUC.
        assert!(!st.is_good(1), "{missing:?}");
        assert_eq!(st.attempts_left(1), Some(0));
        assert_eq!(st.primary(), Some(0));
        // The bootloader side: the script defaults LEFT to its reset value and boots B.
        assert!(st.is_bootable(1));
        let step = st.boot();
        assert_eq!(step.chosen, Some(1));
        assert_eq!(changes(&step.transition), [ch("BOOT_B_LEFT", "4")]);
        assert!(step.transition.state().is_good(1));
        // A missing variable is written when an operation sets it, even to the same value.
        let t = st.mark_good(1).unwrap();
        assert_eq!(changes(&t), [ch("BOOT_B_LEFT", "5")]);
        assert!(t.state().is_good(1));
        // all_vars rewrites what is stored and leaves the missing variable missing.
        let all = st.all_vars();
        assert_eq!(
            changes(&all),
            [ch("BOOT_ORDER", "B A"), ch("BOOT_A_LEFT", "3")]
        );
        assert!(!all.state().is_good(1));
        // mark-bad of A leaves B to the script (it boots B): allowed.
        assert!(st.mark_bad(0).is_ok());
    }
}

/// A missing `BOOT_ORDER`: RAUC 1.8 reads it as empty, so every slot is bad and there is no
/// primary (verified with the oracle); the script boots with `BOOT_ORDER="A B"` and its
/// `saveenv` stores that default together with every defaulted `LEFT`.
#[test]
fn uboot_missing_order_is_bad_for_rauc_but_the_script_defaults_it() {
    for v in [
        vars(&[("BOOT_A_LEFT", "3"), ("BOOT_B_LEFT", "3")]),
        vars(&[
            ("BOOT_ORDER", ""),
            ("BOOT_A_LEFT", "3"),
            ("BOOT_B_LEFT", "3"),
        ]),
    ] {
        let st = read(Backend::UBoot, AB, &v).unwrap();
        assert!(!st.is_good(0) && !st.is_good(1));
        assert_eq!(st.primary(), None);
        assert!(st.has_bootable());
        assert_eq!(st.order().collect::<Vec<_>>(), [0, 1]);
        let step = st.boot();
        assert_eq!(step.chosen, Some(0));
        assert_eq!(
            changes(&step.transition),
            [ch("BOOT_ORDER", "A B"), ch("BOOT_A_LEFT", "2")]
        );
        assert_eq!(step.transition.state().primary(), Some(0));
        // mark-active writes the order (eyas keeps the script's default order behind the
        // target, so a fallback remains; RAUC 1.8 writes just `B` here).
        let t = st.mark_active(1).unwrap();
        assert_eq!(changes(&t), [ch("BOOT_ORDER", "B A")]);
        assert_eq!(t.state().primary(), Some(1));
    }
    // Nothing stored at all: the script boots A with every default and saves them all.
    let st = read(Backend::UBoot, AB, &Vars::new()).unwrap();
    let mut got = changes(&st.boot().transition);
    got.sort();
    assert_eq!(
        got,
        [
            ch("BOOT_A_LEFT", "2"),
            ch("BOOT_B_LEFT", "3"),
            ch("BOOT_ORDER", "A B")
        ]
    );
}

#[test]
fn order_errors() {
    for (backend, var) in [(Backend::UBoot, "BOOT_ORDER"), (Backend::Grub, "ORDER")] {
        let v = vars(&[(var, "A B A")]);
        assert_eq!(read(backend, AB, &v), Err(FromVarsError::DuplicateInOrder));
        let v = vars(&[(var, "   ")]);
        assert_eq!(
            read(backend, AB, &v),
            Err(FromVarsError::InvalidValue {
                slot: None,
                var: VarKind::Order
            })
        );
        // Extra spaces are fine (U-Boot hush and GRUB word-split).
        let v = vars(&[(var, "  B   A ")]);
        assert_eq!(
            read(backend, AB, &v).unwrap().order().collect::<Vec<_>>(),
            [1, 0]
        );
        // A subset is fine: the missing slot is just not in the order.
        let v = vars(&[(var, "B")]);
        assert_eq!(
            read(backend, AB, &v).unwrap().order().collect::<Vec<_>>(),
            [1]
        );
    }
}

/// The good variables of both slots, for U-Boot or GRUB.
fn good_ab(backend: Backend, order_var: &str, order: &str) -> Vars {
    let mut v = if backend == Backend::UBoot {
        vars(&[("BOOT_A_LEFT", "3"), ("BOOT_B_LEFT", "3")])
    } else {
        vars(&[("A_OK", "1"), ("A_TRY", "0"), ("B_OK", "1"), ("B_TRY", "0")])
    };
    v.insert(order_var.into(), order.into());
    v
}

/// An order entry that is not a configured bootname (a recovery entry `R`) is kept in place.
/// RAUC 1.8's U-Boot backend keeps it (oracle run, §1.8: from `A R B`, `mark-bad other` writes
/// `BOOT_ORDER=A R`, then `mark-active other` writes `BOOT_ORDER=B A R`) and reads the managed
/// slots around it; neither reference boot script has a branch for it, so the model never
/// chooses it.
#[test]
fn unknown_order_entries_are_kept_in_place() {
    for (backend, var) in [(Backend::UBoot, "BOOT_ORDER"), (Backend::Grub, "ORDER")] {
        let mut v = good_ab(backend, var, "A R B");
        let st = read(backend, AB, &v).unwrap();
        assert_eq!(st.order().collect::<Vec<_>>(), [0, 1], "{backend:?}");
        assert!(st.is_good(0) && st.is_good(1));
        assert_eq!(st.primary(), Some(0));
        // all_vars writes it back unchanged.
        let all = st.all_vars();
        assert_eq!(changes(&all)[0], ch(var, "A R B"));
        let t = st.mark_bad(1).unwrap();
        if backend == Backend::UBoot {
            assert_eq!(changes(&t)[0], ch(var, "A R"));
        }
        apply(&mut v, &t);
        let st = read(backend, AB, &v).unwrap();
        assert_eq!(st, *t.state());
        let t = st.mark_active(1).unwrap();
        assert!(
            changes(&t).contains(&ch(var, "B A R")),
            "{backend:?} {:?}",
            changes(&t)
        );
        apply(&mut v, &t);
        assert_eq!(read(backend, AB, &v).unwrap(), *t.state());
        // Booting walks past the unknown entry.
        let v = good_ab(backend, var, "R B A");
        let st = read(backend, AB, &v).unwrap();
        let st = st.mark_bad(1).unwrap().into_state();
        let step = st.boot();
        assert_eq!(step.chosen, Some(0), "{backend:?}");
        assert_eq!(st.primary(), Some(0));
        // Only unknown entries: nothing is good, mark-active brings a slot back in front.
        let v = good_ab(backend, var, "R");
        let st = read(backend, AB, &v).unwrap();
        assert_eq!(st.primary(), None);
        assert_eq!(st.order().count(), 0);
        let t = st.mark_active(1).unwrap();
        assert!(changes(&t).contains(&ch(var, "B R")));
        assert_eq!(t.state().primary(), Some(1));
    }
}

#[test]
fn unknown_order_entries_have_a_bounded_capacity() {
    let fits = "x".repeat(MAX_FOREIGN_ORDER_TEXT);
    let long = "x".repeat(MAX_FOREIGN_ORDER_TEXT + 1);
    let many: Vec<String> = (0..=MAX_FOREIGN_IN_ORDER)
        .map(|i| format!("R{i}"))
        .collect();
    let wide: Vec<String> = (0..MAX_FOREIGN_IN_ORDER)
        .map(|i| {
            format!(
                "{i}{}",
                "x".repeat(MAX_FOREIGN_ORDER_TEXT / MAX_FOREIGN_IN_ORDER)
            )
        })
        .collect();
    for (backend, var) in [(Backend::UBoot, "BOOT_ORDER"), (Backend::Grub, "ORDER")] {
        let full = many[..MAX_FOREIGN_IN_ORDER].join(" ");
        let long_names = ["a", "b"].map(|c| c.repeat(MAX_BOOTNAME_LEN));
        let names = [long_names[0].as_str(), long_names[1].as_str()];
        for (names, ok) in [
            (AB, format!("A {full} B")),
            (AB, format!("{fits} A B")),
            (AB, "A R R B".to_string()),
            (&names[..], format!("{} {fits} {}", names[1], names[0])),
        ] {
            let mut v = Vars::new();
            v.insert(var.into(), ok.clone());
            let st = read(backend, names, &v).unwrap();
            let all = st.all_vars();
            assert_eq!(changes(&all)[0], ch(var, &ok));
            assert!(ok.len() <= MAX_VALUE_LEN);
        }
        for bad in [
            format!("A {} B", many.join(" ")),
            format!("A {long} B"),
            format!("A {} B", wide.join(" ")),
        ] {
            assert_eq!(
                read(backend, AB, &good_ab(backend, var, &bad)),
                Err(FromVarsError::OrderOverCapacity),
                "{backend:?} {bad}"
            );
        }
    }
}

#[test]
fn barebox_values_are_decimal_and_required() {
    let full = vars(&[
        ("bootstate.system0.priority", "20"),
        ("bootstate.system0.remaining_attempts", "3"),
        ("bootstate.system1.priority", "10"),
        ("bootstate.system1.remaining_attempts", "0"),
    ]);
    let st = read(Backend::Barebox, SYS, &full).unwrap();
    assert_eq!(st.attempts_left(0), Some(3));
    assert_eq!(st.last_chosen(), None);
    assert!(st.is_good(0));
    assert!(!st.is_good(1));
    for (name, var, slot) in [
        ("bootstate.system1.priority", VarKind::Priority, 1u8),
        (
            "bootstate.system0.remaining_attempts",
            VarKind::Attempts,
            0u8,
        ),
    ] {
        let mut v = full.clone();
        v.remove(name);
        assert_eq!(
            read(Backend::Barebox, SYS, &v),
            Err(FromVarsError::MissingVariable { slot, var })
        );
        for bad in ["a", "", "-1", "+1", "4294967296", "0x10"] {
            let mut v = full.clone();
            v.insert(name.into(), bad.into());
            assert_eq!(
                read(Backend::Barebox, SYS, &v),
                Err(FromVarsError::InvalidValue {
                    slot: Some(slot),
                    var
                }),
                "{name}={bad:?}"
            );
        }
    }
    let mut v = full.clone();
    v.insert("bootstate.last_chosen".into(), "x".into());
    assert_eq!(
        read(Backend::Barebox, SYS, &v),
        Err(FromVarsError::InvalidValue {
            slot: None,
            var: VarKind::LastChosen
        })
    );
}

/// RAUC 1.8 reads `x_OK`/`x_TRY` with `g_ascii_strtoull(value, NULL, 0)`: good is `OK == 1` and
/// `TRY == 0` (src/bootloaders/grub.c). Run through real RAUC 1.8 with `grub-editenv` (§1.8
/// oracle, `bootloader=grub`): `B_OK` = `1`, `0x1`, `01`, ` 1` is good, `2` and `` are bad.
/// `contrib/grub.conf` tests `[ "$OK" -eq 1 -a "$TRY" -eq 0 ]`, and GRUB's `test` reads numbers
/// with `grub_strtosl(s, 0, 0)`: the same base-0 rules. So both readers agree, and a spelling
/// other than `0`/`1` is rewritten when an operation sets the variable.
#[test]
fn grub_flags_are_read_like_rauc_strtoull_base0() {
    // (OK value, OK as read)
    let oks: &[(&str, bool)] = &[
        ("1", true),
        ("0x1", true),
        ("0X1", true),
        ("01", true),
        (" 1", true),
        ("+1", true),
        ("1x", true),
        ("0", false),
        ("2", false),
        ("", false),
        ("true", false),
        ("-1", false),
        ("08", false),
        ("0x", false),
        // strtoull negates modulo 2^64.
        ("-18446744073709551615", true),
        ("18446744073709551617", false),
    ];
    for &(val, ok) in oks {
        let v = vars(&[
            ("ORDER", "B A"),
            ("A_OK", "1"),
            ("B_OK", val),
            ("B_TRY", "0"),
        ]);
        let st = read(Backend::Grub, AB, &v).unwrap_or_else(|e| panic!("{val:?}: {e:?}"));
        assert_eq!(st.is_good(1), ok, "{val:?}");
        assert_eq!(st.primary(), Some(if ok { 1 } else { 0 }), "{val:?}");
        assert_eq!(st.boot().chosen, Some(if ok { 1 } else { 0 }), "{val:?}");
        let t = st.mark_good(1).unwrap();
        let want = if val == "1" {
            vec![]
        } else {
            vec![ch("B_OK", "1")]
        };
        assert_eq!(changes(&t), want, "{val:?}");
    }
    // TRY: anything but 0 counts as tried.
    for (val, tried) in [
        ("0", false),
        ("00", false),
        ("0x0", false),
        ("1", true),
        ("2", true),
        ("-1", true),
        ("", false),
        ("x", false),
    ] {
        let v = vars(&[
            ("ORDER", "B A"),
            ("A_OK", "1"),
            ("B_OK", "1"),
            ("B_TRY", val),
        ]);
        let st = read(Backend::Grub, AB, &v).unwrap();
        assert_eq!(st.is_good(1), !tried, "{val:?}");
        assert_eq!(st.boot().chosen, Some(if tried { 0 } else { 1 }), "{val:?}");
    }
    // grub.conf defaults: OK=0, TRY=0, ORDER = all.
    let st = read(Backend::Grub, AB, &Vars::new()).unwrap();
    assert!(!st.is_good(0) && !st.is_good(1));
    assert!(!st.has_bootable());
}

#[test]
fn errors_display() {
    let e = FromVarsError::InvalidValue {
        slot: Some(0),
        var: VarKind::Attempts,
    };
    assert!(e.to_string().contains("Attempts"));
    assert!(
        FromVarsError::SlotCount { given: 9 }
            .to_string()
            .contains('9')
    );
}

// ---------------------------------------------------------------- operations

#[test]
fn out_of_range_slots() {
    let t = BootState::initial(Backend::UBoot, AB).unwrap();
    let st = t.state();
    assert_eq!(st.mark_good(2), Err(MarkError::NoSuchSlot));
    assert_eq!(st.mark_active(7), Err(MarkError::NoSuchSlot));
    assert_eq!(st.mark_bad(2), Err(MarkBadError::NoSuchSlot));
    assert_eq!(st.attempts_left(2), None);
    assert!(!st.is_good(2));
    assert!(!st.is_bootable(2));
    assert_eq!(st.bootname(2), None);
}

#[test]
fn mark_bad_refuses_the_last_bootable_slot() {
    for backend in [Backend::UBoot, Backend::Barebox, Backend::Grub] {
        let names = if backend == Backend::Barebox { SYS } else { AB };
        let st = BootState::initial(backend, names).unwrap().into_state();
        let st = st.mark_bad(1).unwrap().into_state();
        assert_eq!(
            st.mark_bad(0),
            Err(MarkBadError::LastBootableSlot),
            "{backend:?}"
        );
        // Marking an already bad slot bad again is fine.
        assert!(st.mark_bad(1).is_ok());
    }
}

#[test]
fn initial_writes_every_variable() {
    let t = BootState::initial(Backend::UBoot, AB).unwrap();
    assert_eq!(
        changes(&t),
        [
            ch("BOOT_ORDER", "A B"),
            ch("BOOT_A_LEFT", "3"),
            ch("BOOT_B_LEFT", "3")
        ]
    );
    let t = BootState::initial(Backend::Grub, AB).unwrap();
    assert_eq!(
        changes(&t),
        [
            ch("ORDER", "A B"),
            ch("A_OK", "1"),
            ch("A_TRY", "0"),
            ch("B_OK", "1"),
            ch("B_TRY", "0")
        ]
    );
    let t = BootState::initial(Backend::Barebox, SYS).unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(changes(&t)[0], ch("bootstate.system0.priority", "20"));
    // all_vars of a read state rewrites everything with the same values.
    let st = t.into_state();
    let again = st.all_vars();
    assert_eq!(again.len(), 4);
    assert_eq!(again.state(), &st);
}

#[test]
fn uboot_values_above_nine_are_written_in_hex() {
    let cfg = Config::new(Backend::UBoot).with_attempts(10, 255);
    let st = BootState::initial(cfg, AB).unwrap().into_state();
    assert_eq!(
        changes(&st.mark_active(1).unwrap())[0],
        ch("BOOT_B_LEFT", "ff")
    );
    let v = vars(&[("BOOT_A_LEFT", "3")]);
    let st = read(cfg, AB, &v).unwrap();
    assert_eq!(changes(&st.mark_good(0).unwrap()), [ch("BOOT_A_LEFT", "a")]);
}

#[test]
fn uboot_boot_walks_order_and_decrements() {
    let v = vars(&[
        ("BOOT_ORDER", "B A"),
        ("BOOT_A_LEFT", "3"),
        ("BOOT_B_LEFT", "1"),
    ]);
    let st = read(Backend::UBoot, AB, &v).unwrap();
    let step = st.boot();
    assert_eq!(step.chosen, Some(1));
    assert_eq!(changes(&step.transition), [ch("BOOT_B_LEFT", "0")]);
    let step = step.transition.state().boot();
    assert_eq!(step.chosen, Some(0));
    assert_eq!(changes(&step.transition), [ch("BOOT_A_LEFT", "2")]);
}

#[test]
fn uboot_exhausted_resets_like_contrib_script() {
    let v = vars(&[
        ("BOOT_ORDER", "A"),
        ("BOOT_A_LEFT", "0"),
        ("BOOT_B_LEFT", "0"),
    ]);
    let st = read(Backend::UBoot, AB, &v).unwrap();
    let step = st.boot();
    assert_eq!(step.chosen, None);
    assert_eq!(
        changes(&step.transition),
        [ch("BOOT_A_LEFT", "3"), ch("BOOT_B_LEFT", "3")]
    );
    // BOOT_ORDER is untouched: B stays out. The next boot picks A.
    assert_eq!(step.transition.state().boot().chosen, Some(0));
    // Without the reset nothing changes.
    let cfg = Config::new(Backend::UBoot).with_reset_when_exhausted(false);
    let st = read(cfg, AB, &v).unwrap();
    let step = st.boot();
    assert_eq!(step.chosen, None);
    assert!(step.transition.is_empty());
    assert!(!st.has_bootable());
}

#[test]
fn barebox_boot_picks_highest_priority() {
    let v = vars(&[
        ("bootstate.system0.priority", "10"),
        ("bootstate.system0.remaining_attempts", "3"),
        ("bootstate.system1.priority", "20"),
        ("bootstate.system1.remaining_attempts", "1"),
        ("bootstate.last_chosen", "0"),
    ]);
    let st = read(Backend::Barebox, SYS, &v).unwrap();
    let step = st.boot();
    assert_eq!(step.chosen, Some(1));
    assert_eq!(
        changes(&step.transition),
        [
            ch("bootstate.system1.remaining_attempts", "0"),
            ch("bootstate.last_chosen", "2")
        ]
    );
    let step = step.transition.state().boot();
    assert_eq!(step.chosen, Some(0));
    assert_eq!(step.transition.state().last_chosen(), Some(1));
}

#[test]
fn barebox_boot_zeroes_disabled_and_resets_all_zero() {
    let v = vars(&[
        ("bootstate.system0.priority", "0"),
        ("bootstate.system0.remaining_attempts", "2"),
        ("bootstate.system1.priority", "20"),
        ("bootstate.system1.remaining_attempts", "0"),
    ]);
    let all_zero = Config::new(Backend::Barebox).with_reset_when_exhausted(true);
    let st = read(all_zero, SYS, &v).unwrap();
    let step = st.boot();
    // system0 loses its attempts (priority 0); system1 is reset to 3 and then decremented.
    assert_eq!(step.chosen, Some(1));
    assert_eq!(
        changes(&step.transition),
        [
            ch("bootstate.system0.remaining_attempts", "0"),
            ch("bootstate.system1.remaining_attempts", "2")
        ]
    );
    // barebox's default (no `reset_attempts`): nothing is chosen.
    let step = read(Backend::Barebox, SYS, &v).unwrap().boot();
    assert_eq!(step.chosen, None);
    assert_eq!(
        changes(&step.transition),
        [ch("bootstate.system0.remaining_attempts", "0")]
    );
}

/// What the bootloader does when every attempt is used up is its own default: contrib/uboot.sh
/// resets every LEFT (boot-state.md §1.3), contrib/grub.conf clears TRY of the OK slots (§1.5),
/// barebox's bootchooser resets attempts only with `global.bootchooser.reset_attempts=all-zero`,
/// which is not its default (§3.4).
#[test]
fn reset_when_exhausted_defaults_to_each_bootloaders_default() {
    assert!(Config::new(Backend::UBoot).reset_when_exhausted);
    assert!(Config::new(Backend::Grub).reset_when_exhausted);
    assert!(!Config::new(Backend::Barebox).reset_when_exhausted);
    assert!(!Config::from(Backend::Barebox).reset_when_exhausted);
}

/// Under barebox's default an exhausted target stays unbootable, so the guard must count it out:
/// marking the other (only good) target bad would leave barebox nothing to boot.
#[test]
fn barebox_guard_counts_exhausted_targets_without_reset() {
    let v = vars(&[
        ("bootstate.system0.priority", "20"),
        ("bootstate.system0.remaining_attempts", "0"),
        ("bootstate.system1.priority", "10"),
        ("bootstate.system1.remaining_attempts", "3"),
    ]);
    let st = read(Backend::Barebox, SYS, &v).unwrap();
    assert!(!st.is_bootable(0));
    assert_eq!(st.mark_bad(1), Err(MarkBadError::LastBootableSlot));
    // Marking the exhausted one bad is fine: system1 still boots.
    assert!(st.mark_bad(0).is_ok());
    // After mark-good of system0 the other one may go.
    let st = st.mark_good(0).unwrap().into_state();
    assert!(st.mark_bad(1).is_ok());
    // With reset_attempts=all-zero barebox would reset system0 and boot it: allowed.
    let all_zero = Config::new(Backend::Barebox).with_reset_when_exhausted(true);
    let st = read(all_zero, SYS, &v).unwrap();
    let t = st.mark_bad(1).unwrap();
    assert_eq!(t.state().boot().chosen, Some(0));
    // Without the reset, booting the last good target until it runs out ends with nothing.
    let mut st = read(Backend::Barebox, SYS, &v).unwrap();
    for _ in 0..3 {
        let b = st.boot();
        assert_eq!(b.chosen, Some(1));
        st = b.transition.into_state();
    }
    assert!(!st.has_bootable());
    assert_eq!(st.boot().chosen, None);
}

#[test]
fn barebox_ties_go_to_the_first_target() {
    let st = BootState::initial(Backend::Barebox, SYS)
        .unwrap()
        .into_state();
    assert_eq!(st.primary(), Some(0));
    assert_eq!(st.boot().chosen, Some(0));
    assert_eq!(st.order().collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn grub_boot_is_one_try_per_slot() {
    let st = BootState::initial(Backend::Grub, AB).unwrap().into_state();
    let st = st.mark_active(1).unwrap().into_state();
    let step = st.boot();
    assert_eq!(step.chosen, Some(1));
    // save_env writes everything that changed: only B_TRY.
    assert_eq!(changes(&step.transition), [ch("B_TRY", "1")]);
    let step = step.transition.state().boot();
    assert_eq!(step.chosen, Some(0));
    let step = step.transition.state().boot();
    // Both tried: rescue, and TRY cleared for the OK slots.
    assert_eq!(step.chosen, None);
    let st = step.transition.state();
    assert_eq!(st.attempts_left(0), Some(1));
    assert_eq!(st.attempts_left(1), Some(1));
    assert_eq!(st.boot().chosen, Some(1));
}

#[test]
fn grub_boot_writes_missing_variables() {
    let v = vars(&[("ORDER", "A B"), ("A_OK", "1")]);
    let st = read(Backend::Grub, AB, &v).unwrap();
    let step = st.boot();
    assert_eq!(step.chosen, Some(0));
    assert_eq!(
        changes(&step.transition),
        [ch("A_TRY", "1"), ch("B_OK", "0"), ch("B_TRY", "0")]
    );
}

// ---------------------------------------------------------------- booted slot

#[test]
fn booted_slot_from_cmdline() {
    let st = BootState::initial(Backend::UBoot, AB).unwrap().into_state();
    let cases: &[(&str, Result<Booted, CmdlineError>)] = &[
        (
            "console=ttyS0 root=/dev/mmcblk0p2 rauc.slot=B rw",
            Ok(Booted::Slot(1)),
        ),
        ("rauc.slot=A", Ok(Booted::Slot(0))),
        ("rauc.slot=\"B\" quiet", Ok(Booted::Slot(1))),
        ("bootchooser.active=A", Ok(Booted::Slot(0))),
        ("bootstate.active=B", Ok(Booted::Slot(1))),
        ("bootchooser.active=A rauc.slot=B", Ok(Booted::Slot(1))),
        ("rauc.slot=A rauc.slot=B", Ok(Booted::Slot(0))),
        ("rauc.slot=B rauc.external", Ok(Booted::External)),
        ("root=/dev/nfs nfsroot=x rauc.slot=A", Ok(Booted::External)),
        ("foo=\"a b rauc.slot=A\"", Err(CmdlineError::NoSlotInfo)),
        ("", Err(CmdlineError::NoSlotInfo)),
        ("xrauc.slot=A rauc.slotx=A", Err(CmdlineError::NoSlotInfo)),
        ("rauc.slot=C", Err(CmdlineError::UnknownBootname)),
        ("rauc.slot=", Err(CmdlineError::UnknownBootname)),
        ("\t rauc.slot=A\n", Ok(Booted::Slot(0))),
    ];
    for (cmdline, want) in cases {
        assert_eq!(st.booted_slot(cmdline), *want, "{cmdline:?}");
    }
}

// ---------------------------------------------------------------- properties

#[derive(Debug, Clone, Copy)]
enum Op {
    Good(usize),
    Bad(usize),
    Active(usize),
    Boot,
}

fn op_strategy(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..n).prop_map(Op::Good),
        (0..n).prop_map(Op::Bad),
        (0..n).prop_map(Op::Active),
        Just(Op::Boot),
        Just(Op::Boot),
    ]
}

fn config_strategy() -> impl Strategy<Value = (Config, Vec<&'static str>)> {
    let backend = prop_oneof![
        Just(Backend::UBoot),
        Just(Backend::Barebox),
        Just(Backend::Grub)
    ];
    (
        backend,
        1u32..6,
        1u32..6,
        2usize..=MAX_SLOTS,
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(b, g, p, n, reset)| {
            let names: &[&str] = match b {
                Backend::Barebox => &["system0", "system1", "system2", "system3"],
                _ => &["A", "B", "C", "D"],
            };
            let mut cfg = Config::new(b).with_attempts(g, p);
            if let Some(r) = reset {
                cfg = cfg.with_reset_when_exhausted(r);
            }
            (cfg, names[..n].to_vec())
        })
}

/// Applies `op`; returns the transition (if the op was allowed) and the chosen slot for boots.
fn step(st: &BootState, op: Op) -> Option<(Transition, Option<usize>)> {
    match op {
        Op::Good(s) => Some((st.mark_good(s).ok()?, None)),
        Op::Bad(s) => match st.mark_bad(s) {
            Ok(t) => Some((t, None)),
            Err(MarkBadError::LastBootableSlot) => None,
            Err(e) => panic!("{e:?}"),
        },
        Op::Active(s) => Some((st.mark_active(s).ok()?, None)),
        Op::Boot => {
            let b = st.boot();
            Some((b.transition, b.chosen))
        }
    }
}

fn check_transition(vars: &mut Vars, cfg: Config, names: &[&str], t: &Transition) {
    assert!(t.len() <= MAX_CHANGES);
    assert_eq!(t.changes().count(), t.len());
    for (k, v) in t.changes() {
        assert!(k.len() <= MAX_VAR_NAME_LEN);
        assert!(v.is_none_or(|v| v.len() <= MAX_VALUE_LEN));
    }
    apply(vars, t);
    // The stored variables read back as exactly the predicted state.
    let back = read(cfg, names, vars).unwrap();
    assert_eq!(&back, t.state());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_global_rejects: 20_000, .. ProptestConfig::default() })]

    /// From any reachable state, after any operations and (failed) boots: the change set written
    /// to storage reads back as the predicted state, and eyas's operations never take away the
    /// last bootable slot. With the bootloader's reset step a bootable slot always exists and the
    /// bootloader boots some slot within two power-ons (one reset round); without it (barebox's
    /// default) boots that are never confirmed can use up every attempt, and then nothing boots.
    #[test]
    fn bootable_slot_always_exists(
        (cfg, names) in config_strategy(),
        ops in proptest::collection::vec(op_strategy(MAX_SLOTS), 0..60),
    ) {
        let t0 = BootState::initial(cfg, &names).unwrap();
        let mut vars = Vars::new();
        check_transition(&mut vars, cfg, &names, &t0);
        let mut st = t0.into_state();
        for op in ops {
            let op = match op {
                Op::Good(s) => Op::Good(s % names.len()),
                Op::Bad(s) => Op::Bad(s % names.len()),
                Op::Active(s) => Op::Active(s % names.len()),
                Op::Boot => Op::Boot,
            };
            let before = st.has_bootable();
            if let Some((t, _)) = step(&st, op) {
                check_transition(&mut vars, cfg, &names, &t);
                st = t.into_state();
            }
            if cfg.reset_when_exhausted {
                prop_assert!(st.has_bootable());
            } else if !matches!(op, Op::Boot) {
                prop_assert!(!before || st.has_bootable(), "{:?} took the last bootable slot", op);
            }
            let first = st.boot();
            let booted = first.chosen.or_else(|| first.transition.state().boot().chosen);
            prop_assert_eq!(booted.is_some(), st.has_bootable(), "from {:?}", st);
        }
    }

    /// A slot marked active that never gets mark-good is booted exactly `trial_boots` times and
    /// then abandoned for a good slot, whatever state it started from.
    #[test]
    fn unconfirmed_active_slot_is_abandoned_after_exactly_its_attempts(
        (cfg, names) in config_strategy(),
        ops in proptest::collection::vec(op_strategy(MAX_SLOTS), 0..40),
        target in 0usize..MAX_SLOTS,
    ) {
        let mut st = BootState::initial(cfg, &names).unwrap().into_state();
        for op in ops {
            let op = match op {
                Op::Good(s) => Op::Good(s % names.len()),
                Op::Bad(s) => Op::Bad(s % names.len()),
                Op::Active(s) => Op::Active(s % names.len()),
                Op::Boot => Op::Boot,
            };
            if let Some((t, _)) = step(&st, op) {
                st = t.into_state();
            }
        }
        let target = target % names.len();
        // Some other slot must be good to fall back to (otherwise there is nothing to abandon for).
        prop_assume!((0..names.len()).any(|i| i != target && st.is_good(i)));
        let mut st = st.mark_active(target).unwrap().into_state();
        prop_assert_eq!(st.primary(), Some(target));
        for k in 0..cfg.trial_boots() {
            let b = st.boot();
            prop_assert_eq!(b.chosen, Some(target), "boot {} of {}", k + 1, cfg.trial_boots());
            st = b.transition.into_state();
        }
        let b = st.boot();
        prop_assert!(b.chosen.is_some());
        prop_assert_ne!(b.chosen, Some(target));
        prop_assert!(!b.transition.state().is_good(target));
    }

    /// Reading arbitrary strings never panics; a successful read round-trips through `all_vars`.
    #[test]
    fn from_vars_never_panics(
        backend in prop_oneof![Just(Backend::UBoot), Just(Backend::Barebox), Just(Backend::Grub)],
        values in proptest::collection::vec(proptest::option::of("[0-9a-fA-F AB+-]{0,12}"), 12),
    ) {
        let names: &[&str] = if backend == Backend::Barebox { SYS } else { AB };
        let all = [
            "BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT", "ORDER", "A_OK", "A_TRY", "B_OK", "B_TRY",
            "bootstate.system0.priority", "bootstate.system0.remaining_attempts",
            "bootstate.system1.priority", "bootstate.system1.remaining_attempts",
        ];
        let v: Vars = all.iter().zip(&values)
            .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
            .collect();
        if let Ok(st) = read(backend, names, &v) {
            let mut fresh = Vars::new();
            let all = st.all_vars();
            apply(&mut fresh, &all);
            prop_assert_eq!(&read(backend, names, &fresh).unwrap(), all.state());
            let _ = st.boot();
        }
    }

    /// From arbitrary stored values (missing, odd spellings, unknown order entries), any
    /// operations: every change set reads back as the predicted state, and eyas's operations never
    /// take away the last bootable slot (the fuzz target `slots_from_vars`, as a proptest).
    #[test]
    fn operations_from_arbitrary_values_read_back(
        (cfg, _) in config_strategy(),
        values in proptest::collection::vec(
            proptest::option::of("(0x|0X| |\\+|-)?[0-9a-fA-F]{0,3}z?|[ABR ]{0,8}"),
            12,
        ),
        ops in proptest::collection::vec(op_strategy(2), 0..30),
    ) {
        let names: &[&str] = if cfg.backend == Backend::Barebox { SYS } else { AB };
        let all = [
            "BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT", "ORDER", "A_OK", "A_TRY", "B_OK", "B_TRY",
            "bootstate.system0.priority", "bootstate.system0.remaining_attempts",
            "bootstate.system1.priority", "bootstate.system1.remaining_attempts",
        ];
        let mut v: Vars = all.iter().zip(&values)
            .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
            .collect();
        let Ok(mut st) = read(cfg, names, &v) else { return Ok(()) };
        for op in ops {
            let before = st.has_bootable();
            let Some((t, _)) = step(&st, op) else { continue };
            apply(&mut v, &t);
            prop_assert_eq!(&read(cfg, names, &v).unwrap(), t.state(), "after {:?}", op);
            st = t.into_state();
            if !matches!(op, Op::Boot) || cfg.reset_when_exhausted {
                prop_assert!(!before || st.has_bootable(), "{:?} took the last bootable slot", op);
            }
        }
    }

    /// Command-line parsing never panics.
    #[test]
    fn cmdline_never_panics(s in "\\PC{0,80}") {
        let st = BootState::initial(Backend::UBoot, AB).unwrap().into_state();
        let _ = st.booted_slot(&s);
    }
}

#[test]
fn worst_case_text_fits_in_a_transition() {
    let names: Vec<String> = (0..MAX_SLOTS)
        .map(|i| format!("{i}{}", "x".repeat(MAX_BOOTNAME_LEN - 1)))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let big = u32::MAX.to_string();
    let mut v = Vars::new();
    for n in &names {
        v.insert(format!("bootstate.{n}.priority"), big.clone());
        v.insert(format!("bootstate.{n}.remaining_attempts"), big.clone());
        v.insert(format!("BOOT_{n}_LEFT"), "ffffffff".into());
        v.insert(format!("{n}_OK"), "1".into());
        v.insert(format!("{n}_TRY"), "1".into());
    }
    v.insert("bootstate.last_chosen".into(), big.clone());
    let mut rev = names.clone();
    rev.reverse();
    v.insert("BOOT_ORDER".into(), rev.join(" "));
    v.insert("ORDER".into(), rev.join(" "));
    for (backend, count) in [
        (Backend::Barebox, 2 * MAX_SLOTS + 1),
        (Backend::UBoot, 1 + MAX_SLOTS),
        (Backend::Grub, 1 + 2 * MAX_SLOTS),
    ] {
        let st = read(backend, &names, &v).unwrap();
        let all = st.all_vars();
        assert_eq!(all.len(), count, "{backend:?}");
        let mut fresh = Vars::new();
        apply(&mut fresh, &all);
        for (k, val) in &fresh {
            assert_eq!(v.get(k), Some(val), "{backend:?} {k}");
        }
        assert_eq!(&read(backend, &names, &fresh).unwrap(), all.state());
    }
}

//! Boot-state reading from arbitrary variable values, then arbitrary operations: never panics,
//! every change set reads back as the predicted state, and a bootable slot always remains.
#![no_main]

use eyas_core::slots::{Backend, BootState, Config, Transition};
use libfuzzer_sys::fuzz_target;

const UBOOT: &[&str] = &["BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT", "BOOT_C_LEFT"];
const GRUB: &[&str] = &["ORDER", "A_OK", "A_TRY", "B_OK", "B_TRY", "C_OK", "C_TRY"];
const BAREBOX: &[&str] = &[
    "bootstate.A.priority",
    "bootstate.A.remaining_attempts",
    "bootstate.B.priority",
    "bootstate.B.remaining_attempts",
    "bootstate.C.priority",
    "bootstate.C.remaining_attempts",
    "bootstate.last_chosen",
];

type Vars = Vec<(String, String)>;

fn get<'a>(vars: &'a Vars, name: &str) -> Option<&'a str> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn apply(vars: &mut Vars, t: &Transition) {
    for (k, v) in t.changes() {
        vars.retain(|(n, _)| n != k);
        if let Some(v) = v {
            vars.push((k.to_string(), v.to_string()));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let backend = match sel % 3 {
        0 => Backend::UBoot,
        1 => Backend::Barebox,
        _ => Backend::Grub,
    };
    let names = [UBOOT, BAREBOX, GRUB][usize::from(sel % 3)];
    let slots: &[&str] = if sel & 0x04 == 0 {
        &["A", "B"]
    } else {
        &["A", "B", "C"]
    };
    let cfg = Config::new(backend)
        .with_attempts(u32::from(sel >> 5) + 1, u32::from((sel >> 3) & 3) + 1)
        .with_reset_when_exhausted(true);
    // Values: the input split at 0xff bytes, one per variable name, in order; then the ops.
    let mut parts = rest.split(|&b| b == 0xff);
    let mut vars: Vars = Vec::new();
    for name in names {
        let Some(p) = parts.next() else { break };
        if p.first() == Some(&0xfe) {
            continue; // absent
        }
        if let Ok(s) = core::str::from_utf8(p) {
            vars.push((name.to_string(), s.to_string()));
        }
    }
    let ops: Vec<u8> = parts.flatten().copied().collect();
    let Ok(mut st) = BootState::from_vars(cfg, slots, |n: &str| get(&vars, n)) else {
        return;
    };
    let _ = st.booted_slot(core::str::from_utf8(rest).unwrap_or(""));
    let bootable_at_start = st.has_bootable();
    for op in ops.iter().take(64) {
        let slot = usize::from(op >> 2) % slots.len();
        let t = match op & 3 {
            0 => st.mark_good(slot).ok(),
            1 => st.mark_bad(slot).ok(),
            2 => st.mark_active(slot).ok(),
            _ => Some(st.boot().transition),
        };
        let Some(t) = t else { continue };
        apply(&mut vars, &t);
        let back = BootState::from_vars(cfg, slots, |n: &str| get(&vars, n))
            .expect("written variables read back");
        assert_eq!(&back, t.state());
        st = t.into_state();
        if bootable_at_start {
            assert!(st.has_bootable());
        }
    }
});

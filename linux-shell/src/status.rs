//! `eyas status`: what the agent is doing, from the record file and RAUC.

use std::fmt::Write as _;

use eyas_core::record::{Phase, Record};

use crate::rauc::Rauc;
use crate::record_store::RecordStore;

/// A description of the record (or of its absence / corruption).
pub fn describe_record(store: &RecordStore) -> Result<String, String> {
    let path = store.path().display();
    match store.load() {
        Err(e) => Err(format!("record: {e}")),
        Ok(None) => Ok(format!("pending action: none (no record at {path})\n")),
        Ok(Some(bytes)) => match Record::decode(&bytes) {
            Err(e) => Err(format!(
                "record {path}: {e}; eyas will ignore it and report to hawkBit afresh"
            )),
            Ok(rec) => {
                let phase = match rec.phase {
                    Phase::Downloading => {
                        format!("downloading (next artifact {})", rec.next_artifact)
                    }
                    Phase::AwaitingWindow => {
                        "downloaded, waiting for the maintenance window".to_owned()
                    }
                    Phase::Installing => format!(
                        "installing (chunk {}, attempt {})",
                        rec.next_chunk, rec.attempt
                    ),
                    Phase::Rebooting => "installed, rebooting into the new slot".to_owned(),
                    Phase::Reporting { success, reason } => {
                        format!(
                            "reporting {} (reason {reason})",
                            if success { "success" } else { "failure" }
                        )
                    }
                    Phase::Closed => {
                        return Ok(format!(
                            "pending action: none (action {} is closed and reported)\n",
                            rec.action_id
                        ));
                    }
                };
                let mut out = format!("pending action: {} — {phase}\n", rec.action_id);
                let _ = writeln!(
                    out,
                    "  target slot: {} (installed from {})",
                    rec.target_slot.as_deref().unwrap_or("-"),
                    rec.from_slot.as_deref().unwrap_or("-")
                );
                let from = if rec.from_version.is_empty() {
                    "?"
                } else {
                    rec.from_version.as_str()
                };
                let to = if rec.to_version.is_empty() {
                    "?"
                } else {
                    rec.to_version.as_str()
                };
                let _ = writeln!(out, "  version: {from} -> {to}");
                Ok(out)
            }
        },
    }
}

/// Booted/primary slot and per-slot versions from RAUC.
pub async fn describe_rauc(rauc: &Rauc) -> Result<String, String> {
    let booted = rauc.boot_slot().await.map_err(|e| e.to_string())?;
    let primary = rauc.primary().await.map_err(|e| e.to_string())?;
    let mut out = format!("booted slot: {booted}   primary: {primary}\n");
    for slot in rauc.slot_status().await.map_err(|e| e.to_string())? {
        let _ = writeln!(
            out,
            "  {:<10} bootname={:<3} state={:<9} boot-status={:<5} version={}",
            slot.name,
            slot.get("bootname").unwrap_or("-"),
            slot.get("state").unwrap_or("-"),
            slot.get("boot-status").unwrap_or("-"),
            slot.get("bundle.version").unwrap_or("-"),
        );
    }
    Ok(out)
}

/// Runs `eyas status`; returns the exit code (0 ok, 1 something could not be read).
pub async fn run(store: &RecordStore, bus_address: Option<&str>) -> u8 {
    let mut code = 0;
    match describe_record(store) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            println!("{e}");
            code = 1;
        }
    }
    match Rauc::connect_to(bus_address).await {
        Ok(rauc) => match describe_rauc(&rauc).await {
            Ok(text) => print!("{text}"),
            Err(e) => {
                println!("rauc: {e}");
                code = 1;
            }
        },
        Err(e) => {
            println!("rauc: {e}");
            code = 1;
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use eyas_core::ddi::ActionId;
    use eyas_core::record::{RECORD_MAX_LEN, bootname, record_version};

    #[test]
    fn record_descriptions() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = RecordStore::new(dir.path().join("record.bin"));
        assert!(
            describe_record(&store)
                .expect("ok")
                .contains("pending action: none")
        );
        let mut rec = Record::new(ActionId(7), Phase::Rebooting);
        rec.target_slot = Some(bootname("system1").expect("bootname"));
        rec.from_slot = Some(bootname("system0").expect("bootname"));
        rec.from_version = record_version("1.0.0");
        rec.to_version = record_version("1.1.0");
        let mut buf = [0u8; RECORD_MAX_LEN];
        store
            .store(rec.encode(&mut buf).expect("encode"))
            .expect("store");
        let text = describe_record(&store).expect("ok");
        assert!(
            text.contains("pending action: 7 — installed, rebooting"),
            "{text}"
        );
        assert!(
            text.contains("target slot: system1 (installed from system0)"),
            "{text}"
        );
        assert!(text.contains("1.0.0 -> 1.1.0"), "{text}");
        store.store(b"\x01garbage-bytes").expect("store");
        let e = describe_record(&store).expect_err("corrupt");
        assert!(e.contains("will ignore it"), "{e}");
    }
}

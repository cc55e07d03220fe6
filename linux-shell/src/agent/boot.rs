//! The boot path's steps as the core asks for them: what RAUC says at start, the health check,
//! RAUC marks by bootname, the rejected slot beside the record, reboots. Nothing here decides.

use super::*;

impl Agent<'_> {
    /// Record + RAUC's view → `handle_boot`; the core then asks for the boot path's steps.
    pub(super) async fn boot(&mut self, client: &mut Client) {
        let record = match self.store.load() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}; starting without a record");
                None
            }
        };
        let pending = record.as_deref().and_then(|b| Record::decode(b).ok());
        let (booted, bundle_version) = match &self.rauc {
            Some(r) => {
                let booted = match r.boot_slot().await {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::warn!("RAUC does not say which slot booted: {e}");
                        None
                    }
                };
                let version = match r.slot_status().await {
                    Ok(slots) => slots
                        .iter()
                        .find(|s| s.get("state") == Some("booted"))
                        .and_then(|s| s.get("bundle.version").map(str::to_owned)),
                    Err(_) => None,
                };
                (booted, version)
            }
            None => (None, None),
        };
        let running = self.running_identity(bundle_version.as_deref());
        let rejected = self.read_rejected_slot();
        tracing::info!(
            "booted slot {} running {}; pending action: {}",
            booted.as_deref().unwrap_or("?"),
            running.as_ref().map_or("?", |(_, v)| v.as_str()),
            pending
                .as_ref()
                .filter(|r| r.phase != Phase::Closed)
                .map_or_else(|| "none".to_owned(), |r| r.action_id.to_string())
        );
        self.publish(&telemetry::current_software(
            running.as_ref().map_or("rootfs", |(n, _)| n.as_str()),
            running.as_ref().map_or("", |(_, v)| v.as_str()),
            booted.as_deref().unwrap_or(""),
        ));
        let now = self.now();
        client.handle_boot(
            now,
            BootReport {
                record: record.as_deref(),
                booted: booted.as_deref(),
                rejected: rejected.as_deref(),
                running: running.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
            },
        );
    }

    /// The distribution set that runs now, for `PUT installedBase` after a fallback: the
    /// configured name (`[eyas] installed_name`) with RAUC's bundle version of the booted slot,
    /// or the configured factory version when RAUC installed nothing there yet.
    pub(super) fn running_identity(
        &self,
        bundle_version: Option<&str>,
    ) -> Option<(String, String)> {
        let e = &self.config.eyas;
        let Some(name) = e.installed_name.clone() else {
            tracing::info!(
                "installedBase: [eyas] installed_name is not set, so after a fallback hawkBit is not told which distribution set runs"
            );
            return None;
        };
        match bundle_version
            .map(str::to_owned)
            .or_else(|| e.installed_version.clone())
        {
            Some(version) => Some((name, version)),
            None => {
                tracing::info!(
                    "installedBase: the booted slot has no RAUC bundle version and [eyas] installed_version is not set, so after a fallback hawkBit is not told which version runs"
                );
                None
            }
        }
    }

    /// [`Action::CheckHealth`]: the health check command (none configured passes).
    pub(super) fn start_health_check(&mut self) {
        let cmd = self.config.eyas.health_check_command.clone();
        let timeout = self.config.eyas.health_check_timeout;
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let passed = match cmd {
                None => true,
                Some(cmd) => match hooks::run(&cmd, &[], timeout).await {
                    Ok(()) => {
                        tracing::info!("health check passed");
                        true
                    }
                    Err(e) => {
                        tracing::error!("health check failed: {e}");
                        false
                    }
                },
            };
            let _ = tx.send(Done::Health(passed));
        });
    }

    /// [`Action::MarkSlot`]: RAUC `Mark` of the slot with that bootname; true when accepted.
    pub(super) async fn mark_slot(&self, bootname: &str, mark: SlotMark) -> bool {
        let state = match mark {
            SlotMark::Good => MarkState::Good,
            SlotMark::Bad => MarkState::Bad,
            _ => MarkState::Active,
        };
        match &self.rauc {
            None => {
                tracing::error!("cannot mark slot {bootname} {state:?}: RAUC is not reachable");
                false
            }
            Some(rauc) => mark_by_bootname(rauc, bootname, state).await,
        }
    }

    /// Where [`Action::RememberRejected`] keeps its bootname (beside the record).
    pub(super) fn rejected_slot_file(&self) -> PathBuf {
        self.config.eyas.record_path.with_extension("bad-slot")
    }

    pub(super) fn read_rejected_slot(&self) -> Option<String> {
        match RecordStore::new(self.rejected_slot_file()).load() {
            Ok(bytes) => bytes
                .and_then(|b| String::from_utf8(b).ok())
                .map(|s| s.trim_end_matches('\n').to_owned())
                .filter(|s| !s.is_empty()),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    /// Stored like the record (temp + fsync + rename): a power cut leaves the old or new name.
    pub(super) fn remember_rejected(&self, bootname: Option<&str>) {
        let store = RecordStore::new(self.rejected_slot_file());
        let result = match bootname {
            Some(b) => store.store(format!("{b}\n").as_bytes()),
            None => store.clear(),
        };
        if let Err(e) = result {
            tracing::warn!("{e}");
        }
    }

    /// After a failed health check: reboot into the previous slot (`post_update_reboot=true`),
    /// or say clearly that someone must.
    pub(super) async fn reboot_to_previous_slot(&mut self, target: Option<&str>) {
        if let Some(t) = &self.telemetry {
            let _ = t.flush(Duration::from_secs(3)).await;
        }
        if !self.config.client.post_update_reboot {
            tracing::error!(
                "the new slot failed its health check and is marked bad: reboot now to return to the previous slot (post_update_reboot=false, so eyas does not reboot)"
            );
            service::status("update failed; reboot to return to the previous slot");
            return;
        }
        tracing::info!(
            "rebooting into the previous slot {}",
            target.unwrap_or("(the bootloader's next choice)")
        );
        self.run_reboot_command().await;
    }

    /// Tells systemd eyas is stopping and runs `reboot_command` (60 s bound); a failure is logged.
    pub(super) async fn run_reboot_command(&self) {
        service::stopping();
        if let Err(e) = hooks::run(
            &self.config.eyas.reboot_command,
            &[],
            Duration::from_secs(60),
        )
        .await
        {
            tracing::error!("reboot command failed: {e}");
        }
    }

    pub(super) async fn reboot(&mut self, target: Option<&str>) {
        // `ota_status=rebooting` was published from the core's Rebooting sample just before.
        if let Some(t) = &self.telemetry {
            let _ = t.flush(Duration::from_secs(3)).await;
        }
        if !self.config.client.post_update_reboot {
            tracing::info!(
                "slot {} is installed; reboot to finish the update (post_update_reboot=false, so eyas does not reboot)",
                target.unwrap_or("?")
            );
            service::status("installed; waiting for a reboot");
            return;
        }
        tracing::info!("rebooting into slot {}", target.unwrap_or("?"));
        self.run_reboot_command().await;
    }
}

/// RAUC `Mark` of the slot whose bootname is `bootname` (RAUC's Mark takes slot names such as
/// `rootfs.1`, so the name is looked up in its slot status); true when RAUC accepted it.
pub(super) async fn mark_by_bootname(rauc: &Rauc, bootname: &str, state: MarkState) -> bool {
    let slot = match rauc.slot_status().await {
        Ok(slots) => slots
            .into_iter()
            .find(|s| s.get("bootname") == Some(bootname))
            .map(|s| s.name),
        Err(e) => {
            tracing::error!("cannot mark slot {bootname} {state:?}: {e}");
            return false;
        }
    };
    let Some(slot) = slot else {
        tracing::error!(
            "cannot mark slot {bootname} {state:?}: RAUC knows no slot with that bootname"
        );
        return false;
    };
    match rauc.mark(state, &slot).await {
        Ok((name, msg)) => {
            tracing::info!("{name} ({bootname}): {msg}");
            true
        }
        Err(e) => {
            tracing::error!("cannot mark slot {slot} ({bootname}) {state:?}: {e}");
            false
        }
    }
}

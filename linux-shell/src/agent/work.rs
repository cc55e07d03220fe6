//! Background work for the core's actions: downloads, verification, installs with RAUC, part
//! hooks, the confirmation question, and feeding their results back as events.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct OwnedArtifact {
    pub(super) action: ActionId,
    pub(super) artifact: u8,
    pub(super) url: String,
    pub(super) authorization: Option<String>,
    /// Present the client certificate (the core's credential rule).
    pub(super) credentials: bool,
    pub(super) filename: String,
    pub(super) size: u64,
    sha256: Option<[u8; 32]>,
    sha1: Option<[u8; 20]>,
    pub(super) range_start: Option<u64>,
}

impl From<&ArtifactRef<'_>> for OwnedArtifact {
    fn from(a: &ArtifactRef<'_>) -> Self {
        Self {
            action: a.action,
            artifact: a.artifact,
            url: a.url.to_owned(),
            authorization: a.authorization.map(str::to_owned),
            credentials: a.credentials,
            filename: a.filename.to_owned(),
            size: a.size,
            sha256: a.sha256,
            sha1: a.sha1,
            range_start: a.range_start,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct OwnedInstall {
    pub(super) action: ActionId,
    pub(super) part: String,
    pub(super) kind: InstallKind,
    pub(super) name: String,
    pub(super) version: String,
    pub(super) first_artifact: u8,
    pub(super) artifact_count: u8,
}

impl From<&InstallRef<'_>> for OwnedInstall {
    fn from(i: &InstallRef<'_>) -> Self {
        Self {
            action: i.action,
            part: i.part.to_owned(),
            kind: i.kind,
            name: i.name.to_owned(),
            version: i.version.to_owned(),
            first_artifact: i.first_artifact,
            artifact_count: i.artifact_count,
        }
    }
}

/// One artifact of the current action on disk.
#[derive(Debug)]
pub(super) struct ArtifactFile {
    pub(super) path: PathBuf,
    /// hawkBit's file name (manifests are paired with bundles by it).
    pub(super) filename: String,
    pub(super) spec: ArtifactSpec,
    /// The finished download (with the core's verifier fed while it streamed), until verified.
    pub(super) downloaded: Option<Box<Downloaded>>,
}

/// Results of background work.
#[derive(Debug)]
pub(super) enum Done {
    DownloadProgress(u64),
    Download {
        key: (ActionId, u8),
        received: u64,
        result: Result<Box<Downloaded>, HttpError>,
    },
    InstallProgress(u8),
    /// `Some(bootname)`: the slot RAUC made primary (OS install); with the action and the
    /// casync chunk bytes the relay fetched meanwhile (`None` without a relay).
    Install(Result<Option<String>, String>, ActionId, Option<u64>),
    Confirmation(ActionId, bool),
    Health(bool),
}

impl Agent<'_> {
    pub(super) fn start_download(&mut self, client: &mut Client, a: OwnedArtifact) {
        let key = (a.action, a.artifact);
        let dest = match artifact_path(&self.location, a.artifact, &a.filename) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{e}");
                let now = self.now();
                let reason = e.to_string();
                let _ = client.handle_event(
                    now,
                    Event::DownloadRefused {
                        refusal: DownloadRefusal::FileName,
                        reason: &reason,
                    },
                );
                return;
            }
        };
        // Cut the file back to the checkpoint, never extend it: after a power cut the file can
        // be shorter than the checkpoint (data not yet on disk), and zeros would fail the hash.
        // The download then resumes from the bytes that are really there.
        if let Some(n) = a.range_start
            && let Ok(f) = std::fs::OpenOptions::new().write(true).open(&dest)
            && f.metadata().is_ok_and(|m| m.len() > n)
        {
            let _ = f.set_len(n);
        }
        self.artifacts.insert(
            key,
            ArtifactFile {
                path: dest.clone(),
                filename: a.filename.clone(),
                spec: ArtifactSpec {
                    size: a.size,
                    sha256: a.sha256,
                    sha1: a.sha1,
                },
                downloaded: None,
            },
        );
        self.cancel = Arc::new(AtomicBool::new(false));
        let http = self.http.clone();
        let tx = self.done_tx.clone();
        let cancel = self.cancel.clone();
        let c = &self.config.client;
        let (low_time, low_rate, limit) =
            (c.low_speed_time, c.low_speed_rate, c.download_speed_limit);
        tracing::info!(
            "downloading {} ({} bytes) to {}",
            a.filename,
            a.size,
            dest.display()
        );
        tokio::task::spawn_blocking(move || {
            let req = DownloadRequest {
                url: &a.url,
                dest: &dest,
                expected_size: Some(a.size),
                auth: a.authorization.as_deref(),
                client_cert: a.credentials,
                resume: false,
                keep_partial: a.range_start.is_some(),
                low_speed_time: low_time,
                low_speed_rate: low_rate,
                rate_limit: limit,
                sha1: false,
                spec: Some(ArtifactSpec {
                    size: a.size,
                    sha256: a.sha256,
                    sha1: a.sha1,
                }),
                cancel: &cancel,
            };
            let mut last = 0u64;
            let step = (a.size / 100).max(1 << 20);
            let progress_tx = tx.clone();
            let result = download::download(&http, &req, &mut |done, _| {
                if done >= last + step {
                    last = done;
                    let _ = progress_tx.send(Done::DownloadProgress(done));
                }
            });
            let received = std::fs::metadata(&dest).map_or(0, |m| m.len());
            let _ = tx.send(Done::Download {
                key,
                received,
                result: result.map(Box::new),
            });
        });
    }

    /// The core decides: size and hawkBit digest, from the verifier fed during the download
    /// (or, for a file from an earlier run, from one more pass over the file).
    pub(super) fn verify(&mut self, a: &OwnedArtifact) -> Result<(), String> {
        let other = |e: String| e;
        let key = (a.action, a.artifact);
        let path = artifact_path(&self.location, a.artifact, &a.filename)
            .map_err(|e| other(e.to_string()))?;
        let spec = ArtifactSpec {
            size: a.size,
            sha256: a.sha256,
            sha1: a.sha1,
        };
        let streamed = self
            .artifacts
            .get_mut(&key)
            .and_then(|f| f.downloaded.take())
            .and_then(|d| d.verifier);
        let verifier = match streamed {
            Some(v) => v,
            None => verify_file(&path, &spec).map_err(other)?,
        };
        // Policy::Off here: the signed manifest is checked before install (`crate::manifest`).
        verifier
            .finish("", None)
            .map_err(|e| format!("{}: {e} ({})", a.filename, e.as_str()))?;
        tracing::info!("{}: size and checksum OK", a.filename);
        // A file verified after a restart was not downloaded by this run: the install needs
        // its entry too (power cut during the install).
        self.artifacts.insert(
            key,
            ArtifactFile {
                path,
                filename: a.filename.clone(),
                spec,
                downloaded: None,
            },
        );
        Ok(())
    }

    /// The chunk's artifacts on disk, in hawkBit's order.
    pub(super) fn chunk_files(&self, i: &OwnedInstall) -> Vec<&ArtifactFile> {
        (i.first_artifact..i.first_artifact.saturating_add(i.artifact_count))
            .filter_map(|n| self.artifacts.get(&(i.action, n)))
            .collect()
    }

    pub(super) fn start_install(&mut self, client: &mut Client, i: OwnedInstall) {
        let entries = self.chunk_files(&i);
        let bundle = entries
            .iter()
            .find(|f| !f.filename.ends_with(eyas_core::verify::MANIFEST_SUFFIX));
        let manifest = bundle.and_then(|b| {
            entries
                .iter()
                .find(|f| is_manifest_for(&b.filename, &f.filename))
                .map(|f| f.path.clone())
        });
        let spec = bundle.map(|b| b.spec);
        let staged = bundle.map(|b| stage_bundle(&b.path, install_path(&self.location)));
        let bundle = match staged {
            Some(Ok(path)) => Some(path),
            Some(Err(reason)) => {
                tracing::error!("{reason}");
                let now = self.now();
                let _ = client.handle_event(now, Event::InstallFailed { reason: &reason });
                return;
            }
            None => None,
        };
        let (Some(bundle), Some(rauc), Some(spec)) = (bundle, self.rauc.clone(), spec) else {
            let reason = if self.rauc.is_none() {
                "RAUC is not reachable on D-Bus".to_owned()
            } else {
                format!("no downloaded bundle for {} {}", i.name, i.version)
            };
            tracing::error!("{reason}");
            let now = self.now();
            let _ = client.handle_event(now, Event::InstallFailed { reason: &reason });
            return;
        };
        let signature_policy = self.config.eyas.manifest_signature;
        let keys = self.config.eyas.manifest_public_keys.clone();
        let tx = self.done_tx.clone();
        let reboot = i.kind == InstallKind::RaucReboot;
        // the chunk's downloaded files, removed once RAUC installed it
        let downloaded: Vec<PathBuf> = self
            .chunk_files(&i)
            .iter()
            .map(|f| f.path.clone())
            .collect();
        tracing::info!(
            "installing {} {} from {} with RAUC",
            i.name,
            i.version,
            bundle.display()
        );
        self.publish(&telemetry::target_software(&i.name, &i.version));
        let action = i.action;
        // casync's chunks go through the relay while RAUC installs; one install at a time, so
        // the counter's growth meanwhile is this bundle's
        let relay = self
            .chunk_relay
            .as_ref()
            .map(|r| (r.counter(), r.fetched_bytes()));
        let chunks = move || {
            relay.as_ref().map(|(counter, before)| {
                counter
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .saturating_sub(*before)
            })
        };
        tokio::spawn(async move {
            if signature_policy != crate::config::SignaturePolicy::Off {
                let compatible = match rauc.compatible().await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Done::Install(Err(e.to_string()), action, chunks()));
                        return;
                    }
                };
                let b = bundle.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    crate::manifest::check_bundle(
                        &b,
                        &spec,
                        manifest.as_deref(),
                        signature_policy,
                        &keys,
                        &compatible,
                    )
                })
                .await
                .unwrap_or_else(|e| Err(format!("manifest check task failed: {e}")));
                if let Err(reason) = checked {
                    let _ = tx.send(Done::Install(Err(reason), action, chunks()));
                    return;
                }
                tracing::info!("signed manifest OK");
            }
            let progress_tx = tx.clone();
            let mut on_progress = move |p: &crate::rauc::Progress| {
                tracing::info!("RAUC: {:3}% {}", p.percent, p.message);
                let _ = progress_tx.send(Done::InstallProgress(
                    u8::try_from(p.percent.clamp(0, 100)).unwrap_or(0),
                ));
            };
            let result = match rauc.install(&bundle, INSTALL_LIMIT, &mut on_progress).await {
                Ok(()) if reboot => match rauc.primary().await {
                    Ok(primary) => {
                        let slots = rauc.slot_status().await.unwrap_or_default();
                        match slots
                            .iter()
                            .find(|s| s.name == primary)
                            .and_then(|s| s.get("bootname"))
                        {
                            Some(b) => Ok(Some(b.to_owned())),
                            None => Err(format!(
                                "installed, but RAUC names no bootname for the primary slot {primary}"
                            )),
                        }
                    }
                    Err(e) => Err(format!("installed, but cannot read the primary slot: {e}")),
                },
                Ok(()) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            if result.is_ok() {
                let _ = std::fs::remove_file(&bundle);
                for p in &downloaded {
                    download::remove_partial(p);
                }
                durable().await;
            }
            let _ = tx.send(Done::Install(result, action, chunks()));
        });
    }

    pub(super) fn start_hook(&mut self, client: &mut Client, i: OwnedInstall) {
        let Some(handler) = self
            .config
            .eyas
            .part_handlers
            .iter()
            .find(|h| h.part == i.part)
            .cloned()
        else {
            let reason = format!(
                "no handler configured for part {:?} (set part.{}.command in [eyas])",
                i.part, i.part
            );
            tracing::error!("{reason}");
            let now = self.now();
            let _ = client.handle_event(now, Event::InstallFailed { reason: &reason });
            return;
        };
        let files: Vec<String> = self
            .chunk_files(&i)
            .iter()
            .map(|f| f.path.to_string_lossy().into_owned())
            .collect();
        let tx = self.done_tx.clone();
        let action = i.action;
        tokio::spawn(async move {
            let result = hooks::run(&handler.command, &files, handler.timeout)
                .await
                .map(|()| None);
            if result.is_ok() {
                durable().await;
            }
            // a handler fetches nothing through the relay
            let _ = tx.send(Done::Install(result, action, None));
        });
    }

    pub(super) fn ask(&mut self, action: ActionId) {
        let tx = self.done_tx.clone();
        match &self.config.eyas.confirmation {
            Confirmation::Auto => {
                let _ = tx.send(Done::Confirmation(action, true));
            }
            Confirmation::Deny => {
                let _ = tx.send(Done::Confirmation(action, false));
            }
            Confirmation::Command(cmd) => {
                let cmd = cmd.clone();
                tokio::spawn(async move {
                    let ok = hooks::run(&cmd, &[action.to_string()], Duration::from_secs(3600))
                        .await
                        .is_ok();
                    let _ = tx.send(Done::Confirmation(action, ok));
                });
            }
        }
    }

    pub(super) fn handle_done(&mut self, client: &mut Client, done: Done) {
        let now = self.now();
        let result = match done {
            Done::DownloadProgress(received) => {
                client.handle_event(now, Event::DownloadProgress { received })
            }
            Done::Download {
                key,
                received,
                result,
            } => {
                match result {
                    Ok(d) => {
                        tracing::info!(
                            "downloaded {} bytes in {} ms ({} bytes kept from an interrupted attempt)",
                            d.bytes,
                            d.elapsed.as_millis(),
                            d.reused
                        );
                        self.publish(&telemetry::downloaded(d.bytes, d.elapsed, false));
                        self.note_download(key.0, d.elapsed, d.bytes);
                        if let Some(f) = self.artifacts.get_mut(&key) {
                            f.downloaded = Some(d);
                        }
                        client.handle_event(now, Event::DownloadComplete)
                    }
                    Err(e) if e.kind == HttpErrorKind::Cancelled => Ok(()),
                    Err(e) => {
                        tracing::warn!("download failed: {e}");
                        // what happened goes to the core; retrying or not is its decision
                        let reason = e.to_string();
                        let refused = |refusal| Event::DownloadRefused {
                            refusal,
                            reason: &reason,
                        };
                        let ev = match e.kind {
                            HttpErrorKind::BadFilename => refused(DownloadRefusal::FileName),
                            HttpErrorKind::NoSpace => refused(DownloadRefusal::NoSpace),
                            HttpErrorKind::SizeMismatch => refused(DownloadRefusal::Size),
                            HttpErrorKind::Status(code) => Event::DownloadFailed {
                                http_status: Some(code),
                                reason: &reason,
                            },
                            _ if e.is_transient() && received > 0 => Event::DownloadInterrupted {
                                received,
                                reason: &reason,
                            },
                            _ => Event::DownloadFailed {
                                http_status: None,
                                reason: &reason,
                            },
                        };
                        client.handle_event(now, ev)
                    }
                }
            }
            Done::InstallProgress(percent) => {
                client.handle_event(now, Event::InstallProgress { percent })
            }
            Done::Install(result, action, chunk_bytes) => {
                if let Some(c) = chunk_bytes {
                    self.note_chunks(action, c);
                }
                match result {
                    Ok(slot) => client.handle_event(
                        now,
                        Event::Installed {
                            slot: slot.as_deref(),
                        },
                    ),
                    Err(reason) => {
                        tracing::error!("{reason}");
                        client.handle_event(now, Event::InstallFailed { reason: &reason })
                    }
                }
            }
            Done::Confirmation(action, accepted) => {
                tracing::info!(
                    "action {action}: {}",
                    if accepted { "confirmed" } else { "denied" }
                );
                client.handle_event(now, Event::ConfirmationAnswer { action, accepted })
            }
            Done::Health(passed) => client.handle_event(now, Event::HealthChecked { passed }),
        };
        if let Err(e) = result {
            tracing::warn!("event not taken by the core: {e}");
        }
    }
}

/// Puts a verified bundle at `install_path` for RAUC: a hard link (no copy, and the downloaded
/// name stays for a re-verify after a power cut), or a rename where the file system has none.
pub(super) fn stage_bundle(downloaded: &Path, install_path: &Path) -> Result<PathBuf, String> {
    if downloaded == install_path {
        return Ok(install_path.to_path_buf());
    }
    match std::fs::remove_file(install_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot replace {}: {e}", install_path.display()));
        }
        _ => {}
    }
    std::fs::hard_link(downloaded, install_path)
        .or_else(|_| std::fs::rename(downloaded, install_path))
        .map(|()| install_path.to_path_buf())
        .map_err(|e| {
            format!(
                "cannot put {} at {} for the install: {e}",
                downloaded.display(),
                install_path.display()
            )
        })
}

/// Feeds a file to a fresh core verifier (policy off).
pub(super) fn verify_file(path: &Path, spec: &ArtifactSpec) -> Result<Verifier, String> {
    use std::io::Read;
    let mut v = Verifier::new(spec, Policy::Off).map_err(|_| {
        format!(
            "{}: hawkBit sent neither SHA-256 nor SHA-1; refusing to install",
            path.display()
        )
    })?;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(v);
        }
        // Too many bytes are reported by `finish`.
        let _ = v.update(&buf[..n]);
    }
}

/// Flushes every file system before an install is reported done. RAUC does not fsync what it
/// copies into a file-backed slot, nor does a hook have to: without this a power cut right after
/// a `closed/success` for an update without a reboot can lose the update that hawkBit was told
/// about (seen on the QEMU board, hil-tests `parts`).
async fn durable() {
    let _ = tokio::task::spawn_blocking(rustix::fs::sync).await;
}

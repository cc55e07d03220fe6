//! What a deployment asks for, copied into fixed capacity: the chunks, the artifacts and one text
//! arena for their names and URLs, kept in the [`Job`] with the action's record; why a deployment
//! cannot be planned, and the text that says so.

use super::reason::{self, push_clean};
use super::{
    InstallKind, MAX_FILENAME_LEN, MAX_PLAN_ARTIFACTS, MAX_PLAN_CHUNKS, MAX_PLAN_NAME_LEN,
    MAX_PLAN_TEXT_LEN, MAX_REASON_LEN,
};
use crate::ddi::{self, ActionId, DeploymentBase, HandlingType, MaintenanceWindow};
use crate::record::{Phase, Record};
use crate::text::{Num, cat};
use heapless::{String, Vec};

#[derive(Debug, Clone)]
pub(super) struct ChunkPlan {
    pub(super) part: String<MAX_PLAN_NAME_LEN>,
    pub(super) name: String<MAX_PLAN_NAME_LEN>,
    pub(super) version: String<MAX_PLAN_NAME_LEN>,
    pub(super) kind: InstallKind,
    pub(super) encrypted: bool,
    pub(super) first_artifact: u8,
    pub(super) artifact_count: u8,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct TextRef {
    pub(super) off: u16,
    pub(super) len: u16,
}

#[derive(Debug, Clone)]
pub(super) struct ArtifactPlan {
    pub(super) chunk: u8,
    pub(super) filename: TextRef,
    pub(super) url: TextRef,
    pub(super) size: u64,
    pub(super) sha256: Option<[u8; 32]>,
    pub(super) sha1: Option<[u8; 20]>,
    pub(super) md5: Option<[u8; 16]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Awaiting {
    Nothing,
    Download,
    Verify,
    Install,
}

#[derive(Debug)]
pub(super) struct Job {
    /// `false`: no action (the rest is stale).
    pub(super) active: bool,
    /// Hash of the deploymentBase href (a changed `c=` means "re-read me").
    pub(super) href: u64,
    pub(super) plan_valid: bool,
    pub(super) download: HandlingType,
    pub(super) update: HandlingType,
    pub(super) window: Option<MaintenanceWindow>,
    pub(super) chunks: Vec<ChunkPlan, MAX_PLAN_CHUNKS>,
    pub(super) artifacts: Vec<ArtifactPlan, MAX_PLAN_ARTIFACTS>,
    pub(super) text: Vec<u8, MAX_PLAN_TEXT_LEN>,
    pub(super) order: Vec<u8, MAX_PLAN_CHUNKS>,
    pub(super) rec: Record,
    pub(super) awaiting: Awaiting,
    pub(super) dl_retries: u8,
    pub(super) resume_from: Option<u64>,
    pub(super) quota_exhausted: bool,
    pub(super) last_step: u8,
    /// After a restore: re-verify stored artifacts `cursor..verify_end` before going on.
    pub(super) verify_cursor: Option<u8>,
    pub(super) verify_end: u8,
}

impl Job {
    /// No action. Only `active: false` matters ([`Job::reset`] sets every other field before
    /// use); the rest are the values whose bytes are all zero, so that
    /// [`Client::unconfigured`] is all-zero (see [`Live`]).
    pub(super) const fn empty() -> Self {
        Self {
            active: false,
            href: 0,
            plan_valid: false,
            download: HandlingType::Skip,
            update: HandlingType::Skip,
            window: Some(MaintenanceWindow::Available),
            chunks: Vec::new(),
            artifacts: Vec::new(),
            text: Vec::new(),
            order: Vec::new(),
            rec: Record {
                action_id: ActionId(0),
                phase: Phase::Reporting {
                    success: false,
                    reason: 0,
                },
                target_slot: None,
                from_slot: None,
                from_version: String::new(),
                to_version: String::new(),
                attempt: 0,
                next_artifact: 0,
                next_chunk: 0,
                status_entries: 0,
                resume_offset: 0,
            },
            awaiting: Awaiting::Nothing,
            dl_retries: 0,
            resume_from: None,
            quota_exhausted: false,
            last_step: 0,
            verify_cursor: None,
            verify_end: 0,
        }
    }

    /// Start a new action in place (no multi-KiB temporary on the stack).
    pub(super) fn reset(&mut self, id: ActionId, phase: Phase) {
        self.active = true;
        self.href = 0;
        self.plan_valid = false;
        self.download = HandlingType::Forced;
        self.update = HandlingType::Forced;
        self.window = None;
        self.chunks.clear();
        self.artifacts.clear();
        self.text.clear();
        self.order.clear();
        self.rec = Record::new(id, phase);
        self.awaiting = Awaiting::Nothing;
        self.dl_retries = 0;
        self.resume_from = None;
        self.quota_exhausted = false;
        self.last_step = 0;
        self.verify_cursor = None;
        self.verify_end = 0;
    }

    pub(super) fn id(&self) -> ActionId {
        self.rec.action_id
    }
    /// Index of the artifact being downloaded or verified.
    pub(super) fn artifact_index(&self) -> u8 {
        self.verify_cursor.unwrap_or(self.rec.next_artifact)
    }
    pub(super) fn text(&self, r: TextRef) -> &str {
        let start = usize::from(r.off);
        self.text
            .get(start..start + usize::from(r.len))
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Append decoded `s` to the text arena.
    pub(super) fn push_text(&mut self, s: ddi::JsonStr<'_>) -> Option<TextRef> {
        let off = self.text.len();
        let mut tmp = [0u8; 4];
        for c in s.chars() {
            if self
                .text
                .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes())
                .is_err()
            {
                self.text.truncate(off);
                return None;
            }
        }
        Some(TextRef {
            off: u16::try_from(off).ok()?,
            len: u16::try_from(self.text.len() - off).ok()?,
        })
    }

    pub(super) fn before_install(&self) -> bool {
        matches!(self.rec.phase, Phase::Downloading | Phase::AwaitingWindow)
    }
}

/// Appends the decoded `s`; `false` (with a part appended) if it does not fit.
pub(super) fn copy_into(out: &mut heapless::string::StringView, s: ddi::JsonStr<'_>) -> bool {
    for c in s.chars() {
        if out.push(c).is_err() {
            return false;
        }
    }
    true
}

#[derive(Debug, Clone, Copy)]
pub(super) enum PlanError {
    NoChunks,
    TooManyChunks(usize),
    TooLong(&'static str),
    UnknownPart(usize),
    MultipleOs,
    NoDownloadLink(usize, usize),
    TooManyArtifacts,
    /// A RAUC chunk with more than one bundle (manifests aside): one is installed per chunk.
    SeveralBundles(usize),
}

pub(super) fn plan_error_text(e: PlanError, d: &DeploymentBase<'_>) -> String<MAX_REASON_LEN> {
    let mut t: String<MAX_REASON_LEN> = String::new();
    let _ = cat(&mut t, &[reason::text(reason::UNSUPPORTED), ": "]);
    let mut name: String<MAX_PLAN_NAME_LEN> = String::new();
    let _ = match e {
        PlanError::NoChunks => cat(&mut t, &["no chunks"]),
        PlanError::TooManyChunks(n) => cat(
            &mut t,
            &[
                Num::dec(n as u64).as_str(),
                " chunks, at most ",
                Num::dec(MAX_PLAN_CHUNKS as u64).as_str(),
                " supported",
            ],
        ),
        PlanError::TooLong(what) => cat(&mut t, &[what, " too long"]),
        PlanError::UnknownPart(ci) => {
            if let Some(c) = d.chunk(ci) {
                for ch in c.part.chars().take(MAX_PLAN_NAME_LEN / 4) {
                    let _ = name.push(ch);
                }
            }
            let mut clean: String<MAX_PLAN_NAME_LEN> = String::new();
            push_clean(&mut clean, &name);
            cat(&mut t, &["unknown chunk part `", &clean, "`"])
        }
        PlanError::MultipleOs => cat(&mut t, &["more than one `os` chunk"]),
        PlanError::SeveralBundles(n) => cat(
            &mut t,
            &[
                Num::dec(n as u64).as_str(),
                " RAUC bundles in one chunk (one per chunk)",
            ],
        ),
        PlanError::NoDownloadLink(ci, ai) => {
            if let Some(a) = d.chunk(ci).and_then(|c| c.artifacts().nth(ai)) {
                for ch in a.filename.chars().take(MAX_PLAN_NAME_LEN / 4) {
                    let _ = name.push(ch);
                }
            }
            let mut clean: String<MAX_PLAN_NAME_LEN> = String::new();
            push_clean(&mut clean, &name);
            cat(&mut t, &["artifact ", &clean, " has no download link"])
        }
        PlanError::TooManyArtifacts => cat(
            &mut t,
            &[
                "more than ",
                Num::dec(MAX_PLAN_ARTIFACTS as u64).as_str(),
                " artifacts",
            ],
        ),
    };
    t
}

/// Copy the deployment into the job's plan.
#[inline(never)]
pub(super) fn fill_plan(job: &mut Job, d: &DeploymentBase<'_>) -> Result<(), PlanError> {
    job.chunks.clear();
    job.artifacts.clear();
    job.text.clear();
    job.order.clear();
    if d.chunk_count() == 0 {
        return Err(PlanError::NoChunks);
    }
    if d.chunk_count() > MAX_PLAN_CHUNKS {
        return Err(PlanError::TooManyChunks(d.chunk_count()));
    }
    let mut os = 0;
    for (ci, c) in d.chunks().enumerate() {
        let kind = [
            ("os", InstallKind::RaucReboot),
            ("application", InstallKind::RaucNoReboot),
            ("bApp", InstallKind::RaucNoReboot),
            ("config", InstallKind::ConfigHook),
        ]
        .iter()
        .find(|(k, _)| c.part.eq_str(k))
        .map(|(_, kind)| *kind)
        .ok_or(PlanError::UnknownPart(ci))?;
        // lengths checked here (a `String<MAX_PLAN_NAME_LEN>` takes exactly these), the texts are
        // copied into the pushed plan in place: no chunk-sized temporaries
        let fits = |s: ddi::JsonStr<'_>| s.decoded_len() <= MAX_PLAN_NAME_LEN;
        if !fits(c.part) {
            return Err(PlanError::TooLong("chunk part"));
        }
        if kind == InstallKind::RaucReboot {
            os += 1;
            if os > 1 {
                return Err(PlanError::MultipleOs);
            }
        }
        if !fits(c.name) {
            return Err(PlanError::TooLong("chunk name"));
        }
        if !fits(c.version) {
            return Err(PlanError::TooLong("chunk version"));
        }
        let first = job.artifacts.len() as u8;
        let mut bundles = 0;
        for (ai, a) in c.artifacts().enumerate() {
            // one RAUC bundle per chunk (plus manifests); a byte compare, no str searcher
            if kind != InstallKind::ConfigHook
                && !a
                    .filename
                    .raw()
                    .as_bytes()
                    .ends_with(crate::verify::MANIFEST_SUFFIX.as_bytes())
            {
                bundles += 1;
                if bundles > 1 {
                    return Err(PlanError::SeveralBundles(c.artifacts().count()));
                }
            }
            if a.filename.decoded_len() > MAX_FILENAME_LEN {
                return Err(PlanError::TooLong("artifact file name"));
            }
            let link = a.download_url.ok_or(PlanError::NoDownloadLink(ci, ai))?;
            let filename = job
                .push_text(a.filename)
                .ok_or(PlanError::TooLong("file names and URLs together"))?;
            let url = job
                .push_text(link)
                .ok_or(PlanError::TooLong("file names and URLs together"))?;
            let plan = ArtifactPlan {
                chunk: ci as u8,
                filename,
                url,
                size: a.size,
                sha256: a.sha256,
                sha1: a.sha1,
                md5: a.md5,
            };
            job.artifacts
                .push(plan)
                .map_err(|_| PlanError::TooManyArtifacts)?;
        }
        let chunk = ChunkPlan {
            part: String::new(),
            name: String::new(),
            version: String::new(),
            kind,
            encrypted: c.encrypted,
            first_artifact: first,
            artifact_count: job.artifacts.len() as u8 - first,
        };
        job.chunks
            .push(chunk)
            .map_err(|_| PlanError::TooManyChunks(d.chunk_count()))?;
        if let Some(p) = job.chunks.last_mut() {
            // lengths checked above: these fit
            let _ = copy_into(p.part.as_mut_view(), c.part);
            let _ = copy_into(p.name.as_mut_view(), c.name);
            let _ = copy_into(p.version.as_mut_view(), c.version);
        }
    }
    // install order: config hooks, then applications, then the OS (which reboots)
    for want in [
        InstallKind::ConfigHook,
        InstallKind::RaucNoReboot,
        InstallKind::RaucReboot,
    ] {
        for (i, c) in job.chunks.iter().enumerate() {
            if c.kind == want {
                let _ = job.order.push(i as u8);
            }
        }
    }
    if usize::from(job.rec.next_artifact) > job.artifacts.len()
        || usize::from(job.rec.next_chunk) > job.order.len()
    {
        // a record from a different plan: start over
        job.rec.next_artifact = 0;
        job.rec.next_chunk = 0;
        job.rec.phase = Phase::Downloading;
    }
    Ok(())
}

//! In-memory hawkBit state and every state transition (assignment, feedback, cancel, confirmation,
//! rollouts). Pure and synchronous: the HTTP layers lock [`State`], call one method, unlock.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::cron::MaintenanceWindow;
use super::fiql::Expr;
use super::time::parse_hms;

/// Error from a state transition, mapped to an HTTP status by the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status code.
    pub status: u16,
    /// hawkBit `errorCode`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// DDI paths answer some errors with an empty body.
    pub empty_body: bool,
}

/// Longest error message sent back (bytes): messages quote client input, and no input may make an
/// answer large (issue 13 §11: a 200 MB multipart field came back whole in a 400).
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Longest piece of client input quoted in a message (characters); see [`clip`].
pub const MAX_QUOTE_CHARS: usize = 64;

/// Client input as quoted in messages and `Warning` headers: at most [`MAX_QUOTE_CHARS`]
/// characters, a longer value is cut and its size given (`abc… (200000 bytes)`).
pub fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(MAX_QUOTE_CHARS) {
        None => s.into(),
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()).into(),
    }
}

impl Failure {
    /// A failure with a JSON error body; a message longer than [`MAX_MESSAGE_LEN`] is cut.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_LEN {
            let mut cut = MAX_MESSAGE_LEN - 16;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("… (cut)");
        }
        Self {
            status,
            code,
            message,
            empty_body: false,
        }
    }
    /// A failure answered with an empty body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            code: "",
            message: String::new(),
            empty_body: true,
        }
    }
    /// 400 Bad Request.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(400, "hawkbit.server.error.rest.param.invalid", message)
    }
    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "hawkbit.server.error.repo.entitiyNotFound", message)
    }
    /// 429 quota.
    pub fn quota(message: impl Into<String>) -> Self {
        Self::new(
            429,
            "hawkbit.server.error.quota.tooManyEntries",
            format!("Quota exceeded: {}", message.into()),
        )
    }
    /// hawkBit's `AssignmentQuotaExceededException` for `requested` more `kind` entities on a
    /// parent (429 since hawkBit 0.10.0), with its message text: "Quota exceeded: Cannot assign
    /// %s more %s entities to %s '%s'. The maximum is %s." (`parent_id` `<new>` for an entity
    /// not saved yet, as a new action status).
    pub fn assignment_quota(
        requested: usize,
        kind: &str,
        parent_kind: &str,
        parent_id: &str,
        max: usize,
    ) -> Self {
        Self::new(
            429,
            "hawkbit.server.error.quota.tooManyEntries",
            format!(
                "Quota exceeded: Cannot assign {requested} more {kind} entities to {parent_kind} '{parent_id}'. The maximum is {max}."
            ),
        )
    }
}

/// Longest stored action-status message, in Java chars (UTF-16 units): hawkBit's
/// `JpaActionStatus.MESSAGE_ENTRY_LENGTH` (column `detail_message`, length 512). Longer messages
/// are split into entries of this length (`addMessage`), and every entry counts against
/// `maxMessagesPerActionStatus`.
pub const MESSAGE_ENTRY_LENGTH: usize = 512;

/// The entries hawkBit stores for one message: pieces of at most [`MESSAGE_ENTRY_LENGTH`] UTF-16
/// units (an empty message is one empty entry). Unlike Java's `substring`, a surrogate pair is
/// never cut: a piece may then hold 511 units.
pub fn message_entries(m: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(m);
    std::iter::from_fn(move || {
        let r = rest?;
        let mut units = 0;
        let cut = r
            .char_indices()
            .find(|(_, c)| {
                units += c.len_utf16();
                units > MESSAGE_ENTRY_LENGTH
            })
            .map_or(r.len(), |(i, _)| i);
        let (piece, tail) = r.split_at(cut);
        rest = (!tail.is_empty()).then_some(tail);
        Some(piece)
    })
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.empty_body {
            write!(f, "HTTP {}", self.status)
        } else {
            write!(f, "HTTP {} {}: {}", self.status, self.code, self.message)
        }
    }
}

impl std::error::Error for Failure {}

/// Result of a transition.
pub type Res<T> = Result<T, Failure>;

/// Mgmt action types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionType {
    /// `soft`
    Soft,
    /// `forced`
    Forced,
    /// `timeforced`
    TimeForced,
    /// `downloadonly`
    DownloadOnly,
}

impl ActionType {
    /// Parses the lower-case Mgmt name.
    pub fn parse(s: &str) -> Res<Self> {
        match s {
            "soft" => Ok(Self::Soft),
            "forced" => Ok(Self::Forced),
            "timeforced" => Ok(Self::TimeForced),
            "downloadonly" => Ok(Self::DownloadOnly),
            _ => Err(Failure::bad(format!(
                "type '{}' is not one of soft, forced, timeforced, downloadonly",
                clip(s)
            ))),
        }
    }
    /// Lower-case Mgmt name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Soft => "soft",
            Self::Forced => "forced",
            Self::TimeForced => "timeforced",
            Self::DownloadOnly => "downloadonly",
        }
    }
}

/// Server-side action status (also the type of a status-history entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Status {
    Scheduled,
    Running,
    Retrieved,
    Download,
    Downloaded,
    Warning,
    WaitForConfirmation,
    Canceling,
    Canceled,
    CancelRejected,
    Finished,
    Error,
}

impl Status {
    /// Lower-case Mgmt name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Retrieved => "retrieved",
            Self::Download => "download",
            Self::Downloaded => "downloaded",
            Self::Warning => "warning",
            Self::WaitForConfirmation => "wait_for_confirmation",
            Self::Canceling => "canceling",
            Self::Canceled => "canceled",
            Self::CancelRejected => "cancel_rejected",
            Self::Finished => "finished",
            Self::Error => "error",
        }
    }
    /// Upper-case name used in DDI `actionHistory.status`.
    pub fn upper(self) -> String {
        self.name().to_ascii_uppercase()
    }
}

/// One entry in an action's status history.
#[derive(Debug, Clone)]
pub struct StatusEntry {
    /// Entry id.
    pub id: u64,
    /// Status type.
    pub status: Status,
    /// Message lines.
    pub messages: Vec<String>,
    /// Server time of the report (ms).
    pub reported_at: i64,
    /// Device timestamp or server time (ms).
    pub timestamp: i64,
    /// Device status code.
    pub code: Option<i64>,
}

/// A deployment action.
#[derive(Debug, Clone)]
pub struct Action {
    /// Action id.
    pub id: u64,
    /// Target controllerId.
    pub target: String,
    /// Distribution set id.
    pub ds: u64,
    /// Action type.
    pub kind: ActionType,
    /// Time-forced deadline (ms), 0 if none.
    pub forcetime: i64,
    /// Weight.
    pub weight: Option<i64>,
    /// Maintenance window.
    pub window: Option<MaintenanceWindow>,
    /// Current status.
    pub status: Status,
    /// Active (visible to the device) or closed.
    pub active: bool,
    /// Status history, oldest first.
    pub history: Vec<StatusEntry>,
    /// Last device status code.
    pub last_status_code: Option<i64>,
    /// Rollout, if created by one.
    pub rollout: Option<u64>,
    /// Rollout group.
    pub group: Option<u64>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub modified_at: i64,
    /// Needs user consent (if the tenant flow is enabled).
    pub confirmation_required: bool,
    /// Created by `assignedDS?offline=true`.
    pub offline: bool,
}

/// Automatic confirmation state of a target.
#[derive(Debug, Clone)]
pub struct AutoConfirm {
    /// Who activated it.
    pub initiator: Option<String>,
    /// Why.
    pub remark: Option<String>,
    /// When (ms).
    pub activated_at: i64,
}

/// A target (device).
#[derive(Debug, Clone)]
pub struct Target {
    /// controllerId.
    pub controller_id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Target token.
    pub security_token: String,
    /// `address` field.
    pub address: Option<String>,
    /// Creation sequence number (defines "DB order" and the rollout freeze).
    pub seq: u64,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last modification (ms).
    pub modified_at: i64,
    /// Last DDI contact (ms).
    pub last_poll: Option<i64>,
    /// Client IP of the last DDI contact.
    pub ip: Option<String>,
    /// Controller attributes.
    pub attributes: BTreeMap<String, String>,
    /// Server wants attributes (`configData` link).
    pub request_attributes: bool,
    /// Assigned DS.
    pub assigned_ds: Option<u64>,
    /// Installed DS.
    pub installed_ds: Option<u64>,
    /// Installation time (ms).
    pub installation_date: Option<i64>,
    /// Action that installed `installed_ds` (for `installedBase`).
    pub installed_action: Option<u64>,
    /// `unknown|registered|pending|in_sync|error`.
    pub update_status: &'static str,
    /// Auto-confirm state.
    pub auto_confirm: Option<AutoConfirm>,
}

/// Software module metadata entry.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
    /// Sent to devices.
    pub target_visible: bool,
}

/// A stored artifact (file on disk).
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Artifact id.
    pub id: u64,
    /// File name as provided.
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-1.
    pub sha1: String,
    /// Hex MD5.
    pub md5: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Where the bytes are.
    pub path: std::path::PathBuf,
    /// Upload time (ms).
    pub created_at: i64,
}

/// A software module.
#[derive(Debug, Clone)]
pub struct SoftwareModule {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Type key (`os`, `application`, …).
    pub kind: String,
    /// Description.
    pub description: String,
    /// Vendor.
    pub vendor: String,
    /// Encrypted flag.
    pub encrypted: bool,
    /// Artifacts.
    pub artifacts: Vec<Artifact>,
    /// Metadata.
    pub metadata: Vec<Metadata>,
    /// Creation time.
    pub created_at: i64,
    /// Locked (its DS was assigned or used by a rollout): artifact uploads are refused with 423.
    pub locked: bool,
}

/// A software-module type (`softwaremoduletypes`): the key is the DDI chunk `part`.
#[derive(Debug, Clone)]
pub struct SmType {
    /// Id.
    pub id: u64,
    /// Key (`os`, `application`, `runtime`, or a custom one such as `config`).
    pub key: String,
    /// Display name (`typeName` of its modules).
    pub name: String,
    /// Description.
    pub description: String,
    /// How many modules of this type one distribution set may hold.
    pub max_assignments: u32,
    /// Creation time.
    pub created_at: i64,
}

/// A distribution-set type (`distributionsettypes`): which module types a set must and may hold.
#[derive(Debug, Clone)]
pub struct DsType {
    /// Id.
    pub id: u64,
    /// Key (`os`, `app`, `os_app`, or a custom one).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Module type keys a complete set must hold.
    pub mandatory: Vec<String>,
    /// Module type keys a set may hold besides.
    pub optional: Vec<String>,
    /// Creation time.
    pub created_at: i64,
}

/// A distribution set.
#[derive(Debug, Clone)]
pub struct DistributionSet {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Type key (`os`, `app`, `os_app`).
    pub kind: String,
    /// Description.
    pub description: String,
    /// Module ids.
    pub modules: Vec<u64>,
    /// requiredMigrationStep.
    pub required_migration_step: bool,
    /// Creation time.
    pub created_at: i64,
    /// Locked by its first assignment or rollout (hawkBit's implicit lock), together with its modules.
    pub locked: bool,
}

/// A group definition for [`State::create_rollout`]: name, description, filter, targetPercentage,
/// conditions, confirmationRequired.
pub type GroupSpec = (
    String,
    String,
    Option<String>,
    f64,
    Conditions,
    Option<bool>,
);

/// Threshold condition/action pair of a rollout group.
#[derive(Debug, Clone, Copy)]
pub struct Conditions {
    /// successCondition THRESHOLD percent.
    pub success_pct: f64,
    /// successAction: true = NEXTGROUP, false = PAUSE.
    pub success_next_group: bool,
    /// errorCondition THRESHOLD percent.
    pub error_pct: f64,
}

/// Rollout group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Id.
    pub id: u64,
    /// Rollout id.
    pub rollout: u64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `creating|ready|scheduled|running|finished|error`.
    pub status: &'static str,
    /// Conditions.
    pub cond: Conditions,
    /// Group filter (ANDed with the rollout's).
    pub filter: Option<String>,
    /// targetPercentage.
    pub percentage: f64,
    /// Member controllerIds (frozen).
    pub targets: Vec<String>,
    /// The success action already fired.
    pub success_fired: bool,
    /// confirmationRequired.
    pub confirmation_required: bool,
}

/// Rollout.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// DS id.
    pub ds: u64,
    /// Filter.
    pub filter: String,
    /// Status name.
    pub status: &'static str,
    /// Action type.
    pub kind: ActionType,
    /// forcetime.
    pub forcetime: i64,
    /// startAt.
    pub start_at: Option<i64>,
    /// weight.
    pub weight: Option<i64>,
    /// Group ids in order.
    pub groups: Vec<u64>,
    /// Creation sequence (targets created later are excluded).
    pub seq: u64,
    /// Created at.
    pub created_at: i64,
    /// Modified at.
    pub modified_at: i64,
    /// confirmationRequired.
    pub confirmation_required: bool,
}

/// Tenant configuration (`/rest/v1/system/configs`).
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// `pollingTime` as given (may carry `~N%` jitter).
    pub polling_time: String,
    /// `pollingOverdueTime`.
    pub polling_overdue_time: String,
    /// `authentication.targettoken.enabled`.
    pub target_token_enabled: bool,
    /// `authentication.gatewaytoken.enabled`.
    pub gateway_token_enabled: bool,
    /// `authentication.gatewaytoken.key`.
    pub gateway_token_key: String,
    /// `user.confirmation.flow.enabled`.
    pub confirmation_flow: bool,
    /// `repository.actions.autoclose.enabled`.
    pub autoclose: bool,
}

/// Server limits (hawkBit defaults).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// minPollingTime, seconds.
    pub min_polling_secs: u64,
    /// maxPollingTime, seconds.
    pub max_polling_secs: u64,
    /// maxStatusEntriesPerAction.
    pub max_status_entries: usize,
    /// maxMessagesPerActionStatus.
    pub max_messages: usize,
    /// maxAttributeEntriesPerTarget.
    pub max_attributes: usize,
    /// maintenanceWindowPollCount.
    pub window_poll_count: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_polling_secs: 30,
            max_polling_secs: 23 * 3600 + 59 * 60 + 59,
            max_status_entries: 1000,
            max_messages: 50,
            max_attributes: 100,
            window_poll_count: 3,
        }
    }
}

/// Forced maintenance-window state (`/sim/maintenance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowOverride {
    /// Treat every window as open.
    Open,
    /// Treat every window as closed.
    Closed,
}

/// Options of one assignment.
#[derive(Debug, Clone)]
pub struct AssignOptions {
    /// Action type.
    pub kind: ActionType,
    /// forcetime (ms).
    pub forcetime: i64,
    /// weight.
    pub weight: Option<i64>,
    /// Maintenance window.
    pub window: Option<MaintenanceWindow>,
    /// confirmationRequired (None = tenant flag).
    pub confirmation_required: Option<bool>,
}

impl Default for AssignOptions {
    fn default() -> Self {
        Self {
            kind: ActionType::Forced,
            forcetime: 0,
            weight: None,
            window: None,
            confirmation_required: None,
        }
    }
}

impl AssignOptions {
    /// hawkBit's rules for the options of an assignment request (Mgmt API): `timeforced` needs a
    /// `forcetime`, `weight` is 0..1000. (The library's `assign` does not check them.)
    pub fn check(&self, ctx: &str) -> Res<()> {
        if self.kind == ActionType::TimeForced && self.forcetime <= 0 {
            return Err(Failure::bad(format!(
                "{ctx}: type 'timeforced' needs 'forcetime' (ms since epoch)"
            )));
        }
        if self.weight.is_some_and(|w| !(0..=1000).contains(&w)) {
            return Err(Failure::bad(format!("{ctx}: 'weight' must be 0..1000")));
        }
        Ok(())
    }
}

/// Fields of `PUT /rest/v1/targets/{id}`; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct TargetUpdate<'a> {
    /// `name`.
    pub name: Option<&'a str>,
    /// `description`.
    pub description: Option<&'a str>,
    /// `securityToken`.
    pub security_token: Option<&'a str>,
    /// `address`.
    pub address: Option<&'a str>,
    /// `requestAttributes`.
    pub request_attributes: Option<bool>,
}

/// Outcome of an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigned {
    /// New action created.
    New(u64),
    /// The DS was already assigned by this active action.
    Already(u64),
}

/// Device execution values (DDI feedback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Execution {
    Closed,
    Proceeding,
    Canceled,
    Scheduled,
    Rejected,
    Resumed,
    Downloaded,
    Download,
}

impl Execution {
    /// Parses the DDI string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "closed" => Self::Closed,
            "proceeding" => Self::Proceeding,
            "canceled" => Self::Canceled,
            "scheduled" => Self::Scheduled,
            "rejected" => Self::Rejected,
            "resumed" => Self::Resumed,
            "downloaded" => Self::Downloaded,
            "download" => Self::Download,
            _ => return None,
        })
    }
}

/// Device `finished` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Finished {
    Success,
    Failure,
    None,
}

impl Finished {
    /// Parses the DDI string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "success" => Self::Success,
            "failure" => Self::Failure,
            "none" => Self::None,
            _ => return None,
        })
    }
}

/// A validated DDI feedback.
#[derive(Debug, Clone)]
pub struct Feedback {
    /// execution.
    pub execution: Execution,
    /// result.finished.
    pub finished: Finished,
    /// code.
    pub code: Option<i64>,
    /// details.
    pub details: Vec<String>,
    /// timestamp (ms) if sent.
    pub timestamp: Option<i64>,
}

/// The whole simulated tenant.
#[derive(Debug)]
pub struct State {
    /// Tenant name (case-insensitive match).
    pub tenant: String,
    /// Tenant configuration.
    pub config: TenantConfig,
    /// Limits.
    pub limits: Limits,
    /// Targets by controllerId.
    pub targets: BTreeMap<String, Target>,
    /// Software modules.
    pub modules: BTreeMap<u64, SoftwareModule>,
    /// Distribution sets.
    pub sets: BTreeMap<u64, DistributionSet>,
    /// Actions.
    pub actions: BTreeMap<u64, Action>,
    /// Action ids per target (index; every poll looks up the target's actions).
    action_index: std::collections::HashMap<String, Vec<u64>>,
    /// Rollouts.
    pub rollouts: BTreeMap<u64, Rollout>,
    /// Rollout groups.
    pub groups: BTreeMap<u64, Group>,
    /// Global maintenance-window override.
    pub window_override: Option<WindowOverride>,
    /// Per-target maintenance-window override.
    pub window_override_target: BTreeMap<String, WindowOverride>,
    /// Software-module types by key (built in: `os`, `runtime`, `application`).
    pub sm_types: BTreeMap<String, SmType>,
    /// Distribution-set types by key (built in: `os`, `os_app`, `app`).
    pub ds_types: BTreeMap<String, DsType>,
    next_type_id: u64,
    next_id: u64,
    next_seq: u64,
    rng: u64,
}

const SERVER: &str = "Update Server: ";

/// The tenant configuration keys the simulator supports (`/rest/v1/system/configs`).
pub const CONFIG_KEYS: &[&str] = &[
    "pollingTime",
    "pollingOverdueTime",
    "authentication.targettoken.enabled",
    "authentication.gatewaytoken.enabled",
    "authentication.gatewaytoken.key",
    "user.confirmation.flow.enabled",
    "repository.actions.autoclose.enabled",
];

impl State {
    /// Fresh tenant.
    pub fn new(tenant: &str, config: TenantConfig, limits: Limits, seed: u64) -> Self {
        let mut st = Self {
            tenant: tenant.into(),
            config,
            limits,
            targets: BTreeMap::new(),
            modules: BTreeMap::new(),
            sets: BTreeMap::new(),
            actions: BTreeMap::new(),
            action_index: std::collections::HashMap::new(),
            rollouts: BTreeMap::new(),
            groups: BTreeMap::new(),
            window_override: None,
            window_override_target: BTreeMap::new(),
            sm_types: BTreeMap::new(),
            ds_types: BTreeMap::new(),
            next_type_id: 1,
            next_id: 1,
            next_seq: 1,
            rng: seed | 1,
        };
        // hawkBit's default tenant types (ddi-api.md §2): `os` at most once per set,
        // `application` unlimited; `runtime` (DDI part `jvm`) belongs to no default set type.
        for (key, name, max) in [
            ("os", "OS", 1),
            ("runtime", "runtime", 1),
            ("application", "Application", u32::MAX),
        ] {
            let _ = st.add_sm_type(key, name, "", max, 0);
        }
        for (key, name, mandatory, optional) in [
            ("os", "OS only", &["os"][..], &[][..]),
            (
                "os_app",
                "OS with app(s)",
                &["os"][..],
                &["application"][..],
            ),
            ("app", "App(s) only", &["application"][..], &[][..]),
        ] {
            let _ = st.add_ds_type(key, name, "", mandatory, optional, 0);
        }
        st
    }

    /// Adds a software-module type (`POST /rest/v1/softwaremoduletypes`); 409 for a used key or name.
    pub fn add_sm_type(
        &mut self,
        key: &str,
        name: &str,
        description: &str,
        max_assignments: u32,
        now: i64,
    ) -> Res<u64> {
        if key.is_empty() || name.is_empty() {
            return Err(Failure::bad(
                "softwaremoduletype: 'key' and 'name' must not be empty",
            ));
        }
        if max_assignments == 0 {
            return Err(Failure::bad(
                "softwaremoduletype: 'maxAssignments' must be at least 1",
            ));
        }
        if self
            .sm_types
            .values()
            .any(|t| t.key == key || t.name == name)
        {
            return Err(Failure::new(
                409,
                "hawkbit.server.error.repo.entitiyAlreadyExists",
                format!("software module type with key '{key}' or name '{name}' already exists"),
            ));
        }
        let id = self.next_type_id;
        self.next_type_id += 1;
        self.sm_types.insert(
            key.into(),
            SmType {
                id,
                key: key.into(),
                name: name.into(),
                description: description.into(),
                max_assignments,
                created_at: now,
            },
        );
        Ok(id)
    }

    /// Adds a distribution-set type (`POST /rest/v1/distributionsettypes`) over existing module
    /// type keys; 404 for an unknown module type, 409 for a used key or name.
    pub fn add_ds_type(
        &mut self,
        key: &str,
        name: &str,
        description: &str,
        mandatory: &[&str],
        optional: &[&str],
        now: i64,
    ) -> Res<u64> {
        if key.is_empty() || name.is_empty() {
            return Err(Failure::bad(
                "distributionsettype: 'key' and 'name' must not be empty",
            ));
        }
        if let Some(t) = mandatory
            .iter()
            .chain(optional)
            .find(|t| !self.sm_types.contains_key(**t))
        {
            return Err(Failure::not_found(format!(
                "software module type '{t}' does not exist"
            )));
        }
        if self
            .ds_types
            .values()
            .any(|t| t.key == key || t.name == name)
        {
            return Err(Failure::new(
                409,
                "hawkbit.server.error.repo.entitiyAlreadyExists",
                format!("distribution set type with key '{key}' or name '{name}' already exists"),
            ));
        }
        let id = self.next_type_id;
        self.next_type_id += 1;
        self.ds_types.insert(
            key.into(),
            DsType {
                id,
                key: key.into(),
                name: name.into(),
                description: description.into(),
                mandatory: mandatory.iter().map(|t| (*t).to_owned()).collect(),
                optional: optional.iter().map(|t| (*t).to_owned()).collect(),
                created_at: now,
            },
        );
        Ok(id)
    }

    /// Key of the software-module type with this id (404 otherwise).
    pub fn sm_type_key(&self, id: u64) -> Res<&str> {
        self.sm_types
            .values()
            .find(|t| t.id == id)
            .map(|t| t.key.as_str())
            .ok_or_else(|| Failure::not_found(format!("software module type {id} not found")))
    }

    // ------------------------------------------------------------------ software modules and sets

    /// Creates a software module (`POST /rest/v1/softwaremodules`): the type must exist (404), and
    /// name + version + type must be new (409).
    #[allow(clippy::too_many_arguments)]
    pub fn create_module(
        &mut self,
        name: &str,
        version: &str,
        kind: &str,
        description: &str,
        vendor: &str,
        encrypted: bool,
        now: i64,
    ) -> Res<u64> {
        if !self.sm_types.contains_key(kind) {
            return Err(Failure::not_found(format!(
                "software module type '{}' does not exist; the default types are 'os' and 'application'",
                clip(kind)
            )));
        }
        if self
            .modules
            .values()
            .any(|m| m.name == name && m.version == version && m.kind == kind)
        {
            return Err(Failure::new(
                409,
                "hawkbit.server.error.repo.entitiyAlreadyExists",
                format!("software module {name}:{version} of type {kind} already exists"),
            ));
        }
        let id = self.id();
        self.modules.insert(
            id,
            SoftwareModule {
                id,
                name: name.into(),
                version: version.into(),
                kind: kind.into(),
                description: description.into(),
                vendor: vendor.into(),
                encrypted,
                artifacts: Vec::new(),
                metadata: Vec::new(),
                created_at: now,
                locked: false,
            },
        );
        Ok(id)
    }

    /// A software module (404 otherwise).
    pub fn module(&self, id: u64) -> Res<&SoftwareModule> {
        self.modules
            .get(&id)
            .ok_or_else(|| Failure::not_found(format!("software module {id} not found")))
    }

    /// Deletes a software module that no distribution set uses (404, 409 in use); returns the
    /// artifact files to remove.
    pub fn delete_module(&mut self, id: u64) -> Res<Vec<std::path::PathBuf>> {
        let m = self.module(id)?.id;
        if self.sets.values().any(|d| d.modules.contains(&m)) {
            return Err(Failure::new(
                409,
                "hawkbit.server.error.entityinuse",
                format!("software module {m} is used by a distribution set"),
            ));
        }
        Ok(self
            .modules
            .remove(&m)
            .map(|sm| sm.artifacts.into_iter().map(|a| a.path).collect())
            .unwrap_or_default())
    }

    /// Adds metadata entries to a module in order (404; 409 for a key it already has, entries
    /// before it stay added).
    pub fn add_module_metadata(&mut self, id: u64, entries: Vec<Metadata>) -> Res<()> {
        let m = self.module(id)?.id;
        let Some(sm) = self.modules.get_mut(&m) else {
            return Ok(());
        };
        for md in entries {
            if sm.metadata.iter().any(|x| x.key == md.key) {
                return Err(Failure::new(
                    409,
                    "hawkbit.server.error.repo.entitiyAlreadyExists",
                    format!("metadata key '{}' exists", clip(&md.key)),
                ));
            }
            sm.metadata.push(md);
        }
        Ok(())
    }

    /// hawkBit's implicit lock: artifacts cannot be added to a module once its set was assigned or
    /// rolled out (423).
    pub fn check_upload_allowed(&self, module: u64) -> Res<()> {
        if self.modules.get(&module).is_some_and(|m| m.locked) {
            return Err(Failure::new(
                423,
                "hawkbit.server.error.entity.locked",
                format!(
                    "software module {module} is locked: its distribution set was assigned or rolled out; create a new module version"
                ),
            ));
        }
        Ok(())
    }

    /// Creates a distribution set (`POST /rest/v1/distributionsets`): the set type must exist
    /// (404), every module exist (404) and be of a type the set type allows (400), at most
    /// `maxAssignments` modules per module type (400), name + version new (409).
    #[allow(clippy::too_many_arguments)]
    pub fn create_ds(
        &mut self,
        name: &str,
        version: &str,
        kind: &str,
        description: &str,
        modules: &[u64],
        required_migration_step: bool,
        now: i64,
    ) -> Res<u64> {
        let Some(ds_type) = self.ds_types.get(kind) else {
            return Err(Failure::not_found(format!(
                "distribution set type '{}' does not exist; default types are os, app, os_app",
                clip(kind)
            )));
        };
        for m in modules {
            let sm = self.module(*m)?;
            let allowed = ds_type
                .mandatory
                .iter()
                .chain(&ds_type.optional)
                .any(|k| *k == sm.kind);
            if !allowed {
                return Err(Failure::bad(format!(
                    "software module {m} of type '{}' is not allowed in a DS of type '{kind}'",
                    sm.kind
                )));
            }
        }
        for t in self.sm_types.values() {
            let n = modules
                .iter()
                .filter(|m| self.modules.get(m).is_some_and(|x| x.kind == t.key))
                .count();
            if n > t.max_assignments as usize {
                return Err(Failure::bad(if t.max_assignments == 1 {
                    format!("a distribution set can hold at most one '{}' module", t.key)
                } else {
                    format!(
                        "a distribution set can hold at most {} '{}' modules",
                        t.max_assignments, t.key
                    )
                }));
            }
        }
        if self
            .sets
            .values()
            .any(|d| d.name == name && d.version == version)
        {
            return Err(Failure::new(
                409,
                "hawkbit.server.error.repo.entitiyAlreadyExists",
                format!("distribution set {name}:{version} already exists"),
            ));
        }
        let id = self.id();
        self.sets.insert(
            id,
            DistributionSet {
                id,
                name: name.into(),
                version: version.into(),
                kind: kind.into(),
                description: description.into(),
                modules: modules.to_vec(),
                required_migration_step,
                created_at: now,
                locked: false,
            },
        );
        Ok(id)
    }

    // ------------------------------------------------------------------ tenant configuration

    /// The value of a supported configuration key (`GET /rest/v1/system/configs/{key}`).
    pub fn config_value(&self, key: &str) -> Option<Value> {
        let c = &self.config;
        Some(match key {
            "pollingTime" => json!(c.polling_time),
            "pollingOverdueTime" => json!(c.polling_overdue_time),
            "authentication.targettoken.enabled" => json!(c.target_token_enabled),
            "authentication.gatewaytoken.enabled" => json!(c.gateway_token_enabled),
            "authentication.gatewaytoken.key" => json!(c.gateway_token_key),
            "user.confirmation.flow.enabled" => json!(c.confirmation_flow),
            "repository.actions.autoclose.enabled" => json!(c.autoclose),
            _ => return None,
        })
    }

    /// Sets one configuration value (`PUT /rest/v1/system/configs/{key}`): booleans and strings
    /// by key, `pollingTime` `HH:MM:SS[~N%]` within minPollingTime..maxPollingTime,
    /// `pollingOverdueTime` `HH:MM:SS`; 400 otherwise, 404 for an unsupported key.
    pub fn set_config(&mut self, key: &str, v: &Value) -> Res<()> {
        let as_bool = || {
            v.as_bool().ok_or_else(|| {
                Failure::bad(format!(
                    "config '{key}' needs a boolean value: {{\"value\": true}}"
                ))
            })
        };
        let as_str = || {
            v.as_str()
                .ok_or_else(|| Failure::bad(format!("config '{key}' needs a string value")))
        };
        match key {
            "pollingTime" => {
                let s = as_str()?;
                let (secs, _) = parse_polling(s).ok_or_else(|| {
                    Failure::bad(format!(
                        "pollingTime '{}' must be HH:MM:SS (optionally ~N%)",
                        clip(s)
                    ))
                })?;
                if secs < self.limits.min_polling_secs || secs > self.limits.max_polling_secs {
                    return Err(Failure::bad(format!(
                        "pollingTime '{s}' is outside minPollingTime {} s .. maxPollingTime {} s",
                        self.limits.min_polling_secs, self.limits.max_polling_secs
                    )));
                }
                self.config.polling_time = s.into();
            }
            "pollingOverdueTime" => {
                let s = as_str()?;
                parse_hms(s).ok_or_else(|| Failure::bad("pollingOverdueTime must be HH:MM:SS"))?;
                self.config.polling_overdue_time = s.into();
            }
            "authentication.targettoken.enabled" => {
                self.config.target_token_enabled = as_bool()?;
            }
            "authentication.gatewaytoken.enabled" => {
                self.config.gateway_token_enabled = as_bool()?;
            }
            "authentication.gatewaytoken.key" => {
                self.config.gateway_token_key = as_str()?.into();
            }
            "user.confirmation.flow.enabled" => self.config.confirmation_flow = as_bool()?,
            "repository.actions.autoclose.enabled" => self.config.autoclose = as_bool()?,
            _ => {
                return Err(Failure::not_found(format!(
                    "configuration key '{}' is not supported; known: {}",
                    clip(key),
                    CONFIG_KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Resets a configuration value to its default (`DELETE /rest/v1/system/configs/{key}`).
    pub fn reset_config(&mut self, key: &str) -> Res<()> {
        let default = match key {
            "pollingTime" | "pollingOverdueTime" => json!("00:05:00"),
            "authentication.gatewaytoken.key" => json!(""),
            k if CONFIG_KEYS.contains(&k) => json!(false),
            _ => {
                return Err(Failure::not_found(format!(
                    "configuration key '{}' is not supported",
                    clip(key)
                )));
            }
        };
        self.set_config(key, &default)
    }

    /// Sets or clears a maintenance-window override (`/sim/maintenance`): for one target, or
    /// for all (clearing the global one clears the per-target ones too).
    pub fn set_window_override(&mut self, target: Option<&str>, w: Option<WindowOverride>) {
        match (target, w) {
            (Some(t), Some(w)) => {
                self.window_override_target.insert(t.into(), w);
            }
            (Some(t), None) => {
                self.window_override_target.remove(t);
            }
            (None, w) => {
                self.window_override = w;
                if w.is_none() {
                    self.window_override_target.clear();
                }
            }
        }
    }

    /// Next id (shared counter; hawkBit ids are per table but any unique number is fine).
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    /// xorshift64* random number.
    pub fn rand(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Random 32-char alphanumeric token.
    pub fn token(&mut self) -> String {
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..32)
            .map(|_| ALNUM[(self.rand() % ALNUM.len() as u64) as usize] as char)
            .collect()
    }

    // ------------------------------------------------------------------ targets

    /// Creates a target (Mgmt or gateway auto-registration).
    pub fn create_target(
        &mut self,
        controller_id: &str,
        name: Option<&str>,
        description: &str,
        token: Option<&str>,
        address: Option<&str>,
        now: i64,
    ) -> Res<&Target> {
        validate_controller_id(controller_id)?;
        if self.targets.contains_key(controller_id) {
            return Err(Failure::new(
                409,
                "hawkbit.server.error.repo.entitiyAlreadyExists",
                format!("target '{controller_id}' already exists"),
            ));
        }
        if let Some(t) = token
            && (t.is_empty() || t.len() > 128)
        {
            return Err(Failure::bad("securityToken must be 1..128 characters"));
        }
        let token = match token {
            Some(t) => t.to_string(),
            None => self.token(),
        };
        let seq = self.seq();
        let t = Target {
            controller_id: controller_id.into(),
            name: name.unwrap_or(controller_id).into(),
            description: description.into(),
            security_token: token,
            address: address.map(Into::into),
            seq,
            created_at: now,
            modified_at: now,
            last_poll: None,
            ip: None,
            attributes: BTreeMap::new(),
            request_attributes: true,
            assigned_ds: None,
            installed_ds: None,
            installation_date: None,
            installed_action: None,
            update_status: "unknown",
            auto_confirm: None,
        };
        self.targets.insert(controller_id.into(), t);
        self.targets
            .get(controller_id)
            .ok_or_else(|| Failure::not_found("target vanished"))
    }

    /// `PUT /rest/v1/targets/{id}`: changes the given fields; a `securityToken` must be 1..128
    /// characters (400, checked first), the target must exist (404).
    pub fn update_target(&mut self, id: &str, u: TargetUpdate<'_>, now: i64) -> Res<()> {
        if u.security_token
            .is_some_and(|t| t.is_empty() || t.len() > 128)
        {
            return Err(Failure::bad("securityToken must be 1..128 characters"));
        }
        let t = self
            .targets
            .get_mut(id)
            .ok_or_else(|| Failure::not_found(format!("target '{}' not found", clip(id))))?;
        if let Some(n) = u.name {
            t.name = n.into();
        }
        if let Some(d) = u.description {
            t.description = d.into();
        }
        if let Some(tok) = u.security_token {
            t.security_token = tok.into();
        }
        if let Some(a) = u.address {
            t.address = Some(a.into());
        }
        if let Some(r) = u.request_attributes {
            t.request_attributes = r;
        }
        t.modified_at = now;
        Ok(())
    }

    /// Deletes a target and its actions.
    pub fn delete_target(&mut self, id: &str) -> Res<()> {
        self.targets
            .remove(id)
            .ok_or_else(|| Failure::not_found(format!("target '{id}' not found")))?;
        self.actions.retain(|_, a| a.target != id);
        self.action_index.remove(id);
        Ok(())
    }

    /// Records a DDI contact.
    pub fn touch(&mut self, id: &str, ip: Option<String>, now: i64) {
        if let Some(t) = self.targets.get_mut(id) {
            t.last_poll = Some(now);
            if ip.is_some() {
                t.ip = ip;
            }
            if t.update_status == "unknown" {
                t.update_status = "registered";
            }
        }
    }

    /// Field accessor for FIQL.
    pub fn target_field(&self, t: &Target, field: &str) -> Option<String> {
        let ds = |id: Option<u64>| id.and_then(|i| self.sets.get(&i));
        match field {
            "controllerid" => Some(t.controller_id.clone()),
            "name" => Some(t.name.clone()),
            "description" => Some(t.description.clone()),
            "updatestatus" => Some(t.update_status.into()),
            "ipaddress" => t.ip.clone(),
            "assignedds.name" => ds(t.assigned_ds).map(|d| d.name.clone()),
            "assignedds.version" => ds(t.assigned_ds).map(|d| d.version.clone()),
            "installedds.name" => ds(t.installed_ds).map(|d| d.name.clone()),
            "installedds.version" => ds(t.installed_ds).map(|d| d.version.clone()),
            "lastcontrollerrequestat" => t.last_poll.map(|v| v.to_string()),
            "createdat" => Some(t.created_at.to_string()),
            f => f
                .strip_prefix("attribute.")
                .and_then(|k| t.attributes.get(k).cloned()),
        }
    }

    /// Targets matching a FIQL filter, in creation order.
    pub fn query_targets(&self, q: Option<&Expr>) -> Vec<&Target> {
        let mut v: Vec<&Target> = self
            .targets
            .values()
            .filter(|t| q.is_none_or(|e| e.matches(&|f| self.target_field(t, f))))
            .collect();
        v.sort_by_key(|t| t.seq);
        v
    }

    // ------------------------------------------------------------------ actions

    fn push_status(
        &mut self,
        action: u64,
        status: Status,
        messages: Vec<String>,
        code: Option<i64>,
        ts: i64,
        now: i64,
    ) {
        let id = self.id();
        if let Some(a) = self.actions.get_mut(&action) {
            a.history.push(StatusEntry {
                id,
                status,
                messages,
                reported_at: now,
                timestamp: ts,
                code,
            });
            a.modified_at = now;
        }
    }

    /// All actions of a target (via the index).
    pub fn actions_of<'a>(&'a self, target: &str) -> impl Iterator<Item = &'a Action> + 'a {
        self.action_index
            .get(target)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter_map(|id| self.actions.get(id))
    }

    /// The action the device sees: active, highest weight, then oldest.
    pub fn current_action(&self, target: &str) -> Option<&Action> {
        self.actions_of(target)
            .filter(|a| a.target == target && a.active)
            .min_by_key(|a| (std::cmp::Reverse(a.weight.unwrap_or(0)), a.id))
    }

    /// Is the action's maintenance window available now (true if it has none)?
    pub fn window_available(&self, a: &Action, now: i64) -> bool {
        let Some(w) = &a.window else { return true };
        match self
            .window_override_target
            .get(&a.target)
            .copied()
            .or(self.window_override)
        {
            Some(WindowOverride::Open) => true,
            Some(WindowOverride::Closed) => false,
            None => w.is_open(now),
        }
    }

    /// Assigns a DS to a target (direct assignment).
    pub fn assign(
        &mut self,
        target: &str,
        ds: u64,
        opts: &AssignOptions,
        now: i64,
    ) -> Res<Assigned> {
        if !self.targets.contains_key(target) {
            return Err(Failure::not_found(format!("target '{target}' not found")));
        }
        self.check_ds_assignable(ds)?;
        if let Some(a) = self
            .actions_of(target)
            .find(|a| a.target == target && a.active && a.ds == ds && a.status != Status::Canceling)
        {
            return Ok(Assigned::Already(a.id));
        }
        let id = self.new_action(target, ds, opts, None, None, now);
        self.activate(id, now);
        self.lock_ds(ds);
        Ok(Assigned::New(id))
    }

    /// `assignedDS?offline=true`: record as installed without a device action.
    pub fn assign_offline(&mut self, target: &str, ds: u64, now: i64) -> Res<Assigned> {
        if !self.targets.contains_key(target) {
            return Err(Failure::not_found(format!("target '{target}' not found")));
        }
        self.check_ds_assignable(ds)?;
        if self
            .targets
            .get(target)
            .is_some_and(|t| t.installed_ds == Some(ds) && t.assigned_ds == Some(ds))
        {
            let existing = self
                .targets
                .get(target)
                .and_then(|t| t.installed_action)
                .unwrap_or(0);
            return Ok(Assigned::Already(existing));
        }
        let id = self.new_action(target, ds, &AssignOptions::default(), None, None, now);
        self.lock_ds(ds);
        if let Some(a) = self.actions.get_mut(&id) {
            a.offline = true;
            a.active = false;
            a.status = Status::Finished;
        }
        self.push_status(
            id,
            Status::Finished,
            vec![format!("{SERVER}Offline assignment")],
            None,
            now,
            now,
        );
        if let Some(t) = self.targets.get_mut(target) {
            t.assigned_ds = Some(ds);
            t.installed_ds = Some(ds);
            t.installation_date = Some(now);
            t.installed_action = Some(id);
            t.update_status = "in_sync";
        }
        Ok(Assigned::New(id))
    }

    fn check_ds_assignable(&self, ds: u64) -> Res<()> {
        let set = self
            .sets
            .get(&ds)
            .ok_or_else(|| Failure::not_found(format!("distribution set {ds} not found")))?;
        if !self.ds_complete(set) {
            return Err(Failure::new(
                400,
                "hawkbit.server.error.distributionset.incomplete",
                format!(
                    "distribution set {ds} is incomplete: type '{}' needs its mandatory module types",
                    set.kind
                ),
            ));
        }
        Ok(())
    }

    /// hawkBit's implicit lock: an assigned (or rolled out) DS and its modules become read-only.
    fn lock_ds(&mut self, ds: u64) {
        let Some(set) = self.sets.get_mut(&ds) else {
            return;
        };
        set.locked = true;
        for m in set.modules.clone() {
            if let Some(m) = self.modules.get_mut(&m) {
                m.locked = true;
            }
        }
    }

    /// Are all mandatory module types present?
    pub fn ds_complete(&self, set: &DistributionSet) -> bool {
        let has = |k: &str| {
            set.modules
                .iter()
                .any(|m| self.modules.get(m).is_some_and(|m| m.kind == k))
        };
        self.ds_types
            .get(&set.kind)
            .is_none_or(|t| t.mandatory.iter().all(|k| has(k)))
    }

    fn new_action(
        &mut self,
        target: &str,
        ds: u64,
        opts: &AssignOptions,
        rollout: Option<u64>,
        group: Option<u64>,
        now: i64,
    ) -> u64 {
        let id = self.id();
        let confirmation_required = opts
            .confirmation_required
            .unwrap_or(self.config.confirmation_flow);
        self.action_index
            .entry(target.to_string())
            .or_default()
            .push(id);
        self.actions.insert(
            id,
            Action {
                id,
                target: target.into(),
                ds,
                kind: opts.kind,
                forcetime: opts.forcetime,
                weight: opts.weight,
                window: opts.window.clone(),
                status: Status::Scheduled,
                active: false,
                history: Vec::new(),
                last_status_code: None,
                rollout,
                group,
                created_at: now,
                modified_at: now,
                confirmation_required,
                offline: false,
            },
        );
        id
    }

    /// Makes a (new or scheduled) action active: cancels older active actions of the target.
    fn activate(&mut self, id: u64, now: i64) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        let (target, ds, confirm) = (a.target.clone(), a.ds, a.confirmation_required);
        let others: Vec<u64> = self
            .actions_of(&target)
            .filter(|o| o.target == target && o.active && o.id != id)
            .map(|o| o.id)
            .collect();
        for o in others {
            if self.config.autoclose {
                if let Some(a) = self.actions.get_mut(&o) {
                    a.active = false;
                    a.status = Status::Canceled;
                }
                self.push_status(
                    o,
                    Status::Canceled,
                    vec![format!("{SERVER}Action closed: new assignment (autoclose)")],
                    None,
                    now,
                    now,
                );
            } else if self
                .actions
                .get(&o)
                .is_some_and(|a| a.status != Status::Canceling)
            {
                if let Some(a) = self.actions.get_mut(&o) {
                    a.status = Status::Canceling;
                }
                self.push_status(
                    o,
                    Status::Canceling,
                    vec![format!("{SERVER}cancel obsolete action due to new update")],
                    None,
                    now,
                    now,
                );
            }
        }
        let auto = self
            .targets
            .get(&target)
            .and_then(|t| t.auto_confirm.clone());
        let wait = confirm && self.config.confirmation_flow && auto.is_none();
        if let Some(a) = self.actions.get_mut(&id) {
            a.active = true;
            a.status = if wait {
                Status::WaitForConfirmation
            } else {
                Status::Running
            };
            a.modified_at = now;
        }
        let msg = if wait {
            (
                Status::WaitForConfirmation,
                format!(
                    "{SERVER}Waiting for the confirmation by the device before processing with the deployment"
                ),
            )
        } else if let (true, Some(ac)) = (confirm && self.config.confirmation_flow, auto) {
            (
                Status::Running,
                format!(
                    "{SERVER}Assignment automatically confirmed by initiator '{}'. Remark: {}",
                    ac.initiator.unwrap_or_default(),
                    ac.remark.unwrap_or_default()
                ),
            )
        } else {
            (
                Status::Running,
                format!("{SERVER}Assignment initiated by user 'admin'"),
            )
        };
        self.push_status(id, msg.0, vec![msg.1], None, now, now);
        if let Some(t) = self.targets.get_mut(&target) {
            t.assigned_ds = Some(ds);
            t.update_status = "pending";
            t.modified_at = now;
        }
    }

    /// Operator cancel (`DELETE …/actions/{id}`), `force` = force-quit.
    pub fn cancel_action(&mut self, target: &str, id: u64, force: bool, now: i64) -> Res<()> {
        let a = self
            .actions
            .get(&id)
            .filter(|a| a.target == target)
            .ok_or_else(|| {
                Failure::not_found(format!("action {id} of target '{target}' not found"))
            })?;
        if !a.active {
            return Err(Failure::new(
                400,
                "hawkbit.server.error.action.notcancelable",
                format!("action {id} is not active and cannot be canceled"),
            ));
        }
        if force {
            if a.status != Status::Canceling {
                return Err(Failure::new(
                    400,
                    "hawkbit.server.error.action.notforcequitable",
                    "force-quit needs the action to be canceling first (DELETE without force)",
                ));
            }
            self.close_canceled(id, format!("{SERVER}A force quit has been performed."), now);
            return Ok(());
        }
        if a.status == Status::Canceling {
            return Err(Failure::new(
                400,
                "hawkbit.server.error.action.notcancelable",
                format!("action {id} is already canceling"),
            ));
        }
        if let Some(a) = self.actions.get_mut(&id) {
            a.status = Status::Canceling;
        }
        self.push_status(
            id,
            Status::Canceling,
            vec![format!("{SERVER}manual cancelation requested")],
            None,
            now,
            now,
        );
        Ok(())
    }

    fn close_canceled(&mut self, id: u64, msg: String, now: i64) {
        let Some(a) = self.actions.get_mut(&id) else {
            return;
        };
        a.active = false;
        a.status = Status::Canceled;
        let target = a.target.clone();
        self.push_status(id, Status::Canceled, vec![msg], None, now, now);
        self.resync_target(&target, now);
    }

    /// After an action closed without installing: assigned := DS of the current active action or installed.
    fn resync_target(&mut self, target: &str, now: i64) {
        let current = self.current_action(target).map(|a| a.ds);
        if let Some(t) = self.targets.get_mut(target) {
            t.assigned_ds = current.or(t.installed_ds);
            t.update_status = if current.is_some() {
                "pending"
            } else if t.installed_ds.is_some() {
                "in_sync"
            } else {
                "registered"
            };
            t.modified_at = now;
        }
    }

    /// Auto-cancels the current action when its maintenance schedule lapsed.
    pub fn check_lapsed_windows(&mut self, target: &str, now: i64) {
        let lapsed: Vec<u64> = self
            .actions_of(target)
            .filter(|a| a.target == target && a.active && a.status != Status::Canceling)
            .filter(|a| a.window.as_ref().is_some_and(|w| w.lapsed(now)))
            .filter(|a| {
                self.window_override_target
                    .get(&a.target)
                    .copied()
                    .or(self.window_override)
                    .is_none()
            })
            .map(|a| a.id)
            .collect();
        for id in lapsed {
            if let Some(a) = self.actions.get_mut(&id) {
                a.status = Status::Canceling;
            }
            self.push_status(
                id,
                Status::Canceling,
                vec![format!(
                    "{SERVER}maintenance window schedule lapsed, action canceled"
                )],
                None,
                now,
                now,
            );
        }
    }

    /// Looks up an action of a target (404 with empty body otherwise).
    pub fn target_action(&self, target: &str, id: u64) -> Res<&Action> {
        self.actions
            .get(&id)
            .filter(|a| a.target == target)
            .ok_or_else(|| Failure::empty(404))
    }

    /// RETRIEVED entry on first retrieval (not repeated while it is the latest).
    pub fn log_retrieved(&mut self, id: u64, now: i64) {
        let Some(a) = self.actions.get(&id) else {
            return;
        };
        if a.history
            .last()
            .is_some_and(|e| e.status == Status::Retrieved)
            || a.history.len() >= self.limits.max_status_entries
        {
            return;
        }
        let keep = matches!(a.status, Status::Canceling);
        if let Some(a) = self.actions.get_mut(&id)
            && !keep
        {
            a.status = Status::Retrieved;
        }
        let msg = if keep {
            "Target retrieved cancel action and should start now the cancelation."
        } else {
            "Target retrieved update action and should start now the download."
        };
        self.push_status(
            id,
            Status::Retrieved,
            vec![format!("{SERVER}{msg}")],
            None,
            now,
            now,
        );
    }

    /// DOWNLOAD entry for a non-range artifact GET.
    pub fn log_download(&mut self, target: &str, module: u64, what: &str, now: i64) {
        let ids: Vec<u64> = self
            .actions_of(target)
            .filter(|a| a.target == target && a.active)
            .filter(|a| {
                self.sets
                    .get(&a.ds)
                    .is_some_and(|d| d.modules.contains(&module))
            })
            .filter(|a| a.history.len() < self.limits.max_status_entries)
            .map(|a| a.id)
            .collect();
        for id in ids {
            self.push_status(
                id,
                Status::Download,
                vec![format!("{SERVER}Target downloads {what}")],
                None,
                now,
                now,
            );
        }
    }

    /// May the target download this module (module of an active or installed action)?
    pub fn may_download(&self, target: &str, module: u64) -> bool {
        let installed = self.targets.get(target).and_then(|t| t.installed_ds);
        self.actions_of(target)
            .filter(|a| a.target == target && (a.active || Some(a.ds) == installed))
            .any(|a| {
                self.sets
                    .get(&a.ds)
                    .is_some_and(|d| d.modules.contains(&module))
            })
    }

    /// hawkBit's `maxStatusEntriesPerAction`: one more entry must fit (checked for intermediate
    /// statuses only; the closing one is always accepted).
    fn check_status_quota(&self, a: &Action) -> Res<()> {
        if a.history.len() >= self.limits.max_status_entries {
            return Err(Failure::assignment_quota(
                1,
                "ActionStatus",
                "Action",
                &a.id.to_string(),
                self.limits.max_status_entries,
            ));
        }
        Ok(())
    }

    /// The messages of one new status as hawkBit builds them (server notes first here, the
    /// device's details, then `Device reported status code: N`), split into
    /// [`MESSAGE_ENTRY_LENGTH`]-unit entries. With `check`, hawkBit's `maxMessagesPerActionStatus`
    /// applies to the entries, counted before anything is copied.
    fn status_messages(
        &self,
        notes: &[String],
        details: &[String],
        code: Option<i64>,
        check: bool,
    ) -> Res<Vec<String>> {
        let code = code.map(|c| format!("Device reported status code: {c}"));
        let all = || {
            notes
                .iter()
                .chain(details)
                .chain(code.as_ref())
                .map(String::as_str)
        };
        if check {
            let n: usize = all().map(|m| message_entries(m).count()).sum();
            if n > self.limits.max_messages {
                return Err(Failure::assignment_quota(
                    n,
                    "Message",
                    "ActionStatus",
                    "<new>",
                    self.limits.max_messages,
                ));
            }
        }
        Ok(all().flat_map(message_entries).map(String::from).collect())
    }

    /// `POST …/deploymentBase/{id}/feedback`.
    pub fn deployment_feedback(
        &mut self,
        target: &str,
        id: u64,
        fb: &Feedback,
        now: i64,
    ) -> Res<()> {
        let a = self.target_action(target, id)?;
        if a.status == Status::WaitForConfirmation {
            return Err(Failure::empty(404));
        }
        if !a.active {
            return Err(Failure::new(
                410,
                "hawkbit.server.error.action.closed",
                format!("action {id} is not active anymore"),
            ));
        }
        let final_ = fb.execution == Execution::Closed
            || (fb.execution == Execution::Downloaded && a.kind == ActionType::DownloadOnly);
        // hawkBit (JpaActionManagement.handleAddUpdateActionStatus): the entry quota for
        // intermediate statuses, the message quota for every status
        if !final_ {
            self.check_status_quota(a)?;
        }
        let msgs = self.status_messages(&[], &fb.details, fb.code, true)?;
        let (ds, kind) = (a.ds, a.kind);
        let ts = fb.timestamp.unwrap_or(now);
        let status = match (fb.execution, fb.finished) {
            (Execution::Closed, Finished::Failure) => Status::Error,
            (Execution::Closed, _) => Status::Finished,
            (Execution::Downloaded, _) => Status::Downloaded,
            (Execution::Download, _) => Status::Download,
            (Execution::Rejected, _) => Status::Warning,
            (Execution::Canceled, _) => Status::Canceled,
            _ => Status::Running,
        };
        self.push_status(id, status, msgs, fb.code, ts, now);
        let Some(a) = self.actions.get_mut(&id) else {
            return Ok(());
        };
        if fb.code.is_some() {
            a.last_status_code = fb.code;
        }
        if status != Status::Canceled {
            a.status = status;
        }
        match status {
            Status::Finished => {
                a.active = false;
                let t = self
                    .targets
                    .get_mut(target)
                    .ok_or_else(|| Failure::empty(404))?;
                if t.installation_date.is_none_or(|d| ts > d) {
                    t.installed_ds = Some(ds);
                    t.installation_date = Some(ts);
                    t.installed_action = Some(id);
                }
                t.request_attributes = true;
                // the assignment stays; IN_SYNC only if assigned == installed (an old timestamp keeps it pending)
                t.update_status = if t.assigned_ds == t.installed_ds {
                    "in_sync"
                } else {
                    "pending"
                };
                t.modified_at = now;
            }
            Status::Error => {
                a.active = false;
                // the assigned DS is cleared (not reset to the installed one), unless another action is active
                let current = self.current_action(target).map(|a| a.ds);
                if let Some(t) = self.targets.get_mut(target) {
                    t.assigned_ds = current;
                    t.update_status = "error";
                    t.modified_at = now;
                }
            }
            Status::Downloaded if kind == ActionType::DownloadOnly => {
                a.active = false;
                // nothing was installed: installedBase keeps pointing at the last FINISHED action
                if let Some(t) = self.targets.get_mut(target) {
                    t.request_attributes = true;
                }
                self.resync_target(target, now);
                if let Some(t) = self.targets.get_mut(target) {
                    t.update_status = "in_sync";
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `POST …/cancelAction/{id}/feedback`.
    pub fn cancel_feedback(&mut self, target: &str, id: u64, fb: &Feedback, now: i64) -> Res<()> {
        let a = self.target_action(target, id)?;
        // an already canceled (closed) action is "not in canceling state" too: 405 (ddi-api.md §1.5)
        if a.status != Status::Canceling {
            return Err(Failure::new(
                405,
                "hawkbit.server.error.action.notcanceling",
                format!("action {id} is not in canceling state"),
            ));
        }
        // hawkBit (JpaControllerManagement.addCancelActionStatus) checks both quotas only for
        // informational entries: not for the accepted, failed or rejected cancel
        let final_ = matches!(fb.execution, Execution::Closed | Execution::Rejected);
        if !final_ {
            self.check_status_quota(a)?;
        }
        let notes = if fb.execution == Execution::Canceled {
            vec![format!(
                "{SERVER}'canceled' is not supported as cancel feedback; send 'closed' to accept the cancel"
            )]
        } else {
            Vec::new()
        };
        let msgs = self.status_messages(&notes, &fb.details, fb.code, !final_)?;
        let ts = fb.timestamp.unwrap_or(now);
        match (fb.execution, fb.finished) {
            (Execution::Closed, Finished::Failure) | (Execution::Rejected, _) => {
                let st = if fb.execution == Execution::Rejected {
                    Status::CancelRejected
                } else {
                    Status::Running
                };
                self.push_status(id, st, msgs, fb.code, ts, now);
                if let Some(a) = self.actions.get_mut(&id) {
                    a.status = Status::Running;
                }
                self.resync_target(target, now);
            }
            (Execution::Closed, _) => {
                self.push_status(id, Status::Canceled, msgs, fb.code, ts, now);
                if let Some(a) = self.actions.get_mut(&id) {
                    a.active = false;
                    a.status = Status::Canceled;
                }
                self.resync_target(target, now);
            }
            (Execution::Canceled, _) => {
                self.push_status(id, Status::Warning, msgs, fb.code, ts, now);
            }
            _ => self.push_status(id, Status::Running, msgs, fb.code, ts, now),
        }
        if let (Some(c), Some(a)) = (fb.code, self.actions.get_mut(&id)) {
            a.last_status_code = Some(c);
        }
        Ok(())
    }

    /// `POST …/confirmationBase/{id}/feedback`.
    pub fn confirmation_feedback(
        &mut self,
        target: &str,
        id: u64,
        confirmed: bool,
        code: Option<i64>,
        details: Vec<String>,
        now: i64,
    ) -> Res<()> {
        let a = self.target_action(target, id)?;
        if !a.active {
            return Err(Failure::new(
                410,
                "hawkbit.server.error.action.closed",
                format!("action {id} is not active anymore"),
            ));
        }
        if a.status != Status::WaitForConfirmation {
            return Err(Failure::empty(404));
        }
        // hawkBit (JpaConfirmationManagement confirmAction/denyAction → addActionStatus): both
        // quotas, the server's note and the code message counted as messages
        self.check_status_quota(a)?;
        let note = if confirmed {
            "Target confirmed action"
        } else {
            "Target rejected action"
        };
        let msgs = self.status_messages(&[format!("{SERVER}{note}")], &details, code, true)?;
        if confirmed {
            self.push_status(id, Status::Running, msgs, code, now, now);
            if let Some(a) = self.actions.get_mut(&id) {
                a.status = Status::Running;
            }
        } else {
            self.push_status(id, Status::WaitForConfirmation, msgs, code, now, now);
        }
        Ok(())
    }

    /// Activates auto-confirm (409 if active) and confirms waiting actions.
    pub fn activate_auto_confirm(
        &mut self,
        target: &str,
        initiator: Option<String>,
        remark: Option<String>,
        now: i64,
    ) -> Res<()> {
        let t = self
            .targets
            .get_mut(target)
            .ok_or_else(|| Failure::empty(404))?;
        if t.auto_confirm.is_some() {
            return Err(Failure::new(
                409,
                "hawkbit.server.error.autoConfirm.alreadyActive",
                format!("auto-confirmation is already active for '{target}'"),
            ));
        }
        t.auto_confirm = Some(AutoConfirm {
            initiator: initiator.clone(),
            remark: remark.clone(),
            activated_at: now,
        });
        let waiting: Vec<u64> = self
            .actions_of(target)
            .filter(|a| a.target == target && a.active && a.status == Status::WaitForConfirmation)
            .map(|a| a.id)
            .collect();
        for id in waiting {
            if let Some(a) = self.actions.get_mut(&id) {
                a.status = Status::Running;
            }
            self.push_status(
                id,
                Status::Running,
                vec![format!(
                    "{SERVER}Assignment automatically confirmed by initiator '{}'. Remark: {}",
                    initiator.clone().unwrap_or_default(),
                    remark.clone().unwrap_or_default()
                )],
                None,
                now,
                now,
            );
        }
        Ok(())
    }

    /// `PUT …/configData`.
    pub fn config_data(
        &mut self,
        target: &str,
        data: &serde_json::Map<String, Value>,
        mode: &str,
    ) -> Res<()> {
        if data.is_empty() {
            return Err(Failure::bad("configData 'data' must not be empty"));
        }
        let mut kv = Vec::new();
        for (k, v) in data {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => {
                    return Err(Failure::bad(format!(
                        "configData value of '{}' must be a string, got {}",
                        clip(k),
                        clip(&other.to_string())
                    )));
                }
            };
            check_attr(k, "key")?;
            check_attr(&v, "value")?;
            kv.push((k.clone(), v));
        }
        let t = self
            .targets
            .get_mut(target)
            .ok_or_else(|| Failure::empty(404))?;
        let mut attrs = t.attributes.clone();
        match mode {
            "merge" => attrs.extend(kv),
            "replace" => attrs = kv.into_iter().collect(),
            "remove" => {
                for (k, _) in kv {
                    attrs.remove(&k);
                }
            }
            other => {
                return Err(Failure::bad(format!(
                    "configData mode '{}' is not one of merge, replace, remove",
                    clip(other)
                )));
            }
        }
        if attrs.len() > self.limits.max_attributes {
            return Err(Failure::quota(format!(
                "{} attributes, maximum is {} (maxAttributeEntriesPerTarget)",
                attrs.len(),
                self.limits.max_attributes
            )));
        }
        t.attributes = attrs;
        t.request_attributes = false;
        Ok(())
    }

    /// `PUT …/installedBase` (DDI, experimental): returns true if a new offline assignment was created.
    pub fn installed_base_put(
        &mut self,
        target: &str,
        name: &str,
        version: &str,
        now: i64,
    ) -> Res<bool> {
        let ds = self
            .sets
            .values()
            .find(|d| d.name == name && d.version == version)
            .map(|d| d.id)
            .ok_or_else(|| {
                Failure::not_found(format!("distribution set '{name}:{version}' not found"))
            })?;
        Ok(matches!(
            self.assign_offline(target, ds, now)?,
            Assigned::New(_)
        ))
    }

    // ------------------------------------------------------------------ rollouts

    /// Creates a rollout in `creating`.
    #[allow(clippy::too_many_arguments)]
    pub fn create_rollout(
        &mut self,
        name: &str,
        description: &str,
        ds: u64,
        filter: &str,
        kind: ActionType,
        forcetime: i64,
        start_at: Option<i64>,
        weight: Option<i64>,
        confirmation_required: Option<bool>,
        groups: Vec<GroupSpec>,
        now: i64,
    ) -> Res<u64> {
        self.check_ds_assignable(ds)?;
        Expr::parse(filter).map_err(Failure::bad)?;
        if self.rollouts.values().any(|r| r.name == name) {
            return Err(Failure::new(
                409,
                "hawkbit.server.error.repo.entitiyAlreadyExists",
                format!("a rollout named '{name}' already exists"),
            ));
        }
        let id = self.id();
        let seq = self.seq();
        self.lock_ds(ds);
        let confirmation_required = confirmation_required.unwrap_or(self.config.confirmation_flow);
        let mut gids = Vec::new();
        for (gname, gdesc, gfilter, pct, cond, gconf) in groups {
            if let Some(f) = &gfilter {
                Expr::parse(f).map_err(Failure::bad)?;
            }
            let gid = self.id();
            self.groups.insert(
                gid,
                Group {
                    id: gid,
                    rollout: id,
                    name: gname,
                    description: gdesc,
                    status: "creating",
                    cond,
                    filter: gfilter,
                    percentage: pct,
                    targets: Vec::new(),
                    success_fired: false,
                    confirmation_required: gconf.unwrap_or(confirmation_required),
                },
            );
            gids.push(gid);
        }
        self.rollouts.insert(
            id,
            Rollout {
                id,
                name: name.into(),
                description: description.into(),
                ds,
                filter: filter.into(),
                status: "creating",
                kind,
                forcetime,
                start_at,
                weight,
                groups: gids,
                seq,
                created_at: now,
                modified_at: now,
                confirmation_required,
            },
        );
        Ok(id)
    }

    /// Splits targets into groups (creating → ready).
    fn finish_creating(&mut self, id: u64, now: i64) {
        let Some(r) = self.rollouts.get(&id) else {
            return;
        };
        let (filter, seq, gids) = (r.filter.clone(), r.seq, r.groups.clone());
        let Ok(rexpr) = Expr::parse(&filter) else {
            return;
        };
        let mut taken: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut used_pct = 0.0f64;
        let n = gids.len();
        for (i, gid) in gids.iter().enumerate() {
            let Some(g) = self.groups.get(gid) else {
                continue;
            };
            let gexpr = g.filter.as_deref().and_then(|f| Expr::parse(f).ok());
            let pct = g.percentage;
            let candidates: Vec<String> = self
                .query_targets(Some(&rexpr))
                .into_iter()
                .filter(|t| t.seq < seq && !taken.contains(&t.controller_id))
                .filter(|t| {
                    gexpr
                        .as_ref()
                        .is_none_or(|e| e.matches(&|f| self.target_field(t, f)))
                })
                .map(|t| t.controller_id.clone())
                .collect();
            // Unfiltered groups: percent of all matching targets, computed as percent of the rest
            // (group i takes round(pct_of_rest × remaining / 100); the last one takes the remainder).
            // Groups with their own filter: percent of the targets matching that filter and not taken.
            let rest = 100.0 - used_pct;
            let count = if g.filter.is_some() {
                ((pct * candidates.len() as f64 / 100.0) + 0.5).floor() as usize
            } else if i + 1 == n && (used_pct + pct - 100.0).abs() < 1e-6 {
                candidates.len()
            } else if rest <= 0.0 {
                0
            } else {
                let pct_of_rest = (pct / rest * 100.0).min(100.0);
                ((pct_of_rest * candidates.len() as f64 / 100.0) + 0.5).floor() as usize
            };
            if g.filter.is_none() {
                used_pct += pct;
            }
            let members: Vec<String> = candidates.into_iter().take(count).collect();
            taken.extend(members.iter().cloned());
            if let Some(g) = self.groups.get_mut(gid) {
                g.targets = members;
                g.status = "ready";
            }
        }
        if let Some(r) = self.rollouts.get_mut(&id) {
            r.status = "ready";
            r.modified_at = now;
        }
    }

    /// `POST /rollouts/{id}/start`.
    pub fn start_rollout(&mut self, id: u64, now: i64) -> Res<()> {
        let r = self
            .rollouts
            .get(&id)
            .ok_or_else(|| Failure::not_found(format!("rollout {id} not found")))?;
        if r.status != "ready" {
            return Err(illegal_state(r.status, "start", "ready"));
        }
        let (ds, kind, forcetime, weight, gids) =
            (r.ds, r.kind, r.forcetime, r.weight, r.groups.clone());
        for gid in &gids {
            let Some(g) = self.groups.get(gid) else {
                continue;
            };
            let (members, conf) = (g.targets.clone(), g.confirmation_required);
            for t in members {
                let opts = AssignOptions {
                    kind,
                    forcetime,
                    weight,
                    window: None,
                    confirmation_required: Some(conf),
                };
                let aid = self.new_action(&t, ds, &opts, Some(id), Some(*gid), now);
                self.push_status(
                    aid,
                    Status::Scheduled,
                    vec![format!("{SERVER}Scheduled by rollout {id}")],
                    None,
                    now,
                    now,
                );
            }
            if let Some(g) = self.groups.get_mut(gid) {
                g.status = "scheduled";
            }
        }
        if let Some(r) = self.rollouts.get_mut(&id) {
            r.status = "running";
            r.modified_at = now;
        }
        if let Some(first) = gids.first() {
            self.start_group(*first, now);
        }
        Ok(())
    }

    fn start_group(&mut self, gid: u64, now: i64) {
        let ids: Vec<u64> = self
            .actions
            .values()
            .filter(|a| a.group == Some(gid) && a.status == Status::Scheduled && !a.active)
            .map(|a| a.id)
            .collect();
        for id in ids {
            self.activate(id, now);
        }
        if let Some(g) = self.groups.get_mut(&gid) {
            g.status = "running";
        }
    }

    /// `pause` (RUNNING only).
    pub fn pause_rollout(&mut self, id: u64, now: i64) -> Res<()> {
        let r = self
            .rollouts
            .get_mut(&id)
            .ok_or_else(|| Failure::not_found(format!("rollout {id} not found")))?;
        if r.status != "running" {
            return Err(illegal_state(r.status, "pause", "running"));
        }
        r.status = "paused";
        r.modified_at = now;
        Ok(())
    }

    /// `resume` (PAUSED only): running again, and the group after the last started one starts.
    pub fn resume_rollout(&mut self, id: u64, now: i64) -> Res<()> {
        let r = self
            .rollouts
            .get_mut(&id)
            .ok_or_else(|| Failure::not_found(format!("rollout {id} not found")))?;
        if r.status != "paused" {
            return Err(illegal_state(r.status, "resume", "paused"));
        }
        r.status = "running";
        r.modified_at = now;
        let next = self.next_scheduled_group(id);
        let any_running = self
            .rollout_groups(id)
            .iter()
            .any(|g| g.status == "running");
        if let Some(g) = next
            && (!any_running || self.last_started_fired(id))
        {
            self.start_group(g, now);
        }
        Ok(())
    }

    fn last_started_fired(&self, id: u64) -> bool {
        self.rollout_groups(id)
            .iter()
            .rev()
            .find(|g| matches!(g.status, "running" | "finished" | "error"))
            .is_some_and(|g| g.success_fired || g.status == "error")
    }

    /// `triggerNextGroup` (RUNNING only).
    pub fn trigger_next_group(&mut self, id: u64, now: i64) -> Res<()> {
        let r = self
            .rollouts
            .get(&id)
            .ok_or_else(|| Failure::not_found(format!("rollout {id} not found")))?;
        if r.status != "running" {
            return Err(illegal_state(r.status, "triggerNextGroup", "running"));
        }
        let g = self.next_scheduled_group(id).ok_or_else(|| {
            Failure::new(
                400,
                "hawkbit.server.error.rollout.illegalstate",
                "rollout has no scheduled group left to trigger",
            )
        })?;
        self.start_group(g, now);
        Ok(())
    }

    fn next_scheduled_group(&self, id: u64) -> Option<u64> {
        self.rollout_groups(id)
            .iter()
            .find(|g| g.status == "scheduled")
            .map(|g| g.id)
    }

    /// Groups of a rollout in order.
    pub fn rollout_groups(&self, id: u64) -> Vec<&Group> {
        self.rollouts
            .get(&id)
            .map(|r| r.groups.iter().filter_map(|g| self.groups.get(g)).collect())
            .unwrap_or_default()
    }

    /// `totalTargetsPerStatus` for a set of targets of a rollout.
    pub fn per_status(&self, rollout: u64, group: Option<u64>) -> Value {
        let (mut running, mut notstarted, mut scheduled, mut cancelled, mut finished, mut error) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let download_only = self
            .rollouts
            .get(&rollout)
            .is_some_and(|r| r.kind == ActionType::DownloadOnly);
        let groups: Vec<&Group> = match group {
            Some(g) => self.groups.get(&g).into_iter().collect(),
            None => self.rollout_groups(rollout),
        };
        for g in groups {
            let mut seen = 0u64;
            for a in self.actions.values().filter(|a| a.group == Some(g.id)) {
                seen += 1;
                match a.status {
                    Status::Scheduled => scheduled += 1,
                    Status::Finished => finished += 1,
                    Status::Downloaded if download_only => finished += 1,
                    Status::Error => error += 1,
                    Status::Canceled => cancelled += 1,
                    _ => running += 1,
                }
            }
            notstarted += (g.targets.len() as u64).saturating_sub(seen);
        }
        json!({"running": running, "notstarted": notstarted, "scheduled": scheduled,
               "cancelled": cancelled, "finished": finished, "error": error})
    }

    /// One scheduler pass: creating → ready, startAt, group evaluation, finishing.
    pub fn rollout_tick(&mut self, now: i64) {
        let ids: Vec<u64> = self.rollouts.keys().copied().collect();
        for id in ids {
            let Some(r) = self.rollouts.get(&id) else {
                continue;
            };
            match r.status {
                "creating" => self.finish_creating(id, now),
                "ready" if r.start_at.is_some_and(|s| s <= now) => {
                    let _ = self.start_rollout(id, now);
                }
                "running" => self.evaluate_rollout(id, now),
                _ => {}
            }
        }
    }

    fn evaluate_rollout(&mut self, id: u64, now: i64) {
        let download_only = self
            .rollouts
            .get(&id)
            .is_some_and(|r| r.kind == ActionType::DownloadOnly);
        let gids: Vec<u64> = self
            .rollout_groups(id)
            .iter()
            .filter(|g| g.status == "running")
            .map(|g| g.id)
            .collect();
        for gid in gids {
            if self.rollouts.get(&id).is_none_or(|r| r.status != "running") {
                break;
            }
            let Some(g) = self.groups.get(&gid) else {
                continue;
            };
            let total = g.targets.len();
            let cond = g.cond;
            let (mut errors, mut done, mut complete) = (0usize, 0usize, 0usize);
            for a in self.actions.values().filter(|a| a.group == Some(gid)) {
                match a.status {
                    Status::Error => {
                        errors += 1;
                        complete += 1;
                    }
                    Status::Finished => {
                        done += 1;
                        complete += 1;
                    }
                    Status::Downloaded if download_only => {
                        done += 1;
                        complete += 1;
                    }
                    Status::Canceled => complete += 1,
                    _ => {}
                }
            }
            // an empty group (more groups than targets) is complete and error-free
            let pct = |n: usize| {
                if total == 0 {
                    0.0
                } else {
                    n as f64 * 100.0 / total as f64
                }
            };
            if total > 0 && pct(errors) > cond.error_pct {
                if let Some(g) = self.groups.get_mut(&gid) {
                    g.status = "error";
                }
                if let Some(r) = self.rollouts.get_mut(&id) {
                    r.status = "paused";
                    r.modified_at = now;
                }
                continue;
            }
            let is_complete = complete >= total;
            if (is_complete || pct(done) >= cond.success_pct) && !g.success_fired {
                if let Some(g) = self.groups.get_mut(&gid) {
                    g.success_fired = true;
                }
                let next = self.next_scheduled_group(id);
                if cond.success_next_group {
                    if let Some(n) = next {
                        self.start_group(n, now);
                    }
                } else if next.is_some()
                    && let Some(r) = self.rollouts.get_mut(&id)
                {
                    r.status = "paused";
                    r.modified_at = now;
                }
            }
            if is_complete && let Some(g) = self.groups.get_mut(&gid) {
                g.status = "finished";
            }
        }
        let left = self
            .rollout_groups(id)
            .iter()
            .any(|g| matches!(g.status, "running" | "scheduled"));
        if !left
            && let Some(r) = self.rollouts.get_mut(&id)
            && r.status == "running"
        {
            r.status = "finished";
            r.modified_at = now;
        }
    }
}

fn illegal_state(status: &str, op: &str, needed: &str) -> Failure {
    Failure::new(
        400,
        "hawkbit.server.error.rollout.illegalstate",
        format!("rollout is in state '{status}'; {op} is only allowed in state '{needed}'"),
    )
}

/// hawkBit controllerId rule: 1..256 chars, no whitespace, no `/`.
pub fn validate_controller_id(id: &str) -> Res<()> {
    if id.is_empty()
        || id.len() > 256
        || id
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c.is_control())
    {
        return Err(Failure::bad(format!(
            "controllerId '{}' must be 1..256 characters without whitespace or '/'",
            clip(id)
        )));
    }
    Ok(())
}

/// configData key/value rule.
fn check_attr(s: &str, what: &str) -> Res<()> {
    const EXTRA: &str = " _-!@#$%^&*()+=[]{}|;:'\",.<>/\\?";
    if s.chars().count() > 128 {
        return Err(Failure::bad(format!(
            "configData {what} '{}' is longer than 128 characters",
            clip(s)
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || EXTRA.contains(*c)))
    {
        return Err(Failure::bad(format!(
            "configData {what} '{}' contains '{c}'; allowed are ASCII letters, digits, space and {EXTRA}",
            clip(s)
        )));
    }
    Ok(())
}

/// Parses `pollingTime` (`HH:MM:SS` with optional `~N%` jitter) into (seconds, jitter percent).
pub fn parse_polling(s: &str) -> Option<(u64, u64)> {
    let (base, jitter) = match s.split_once('~') {
        Some((b, j)) => (b, j.trim().strip_suffix('%')?.trim().parse().ok()?),
        None => (s, 0),
    };
    Some((parse_hms(base.trim())?, jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn state() -> State {
        let config = TenantConfig {
            polling_time: "00:05:00".into(),
            polling_overdue_time: "00:05:00".into(),
            target_token_enabled: true,
            gateway_token_enabled: false,
            gateway_token_key: String::new(),
            confirmation_flow: false,
            autoclose: false,
        };
        State::new("DEFAULT", config, Limits::default(), 1)
    }

    fn status(r: Res<impl std::fmt::Debug>) -> u16 {
        r.expect_err("must fail").status
    }

    #[test]
    fn software_modules_need_a_known_type_and_a_new_name_version() {
        let mut st = state();
        assert_eq!(
            status(st.create_module("fw", "1", "nope", "", "", false, T0)),
            404
        );
        let id = st
            .create_module("fw", "1", "os", "d", "v", false, T0)
            .unwrap();
        assert_eq!(st.module(id).unwrap().created_at, T0);
        assert_eq!(
            status(st.create_module("fw", "1", "os", "", "", false, T0)),
            409
        );
        // same name and version with another type is another module
        st.create_module("fw", "1", "application", "", "", false, T0)
            .unwrap();
        assert_eq!(status(st.module(9_999)), 404);
    }

    #[test]
    fn a_module_in_use_cannot_be_deleted() {
        let mut st = state();
        let sm = st
            .create_module("fw", "1", "os", "", "", false, T0)
            .unwrap();
        st.modules.get_mut(&sm).unwrap().artifacts.push(Artifact {
            id: 99,
            filename: "a.bin".into(),
            size: 1,
            sha1: String::new(),
            md5: String::new(),
            sha256: String::new(),
            path: "/nonexistent/a.bin".into(),
            created_at: T0,
        });
        let ds = st.create_ds("fw", "1", "os", "", &[sm], false, T0).unwrap();
        let e = st.delete_module(sm).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (409, "hawkbit.server.error.entityinuse")
        );
        st.sets.remove(&ds);
        let files = st.delete_module(sm).unwrap();
        assert_eq!(files, vec![std::path::PathBuf::from("/nonexistent/a.bin")]);
        assert_eq!(status(st.delete_module(sm)), 404);
    }

    #[test]
    fn metadata_keys_are_unique_per_module() {
        let mut st = state();
        let sm = st
            .create_module("fw", "1", "os", "", "", false, T0)
            .unwrap();
        let md = |k: &str| Metadata {
            key: k.into(),
            value: "v".into(),
            target_visible: true,
        };
        st.add_module_metadata(sm, vec![md("a")]).unwrap();
        // entries before the duplicate stay added (one by one, as before)
        assert_eq!(
            status(st.add_module_metadata(sm, vec![md("b"), md("a")])),
            409
        );
        let keys: Vec<&str> = st.modules[&sm]
            .metadata
            .iter()
            .map(|m| m.key.as_str())
            .collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(status(st.add_module_metadata(77, vec![md("c")])), 404);
    }

    #[test]
    fn module_and_set_types() {
        let mut st = state();
        assert_eq!(
            status(st.add_sm_type("os", "Other", "", 1, T0)),
            409,
            "used key"
        );
        assert_eq!(
            status(st.add_sm_type("cfg", "OS", "", 1, T0)),
            409,
            "used name"
        );
        assert_eq!(status(st.add_sm_type("cfg", "Config", "", 0, T0)), 400);
        assert_eq!(status(st.add_sm_type("", "Config", "", 1, T0)), 400);
        let id = st.add_sm_type("cfg", "Config", "", 2, T0).unwrap();
        assert_eq!(st.sm_type_key(id).unwrap(), "cfg");
        assert_eq!(status(st.sm_type_key(4242)), 404);
        assert_eq!(
            status(st.add_ds_type("x", "X", "", &["os"], &["nope"], T0)),
            404
        );
        assert_eq!(status(st.add_ds_type("os", "X", "", &["os"], &[], T0)), 409);
        st.add_ds_type("os_cfg", "OS+cfg", "", &["os"], &["cfg"], T0)
            .unwrap();
        // a set takes only its type's module types, each at most maxAssignments times
        let os = st
            .create_module("os", "1", "os", "", "", false, T0)
            .unwrap();
        let os2 = st
            .create_module("os", "2", "os", "", "", false, T0)
            .unwrap();
        let app = st
            .create_module("app", "1", "application", "", "", false, T0)
            .unwrap();
        let c: Vec<u64> = (0..3)
            .map(|i| {
                st.create_module("c", &i.to_string(), "cfg", "", "", false, T0)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            status(st.create_ds("s", "1", "nope", "", &[os], false, T0)),
            404
        );
        assert_eq!(
            status(st.create_ds("s", "1", "os_cfg", "", &[os, app], false, T0)),
            400
        );
        assert_eq!(
            status(st.create_ds("s", "1", "os_cfg", "", &[os, os2], false, T0)),
            400
        );
        assert_eq!(
            status(st.create_ds("s", "1", "os_cfg", "", &[os, c[0], c[1], c[2]], false, T0)),
            400
        );
        assert_eq!(
            status(st.create_ds("s", "1", "os_cfg", "", &[os, 12_345], false, T0)),
            404
        );
        let ds = st
            .create_ds("s", "1", "os_cfg", "", &[os, c[0], c[1]], false, T0)
            .unwrap();
        assert!(st.ds_complete(&st.sets[&ds]));
        let only_cfg = st
            .create_ds("s", "2", "os_cfg", "", &[c[2]], false, T0)
            .unwrap();
        assert!(!st.ds_complete(&st.sets[&only_cfg]), "os is mandatory");
        assert_eq!(
            status(st.create_ds("s", "1", "os", "", &[os2], false, T0)),
            409
        );
    }

    #[test]
    fn an_assigned_module_is_locked_for_uploads() {
        let mut st = state();
        st.create_target("d", None, "", Some("tok"), None, T0)
            .unwrap();
        let sm = st
            .create_module("fw", "1", "os", "", "", false, T0)
            .unwrap();
        let ds = st.create_ds("fw", "1", "os", "", &[sm], false, T0).unwrap();
        st.check_upload_allowed(sm).unwrap();
        st.assign("d", ds, &AssignOptions::default(), T0 + 1)
            .unwrap();
        let e = st.check_upload_allowed(sm).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (423, "hawkbit.server.error.entity.locked")
        );
    }

    #[test]
    fn polling_configuration_is_bounded_by_min_and_max() {
        let mut st = state();
        let set = |st: &mut State, k: &str, v: Value| st.set_config(k, &v);
        assert_eq!(status(set(&mut st, "pollingTime", json!("00:00:29"))), 400);
        assert_eq!(status(set(&mut st, "pollingTime", json!("24:00:00"))), 400);
        assert_eq!(status(set(&mut st, "pollingTime", json!("5 minutes"))), 400);
        assert_eq!(status(set(&mut st, "pollingTime", json!(300))), 400);
        set(&mut st, "pollingTime", json!("00:00:30")).unwrap();
        set(&mut st, "pollingTime", json!("23:59:59~10%")).unwrap();
        assert_eq!(st.config_value("pollingTime"), Some(json!("23:59:59~10%")));
        st.limits.max_polling_secs = 48 * 3600;
        set(&mut st, "pollingTime", json!("30:00:00")).unwrap();
        assert_eq!(
            status(set(&mut st, "pollingOverdueTime", json!("soon"))),
            400
        );
        assert_eq!(
            status(set(&mut st, "user.confirmation.flow.enabled", json!("yes"))),
            400
        );
        set(&mut st, "user.confirmation.flow.enabled", json!(true)).unwrap();
        assert_eq!(status(set(&mut st, "no.such.key", json!(1))), 404);
        assert_eq!(st.config_value("no.such.key"), None);
        st.reset_config("pollingTime").unwrap();
        st.reset_config("user.confirmation.flow.enabled").unwrap();
        assert_eq!(st.config_value("pollingTime"), Some(json!("00:05:00")));
        assert_eq!(
            st.config_value("user.confirmation.flow.enabled"),
            Some(json!(false))
        );
        assert_eq!(status(st.reset_config("no.such.key")), 404);
        assert!(CONFIG_KEYS.iter().all(|k| st.config_value(k).is_some()));
    }

    #[test]
    fn target_update_checks_the_token_before_the_target() {
        let mut st = state();
        let long = "t".repeat(129);
        let u = |tok: Option<&'static str>| TargetUpdate {
            security_token: tok,
            ..TargetUpdate::default()
        };
        let bad = TargetUpdate {
            security_token: Some(&long),
            ..TargetUpdate::default()
        };
        assert_eq!(status(st.update_target("missing", bad, T0)), 400);
        assert_eq!(status(st.update_target("missing", u(Some("ok")), T0)), 404);
        st.create_target("d", None, "", Some("tok"), None, T0)
            .unwrap();
        assert_eq!(status(st.update_target("d", u(Some("")), T0)), 400);
        let change = TargetUpdate {
            name: Some("n"),
            address: Some("http://10.0.0.1"),
            request_attributes: Some(false),
            ..u(Some("new"))
        };
        st.update_target("d", change, T0 + 5).unwrap();
        let t = &st.targets["d"];
        assert_eq!((t.name.as_str(), t.security_token.as_str()), ("n", "new"));
        assert_eq!(t.address.as_deref(), Some("http://10.0.0.1"));
        assert!(!t.request_attributes);
        assert_eq!((t.created_at, t.modified_at), (T0, T0 + 5));
    }

    #[test]
    fn assignment_options_follow_hawkbit() {
        let timeforced = AssignOptions {
            kind: ActionType::TimeForced,
            ..AssignOptions::default()
        };
        assert_eq!(status(timeforced.check("assignment")), 400);
        AssignOptions {
            forcetime: T0,
            ..timeforced.clone()
        }
        .check("assignment")
        .unwrap();
        let heavy = AssignOptions {
            weight: Some(1001),
            ..AssignOptions::default()
        };
        assert_eq!(status(heavy.check("assignment")), 400);
        AssignOptions {
            weight: Some(1000),
            ..AssignOptions::default()
        }
        .check("assignment")
        .unwrap();
    }

    #[test]
    fn window_overrides_per_target_and_global() {
        let mut st = state();
        st.set_window_override(Some("a"), Some(WindowOverride::Open));
        st.set_window_override(None, Some(WindowOverride::Closed));
        assert_eq!(
            st.window_override_target.get("a"),
            Some(&WindowOverride::Open)
        );
        assert_eq!(st.window_override, Some(WindowOverride::Closed));
        st.set_window_override(Some("a"), None);
        assert!(st.window_override_target.is_empty());
        st.set_window_override(Some("b"), Some(WindowOverride::Open));
        st.set_window_override(None, None);
        assert!(st.window_override_target.is_empty() && st.window_override.is_none());
    }

    #[test]
    fn messages_quote_at_most_64_characters_and_stay_under_1_kib() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100_000);
        assert_eq!(clip(&long), format!("{}… (200000 bytes)", "é".repeat(64)));
        let f = Failure::bad(format!("value {long}"));
        assert!(f.message.len() <= MAX_MESSAGE_LEN, "{}", f.message.len());
        assert!(f.message.ends_with("… (cut)"));
        assert_eq!(Failure::bad("fine").message, "fine");
    }

    #[test]
    fn message_entries_split_at_512_utf16_units() {
        let entries = |s: &str| message_entries(s).map(str::len).collect::<Vec<_>>();
        assert_eq!(entries(""), vec![0], "an empty message is one entry");
        assert_eq!(entries(&"a".repeat(512)), vec![512]);
        assert_eq!(entries(&"a".repeat(1025)), vec![512, 512, 1]);
        // 'é' is one unit in two bytes, '😀' two units in four bytes (never cut in half)
        assert_eq!(entries(&"é".repeat(513)), vec![1024, 2]);
        assert_eq!(
            entries(&format!("a{}", "😀".repeat(256))),
            vec![1 + 255 * 4, 4]
        );
    }
}

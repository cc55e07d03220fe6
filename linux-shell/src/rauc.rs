//! RAUC over D-Bus (`de.pengutronix.rauc.Installer` on the system bus, object `/`).
//!
//! The system bus address comes from `DBUS_SYSTEM_BUS_ADDRESS` when set (tests use a private
//! `dbus-daemon`), else the standard socket. `install` subscribes to `Completed` and to
//! `Progress` changes *before* calling `InstallBundle`, so no event can be missed, and reads
//! `LastError` when the result is not 0 (RAUC sets it before emitting `Completed`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::{OwnedVariant as OwnedValue, Variant as Value};

/// The RAUC installer interface as exposed by RAUC 1.8 (shared/reference/real-peers.md §2.5).
#[zbus::proxy(
    interface = "de.pengutronix.rauc.Installer",
    default_service = "de.pengutronix.rauc",
    default_path = "/"
)]
pub trait Installer {
    /// Starts an install; the outcome arrives through `Completed`.
    fn install_bundle(&self, source: &str, args: HashMap<&str, Value<'_>>) -> zbus::Result<()>;
    /// `(state, slot)` → `(slot name, message)`.
    fn mark(&self, state: &str, slot_identifier: &str) -> zbus::Result<(String, String)>;
    /// Every slot with its status dictionary.
    fn get_slot_status(&self) -> zbus::Result<Vec<(String, HashMap<String, OwnedValue>)>>;
    /// The slot the bootloader will boot next.
    fn get_primary(&self) -> zbus::Result<String>;
    /// `(compatible, version)` of a bundle.
    fn info(&self, bundle: &str) -> zbus::Result<(String, String)>;
    /// `idle` or `installing`.
    #[zbus(property)]
    fn operation(&self) -> zbus::Result<String>;
    /// The error of the last failed install (empty after success).
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;
    /// `(percentage, message, nesting depth)`.
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<(i32, String, i32)>;
    /// Bootname of the booted slot.
    #[zbus(property)]
    fn boot_slot(&self) -> zbus::Result<String>;
    /// The system's compatible string.
    #[zbus(property)]
    fn compatible(&self) -> zbus::Result<String>;
    /// Emitted when an install ends; 0 = success.
    #[zbus(signal)]
    fn completed(&self, result: i32) -> zbus::Result<()>;
}

/// How long one D-Bus call to RAUC may take (not the install itself, which has its own limit).
/// A call that gets no answer fails with [`RaucError::NoAnswer`] instead of hanging eyas.
pub const CALL_LIMIT: Duration = Duration::from_secs(30);

/// How often a running install checks that the RAUC service is still the one it asked.
pub const ALIVE_CHECK: Duration = Duration::from_secs(5);

/// Runs one D-Bus call with [`CALL_LIMIT`].
async fn bounded<T>(
    call: &'static str,
    fut: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, RaucError> {
    match tokio::time::timeout(CALL_LIMIT, fut).await {
        Ok(r) => r.map_err(call_err),
        Err(_) => Err(RaucError::NoAnswer {
            call,
            limit: CALL_LIMIT,
        }),
    }
}

/// A RAUC failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaucError {
    /// The bus or the RAUC service cannot be reached.
    Unavailable(String),
    /// A D-Bus call was refused (e.g. `Unsupported key`, `Already processing a different method`).
    Call(String),
    /// The install ran and failed; the text is RAUC's `LastError`.
    InstallFailed(String),
    /// No `Completed` within the time limit.
    Timeout(Duration),
    /// The RAUC service went away (or was restarted) while it installed: no `Completed` will
    /// come. The text says what was seen.
    Stopped(String),
    /// RAUC did not answer a D-Bus call within `limit`.
    NoAnswer {
        /// The call.
        call: &'static str,
        /// How long eyas waited.
        limit: Duration,
    },
}

impl fmt::Display for RaucError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(e) => write!(
                f,
                "RAUC is not reachable on the system bus ({e}); is rauc.service running and DBUS_SYSTEM_BUS_ADDRESS right?"
            ),
            Self::Call(e) => write!(f, "RAUC refused the call: {e}"),
            Self::InstallFailed(e) => write!(f, "RAUC install failed: {e}"),
            Self::Timeout(d) => write!(
                f,
                "RAUC did not finish the install within {} s",
                d.as_secs()
            ),
            Self::NoAnswer { call, limit } => {
                write!(f, "RAUC did not answer {call} within {} s", limit.as_secs())
            }
            Self::Stopped(e) => write!(
                f,
                "RAUC stopped during the install ({e}); the slot it was writing stays marked non-bootable; see RAUC's log (journalctl -u rauc)"
            ),
        }
    }
}

impl std::error::Error for RaucError {}

fn call_err(e: zbus::Error) -> RaucError {
    match e {
        zbus::Error::MethodError(name, detail, _) => {
            RaucError::Call(format!("{}: {}", name.as_str(), detail.unwrap_or_default()))
        }
        zbus::Error::InputOutput(_) | zbus::Error::Address(_) | zbus::Error::Handshake(_) => {
            RaucError::Unavailable(e.to_string())
        }
        zbus::Error::FDO(fdo) => match *fdo {
            zbus::fdo::Error::ServiceUnknown(m) | zbus::fdo::Error::NameHasNoOwner(m) => {
                RaucError::Unavailable(m)
            }
            other => RaucError::Call(other.to_string()),
        },
        other => RaucError::Call(other.to_string()),
    }
}

/// One `Progress` update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// 0..=100.
    pub percent: i32,
    /// RAUC's message, e.g. `Copying image to rootfs.1`.
    pub message: String,
    /// Nesting depth (1 = top level).
    pub depth: i32,
}

/// `Mark` states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkState {
    /// The slot booted fine.
    Good,
    /// Never boot it again.
    Bad,
    /// Boot it next.
    Active,
}

impl MarkState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Bad => "bad",
            Self::Active => "active",
        }
    }
}

/// A slot from `GetSlotStatus`, values rendered as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStatus {
    /// e.g. `rootfs.1`.
    pub name: String,
    /// Every key RAUC reported (`bootname`, `state`, `boot-status`, `bundle.version`, …).
    pub fields: BTreeMap<String, String>,
}

impl SlotStatus {
    /// A field by key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

fn value_text(v: &OwnedValue) -> String {
    match &**v {
        Value::Str(s) => s.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::U8(n) => n.to_string(),
        Value::U16(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::I16(n) => n.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// A connection to RAUC.
#[derive(Debug, Clone)]
pub struct Rauc {
    proxy: InstallerProxy<'static>,
}

impl Rauc {
    /// Connects to RAUC on the system bus (must run inside a Tokio runtime).
    pub async fn connect() -> Result<Self, RaucError> {
        Self::connect_to(None).await
    }

    /// Connects to RAUC on the bus at `address`, or on the system bus when `None`.
    pub async fn connect_to(address: Option<&str>) -> Result<Self, RaucError> {
        let unavailable = |e: RaucError| match e {
            RaucError::Call(m) => RaucError::Unavailable(m),
            other => other,
        };
        let conn = bounded("the bus connection", async {
            match address {
                Some(a) => zbus::connection::Builder::address(a).build().await,
                None => zbus::Connection::system().await,
            }
        })
        .await
        .map_err(unavailable)?;
        let proxy = bounded("the proxy set-up", InstallerProxy::new(&conn)).await?;
        // Proxies are lazy: probe once so that "bus up, RAUC not on it" is reported here.
        bounded("Operation", proxy.operation())
            .await
            .map_err(unavailable)?;
        Ok(Self { proxy })
    }

    /// Installs `bundle` (a local file); `on_progress` sees every Progress change.
    /// Returns `Err(InstallFailed(LastError))` when RAUC reports failure.
    pub async fn install(
        &self,
        bundle: &Path,
        limit: Duration,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<(), RaucError> {
        let source = bundle.to_str().ok_or_else(|| {
            RaucError::Call(format!("bundle path {} is not UTF-8", bundle.display()))
        })?;
        let mut completed =
            bounded("the Completed subscription", self.proxy.receive_completed()).await?;
        let mut progress = tokio::time::timeout(CALL_LIMIT, self.proxy.receive_progress_changed())
            .await
            .map_err(|_| RaucError::NoAnswer {
                call: "the Progress subscription",
                limit: CALL_LIMIT,
            })?;
        // RAUC that dies or restarts mid-install never sends `Completed` (seen with RAUC 1.8
        // after it lost its casync storepath): its bus name's owner is checked meanwhile.
        let owner = self.owner().await?;
        bounded(
            "InstallBundle",
            self.proxy.install_bundle(source, HashMap::new()),
        )
        .await?;
        let mut alive = tokio::time::interval(ALIVE_CHECK);
        alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let wait = async {
            let mut last: Option<Progress> = None;
            loop {
                tokio::select! {
                    // Progress first: a change that is already queued is reported before the end.
                    biased;
                    Some(change) = progress.next() => {
                        if let Ok((percent, message, depth)) = change.get().await {
                            let p = Progress { percent, message, depth };
                            on_progress(&p);
                            last = Some(p);
                        }
                    }
                    signal = completed.next() => {
                        let Some(signal) = signal else {
                            return Err(RaucError::Unavailable("the D-Bus connection closed during the install".into()));
                        };
                        let result = signal.args().map_err(call_err)?.result;
                        // Property changes may be coalesced: always report the final state.
                        if let Ok(p) = self.progress().await
                            && last.as_ref() != Some(&p)
                        {
                            on_progress(&p);
                        }
                        if result == 0 {
                            return Ok(());
                        }
                        let last_error = self.last_error().await?;
                        return Err(RaucError::InstallFailed(if last_error.is_empty() {
                            format!("result code {result} without LastError")
                        } else {
                            last_error
                        }));
                    }
                    _ = alive.tick() => {
                        let now = self.owner().await?;
                        if now != owner {
                            let seen = match &now {
                                Some(o) => format!("the service's bus name changed owner from {} to {o}", owner.as_deref().unwrap_or("-")),
                                None => "the service's bus name has no owner any more".to_owned(),
                            };
                            return Err(RaucError::Stopped(match last {
                                Some(p) => format!("{seen}; its last progress: {}% {}", p.percent, p.message),
                                None => seen,
                            }));
                        }
                    }
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| RaucError::Timeout(limit))?
    }

    /// `Mark(state, slot)`; `slot` is `booted`, `other` or a slot name. Returns RAUC's message.
    pub async fn mark(&self, state: MarkState, slot: &str) -> Result<(String, String), RaucError> {
        bounded("Mark", self.proxy.mark(state.as_str(), slot)).await
    }

    /// Every slot's status.
    pub async fn slot_status(&self) -> Result<Vec<SlotStatus>, RaucError> {
        let raw = bounded("GetSlotStatus", self.proxy.get_slot_status()).await?;
        Ok(raw
            .into_iter()
            .map(|(name, dict)| SlotStatus {
                name,
                fields: dict
                    .iter()
                    .map(|(k, v)| (k.clone(), value_text(v)))
                    .collect(),
            })
            .collect())
    }

    /// Bootname of the booted slot (`BootSlot`).
    pub async fn boot_slot(&self) -> Result<String, RaucError> {
        bounded("BootSlot", self.proxy.boot_slot()).await
    }

    /// Name of the primary slot (`GetPrimary`).
    pub async fn primary(&self) -> Result<String, RaucError> {
        bounded("GetPrimary", self.proxy.get_primary()).await
    }

    /// The unique name that owns RAUC's bus name now (`None`: nobody, the service is gone).
    async fn owner(&self) -> Result<Option<String>, RaucError> {
        let inner = self.proxy.inner();
        let dbus = bounded(
            "the D-Bus daemon proxy",
            zbus::fdo::DBusProxy::new(inner.connection()),
        )
        .await?;
        let name = inner.destination().to_owned();
        match tokio::time::timeout(CALL_LIMIT, dbus.get_name_owner(name)).await {
            Ok(Ok(unique)) => Ok(Some(unique.to_string())),
            Ok(Err(zbus::fdo::Error::NameHasNoOwner(_))) => Ok(None),
            Ok(Err(e)) => Err(call_err(zbus::Error::from(e))),
            Err(_) => Err(RaucError::NoAnswer {
                call: "GetNameOwner",
                limit: CALL_LIMIT,
            }),
        }
    }

    /// `Operation` property.
    pub async fn operation(&self) -> Result<String, RaucError> {
        bounded("Operation", self.proxy.operation()).await
    }

    /// `Compatible` property (the system's compatible string).
    pub async fn compatible(&self) -> Result<String, RaucError> {
        bounded("Compatible", self.proxy.compatible()).await
    }

    /// `LastError` property, read from RAUC itself rather than the proxy's property cache: GDBus
    /// coalesces `PropertiesChanged` and may send it after `Completed`, so right after a failed
    /// install the cache can still hold the previous (often empty) value.
    pub async fn last_error(&self) -> Result<String, RaucError> {
        let inner = self.proxy.inner();
        let properties = bounded(
            "the Properties proxy",
            zbus::fdo::PropertiesProxy::builder(inner.connection())
                .destination(inner.destination().to_owned())
                .path(inner.path().to_owned())
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build(),
        )
        .await?;
        let value = bounded("Get LastError", async {
            properties
                .get(inner.interface().clone(), "LastError")
                .await
                .map_err(zbus::Error::from)
        })
        .await?;
        String::try_from(value).map_err(|e| RaucError::Call(format!("LastError: {e}")))
    }

    /// `Progress` property.
    pub async fn progress(&self) -> Result<Progress, RaucError> {
        let (percent, message, depth) = bounded("Progress", self.proxy.progress()).await?;
        Ok(Progress {
            percent,
            message,
            depth,
        })
    }

    /// `(compatible, version)` of a bundle, checked by RAUC.
    pub async fn bundle_info(&self, bundle: &Path) -> Result<(String, String), RaucError> {
        bounded("Info", self.proxy.info(&bundle.to_string_lossy())).await
    }
}

//! Configuration: an unchanged `rauc-hawkbit-updater.conf` plus an optional `[eyas]` section.
//!
//! Every `[client]` key of rauc-hawkbit-updater is accepted with its meaning and default
//! (shared/reference/ddi-api.md §3.1); `[device]` holds the attributes sent as configData.
//! Unknown keys produce warnings; invalid values stop with `file:line: key: what is wrong`.
//!
//! Every key is one row of [`KEYS`] (group, key, default, help text): the reader names each key
//! through a compile-time lookup in it and takes absent keys' defaults from it, and the
//! unknown-key warnings and the `eyas --help` listing ([`HELP`]) are generated from it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::keyfile::{self, Group, KeyFile};

/// How the device authenticates at the DDI API.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: TargetToken …`
    TargetToken(String),
    /// `Authorization: GatewayToken …`
    GatewayToken(String),
    /// mTLS only, no header.
    ClientCertOnly,
}

impl fmt::Debug for Auth {
    // Tokens never reach a log line, not even through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TargetToken(_) => f.write_str("TargetToken(<redacted>)"),
            Self::GatewayToken(_) => f.write_str("GatewayToken(<redacted>)"),
            Self::ClientCertOnly => f.write_str("ClientCertOnly"),
        }
    }
}

impl Auth {
    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Option<String> {
        match self {
            Self::TargetToken(t) => Some(format!("TargetToken {t}")),
            Self::GatewayToken(t) => Some(format!("GatewayToken {t}")),
            Self::ClientCertOnly => None,
        }
    }
}

/// rauc-hawkbit-updater's `log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `message` (the default)
    Message,
    /// `critical`
    Critical,
    /// `error`
    Error,
    /// `fatal`
    Fatal,
}

impl LogLevel {
    /// The tracing level this maps to.
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            Self::Debug => tracing::Level::DEBUG,
            Self::Info | Self::Message => tracing::Level::INFO,
            Self::Critical => tracing::Level::WARN,
            Self::Error | Self::Fatal => tracing::Level::ERROR,
        }
    }
}

/// The `[client]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `host[:port]` of the hawkBit server.
    pub hawkbit_server: String,
    /// controllerId.
    pub target_name: String,
    /// Authentication method.
    pub auth: Auth,
    /// Client certificate (PEM) for mTLS.
    pub ssl_cert: Option<PathBuf>,
    /// Client key (PEM) for mTLS.
    pub ssl_key: Option<PathBuf>,
    /// OpenSSL engine name: accepted for compatibility, not supported (eyas uses rustls).
    pub ssl_engine: Option<String>,
    /// Where the bundle is downloaded to.
    pub bundle_download_location: Option<PathBuf>,
    /// Tenant, `DEFAULT` by default.
    pub tenant_id: String,
    /// https (true) or http for API URLs.
    pub ssl: bool,
    /// Verify the server certificate and host name.
    pub ssl_verify: bool,
    /// TCP+TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for API calls.
    pub timeout: Duration,
    /// Wait after a failed poll; also the poll interval when the server gives none.
    pub retry_wait: Duration,
    /// Abort a download that stays below `low_speed_rate` for this long.
    pub low_speed_time: Duration,
    /// Bytes per second.
    pub low_speed_rate: u64,
    /// Bytes per second, 0 = unlimited.
    pub download_speed_limit: u64,
    /// Resume after network errors.
    pub resume_downloads: bool,
    /// Hand the URL to RAUC instead of downloading (not supported by eyas yet: it warns).
    pub stream_bundle: bool,
    /// Reboot right after a successful install.
    pub post_update_reboot: bool,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// Send token / client cert to artifact hosts.
    pub send_download_authentication: bool,
}

/// `[eyas] manifest_signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// Never check.
    Off,
    /// Check when the deployment carries a signature.
    IfPresent,
    /// Refuse unsigned deployments.
    Required,
}

/// `[eyas] confirmation`: answer to hawkBit's confirmation (user consent) flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Confirm every action.
    Auto,
    /// Deny every action.
    Deny,
    /// Run `confirmation_command`; exit 0 confirms, anything else denies.
    Command(String),
}

/// `[eyas] mqtt_*`.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// ThingsBoard device access token (sent as MQTT username).
    pub access_token: String,
    /// Use TLS.
    pub tls: bool,
    /// CA for the broker (system roots if unset).
    pub ca_file: Option<PathBuf>,
    /// Messages kept while the broker is away.
    pub queue_size: usize,
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("access_token", &"<redacted>")
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("queue_size", &self.queue_size)
            .finish()
    }
}

/// A handler for one software-module part (`part.<name>.command`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHandler {
    /// hawkBit chunk `part` name, e.g. `bApp`.
    pub part: String,
    /// Command run with the artifact path as its argument.
    pub command: String,
    /// Kill the command after this long.
    pub timeout: Duration,
}

/// The `[eyas]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EyasConfig {
    /// ThingsBoard telemetry; `None` when `mqtt_host` is unset.
    pub mqtt: Option<MqttConfig>,
    /// Manifest signature policy.
    pub manifest_signature: SignaturePolicy,
    /// Ed25519 public keys (32 bytes each).
    pub manifest_public_keys: Vec<[u8; 32]>,
    /// Run after a reboot into the new slot; exit 0 = healthy.
    pub health_check_command: Option<String>,
    /// Kill the health check after this long.
    pub health_check_timeout: Duration,
    /// On every start without an update to judge: health check, then `Mark good booted` (as
    /// rauc-mark-good.service does), so that the running slot's boot attempts never run out.
    pub mark_good_on_boot: bool,
    /// Confirmation policy.
    pub confirmation: Confirmation,
    /// Never poll more often than this.
    pub poll_min: Option<Duration>,
    /// Never poll less often than this.
    pub poll_max: Option<Duration>,
    /// `http://`, `https://` or `socks5://` proxy for all HTTP traffic.
    pub proxy: Option<String>,
    /// CA bundle (PEM) for the hawkBit server and artifact hosts, instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Per-part handlers.
    pub part_handlers: Vec<PartHandler>,
    /// Command that reboots the device.
    pub reboot_command: String,
    /// Where the persistent record lives.
    pub record_path: PathBuf,
    /// The bootloader-glue configuration file.
    pub bootloader_config: PathBuf,
    /// Name of the distribution set installed at the factory: after a fallback eyas tells
    /// hawkBit (`PUT installedBase`) that this runs again, until a deployment has succeeded on
    /// the device. At most [`INSTALLED_MAX_LEN`] bytes, no control characters.
    pub installed_name: Option<String>,
    /// Version of that distribution set; same limits.
    pub installed_version: Option<String>,
    /// The casync chunk store (`http(s)://…/`) that eyas' chunk relay fetches from, for RAUC
    /// casync bundles whose `[casync] storepath` names the relay; `None` = no relay.
    pub casync_store: Option<String>,
    /// Where the chunk relay listens (loopback only).
    pub casync_relay: std::net::SocketAddr,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[client]`.
    pub client: ClientConfig,
    /// `[device]` attributes in file order.
    pub device: Vec<(String, String)>,
    /// `[eyas]`.
    pub eyas: EyasConfig,
}

/// A fatal configuration problem: `file:line: key: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, 0 when the whole file is concerned.
    pub line: usize,
    /// Key or `[group]` concerned (may be empty).
    pub key: String,
    /// What is wrong and what to do.
    pub what: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.path.display(), self.line)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.what)
    }
}

impl std::error::Error for ConfigError {}

/// A configuration plus the warnings found while reading it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// `file:line: key: …` lines for unknown or ignored keys.
    pub warnings: Vec<String>,
}

/// What a key is when its line is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefault {
    /// The key must be given; the text is the form of its value shown by `--help`.
    Required(&'static str),
    /// Unset (the feature is off, or other keys decide); the text is the form of its value shown
    /// by `--help`.
    Unset(&'static str),
    /// This text, read by the same parser as a value written in the file.
    Value(&'static str),
}

impl KeyDefault {
    /// The default text: `None` unless [`Value`](Self::Value).
    pub const fn value(self) -> Option<&'static str> {
        match self {
            Self::Value(text) => Some(text),
            Self::Required(_) | Self::Unset(_) => None,
        }
    }

    /// What `--help` shows after `key=`.
    pub const fn shown(self) -> &'static str {
        match self {
            Self::Required(form) | Self::Unset(form) | Self::Value(form) => form,
        }
    }
}

/// One row of [`KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The group: `client`, `device` or `eyas`.
    pub group: &'static str,
    /// The key; `<NAME>` stands for any non-empty name (`part.<NAME>.command`, the `[device]`
    /// attributes).
    pub name: &'static str,
    /// Its value when the line is absent.
    pub default: KeyDefault,
    /// What it means, for `--help`.
    pub help: &'static str,
}

impl Key {
    /// Whether `key` (as written in the file) is this row.
    pub fn matches(&self, key: &str) -> bool {
        match self.name.split_once(NAME) {
            None => self.name == key,
            Some((prefix, suffix)) => {
                key.len() > prefix.len() + suffix.len()
                    && key.starts_with(prefix)
                    && key.ends_with(suffix)
            }
        }
    }
}

/// The placeholder for any name in [`Key::name`].
pub const NAME: &str = "<NAME>";

/// The groups in `--help` order, with what they hold; any other group is warned about and ignored.
pub const GROUPS: &[(&str, &str)] = &[
    ("client", "rauc-hawkbit-updater's keys, unchanged"),
    ("device", "attributes sent to hawkBit as configData"),
    ("eyas", "optional; keys rauc-hawkbit-updater does not have"),
];

const fn row(
    group: &'static str,
    name: &'static str,
    default: KeyDefault,
    help: &'static str,
) -> Key {
    Key {
        group,
        name,
        default,
        help,
    }
}

use KeyDefault::{Required, Unset, Value};

/// Every configuration key: its group, name, default and help text. The reader takes each key
/// (and its default) from here, unknown-key warnings and `eyas --help` are generated from it.
#[rustfmt::skip]
pub const KEYS: &[Key] = &[
    row("client", "hawkbit_server", Required("host[:port]"), "the hawkBit server, without a scheme (ssl chooses https or http)"),
    row("client", "target_name", Required("ID"), "the controllerId"),
    row("client", "auth_token", Unset("TOKEN"), "target security token; set exactly one of auth_token, gateway_token or ssl_key+ssl_cert (mTLS)"),
    row("client", "gateway_token", Unset("TOKEN"), "gateway security token, instead of auth_token"),
    row("client", "ssl_key", Unset("PATH"), "client key (PEM) for mTLS; ssl_key and ssl_cert both or neither"),
    row("client", "ssl_cert", Unset("PATH"), "client certificate (PEM) for mTLS"),
    row("client", "ssl_engine", Unset("NAME"), "accepted, ignored with a warning (eyas uses rustls; the key file is read as PEM)"),
    row("client", "bundle_download_location", Required("PATH"), "the OS bundle is stored at exactly this path (size its partition for the bundle); other artifacts of the deployment go beside it in the same directory as PATH.<n>.<artifact name>"),
    row("client", "tenant_id", Value("DEFAULT"), "the hawkBit tenant"),
    row("client", "ssl", Value("true"), "https (true) or http (false)"),
    row("client", "ssl_verify", Value("true"), "verify the server's certificate and host name"),
    row("client", "connect_timeout", Value("20"), "seconds to connect (TCP and TLS)"),
    row("client", "timeout", Value("60"), "seconds for one API request"),
    row("client", "retry_wait", Value("300"), "seconds to wait after a failed poll; the poll interval when the server gives none"),
    row("client", "low_speed_time", Value("60"), "abort a download slower than low_speed_rate for this many seconds (0 = never)"),
    row("client", "low_speed_rate", Value("100"), "bytes per second, see low_speed_time"),
    row("client", "download_speed_limit", Value("0"), "bytes per second, 0 = unlimited"),
    row("client", "resume_downloads", Value("false"), "resume after a cut with Range/If-Range"),
    row("client", "stream_bundle", Value("false"), "not supported: eyas always downloads and verifies first (true warns)"),
    row("client", "post_update_reboot", Value("false"), "reboot right after the install ([eyas] reboot_command)"),
    row("client", "log_level", Value("message"), "debug|info|message|critical|error|fatal"),
    row("client", "send_download_authentication", Value("true"), "send the token / client certificate to artifact hosts other than the hawkBit server too (the server always gets them)"),
    row("device", NAME, Unset("VALUE"), "at least one attribute, e.g. product=…"),
    row("eyas", "mqtt_host", Unset("HOST"), "ThingsBoard MQTT broker; telemetry is off when unset (the other mqtt_* keys are then ignored)"),
    row("eyas", "mqtt_port", Value("1883"), "broker port; 8883 when mqtt_tls=true and mqtt_port is not set"),
    row("eyas", "mqtt_access_token", Unset("TOKEN"), "ThingsBoard device access token; required with mqtt_host"),
    row("eyas", "mqtt_tls", Value("false"), "TLS to the broker"),
    row("eyas", "mqtt_ca_file", Unset("PATH"), "CA (PEM) for the broker instead of the system roots"),
    row("eyas", "mqtt_queue_size", Value("256"), "telemetry messages kept while the broker is away (oldest dropped), 1 to 100000"),
    row("eyas", "manifest_signature", Value("off"), "off|if-present|required"),
    row("eyas", "manifest_public_keys", Unset("HEX;HEX"), "Ed25519 public keys, 64 hex digits each"),
    row("eyas", "health_check_command", Unset("CMD"), "run after booting the new slot; exit 0 = good"),
    row("eyas", "health_check_timeout", Value("60"), "seconds before the health check is killed"),
    row("eyas", "mark_good_on_boot", Value("true"), "on every start, health check then RAUC mark-good of the booted slot (as rauc-mark-good.service); false if something else marks good"),
    row("eyas", "confirmation", Value("auto"), "auto|deny|command (runs confirmation_command; exit 0 confirms)"),
    row("eyas", "confirmation_command", Unset("CMD"), "the command for confirmation=command"),
    row("eyas", "poll_min", Unset("S"), "never poll more often than this (seconds or HH:MM:SS)"),
    row("eyas", "poll_max", Unset("S"), "never poll less often than this (seconds or HH:MM:SS)"),
    row("eyas", "proxy", Unset("URL"), "http://, https:// or socks5:// proxy for all HTTP(S)"),
    row("eyas", "ca_file", Unset("PATH"), "CA bundle (PEM) for hawkBit and artifact hosts instead of the system roots"),
    row("eyas", "part.<NAME>.command", Unset("CMD"), "handler for hawkBit chunk part NAME (artifact path appended)"),
    row("eyas", "part.<NAME>.timeout", Value("300"), "seconds before the handler is killed"),
    row("eyas", "reboot_command", Value("systemctl reboot"), "command that reboots the device"),
    row("eyas", "record_path", Value("/var/lib/eyas/record.bin"), "the persistent record (the update in progress, kept across reboots)"),
    row("eyas", "bootloader_config", Value("/etc/eyas/bootloader.conf"), "eyas bootloader's configuration"),
    row("eyas", "installed_name", Unset("NAME"), "name of the distribution set installed at the factory; after a fallback eyas tells hawkBit (PUT installedBase) that this runs again until a deployment has succeeded on the device (at most 64 bytes)"),
    row("eyas", "installed_version", Unset("VERSION"), "version of that distribution set (at most 64 bytes)"),
    row("eyas", "casync_store", Unset("URL"), "the casync chunk store (http:// or https://) for RAUC casync bundles; eyas relays chunk requests to it through its own HTTP settings (ca_file, proxy, timeouts) and counts the bytes; set RAUC's [casync] storepath to http://<casync_relay>/"),
    row("eyas", "casync_relay", Value("127.0.0.1:7453"), "loopback address:port of that relay"),
];

/// The [`KEYS`] row for `group`/`name`. Only called in a `const` (through `key!`), so reading a
/// key that is not in the table does not compile (and nothing panics at run time).
const fn key(group: &str, name: &str) -> &'static Key {
    let mut i = 0;
    while i < KEYS.len() {
        if str_eq(KEYS[i].group, group) && str_eq(KEYS[i].name, name) {
            return &KEYS[i];
        }
        i += 1;
    }
    panic!("the key is not in config::KEYS");
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The [`KEYS`] row of a key the reader reads, looked up at compile time.
macro_rules! key {
    ($group:literal, $name:expr) => {
        const { key($group, $name) }
    };
}

/// Whether `name` is a key of `[group]` in [`KEYS`].
pub fn is_known(group: &str, name: &str) -> bool {
    KEYS.iter().any(|k| k.group == group && k.matches(name))
}

/// `eyas --help`'s list of every key of [`KEYS`] with its default and meaning (clap's
/// `after_help`; derefs to the text).
#[derive(Debug, Clone, Copy)]
pub struct Help;

/// The `--help` key listing.
pub const HELP: Help = Help;

impl std::ops::Deref for Help {
    type Target = str;

    fn deref(&self) -> &str {
        static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(help_text);
        &TEXT
    }
}

impl fmt::Display for Help {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl From<Help> for clap::builder::StyledStr {
    fn from(help: Help) -> Self {
        help.to_string().into()
    }
}

/// The column where a key's help text starts.
const HELP_COLUMN: usize = 36;
/// Help lines are wrapped before this column.
const HELP_WIDTH: usize = 100;

fn help_text() -> String {
    let mut out = String::from(
        "CONFIGURATION FILE (GLib key file, same as rauc-hawkbit-updater; only lines starting with # are comments)\n",
    );
    for (group, holds) in GROUPS {
        out.push_str(&format!("[{group}]  {holds}\n"));
        for k in KEYS.iter().filter(|k| k.group == *group) {
            let required = if matches!(k.default, Required(_)) {
                "required; "
            } else {
                ""
            };
            push_help_line(
                &mut out,
                &format!("  {}={}", k.name, k.default.shown()),
                &format!("{required}{}", k.help),
            );
        }
    }
    out
}

/// `left`, then `help` from [`HELP_COLUMN`] (on the next line when `left` is too wide), wrapped
/// at spaces before [`HELP_WIDTH`].
fn push_help_line(out: &mut String, left: &str, help: &str) {
    out.push_str(left);
    let mut column = left.chars().count();
    if column + 2 > HELP_COLUMN {
        out.push('\n');
        column = 0;
    }
    out.push_str(&" ".repeat(HELP_COLUMN - column));
    column = HELP_COLUMN;
    let mut first = true;
    for word in help.split(' ') {
        let width = word.chars().count();
        if !first && column + 1 + width > HELP_WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(HELP_COLUMN));
            column = HELP_COLUMN;
            first = true;
        }
        if !first {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += width;
        first = false;
    }
    out.push('\n');
}

/// Longest `installed_name` / `installed_version`, in bytes.
pub const INSTALLED_MAX_LEN: usize = 64;

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_owned(),
        line: 0,
        key: String::new(),
        what: format!("cannot read the configuration file: {e} (give one with -c FILE)"),
    })?;
    parse(path, &text)
}

/// Parses configuration text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let kf = keyfile::parse(text).map_err(|e| ConfigError {
        path: path.to_owned(),
        line: e.line,
        key: String::new(),
        what: e.what,
    })?;
    let mut reader = Reader {
        path,
        kf: &kf,
        warnings: Vec::new(),
    };
    let config = reader.read()?;
    Ok(Loaded {
        config,
        warnings: reader.warnings,
    })
}

struct Reader<'a> {
    path: &'a Path,
    kf: &'a KeyFile,
    warnings: Vec<String>,
}

impl Reader<'_> {
    fn err(&self, line: usize, key: &str, what: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.path.to_owned(),
            line,
            key: key.to_owned(),
            what: what.into(),
        }
    }

    fn warn(&mut self, line: usize, key: &str, what: &str) {
        self.warnings
            .push(format!("{}:{line}: {key}: {what}", self.path.display()));
    }

    fn read(&mut self) -> Result<Config, ConfigError> {
        let kf = self.kf;
        for group in &kf.groups {
            if !GROUPS.iter().any(|(name, _)| *name == group.name) {
                self.warn(
                    group.line,
                    &format!("[{}]", group.name),
                    "unknown group, ignored",
                );
            }
        }
        let Some(client_group) = kf.group("client") else {
            return Err(self.err(
                0,
                "[client]",
                "group missing; it holds hawkbit_server, target_name and the credentials",
            ));
        };
        let Some(device_group) = kf.group("device").filter(|g| !g.entries.is_empty()) else {
            return Err(self.err(
                kf.group("device").map_or(0, |g| g.line),
                "[device]",
                "group missing or empty; give at least one attribute, e.g. product=…",
            ));
        };
        self.warn_unknown(client_group);
        let client = self.client(client_group)?;
        let device = device_group
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        let empty = Group {
            name: "eyas".to_owned(),
            line: 0,
            entries: Vec::new(),
        };
        let eyas_group = kf.group("eyas").unwrap_or(&empty);
        let eyas = self.eyas(eyas_group, &client)?;
        Ok(Config {
            path: self.path.to_owned(),
            client,
            device,
            eyas,
        })
    }

    fn warn_unknown(&mut self, group: &Group) {
        for e in &group.entries {
            if let Some(locale) = &e.locale {
                self.warn(e.line, &e.key, &format!("localized key [{locale}] ignored"));
            } else if !is_known(&group.name, &e.key) {
                self.warn(
                    e.line,
                    &e.key,
                    &format!("unknown key in [{}], ignored", group.name),
                );
            }
        }
    }

    fn client(&mut self, g: &Group) -> Result<ClientConfig, ConfigError> {
        let hawkbit_server = self.required(g, key!("client", "hawkbit_server"))?;
        self.check_server(g, &hawkbit_server)?;
        let target_name_key = key!("client", "target_name");
        let target_name = self.required(g, target_name_key)?;
        if target_name.contains(['/', '?', '#', ' ']) {
            return Err(self.err(
                line_of(g, target_name_key.name),
                target_name_key.name,
                "must not contain '/', '?', '#' or spaces (it becomes part of the URL)",
            ));
        }
        let (auth_token_key, gateway_token_key) = (
            key!("client", "auth_token"),
            key!("client", "gateway_token"),
        );
        let (ssl_key_key, ssl_cert_key) = (key!("client", "ssl_key"), key!("client", "ssl_cert"));
        let auth_token = self.non_empty(g, auth_token_key)?;
        let gateway_token = self.non_empty(g, gateway_token_key)?;
        let ssl_key = self.non_empty(g, ssl_key_key)?.map(PathBuf::from);
        let ssl_cert = self.non_empty(g, ssl_cert_key)?.map(PathBuf::from);
        if ssl_key.is_some() != ssl_cert.is_some() {
            let (present, missing) = if ssl_key.is_some() {
                (ssl_key_key.name, ssl_cert_key.name)
            } else {
                (ssl_cert_key.name, ssl_key_key.name)
            };
            return Err(self.err(
                line_of(g, present),
                present,
                format!("{missing} is missing; mTLS needs both ssl_key and ssl_cert"),
            ));
        }
        let auth = match (auth_token, gateway_token, ssl_key.is_some()) {
            (Some(t), None, false) => Auth::TargetToken(t),
            (None, Some(t), false) => Auth::GatewayToken(t),
            (None, None, true) => Auth::ClientCertOnly,
            (None, None, false) => {
                return Err(self.err(
                    g.line,
                    "[client]",
                    "no credentials: set auth_token, gateway_token or ssl_key+ssl_cert",
                ));
            }
            _ => {
                let line = [gateway_token_key, ssl_key_key, auth_token_key]
                    .iter()
                    .filter_map(|k| g.get(k.name))
                    .map(|e| e.line)
                    .max()
                    .unwrap_or(g.line);
                return Err(self.err(
                    line,
                    auth_token_key.name,
                    "only one of auth_token, gateway_token and ssl_key+ssl_cert may be set",
                ));
            }
        };
        let ssl_engine_key = key!("client", "ssl_engine");
        let ssl_engine = self.non_empty(g, ssl_engine_key)?;
        if let Some(e) = g.get(ssl_engine_key.name) {
            self.warn(
                e.line,
                ssl_engine_key.name,
                "OpenSSL engines are not supported (eyas uses rustls); the key file is read as PEM",
            );
        }
        let stream_bundle_key = key!("client", "stream_bundle");
        let stream_bundle = self.bool(g, stream_bundle_key)?;
        let location_key = key!("client", "bundle_download_location");
        let bundle_download_location = self.non_empty(g, location_key)?.map(PathBuf::from);
        if stream_bundle {
            self.warn(
                line_of(g, stream_bundle_key.name),
                stream_bundle_key.name,
                "not supported: eyas downloads and verifies the bundle before RAUC sees it",
            );
        }
        let Some(location) = bundle_download_location.clone() else {
            return Err(self.err(
                g.line,
                location_key.name,
                "missing; give the file the bundle is downloaded to",
            ));
        };
        if location.file_name().is_none() || location.to_str().is_some_and(|s| s.ends_with('/')) {
            return Err(self.err(
                line_of(g, location_key.name),
                location_key.name,
                "must name a file, not a directory",
            ));
        }
        let log_level_key = key!("client", "log_level");
        let (line, text) = value_of(g, log_level_key, log_level_key.name);
        let log_level = match text {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "message" => LogLevel::Message,
            "critical" => LogLevel::Critical,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            other => {
                return Err(self.err(
                    line,
                    log_level_key.name,
                    format!("{other:?} is not one of debug, info, message, critical, error, fatal"),
                ));
            }
        };
        Ok(ClientConfig {
            hawkbit_server,
            target_name,
            auth,
            ssl_cert,
            ssl_key,
            ssl_engine,
            bundle_download_location,
            tenant_id: self.string(g, key!("client", "tenant_id"))?,
            ssl: self.bool(g, key!("client", "ssl"))?,
            ssl_verify: self.bool(g, key!("client", "ssl_verify"))?,
            connect_timeout: self.seconds(g, key!("client", "connect_timeout"), true)?,
            timeout: self.seconds(g, key!("client", "timeout"), true)?,
            retry_wait: self.seconds(g, key!("client", "retry_wait"), true)?,
            low_speed_time: self.seconds(g, key!("client", "low_speed_time"), false)?,
            low_speed_rate: self.uint(g, key!("client", "low_speed_rate"))?,
            download_speed_limit: self.uint(g, key!("client", "download_speed_limit"))?,
            resume_downloads: self.bool(g, key!("client", "resume_downloads"))?,
            stream_bundle,
            post_update_reboot: self.bool(g, key!("client", "post_update_reboot"))?,
            log_level,
            send_download_authentication: self
                .bool(g, key!("client", "send_download_authentication"))?,
        })
    }

    fn check_server(&self, g: &Group, server: &str) -> Result<(), ConfigError> {
        let name = key!("client", "hawkbit_server").name;
        let line = line_of(g, name);
        if server.contains("://") {
            return Err(self.err(
                line,
                name,
                "give host[:port] without a scheme; use ssl=true|false to choose https or http",
            ));
        }
        if server.contains(['/', ' ', '?', '#', '@']) {
            return Err(self.err(
                line,
                name,
                "must be host[:port] only (no path, spaces or user info)",
            ));
        }
        if let Some((host, port)) = server.rsplit_once(':')
            && !host.ends_with(']')
            && !host.contains(':')
            && (port.parse::<u16>().is_err() || port == "0")
        {
            return Err(self.err(
                line,
                name,
                format!("port {port:?} is not a number from 1 to 65535"),
            ));
        }
        Ok(())
    }

    fn eyas(&mut self, g: &Group, client: &ClientConfig) -> Result<EyasConfig, ConfigError> {
        self.warn_unknown(g);
        let host_key = key!("eyas", "mqtt_host");
        let mqtt = match self.non_empty(g, host_key)? {
            None => {
                for k in [
                    key!("eyas", "mqtt_port"),
                    key!("eyas", "mqtt_access_token"),
                    key!("eyas", "mqtt_tls"),
                    key!("eyas", "mqtt_ca_file"),
                    key!("eyas", "mqtt_queue_size"),
                ] {
                    if let Some(e) = g.get(k.name) {
                        self.warn(e.line, k.name, "ignored because mqtt_host is not set");
                    }
                }
                None
            }
            Some(host) => {
                let tls = self.bool(g, key!("eyas", "mqtt_tls"))?;
                let port_key = key!("eyas", "mqtt_port");
                let port = if tls && g.get(port_key.name).is_none() {
                    8883
                } else {
                    let (line, text) = value_of(g, port_key, port_key.name);
                    match text.parse::<u16>() {
                        Ok(p) if p > 0 => p,
                        _ => {
                            return Err(self.err(
                                line,
                                port_key.name,
                                format!("{text:?} is not a port number from 1 to 65535"),
                            ));
                        }
                    }
                };
                let token_key = key!("eyas", "mqtt_access_token");
                let Some(access_token) = self.non_empty(g, token_key)? else {
                    return Err(self.err(
                        line_of(g, host_key.name),
                        token_key.name,
                        "missing; ThingsBoard needs the device access token when mqtt_host is set",
                    ));
                };
                let queue_key = key!("eyas", "mqtt_queue_size");
                let queue_size = self.uint(g, queue_key)?;
                if queue_size == 0 || queue_size > 100_000 {
                    return Err(self.err(
                        line_of(g, queue_key.name),
                        queue_key.name,
                        "must be from 1 to 100000",
                    ));
                }
                Some(MqttConfig {
                    host,
                    port,
                    access_token,
                    tls,
                    ca_file: self
                        .non_empty(g, key!("eyas", "mqtt_ca_file"))?
                        .map(PathBuf::from),
                    queue_size: usize::try_from(queue_size).unwrap_or(256),
                })
            }
        };
        let signature_key = key!("eyas", "manifest_signature");
        let (line, text) = value_of(g, signature_key, signature_key.name);
        let manifest_signature = match text {
            "off" => SignaturePolicy::Off,
            "if-present" => SignaturePolicy::IfPresent,
            "required" => SignaturePolicy::Required,
            other => {
                return Err(self.err(
                    line,
                    signature_key.name,
                    format!("{other:?} is not one of off, if-present, required"),
                ));
            }
        };
        let keys_key = key!("eyas", "manifest_public_keys");
        let mut manifest_public_keys = Vec::new();
        if let Some(e) = g.get(keys_key.name) {
            for item in keyfile::split_list(&e.value) {
                let key = parse_hex32(&item).ok_or_else(|| {
                    self.err(
                        e.line,
                        keys_key.name,
                        format!("{item:?} is not an Ed25519 public key (64 hex digits)"),
                    )
                })?;
                manifest_public_keys.push(key);
            }
        }
        if manifest_signature != SignaturePolicy::Off && manifest_public_keys.is_empty() {
            return Err(self.err(
                line_of(g, signature_key.name),
                signature_key.name,
                "needs at least one key in manifest_public_keys",
            ));
        }
        let confirmation_key = key!("eyas", "confirmation");
        let (line, text) = value_of(g, confirmation_key, confirmation_key.name);
        let confirmation = match text {
            "auto" => Confirmation::Auto,
            "deny" => Confirmation::Deny,
            "command" => match self.non_empty(g, key!("eyas", "confirmation_command"))? {
                Some(cmd) => Confirmation::Command(cmd),
                None => {
                    return Err(self.err(
                        line,
                        confirmation_key.name,
                        "is 'command' but confirmation_command is not set",
                    ));
                }
            },
            other => {
                return Err(self.err(
                    line,
                    confirmation_key.name,
                    format!("{other:?} is not one of auto, deny, command"),
                ));
            }
        };
        let poll_min = self.opt_duration(g, key!("eyas", "poll_min"))?;
        let poll_max_key = key!("eyas", "poll_max");
        let poll_max = self.opt_duration(g, poll_max_key)?;
        if let (Some(min), Some(max)) = (poll_min, poll_max)
            && min > max
        {
            return Err(self.err(
                line_of(g, poll_max_key.name),
                poll_max_key.name,
                format!("{}s is below poll_min {}s", max.as_secs(), min.as_secs()),
            ));
        }
        let proxy_key = key!("eyas", "proxy");
        let proxy = self.non_empty(g, proxy_key)?;
        if let Some(p) = &proxy {
            let ok = [
                "http://",
                "https://",
                "socks5://",
                "socks4://",
                "socks4a://",
            ]
            .iter()
            .any(|s| p.starts_with(s) && p.len() > s.len());
            if !ok {
                return Err(self.err(
                    line_of(g, proxy_key.name),
                    proxy_key.name,
                    format!("{p:?} must start with http://, https:// or socks5:// and name a host"),
                ));
            }
        }
        let part_handlers = self.part_handlers(g)?;
        let installed_name = self.installed(g, key!("eyas", "installed_name"))?;
        let installed_version = self.installed(g, key!("eyas", "installed_version"))?;
        let store_key = key!("eyas", "casync_store");
        let casync_store = self.non_empty(g, store_key)?;
        if let Some(u) = &casync_store {
            let host = u
                .strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"))
                .unwrap_or_default();
            if host.is_empty() || host.starts_with('/') {
                return Err(self.err(
                    line_of(g, store_key.name),
                    store_key.name,
                    format!("{u:?} must start with http:// or https:// and name a host"),
                ));
            }
        }
        let relay_key = key!("eyas", "casync_relay");
        let relay_text = self.string(g, relay_key)?;
        let casync_relay: std::net::SocketAddr = match relay_text.parse() {
            // the relay serves whoever can connect: the device itself only
            Ok(a) if std::net::SocketAddr::ip(&a).is_loopback() => a,
            Ok(_) => {
                return Err(self.err(
                    line_of(g, relay_key.name),
                    relay_key.name,
                    format!("{relay_text:?} is not a loopback address; use e.g. 127.0.0.1:7453"),
                ));
            }
            Err(_) => {
                return Err(self.err(
                    line_of(g, relay_key.name),
                    relay_key.name,
                    format!("{relay_text:?} is not an address:port such as 127.0.0.1:7453"),
                ));
            }
        };
        let _ = client;
        Ok(EyasConfig {
            mqtt,
            manifest_signature,
            manifest_public_keys,
            health_check_command: self.non_empty(g, key!("eyas", "health_check_command"))?,
            health_check_timeout: self.seconds(g, key!("eyas", "health_check_timeout"), true)?,
            mark_good_on_boot: self.bool(g, key!("eyas", "mark_good_on_boot"))?,
            confirmation,
            poll_min,
            poll_max,
            proxy,
            ca_file: self
                .non_empty(g, key!("eyas", "ca_file"))?
                .map(PathBuf::from),
            part_handlers,
            reboot_command: self.string(g, key!("eyas", "reboot_command"))?,
            record_path: PathBuf::from(self.string(g, key!("eyas", "record_path"))?),
            bootloader_config: PathBuf::from(self.string(g, key!("eyas", "bootloader_config"))?),
            installed_name,
            installed_version,
            casync_store,
            casync_relay,
        })
    }

    /// `part.<NAME>.command` and `part.<NAME>.timeout`.
    fn part_handlers(&self, g: &Group) -> Result<Vec<PartHandler>, ConfigError> {
        let timeout_key = key!("eyas", "part.<NAME>.timeout");
        let mut part_handlers: Vec<PartHandler> = Vec::new();
        for e in &g.entries {
            let Some(rest) = e.key.strip_prefix("part.") else {
                continue;
            };
            let Some((part, field)) = rest.rsplit_once('.') else {
                return Err(self.err(
                    e.line,
                    &e.key,
                    "expected part.<NAME>.command or part.<NAME>.timeout",
                ));
            };
            if part.is_empty() {
                return Err(self.err(e.line, &e.key, "the part name is empty"));
            }
            match field {
                "command" => {
                    if e.value.is_empty() {
                        return Err(self.err(e.line, &e.key, "empty command"));
                    }
                    let timeout =
                        self.seconds_of(g, timeout_key, &format!("part.{part}.timeout"), true)?;
                    part_handlers.push(PartHandler {
                        part: part.to_owned(),
                        command: e.value.clone(),
                        timeout,
                    });
                }
                "timeout" => {
                    if g.get(&format!("part.{part}.command")).is_none() {
                        return Err(self.err(
                            e.line,
                            &e.key,
                            format!("part.{part}.command is not set"),
                        ));
                    }
                }
                other => {
                    return Err(self.err(
                        e.line,
                        &e.key,
                        format!("unknown field {other:?}; expected command or timeout"),
                    ));
                }
            }
        }
        Ok(part_handlers)
    }

    /// `installed_name` / `installed_version`: at most [`INSTALLED_MAX_LEN`] bytes, no control
    /// characters (they go into hawkBit's installedBase body).
    fn installed(&self, g: &Group, k: &Key) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.non_empty(g, k)? else {
            return Ok(None);
        };
        if value.len() > INSTALLED_MAX_LEN {
            return Err(self.err(
                line_of(g, k.name),
                k.name,
                format!(
                    "is {} bytes long; at most {INSTALLED_MAX_LEN} bytes are allowed",
                    value.len()
                ),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(self.err(
                line_of(g, k.name),
                k.name,
                "contains a control character (tab, newline, …); give a plain name",
            ));
        }
        Ok(Some(value))
    }

    fn required(&self, g: &Group, k: &Key) -> Result<String, ConfigError> {
        match self.non_empty(g, k)? {
            Some(v) => Ok(v),
            None => Err(self.err(
                g.line,
                k.name,
                format!("missing in [{}]; it is required", g.name),
            )),
        }
    }

    /// The value, `None` when absent; an empty value is an error (it would mean "unset" silently).
    fn non_empty(&self, g: &Group, k: &Key) -> Result<Option<String>, ConfigError> {
        match g.get(k.name) {
            None => Ok(None),
            Some(e) if e.value.is_empty() => Err(self.err(
                e.line,
                k.name,
                "empty value; remove the line or give a value",
            )),
            Some(e) => Ok(Some(e.value.clone())),
        }
    }

    /// The value, or the table's default when absent; an empty value is an error.
    fn string(&self, g: &Group, k: &Key) -> Result<String, ConfigError> {
        Ok(self
            .non_empty(g, k)?
            .unwrap_or_else(|| value_of(g, k, k.name).1.to_owned()))
    }

    fn bool(&self, g: &Group, k: &Key) -> Result<bool, ConfigError> {
        let (line, text) = value_of(g, k, k.name);
        match text {
            // GLib accepts exactly these four spellings.
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(self.err(
                line,
                k.name,
                format!("{other:?} is not a boolean (true or false)"),
            )),
        }
    }

    fn uint(&self, g: &Group, k: &Key) -> Result<u64, ConfigError> {
        self.uint_of(g, k, k.name)
    }

    /// `name` is `k`'s name, or the name matching `k`'s pattern.
    fn uint_of(&self, g: &Group, k: &Key, name: &str) -> Result<u64, ConfigError> {
        let (line, text) = value_of(g, k, name);
        text.parse::<u64>().map_err(|_| {
            self.err(
                line,
                name,
                format!("{text:?} is not a non-negative whole number"),
            )
        })
    }

    fn seconds(&self, g: &Group, k: &Key, positive: bool) -> Result<Duration, ConfigError> {
        self.seconds_of(g, k, k.name, positive)
    }

    /// `name` is `k`'s name, or the name matching `k`'s pattern.
    fn seconds_of(
        &self,
        g: &Group,
        k: &Key,
        name: &str,
        positive: bool,
    ) -> Result<Duration, ConfigError> {
        let secs = self.uint_of(g, k, name)?;
        if positive && secs == 0 {
            return Err(self.err(line_of(g, name), name, "must be at least 1 second"));
        }
        if secs > 31 * 24 * 3600 {
            return Err(self.err(
                line_of(g, name),
                name,
                "longer than 31 days; that is surely a mistake",
            ));
        }
        Ok(Duration::from_secs(secs))
    }

    fn opt_duration(&self, g: &Group, k: &Key) -> Result<Option<Duration>, ConfigError> {
        let Some(e) = g.get(k.name) else {
            return Ok(None);
        };
        match parse_duration(&e.value) {
            Some(d) if d > Duration::ZERO => Ok(Some(d)),
            _ => Err(self.err(
                e.line,
                k.name,
                format!(
                    "{:?} is not a positive duration (seconds or HH:MM:SS)",
                    e.value
                ),
            )),
        }
    }
}

/// The line of `name` in `g`, else the group's line.
fn line_of(g: &Group, name: &str) -> usize {
    g.get(name).map_or(g.line, |e| e.line)
}

/// `name`'s line and text, or, when absent, the group's line and `k`'s default from [`KEYS`]
/// (`""` for a key without one: the callers read only keys with a default this way, and
/// `tests/config_keys.rs` reads every default through here).
fn value_of<'g>(g: &'g Group, k: &Key, name: &str) -> (usize, &'g str) {
    match g.get(name) {
        Some(e) => (e.line, e.value.as_str()),
        None => (g.line, k.default.value().unwrap_or("")),
    }
}

/// Seconds (`90`) or `HH:MM:SS` (`00:01:30`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut parts = text.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let h: u64 = h.parse().ok()?;
    let m: u64 = m.parse().ok()?;
    let s: u64 = s.parse().ok()?;
    if m >= 60 || s >= 60 {
        return None;
    }
    Some(Duration::from_secs(h * 3600 + m * 60 + s))
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[client]\nhawkbit_server=127.0.0.1:8080\ntarget_name=dev-1\nauth_token=tok\nbundle_download_location=/tmp/b.raucb\n[device]\nproduct=Terminator\n";

    fn load_text(text: &str) -> Result<Loaded, ConfigError> {
        parse(Path::new("/etc/eyas.conf"), text)
    }

    fn with(extra_client: &str, eyas: &str) -> String {
        let mut t = BASE.replacen("[device]", &format!("{extra_client}[device]"), 1);
        if !eyas.is_empty() {
            t.push_str("[eyas]\n");
            t.push_str(eyas);
        }
        t
    }

    fn err_of(text: &str) -> ConfigError {
        load_text(text).expect_err("must be rejected")
    }

    #[test]
    fn defaults_match_rauc_hawkbit_updater() {
        let l = load_text(BASE).expect("valid");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let c = l.config.client;
        assert_eq!(c.tenant_id, "DEFAULT");
        assert!(c.ssl && c.ssl_verify && c.send_download_authentication);
        assert!(!c.resume_downloads && !c.stream_bundle && !c.post_update_reboot);
        assert_eq!(c.connect_timeout, Duration::from_secs(20));
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!(c.retry_wait, Duration::from_secs(300));
        assert_eq!(c.low_speed_time, Duration::from_secs(60));
        assert_eq!(c.low_speed_rate, 100);
        assert_eq!(c.download_speed_limit, 0);
        assert_eq!(c.log_level, LogLevel::Message);
        assert_eq!(c.auth, Auth::TargetToken("tok".into()));
        assert_eq!(
            l.config.device,
            vec![("product".into(), "Terminator".into())]
        );
        let e = l.config.eyas;
        assert!(e.mqtt.is_none());
        assert_eq!(e.manifest_signature, SignaturePolicy::Off);
        assert_eq!(e.confirmation, Confirmation::Auto);
        assert_eq!(e.reboot_command, "systemctl reboot");
        assert!(
            e.mark_good_on_boot,
            "marks good on every start, as rauc-mark-good.service"
        );
    }

    #[test]
    fn the_upstream_sample_config_loads_unchanged() {
        // rauc-hawkbit-updater's config.conf sample layout, with its inline comment quirk.
        let text = "[client]\n\
            # host or IP and optional port\n\
            hawkbit_server            = 10.10.0.254:8080\n\
            ssl                       = false\n\
            ssl_verify                = false\n\
            tenant_id                 = DEFAULT\n\
            target_name               = test-target\n\
            auth_token                = bhVahL1Il1shie2aj2poojeChee6ahShu\n\
            #gateway_token             = bhVahL1Il1shie2aj2poojeChee6ahShu\n\
            bundle_download_location  = /tmp/bundle.raucb\n\
            retry_wait                = 60\n\
            connect_timeout           = 20\n\
            timeout                   = 60\n\
            log_level                 = debug\n\
            post_update_reboot        = false\n\
            #stream_bundle             = true\n\
            \n\
            [device]\n\
            product                   = Terminator\n\
            model                     = T-1000\n\
            serialnumber              = 8922673153\n\
            hw_revision               = 2\n\
            mac_address               = ff:ff:ff:ff:ff:ff\n";
        let l = load_text(text).expect("sample is valid");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config.client.hawkbit_server, "10.10.0.254:8080");
        assert!(!l.config.client.ssl);
        assert_eq!(l.config.client.log_level, LogLevel::Debug);
        assert_eq!(l.config.device.len(), 5);
        assert_eq!(
            l.config.device[4],
            ("mac_address".into(), "ff:ff:ff:ff:ff:ff".into())
        );
    }

    #[test]
    fn every_client_key_is_read() {
        let text = "[client]\nhawkbit_server=h:1\ntarget_name=t\ngateway_token=g\ntenant_id=T\nssl=0\nssl_verify=false\n\
            connect_timeout=5\ntimeout=6\nretry_wait=7\nlow_speed_time=0\nlow_speed_rate=8\ndownload_speed_limit=9\n\
            resume_downloads=true\nstream_bundle=false\npost_update_reboot=1\nlog_level=fatal\nsend_download_authentication=false\n\
            bundle_download_location=/x/y\n[device]\na=b\n";
        let c = load_text(text).expect("valid").config.client;
        assert_eq!(c.auth, Auth::GatewayToken("g".into()));
        assert_eq!(c.auth.header().as_deref(), Some("GatewayToken g"));
        assert_eq!(c.tenant_id, "T");
        assert!(!c.ssl && !c.ssl_verify && !c.send_download_authentication);
        assert!(c.resume_downloads && c.post_update_reboot);
        assert_eq!(
            (
                c.connect_timeout.as_secs(),
                c.timeout.as_secs(),
                c.retry_wait.as_secs()
            ),
            (5, 6, 7)
        );
        assert_eq!(
            (
                c.low_speed_time.as_secs(),
                c.low_speed_rate,
                c.download_speed_limit
            ),
            (0, 8, 9)
        );
        assert_eq!(c.log_level, LogLevel::Fatal);
    }

    #[test]
    fn mtls_only_and_engine_warning() {
        let text = "[client]\nhawkbit_server=h\ntarget_name=t\nssl_key=/k.pem\nssl_cert=/c.pem\nssl_engine=pkcs11\nbundle_download_location=/b\n[device]\na=b\n";
        let l = load_text(text).expect("valid");
        assert_eq!(l.config.client.auth, Auth::ClientCertOnly);
        assert_eq!(l.config.client.auth.header(), None);
        assert_eq!(l.warnings.len(), 1);
        assert!(
            l.warnings[0].starts_with("/etc/eyas.conf:6: ssl_engine:"),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn unknown_keys_and_groups_warn() {
        let text =
            with("frobnicate=1\nname[de]=x\n", "mqtt_port=1\nwhatever=2\n") + "[extra]\nk=v\n";
        let l = load_text(&text).expect("valid");
        let w = l.warnings.join("\n");
        assert!(w.contains(":6: frobnicate: unknown key in [client]"), "{w}");
        assert!(w.contains(":7: name: localized key [de] ignored"), "{w}");
        assert!(
            w.contains("mqtt_port: ignored because mqtt_host is not set"),
            "{w}"
        );
        assert!(w.contains("whatever: unknown key in [eyas]"), "{w}");
        assert!(w.contains("[extra]: unknown group"), "{w}");
    }

    #[test]
    fn eyas_section_full() {
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let eyas = format!(
            "mqtt_host=tb.local\nmqtt_access_token=A1\nmqtt_tls=true\nmqtt_ca_file=/ca.pem\nmqtt_queue_size=10\n\
             manifest_signature=required\nmanifest_public_keys={key};{key}\nhealth_check_command=/bin/true\nhealth_check_timeout=5\n\
             confirmation=command\nconfirmation_command=/usr/bin/ask\npoll_min=30\npoll_max=01:00:00\nproxy=http://proxy:3128\n\
             ca_file=/etc/ca.pem\npart.bApp.command=/usr/lib/eyas/app-hook\npart.bApp.timeout=12\nreboot_command=/sbin/reboot -f\n\
             record_path=/data/eyas.rec\nbootloader_config=/etc/bl.conf\nmark_good_on_boot=false\n"
        );
        let l = load_text(&with("", &eyas)).expect("valid");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let e = l.config.eyas;
        let m = e.mqtt.expect("mqtt");
        assert_eq!(
            (m.host.as_str(), m.port, m.tls, m.queue_size),
            ("tb.local", 8883, true, 10)
        );
        assert!(
            !format!("{m:?}").contains("A1"),
            "token must not be printed"
        );
        assert_eq!(e.manifest_signature, SignaturePolicy::Required);
        assert_eq!(e.manifest_public_keys.len(), 2);
        assert_eq!(e.manifest_public_keys[0][0], 0xd7);
        assert_eq!(e.health_check_timeout, Duration::from_secs(5));
        assert_eq!(e.confirmation, Confirmation::Command("/usr/bin/ask".into()));
        assert_eq!(e.poll_min, Some(Duration::from_secs(30)));
        assert_eq!(e.poll_max, Some(Duration::from_secs(3600)));
        assert_eq!(e.proxy.as_deref(), Some("http://proxy:3128"));
        assert_eq!(
            e.part_handlers,
            vec![PartHandler {
                part: "bApp".into(),
                command: "/usr/lib/eyas/app-hook".into(),
                timeout: Duration::from_secs(12)
            }]
        );
        assert_eq!(e.reboot_command, "/sbin/reboot -f");
        assert_eq!(e.record_path, PathBuf::from("/data/eyas.rec"));
        assert_eq!(e.bootloader_config, PathBuf::from("/etc/bl.conf"));
        assert!(!e.mark_good_on_boot);
        assert!(HELP.contains("mark_good_on_boot=true"));
    }

    #[test]
    fn tokens_never_in_debug_output() {
        let l = load_text(BASE).expect("valid");
        assert!(!format!("{:?}", l.config).contains("tok\""));
        assert!(format!("{:?}", l.config).contains("<redacted>"));
    }

    #[test]
    fn error_paths_name_file_line_and_key() {
        // (text, expected "line: key:" prefix, fragment of the explanation)
        let cases: Vec<(String, &str, &str)> = vec![
            ("[client]\njunk\n".into(), ":2: ", "neither"),
            ("[device]\na=b\n".into(), ":0: [client]:", "group missing"),
            (
                BASE.replace("product=Terminator\n", ""),
                ":6: [device]:",
                "missing or empty",
            ),
            (
                BASE.replace("[device]\nproduct=Terminator\n", ""),
                ":0: [device]:",
                "missing or empty",
            ),
            (
                BASE.replace("hawkbit_server=127.0.0.1:8080\n", ""),
                ":1: hawkbit_server:",
                "required",
            ),
            (
                BASE.replace("target_name=dev-1\n", ""),
                ":1: target_name:",
                "required",
            ),
            (
                BASE.replace("target_name=dev-1", "target_name=a/b"),
                ":3: target_name:",
                "must not contain",
            ),
            (
                BASE.replace("127.0.0.1:8080", "https://h"),
                ":2: hawkbit_server:",
                "without a scheme",
            ),
            (
                BASE.replace("127.0.0.1:8080", "h/x"),
                ":2: hawkbit_server:",
                "host[:port] only",
            ),
            (
                BASE.replace("127.0.0.1:8080", "h:99999"),
                ":2: hawkbit_server:",
                "not a number",
            ),
            (
                BASE.replace("auth_token=tok\n", ""),
                ":1: [client]:",
                "no credentials",
            ),
            (
                BASE.replace("auth_token=tok", "auth_token="),
                ":4: auth_token:",
                "empty value",
            ),
            (
                with("gateway_token=g\n", ""),
                ":6: auth_token:",
                "only one of",
            ),
            (
                with("ssl_key=/k\n", ""),
                ":6: ssl_key:",
                "ssl_cert is missing",
            ),
            (
                with("ssl_cert=/c\n", ""),
                ":6: ssl_cert:",
                "ssl_key is missing",
            ),
            (
                BASE.replace("bundle_download_location=/tmp/b.raucb\n", ""),
                ":1: bundle_download_location:",
                "missing",
            ),
            (
                BASE.replace("/tmp/b.raucb", "/tmp/"),
                ":5: bundle_download_location:",
                "name a file",
            ),
            (with("ssl=yes\n", ""), ":6: ssl:", "not a boolean"),
            (
                with("ssl_verify=TRUE\n", ""),
                ":6: ssl_verify:",
                "not a boolean",
            ),
            (with("timeout=-1\n", ""), ":6: timeout:", "whole number"),
            (
                with("connect_timeout=0\n", ""),
                ":6: connect_timeout:",
                "at least 1",
            ),
            (
                with("retry_wait=99999999\n", ""),
                ":6: retry_wait:",
                "31 days",
            ),
            (
                with("low_speed_rate=fast\n", ""),
                ":6: low_speed_rate:",
                "whole number",
            ),
            (
                with("log_level=verbose\n", ""),
                ":6: log_level:",
                "not one of",
            ),
            (
                with("", "mqtt_host=h\n"),
                ":9: mqtt_access_token:",
                "missing",
            ),
            (
                with("", "mqtt_host=h\nmqtt_access_token=t\nmqtt_port=0\n"),
                ":11: mqtt_port:",
                "port number",
            ),
            (
                with("", "mqtt_host=h\nmqtt_access_token=t\nmqtt_queue_size=0\n"),
                ":11: mqtt_queue_size:",
                "1 to 100000",
            ),
            (
                with("", "mqtt_host=h\nmqtt_access_token=t\nmqtt_tls=maybe\n"),
                ":11: mqtt_tls:",
                "boolean",
            ),
            (
                with("", "manifest_signature=sometimes\n"),
                ":9: manifest_signature:",
                "not one of",
            ),
            (
                with("", "manifest_signature=required\n"),
                ":9: manifest_signature:",
                "at least one key",
            ),
            (
                with("", "manifest_public_keys=abcd\n"),
                ":9: manifest_public_keys:",
                "64 hex",
            ),
            (
                with("", &format!("manifest_public_keys={}\n", "zz".repeat(32))),
                ":9: manifest_public_keys:",
                "64 hex",
            ),
            (
                with("", "confirmation=ask\n"),
                ":9: confirmation:",
                "not one of",
            ),
            (
                with("", "confirmation=command\n"),
                ":9: confirmation:",
                "confirmation_command",
            ),
            (
                with("", "poll_min=soon\n"),
                ":9: poll_min:",
                "positive duration",
            ),
            (
                with("", "poll_min=0\n"),
                ":9: poll_min:",
                "positive duration",
            ),
            (
                with("", "poll_min=00:61:00\n"),
                ":9: poll_min:",
                "positive duration",
            ),
            (
                with("", "poll_min=60\npoll_max=30\n"),
                ":10: poll_max:",
                "below poll_min",
            ),
            (
                with("", "proxy=proxy:3128\n"),
                ":9: proxy:",
                "must start with",
            ),
            (with("", "proxy=http://\n"), ":9: proxy:", "must start with"),
            (
                with("", "part.bApp=/x\n"),
                ":9: part.bApp:",
                "expected part",
            ),
            (
                with("", "part..command=/x\n"),
                ":9: part..command:",
                "empty",
            ),
            (
                with("", "part.a.command=\n"),
                ":9: part.a.command:",
                "empty",
            ),
            (
                with("", "part.a.timeout=3\n"),
                ":9: part.a.timeout:",
                "command is not set",
            ),
            (
                with("", "part.a.command=/x\npart.a.timeout=0\n"),
                ":10: part.a.timeout:",
                "at least 1",
            ),
            (
                with("", "part.a.cmd=/x\n"),
                ":9: part.a.cmd:",
                "unknown field",
            ),
            (
                with("", "health_check_timeout=x\n"),
                ":9: health_check_timeout:",
                "whole number",
            ),
            (
                with("", "record_path=\n"),
                ":9: record_path:",
                "empty value",
            ),
        ];
        for (text, prefix, fragment) in cases {
            let err = err_of(&text);
            let shown = err.to_string();
            assert!(
                shown.starts_with(&format!("/etc/eyas.conf{prefix}")),
                "expected {prefix:?} in {shown:?}\n{text}"
            );
            assert!(
                shown.contains(fragment),
                "expected {fragment:?} in {shown:?}"
            );
        }
    }

    #[test]
    fn missing_file_says_what_to_do() {
        let err = load(Path::new("/nonexistent/eyas.conf")).expect_err("no file");
        let shown = err.to_string();
        assert!(
            shown.starts_with("/nonexistent/eyas.conf:0: cannot read"),
            "{shown}"
        );
        assert!(shown.contains("-c FILE"), "{shown}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("00:05:00"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1:2"), None);
        assert_eq!(parse_duration("1:2:3:4"), None);
        assert_eq!(parse_duration("PT5M"), None);
    }

    #[test]
    fn ipv6_server_with_port() {
        let l = load_text(&BASE.replace("127.0.0.1:8080", "[::1]:8080")).expect("valid");
        assert_eq!(l.config.client.hawkbit_server, "[::1]:8080");
    }

    #[test]
    fn installed_name_and_version() {
        let none = load_text(BASE).expect("valid").config.eyas;
        assert_eq!((none.installed_name, none.installed_version), (None, None));
        let l = load_text(&with(
            "",
            "installed_name=Factory image\ninstalled_version=2024.05-1\n",
        ))
        .expect("valid");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(
            l.config.eyas.installed_name.as_deref(),
            Some("Factory image")
        );
        assert_eq!(
            l.config.eyas.installed_version.as_deref(),
            Some("2024.05-1")
        );
        // The limit is in bytes: 32 two-byte characters are 64 bytes.
        let at_limit = "é".repeat(32);
        let l = load_text(&with(
            "",
            &format!(
                "installed_name={}\ninstalled_version={at_limit}\n",
                "n".repeat(64)
            ),
        ))
        .expect("64 bytes are allowed");
        assert_eq!(l.config.eyas.installed_version, Some(at_limit));
        let cases: Vec<(String, &str, &str)> = vec![
            (
                format!("installed_name={}\n", "n".repeat(65)),
                ":9: installed_name:",
                "is 65 bytes long; at most 64 bytes",
            ),
            (
                format!("installed_version={}\n", "é".repeat(33)),
                ":9: installed_version:",
                "is 66 bytes long",
            ),
            (
                "installed_name=a\\tb\n".into(),
                ":9: installed_name:",
                "control character",
            ),
            (
                "installed_name=x\ninstalled_version=1.0\\n\n".into(),
                ":10: installed_version:",
                "control character",
            ),
            (
                "installed_version=1.0\u{7f}\n".into(),
                ":9: installed_version:",
                "control character",
            ),
            (
                "installed_name=\n".into(),
                ":9: installed_name:",
                "empty value",
            ),
        ];
        for (eyas, prefix, fragment) in cases {
            let shown = err_of(&with("", &eyas)).to_string();
            assert!(
                shown.starts_with(&format!("/etc/eyas.conf{prefix}")),
                "expected {prefix:?} in {shown:?}"
            );
            assert!(
                shown.contains(fragment),
                "expected {fragment:?} in {shown:?}"
            );
        }
    }

    #[test]
    fn casync_relay_settings() {
        let l = load_text(&with("", "casync_store=https://cdn.example/p.castr/\n")).expect("valid");
        assert_eq!(
            l.config.eyas.casync_store.as_deref(),
            Some("https://cdn.example/p.castr/")
        );
        assert_eq!(
            l.config.eyas.casync_relay,
            std::net::SocketAddr::from(([127, 0, 0, 1], 7453))
        );
        let l = load_text(&with("", "casync_relay=[::1]:9000\n")).expect("valid");
        assert_eq!(l.config.eyas.casync_relay.port(), 9000);
        assert_eq!(l.config.eyas.casync_store, None);
        for (eyas, prefix, fragment) in [
            (
                "casync_store=ftp://x/\n",
                ":9: casync_store:",
                "must start with http://",
            ),
            (
                "casync_store=https:///p\n",
                ":9: casync_store:",
                "name a host",
            ),
            (
                "casync_relay=0.0.0.0:7453\n",
                ":9: casync_relay:",
                "not a loopback address",
            ),
            (
                "casync_relay=localhost\n",
                ":9: casync_relay:",
                "not an address:port",
            ),
        ] {
            let shown = err_of(&with("", eyas)).to_string();
            assert!(
                shown.starts_with(&format!("/etc/eyas.conf{prefix}")) && shown.contains(fragment),
                "expected {prefix:?} … {fragment:?} in {shown:?}"
            );
        }
    }

    #[test]
    fn help_is_generated_from_the_table() {
        // Wrapping aside, every row is listed as `key=default` followed by its help text.
        let flat = HELP.split_whitespace().collect::<Vec<_>>().join(" ");
        for k in KEYS {
            let required = if matches!(k.default, KeyDefault::Required(_)) {
                "required; "
            } else {
                ""
            };
            let line = format!("{}={} {required}{}", k.name, k.default.shown(), k.help);
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&line), "--help lacks {line:?}:\n{}", &*HELP);
        }
        for (group, holds) in GROUPS {
            assert!(HELP.contains(&format!("[{group}]  {holds}\n")), "{group}");
        }
        assert!(HELP.contains("\n  reboot_command=systemctl reboot "));
        assert_eq!(HELP.to_string(), *HELP);
    }

    #[test]
    fn the_reader_reads_keys_only_through_the_table() {
        // The reader names a key only as key!(group, name), a lookup in KEYS that does not
        // compile for a key missing from the table; a `.get("…")` with a literal would bypass it.
        let source = include_str!("config.rs");
        let code = source.split("#[cfg(test)]").next().unwrap_or(source);
        for (n, line) in code.lines().enumerate() {
            assert!(
                ![".get(\"", "value_of(g, \"", "line_of(g, \""]
                    .iter()
                    .any(|bypass| line.contains(bypass)),
                "config.rs:{}: a key read without key!(): {line}",
                n + 1
            );
        }
        assert!(code.contains("key!(\"eyas\", \"installed_version\")"));
    }

    #[test]
    fn table_rows_are_unique_and_in_known_groups() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(
                GROUPS.iter().any(|(g, _)| *g == k.group),
                "{}: group {:?} is not in GROUPS",
                k.name,
                k.group
            );
            assert!(
                !KEYS[..i]
                    .iter()
                    .any(|o| o.group == k.group && o.name == k.name),
                "{} is listed twice",
                k.name
            );
            assert!(!k.help.is_empty(), "{} has no help text", k.name);
        }
        assert_eq!(key("eyas", "mqtt_port").default, KeyDefault::Value("1883"));
        assert!(key("eyas", "part.<NAME>.timeout").matches("part.bApp.timeout"));
        assert!(!key("eyas", "part.<NAME>.timeout").matches("part..timeout"));
        assert!(!key("eyas", "part.<NAME>.timeout").matches("part.bApp.command"));
        assert!(is_known("device", "anything") && !is_known("client", "anything"));
    }
}

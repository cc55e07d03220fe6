//! `eyasctl publish`: software module (created or reused) → artifact (SHA-256 checked) →
//! distribution set.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::ValueEnum;
use serde_json::{Value, json};
use sha2::Digest;

use crate::api::Api;
use crate::error::Failure;
use crate::lookup::{self, str_of};
use crate::output;

/// Software module type. `os` and `application` are hawkBit's default types; `config` (one per
/// distribution set) and the distribution set type for it are created on first use.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleType {
    Os,
    Application,
    Config,
}

impl ModuleType {
    fn key(self) -> &'static str {
        match self {
            Self::Os => "os",
            Self::Application => "application",
            Self::Config => "config",
        }
    }

    /// The distribution set type whose mandatory module is this type.
    fn ds_type(self) -> &'static str {
        match self {
            Self::Os => "os",
            Self::Application => "app",
            Self::Config => "config",
        }
    }
}

/// `eyasctl publish` arguments.
#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The bundle (a RAUC .raucb or any artifact file).
    pub bundle: PathBuf,
    /// Software module name (default: the bundle's `compatible`, from `rauc info`).
    #[arg(long)]
    pub name: Option<String>,
    /// Software module version (default: the bundle's `version`, from `rauc info`).
    #[arg(long)]
    pub version: Option<String>,
    /// Software module type.
    #[arg(long = "type", value_enum, default_value = "os")]
    pub module_type: ModuleType,
    /// Distribution set name (default: the module name).
    #[arg(long)]
    pub ds_name: Option<String>,
    /// Distribution set version (default: the module version).
    #[arg(long)]
    pub ds_version: Option<String>,
    /// Software module vendor.
    #[arg(long, default_value = "eyas")]
    pub vendor: String,
    #[command(flatten)]
    pub casync: crate::casync::CasyncArgs,
}

/// `compatible` and `version` from `rauc info --no-verify --output-format=json` (the signature is
/// RAUC's business on the device; here only the manifest is read).
fn rauc_info(bundle: &Path) -> Result<(String, String), Failure> {
    let out = Command::new("rauc")
        .args(["info", "--no-verify", "--output-format=json"])
        .arg(bundle)
        .output()
        .map_err(|e| {
            Failure::Usage(format!(
                "cannot run `rauc info` ({e}); install RAUC or give --name and --version"
            ))
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Failure::Usage(format!(
            "`rauc info {}` failed ({}): {}; give --name and --version for a file that is not a RAUC bundle",
            bundle.display(),
            out.status,
            err.trim()
        )));
    }
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        Failure::Usage(format!(
            "`rauc info` printed no JSON ({e}); give --name and --version"
        ))
    })?;
    let field = |k: &str| {
        doc.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "the bundle's manifest has no '{k}'; give --name and --version"
                ))
            })
    };
    Ok((field("compatible")?, field("version")?))
}

/// SHA-256 (hex) and size of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<(String, u64), Failure> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, size))
}

/// Creates the `config` module type and the `config` distribution set type if they are missing.
fn ensure_config_types(api: &Api) -> Result<(), Failure> {
    let sm_types = lookup::all(api, "/softwaremoduletypes")?;
    let sm_type = match sm_types.iter().find(|t| str_of(t, "key") == "config") {
        Some(t) => lookup::id_of(t, "software module type")?,
        None => {
            let created = api.post(
                "/softwaremoduletypes",
                &json!([{ "key": "config", "name": "Configuration", "maxAssignments": 1,
                          "description": "configuration bundle (eyasctl)" }]),
            )?;
            lookup::id_of(&created[0], "software module type")?
        }
    };
    let ds_types = lookup::all(api, "/distributionsettypes")?;
    if !ds_types.iter().any(|t| str_of(t, "key") == "config") {
        api.post(
            "/distributionsettypes",
            &json!([{ "key": "config", "name": "Configuration",
                      "description": "one configuration module (eyasctl)",
                      "mandatorymodules": [{ "id": sm_type }] }]),
        )?;
    }
    Ok(())
}

/// Runs `eyasctl publish`.
pub fn run(api: &Api, args: &PublishArgs, json: bool) -> Result<ExitCode, Failure> {
    let bundle = &args.bundle;
    if !bundle.is_file() {
        return Err(Failure::Usage(format!(
            "{}: no such file",
            bundle.display()
        )));
    }
    let (name, version) = match (&args.name, &args.version) {
        (Some(n), Some(v)) => (n.clone(), v.clone()),
        (n, v) => {
            let (cn, cv) = rauc_info(bundle)?;
            (n.clone().unwrap_or(cn), v.clone().unwrap_or(cv))
        }
    };
    let filename = bundle
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .filter(|f| !f.is_empty())
        .ok_or_else(|| Failure::Usage(format!("{}: no file name", bundle.display())))?;
    let kind = args.module_type;
    // With --casync the artifact is the index bundle `rauc convert` made from this bundle.
    let converted = if args.casync.casync {
        let (source_sha, _) = sha256_file(bundle)?;
        let c = crate::casync::convert(
            &args.casync,
            api,
            json,
            bundle,
            &source_sha,
            &name,
            &version,
        )?;
        for line in &c.lines {
            output::say(json, line);
        }
        Some(c)
    } else {
        None
    };
    let bundle = converted.as_ref().map_or(bundle, |c| &c.index);
    let (sha256, size) = sha256_file(bundle)?;
    output::say(
        json,
        &format!(
            "publish: {} ({size} bytes, sha256 {sha256}) as {} {name} {version}",
            bundle.display(),
            kind.key()
        ),
    );
    if kind == ModuleType::Config {
        ensure_config_types(api)?;
    }

    // 1. software module: reuse name+version+type, else create
    let existing: Vec<Value> = lookup::by_name_version(api, "/softwaremodules", &name, &version)?
        .into_iter()
        .filter(|m| str_of(m, "type") == kind.key())
        .collect();
    let (sm, sm_reused) = match existing.into_iter().next() {
        Some(m) => (lookup::id_of(&m, "software module")?, true),
        None => {
            let created = api.post(
                "/softwaremodules",
                &json!([{ "name": name, "version": version, "type": kind.key(), "vendor": args.vendor,
                          "description": format!("published by eyasctl from {filename}") }]),
            )?;
            (lookup::id_of(&created[0], "software module")?, false)
        }
    };
    output::say(
        json,
        &format!(
            "publish: software module {sm} ({name} {version}, type {}) {}",
            kind.key(),
            if sm_reused { "exists" } else { "created" }
        ),
    );

    // 2. artifact: the same bytes already there = no-op; other bytes = this version is taken
    let artifacts = lookup::all(api, &format!("/softwaremodules/{sm}/artifacts"))?;
    let artifact_sha = |a: &Value| {
        a.pointer("/hashes/sha256")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let artifact = if let Some(a) = artifacts.iter().find(|a| artifact_sha(a) == sha256) {
        output::say(
            json,
            &format!(
                "publish: artifact {} ({}) already uploaded with this sha256",
                a.get("id").unwrap_or(&Value::Null),
                str_of(a, "providedFilename")
            ),
        );
        (a.clone(), true)
    } else if let Some(other) = artifacts.first() {
        return Err(Failure::Other(format!(
            "software module {sm} ({name} {version}) already holds {} with sha256 {}, not this bundle's {sha256}: \
             a version is published once; publish this bundle under a new --version",
            str_of(other, "providedFilename"),
            artifact_sha(other)
        )));
    } else {
        let path = format!("/softwaremodules/{sm}/artifacts?sha256sum={sha256}");
        let a = api.upload(&path, bundle, &filename)?;
        let got = artifact_sha(&a);
        let got_size = a.get("size").and_then(Value::as_u64);
        if got != sha256 || got_size != Some(size) {
            return Err(Failure::Other(format!(
                "hawkBit stored the upload with sha256 {got} and size {}, but the bundle has sha256 {sha256} and size {size}",
                got_size.map_or_else(|| "?".into(), |s| s.to_string())
            )));
        }
        output::say(
            json,
            &format!(
                "publish: uploaded artifact {} ({filename}, {size} bytes, sha256 checked by hawkBit and here)",
                a.get("id").unwrap_or(&Value::Null)
            ),
        );
        (a, false)
    };

    // 3. distribution set: reuse one holding exactly this module, else create
    let ds_name = args.ds_name.clone().unwrap_or_else(|| name.clone());
    let ds_version = args.ds_version.clone().unwrap_or_else(|| version.clone());
    let (ds, ds_reused) = match lookup::by_name_version(
        api,
        "/distributionsets",
        &ds_name,
        &ds_version,
    )?
    .into_iter()
    .next()
    {
        Some(d) => {
            let modules: Vec<u64> = d
                .get("modules")
                .and_then(Value::as_array)
                .map(|ms| {
                    ms.iter()
                        .filter_map(|m| m.get("id").and_then(Value::as_u64))
                        .collect()
                })
                .unwrap_or_default();
            if modules != [sm] {
                return Err(Failure::Other(format!(
                    "distribution set {} ({ds_name} {ds_version}) exists with modules {modules:?}, not just module {sm}; \
                     choose another --ds-version",
                    d.get("id").unwrap_or(&Value::Null)
                )));
            }
            (d, true)
        }
        None => {
            let created = api.post(
                "/distributionsets",
                &json!([{ "name": ds_name, "version": ds_version, "type": kind.ds_type(),
                          "description": format!("{name} {version} (eyasctl)"),
                          "modules": [{ "id": sm }] }]),
            )?;
            (created[0].clone(), false)
        }
    };
    let ds_id = lookup::id_of(&ds, "distribution set")?;
    output::say(
        json,
        &format!(
            "publish: distribution set {ds_id} ({ds_name} {ds_version}) {}",
            if ds_reused { "exists" } else { "created" }
        ),
    );
    if json {
        let mut doc = json!({
            "softwareModule": { "id": sm, "name": name, "version": version, "type": kind.key(), "reused": sm_reused },
            "artifact": { "id": artifact.0.get("id"), "filename": str_of(&artifact.0, "providedFilename"),
                          "size": size, "sha256": sha256, "reused": artifact.1 },
            "distributionSet": { "id": ds_id, "name": ds_name, "version": ds_version, "reused": ds_reused },
        });
        if let Some(c) = converted {
            doc["casync"] = c.report;
        }
        output::print_json(&doc);
    } else {
        println!(
            "software_module={sm} artifact={} distribution_set={ds_id}",
            artifact.0.get("id").unwrap_or(&Value::Null)
        );
    }
    Ok(ExitCode::SUCCESS)
}

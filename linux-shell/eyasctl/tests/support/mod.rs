//! Test fixture: hawkbit-sim in process, the `eyasctl` binary run as a child, and simulated
//! devices that answer their deployments over DDI.

#![allow(dead_code)]

pub mod nginx;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hil_tests::sim::{Sim, SimConfig, SimHandle};
use serde_json::{Value, json};

pub struct Fx {
    rt: tokio::runtime::Runtime,
    sim: Option<SimHandle>,
    pub url: String,
    agent: ureq::Agent,
    pub dir: tempfile::TempDir,
}

impl Drop for Fx {
    fn drop(&mut self) {
        if let Some(s) = self.sim.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// What a finished `eyasctl` run left.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// stdout as JSON (for `--json` runs).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

impl Fx {
    /// A simulator whose rollout scheduler runs every `tick`.
    pub fn new(tick: Duration) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt
            .block_on(Sim::start(SimConfig {
                rollout_interval: tick,
                ..SimConfig::default()
            }))
            .expect("hawkbit-sim starts");
        let url = sim.url();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            rt,
            sim: Some(sim),
            url,
            agent,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Where the simulator listens (for `hil_tests::fleet` devices).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.sim
            .as_ref()
            .map(SimHandle::addr)
            .expect("the simulator runs")
    }

    /// The runtime the simulator runs on (simulated devices can run on it too).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_eyasctl"));
        c.args(args)
            .env("HAWKBIT_URL", &self.url)
            .env_remove("HAWKBIT_TOKEN")
            .env_remove("HAWKBIT_USER")
            .env_remove("HAWKBIT_PASSWORD")
            .env_remove("EYAS_STORE_USER")
            .env_remove("EYAS_STORE_PASSWORD")
            .stdin(Stdio::null());
        c
    }

    /// Runs `eyasctl ARGS…` against the simulator and waits for it.
    pub fn ctl(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("eyasctl runs"))
    }

    /// Runs `eyasctl ARGS…` with extra environment variables and waits for it.
    pub fn ctl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        c.envs(env.iter().copied());
        Run::from(c.output().expect("eyasctl runs"))
    }

    /// Starts `eyasctl ARGS…` in the background (stdout and stderr piped).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("eyasctl starts")
    }

    /// A Management API call with admin:admin: (status, JSON body or Null).
    pub fn mgmt(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/rest/v1{path}", self.url);
        let b = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", "Basic YWRtaW46YWRtaW4=")
            .header("Content-Type", "application/json");
        let mut r = match body {
            Some(v) => self
                .agent
                .run(b.body(v.to_string().into_bytes()).expect("request")),
            None => self.agent.run(b.body(()).expect("request")),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers `n` targets `PREFIX000…` with tokens `tok-<id>`; returns their ids.
    pub fn targets(&self, prefix: &str, n: usize) -> Vec<String> {
        let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i:03}")).collect();
        let body: Vec<Value> = ids
            .iter()
            .map(|c| json!({"controllerId": c, "name": c, "securityToken": format!("tok-{c}")}))
            .collect();
        let (s, _) = self.mgmt("POST", "/targets", Some(Value::Array(body)));
        assert_eq!(s, 201);
        ids
    }

    /// A file of `size` pseudo-random bytes (seeded) in the fixture's dir.
    pub fn file(&self, name: &str, seed: u64, size: usize) -> PathBuf {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    /// Publishes `file` as rootfs VERSION (os); returns the distribution set id.
    pub fn publish(&self, file: &Path, version: &str) -> u64 {
        let r = self.ctl(&[
            "--json",
            "publish",
            path(file),
            "--name",
            "rootfs",
            "--version",
            version,
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        r.json()["distributionSet"]["id"].as_u64().expect("ds id")
    }

    /// The device `cid` answers its open deployment (if any) with closed/`finished`
    /// ("success" or "failure"); true if it had one.
    pub fn device(&self, cid: &str, finished: &str) -> bool {
        let base = format!("{}/DEFAULT/controller/v1/{cid}", self.url);
        let auth = format!("TargetToken tok-{cid}");
        let mut r = self
            .agent
            .get(&base)
            .header("Authorization", &auth)
            .call()
            .expect("poll");
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().expect("body"))
            .unwrap_or(Value::Null);
        let Some(href) = v
            .pointer("/_links/deploymentBase/href")
            .and_then(Value::as_str)
        else {
            return false;
        };
        let Some(action) = href
            .rsplit('/')
            .next()
            .and_then(|s| s.split('?').next())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return false;
        };
        let body = json!({"status": {"execution": "closed", "result": {"finished": finished},
                          "details": [format!("{cid}: {finished}")]}});
        let r = self
            .agent
            .post(format!("{base}/deploymentBase/{action}/feedback"))
            .header("Authorization", &auth)
            .content_type("application/json")
            .send(body.to_string())
            .expect("feedback");
        r.status().as_u16() == 200
    }

    /// Devices answer (those in `fail` with failure) until `child` exits or `secs` pass; returns
    /// the child's run.
    pub fn drive(&self, mut child: Child, devices: &[String], fail: &[&str], secs: u64) -> Run {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if Instant::now() > end {
                let _ = child.kill();
                break;
            }
            for d in devices {
                let result = if fail.contains(&d.as_str()) {
                    "failure"
                } else {
                    "success"
                };
                self.device(d, result);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Run::from(child.wait_with_output().expect("output"))
    }

    /// The simulator's request log (method, path, status, auth scheme).
    pub fn requests(&self) -> Vec<hil_tests::sim::RequestRecord> {
        self.sim
            .as_ref()
            .map(SimHandle::request_log)
            .unwrap_or_default()
    }

    /// `GET /rollouts/{id}` status.
    pub fn rollout_status(&self, id: u64) -> String {
        let (_, v) = self.mgmt("GET", &format!("/rollouts/{id}"), None);
        v["status"].as_str().unwrap_or("").to_owned()
    }

    /// Waits until the rollout has `status` (≤ 20 s).
    pub fn wait_rollout(&self, id: u64, status: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        while self.rollout_status(id) != status {
            assert!(Instant::now() < end, "rollout {id} never became {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

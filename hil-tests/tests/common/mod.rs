//! Shared fixture: a simulator on 127.0.0.1:0 in its own runtime, driven over real HTTP with ureq.
#![allow(dead_code)]

use std::time::Duration;

use hil_tests::sim::http::base64_encode;
use hil_tests::sim::{Sim, SimConfig, SimHandle};
use serde_json::{Value, json};

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub struct Fx {
    pub rt: tokio::runtime::Runtime,
    pub sim: Option<SimHandle>,
    pub agent: ureq::Agent,
    pub url: String,
}

impl Drop for Fx {
    fn drop(&mut self) {
        if let Some(s) = self.sim.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

pub const ADMIN: &str = "admin:admin";

impl Fx {
    pub fn new() -> Self {
        Self::with(SimConfig {
            rollout_interval: Duration::from_secs(3600),
            ..SimConfig::default()
        })
    }

    pub fn with(cfg: SimConfig) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt.block_on(Sim::start(cfg)).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_redirects(0)
            // a fresh connection per call: a server may close a connection after answering
            // without reading the request body (a 401 to a PUT), and a pooled connection that
            // races that close fails the next call with "Peer disconnected" (seen once in CI)
            .max_idle_connections(0)
            .build()
            .into();
        let url = sim.url();
        Self {
            rt,
            sim: Some(sim),
            agent,
            url,
        }
    }

    pub fn sim(&self) -> &SimHandle {
        self.sim.as_ref().unwrap()
    }

    pub fn ddi(&self, cid: &str) -> String {
        format!("{}/DEFAULT/controller/v1/{cid}", self.url)
    }

    /// Raw request; `path` may be absolute (http://…) or start with '/'.
    pub fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp, ureq::Error> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        let mut b = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut r = match body {
            Some(bytes) => self.agent.run(b.body(bytes.to_vec()).unwrap())?,
            None => self.agent.run(b.body(()).unwrap())?,
        };
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = r.body_mut().with_config().limit(64 << 20).read_to_vec()?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        self.req(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn basic() -> String {
        format!("Basic {}", base64_encode(ADMIN.as_bytes()))
    }

    pub fn mgmt(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = Self::basic();
        let b = body.map(|v| v.to_string().into_bytes());
        self.call(
            method,
            &format!("/rest/v1{path}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            b.as_deref(),
        )
    }

    pub fn ddi_get(&self, cid: &str, token: &str, sub: &str) -> Resp {
        let auth = format!("TargetToken {token}");
        self.call(
            "GET",
            &format!("{}{sub}", self.ddi(cid)),
            &[("Authorization", &auth)],
            None,
        )
    }

    pub fn ddi_send(&self, method: &str, cid: &str, token: &str, sub: &str, body: &Value) -> Resp {
        let auth = format!("TargetToken {token}");
        self.call(
            method,
            &format!("{}{sub}", self.ddi(cid)),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        )
    }

    pub fn feedback(
        &self,
        cid: &str,
        token: &str,
        action: u64,
        execution: &str,
        finished: &str,
    ) -> Resp {
        self.ddi_send(
            "POST",
            cid,
            token,
            &format!("/deploymentBase/{action}/feedback"),
            &json!({"status": {"execution": execution, "result": {"finished": finished}}}),
        )
    }

    /// Creates an os module with one artifact and an os DS; returns (module, ds).
    pub fn make_ds(&self, version: &str, artifact: &[u8]) -> (u64, u64) {
        let sim = self.sim();
        let sm = sim.create_software_module("rootfs", version, "os").unwrap();
        sim.add_artifact_bytes(sm, "rootfs.raucb", artifact)
            .unwrap();
        let ds = sim
            .create_distribution_set("fw", version, "os", &[sm])
            .unwrap();
        (sm, ds)
    }

    /// Creates a target with token `tok-<cid>`.
    pub fn target(&self, cid: &str) -> String {
        self.sim()
            .create_target(cid, Some(&format!("tok-{cid}")))
            .unwrap()
    }

    /// Target + DS + assignment through the Mgmt API; returns (token, module, ds, action).
    pub fn deployment(&self, cid: &str, assign: Value) -> (String, u64, u64, u64) {
        let tok = self.target(cid);
        let (sm, ds) = self.make_ds(
            &format!("1.0-{cid}"),
            b"0123456789abcdefghijklmnopqrstuvwxyz",
        );
        let mut body = assign;
        body["id"] = json!(ds);
        let r = self.mgmt("POST", &format!("/targets/{cid}/assignedDS"), Some(body));
        assert_eq!(r.status, 200, "{}", r.text());
        let action = r.json()["assignedActions"][0]["id"].as_u64().unwrap();
        (tok, sm, ds, action)
    }

    pub fn links(&self, cid: &str, token: &str) -> Value {
        let r = self.ddi_get(cid, token, "");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().get("_links").cloned().unwrap_or(json!({}))
    }

    pub fn action_status(&self, cid: &str, action: u64) -> String {
        let r = self.mgmt("GET", &format!("/targets/{cid}/actions/{action}"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["detailStatus"].as_str().unwrap().to_string()
    }
}

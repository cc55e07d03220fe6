//! A real mosquitto with ThingsBoard-style auth (real-peers.md §5.2, variant A: the username is
//! the device token, and only the token's ACL may publish to `v1/devices/me/#`), plus a
//! `mosquitto_sub` observer with a persistent session so nothing is missed across restarts.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Guard, free_port, require_tool, wait_for, wait_port};

pub const TOKEN: &str = "A1_TEST_TOKEN";

pub struct Broker {
    pub dir: tempfile::TempDir,
    pub port: u16,
    process: Option<Guard>,
}

impl Broker {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Also listens with TLS on a second port (returned) using the server leaf of `pki`.
    pub fn start_tls(pki: &super::Pki) -> (Self, u16) {
        let tls_port = free_port();
        let b = Self::start_with(&format!(
            "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
            pki.ca.display(),
            pki.server_cert.display(),
            pki.server_key.display()
        ));
        wait_port(tls_port, Duration::from_secs(10));
        (b, tls_port)
    }

    fn start_with(extra: &str) -> Self {
        require_tool("mosquitto");
        require_tool("mosquitto_sub");
        let dir = tempfile::Builder::new()
            .prefix("eyas-mqtt-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let d = dir.path();
        std::fs::write(
            d.join("acl"),
            format!("user {TOKEN}\ntopic readwrite v1/devices/me/#\nuser observer\ntopic read #\n"),
        )
        .expect("acl");
        std::fs::write(
            d.join("mosquitto.conf"),
            format!(
                "per_listener_settings false\nlistener {port} 127.0.0.1\nallow_anonymous true\nacl_file {d}/acl\nuser root\n\
                 persistence true\npersistence_location {d}/\nautosave_interval 1\nlog_dest file {d}/broker.log\nlog_type all\n{extra}",
                d = d.display()
            ),
        )
        .expect("conf");
        let mut b = Self {
            dir,
            port,
            process: None,
        };
        b.up();
        b
    }

    /// Starts (or restarts) the broker on the same port.
    pub fn up(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.process = Some(Guard(child));
        wait_port(self.port, Duration::from_secs(10));
    }

    /// Stops the broker (SIGTERM, so it saves its sessions) and waits until the port is closed.
    pub fn down(&mut self) {
        if let Some(mut g) = self.process.take() {
            let pid = g.0.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let _ = g.0.wait();
        }
        let port = self.port;
        wait_for("the broker port to close", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// A `mosquitto_sub` with a persistent QoS 1 session on the telemetry topic.
    pub fn observer(&self) -> Observer {
        let out = self
            .dir
            .path()
            .join(format!("observer-{}.txt", free_port()));
        let file = std::fs::File::create(&out).expect("observer file");
        let child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-u",
                "observer",
                "-i",
                "observer",
                "-c",
                "-q",
                "1",
            ])
            .args(["-t", "v1/devices/me/telemetry"])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto_sub");
        let log = self.dir.path().join("broker.log");
        wait_for("the observer to subscribe", Duration::from_secs(10), || {
            std::fs::read_to_string(&log)
                .is_ok_and(|l| l.contains("Received SUBSCRIBE from observer"))
        });
        Observer {
            out,
            _process: Guard(child),
        }
    }
}

pub struct Observer {
    out: PathBuf,
    _process: Guard,
}

impl Observer {
    pub fn lines(&self) -> Vec<String> {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.out) {
            let _ = f.read_to_string(&mut s);
        }
        s.lines().map(str::to_owned).collect()
    }

    /// The `values` object of every telemetry message received so far, in order. Panics on a
    /// message that is not ThingsBoard's `{"ts", "values"}` JSON or whose time stamp goes
    /// backwards (the sequence must arrive in order).
    pub fn values(&self) -> Vec<serde_json::Value> {
        let lines = self.lines();
        let mut last_ts = 0u64;
        lines
            .iter()
            .map(|l| {
                let mut v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("telemetry {l:?}: {e}"));
                let ts = v["ts"].as_u64().unwrap_or_else(|| panic!("no ts in {l}"));
                assert!(ts >= last_ts, "telemetry out of order: {lines:#?}");
                last_ts = ts;
                v["values"].take()
            })
            .collect()
    }

    pub fn wait_lines(&self, n: usize, limit: Duration) -> Vec<String> {
        wait_for(&format!("{n} telemetry messages"), limit, || {
            self.lines().len() >= n
        });
        self.lines()
    }
}

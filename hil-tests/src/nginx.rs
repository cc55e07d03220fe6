//! A real nginx (Debian's) on a free loopback port, for the tests that need a web server in front of
//! a casync chunk store: the agent's delta tests (a store devices read, throttled, stopped
//! mid-install) and eyasctl's publish tests (a WebDAV store it uploads to). The caller gives the
//! `server { … }` body and the access-log format; this runs nginx, waits until it listens, restarts
//! and stops it (SIGTERM, so that every connection closes) and reads the log's lines.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx from PATH or Debian's `/usr/sbin`; panics (fails the test) when it is not installed:
/// tests never skip silently.
fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("nginx is not installed; run .ci/install-deps (Debian package nginx)")
        })
}

/// A running nginx; stopped when dropped.
pub struct Nginx {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Nginx {
    /// Writes `dir/nginx.conf` and starts nginx with it. `dir` (which the caller owns and keeps)
    /// holds the configuration, `error.log`, `access.log` (lines in `log_format`, nginx
    /// variables such as `$request_uri $status`) and the body temp directory. `server` is the
    /// body of the one `server` block after its `listen` line; it is handed `dir`, so it can
    /// name (and create) files there.
    pub fn start(dir: &Path, log_format: &str, server: impl FnOnce(&Path) -> String) -> Self {
        std::fs::create_dir_all(dir.join("temp")).expect("mkdir temp");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  log_format custom '{log_format}';\n  access_log {d}/access.log custom;\n\
             client_body_temp_path {d}/temp; proxy_temp_path {d}/temp; fastcgi_temp_path {d}/temp;\n\
             uwsgi_temp_path {d}/temp; scgi_temp_path {d}/temp;\n  sendfile on;\n\
             server {{\n    listen 127.0.0.1:{port};\n{}\n  }}\n}}\n",
            server(dir)
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let mut me = Self {
            port,
            dir: dir.to_owned(),
            child: None,
        };
        me.restart();
        me
    }

    /// (Re)starts nginx with the same configuration (port, locations, log).
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(nginx_binary())
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-p")
            .arg(format!("{}/", self.dir.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < end,
                "nginx does not listen on {}: {}",
                self.port,
                std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops nginx: SIGTERM to its master (by pid), which closes every connection and ends its
    /// worker; waits up to 5 s for it, then kills it. The server is down until [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The access log's lines so far (nginx writes one once a response is sent).
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

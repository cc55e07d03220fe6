//! A real nginx (Debian's, with its WebDAV module) as the web server of a casync chunk store that
//! `eyasctl publish --casync --chunk-store URL` uploads to, with an access log of one
//! `METHOD URI STATUS` line per request.
//!
//! Locations under `/`, all served from one directory (`root`):
//! - `/store/`: WebDAV `PUT` (`dav_methods PUT; create_full_put_path on; client_max_body_size 0;`);
//!   `GET`/`HEAD` open to all (as devices read it), every other method needs HTTP Basic
//!   (`auth_basic` with an htpasswd file made by `openssl passwd -apr1`);
//! - `/nodav/`: a plain static location: `PUT` is refused with 405;
//! - `/down/`: always 503 (an outage: eyasctl retries, then gives up).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DavNginx {
    pub port: u16,
    /// The directory the locations are served from.
    pub root: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// One request in the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub method: String,
    pub uri: String,
    pub status: u16,
}

fn require(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("required tool {tool:?} is not installed; run .ci/install-deps (Debian package list there)")
        })
}

fn chmod(mode: &str, p: &Path) {
    let ok = Command::new("chmod")
        .arg(mode)
        .arg(p)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chmod {mode} {}", p.display());
}

impl DavNginx {
    /// Starts nginx on a free port of 127.0.0.1; `user`/`password` may write into `/store/`.
    pub fn start(user: &str, password: &str) -> Self {
        let nginx = require("nginx");
        let dir = tempfile::Builder::new()
            .prefix("eyasctl-nginx-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let root = d.join("www");
        for sub in ["www", "www/store", "www/nodav", "temp"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        // nginx's workers run as an unprivileged user when the tests run as root: they read the
        // configuration directory and write below the store and the body temp directory
        chmod("755", d);
        for sub in ["www", "www/store", "www/nodav", "temp"] {
            chmod("777", &d.join(sub));
        }
        let out = Command::new(require("openssl"))
            .args(["passwd", "-apr1", password])
            .output()
            .expect("openssl passwd runs");
        assert!(out.status.success(), "openssl passwd -apr1: {out:?}");
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        std::fs::write(d.join("htpasswd"), format!("{user}:{hash}\n")).expect("htpasswd");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "daemon off;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  log_format methods '$request_method $request_uri $status';\n\
                 access_log {d}/access.log methods;\n\
                 client_body_temp_path {d}/temp; proxy_temp_path {d}/temp; fastcgi_temp_path {d}/temp;\n\
                 uwsgi_temp_path {d}/temp; scgi_temp_path {d}/temp;\n\
                 server {{\n    listen 127.0.0.1:{port};\n    root {root};\n\
                 location /store/ {{\n      dav_methods PUT;\n      create_full_put_path on;\n\
                 dav_access user:rw group:r all:r;\n      client_max_body_size 0;\n\
                 limit_except GET {{ auth_basic \"chunk store\"; auth_basic_user_file {d}/htpasswd; }}\n    }}\n\
                 location /nodav/ {{ }}\n    location /down/ {{ return 503; }}\n  }}\n}}\n",
                d = d.display(),
                root = root.display(),
            ),
        )
        .expect("nginx.conf");
        let child = Command::new(nginx)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-p")
            .arg(format!("{}/", d.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let me = Self {
            port,
            root,
            dir,
            child: Some(child),
        };
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < end,
                "nginx does not listen on {port}: {}",
                std::fs::read_to_string(me.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        me
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every request logged so far (nginx writes a line once the response is sent).
    pub fn hits(&self) -> Vec<Hit> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some(Hit {
                    method: f.next()?.to_owned(),
                    uri: f.next()?.to_owned(),
                    status: f.next()?.parse().ok()?,
                })
            })
            .collect()
    }
}

impl Drop for DavNginx {
    /// SIGTERM to the master (by its pid): it closes every connection and ends its worker.
    fn drop(&mut self) {
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
}

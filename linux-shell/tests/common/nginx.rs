//! A real nginx serving one directory on 127.0.0.1 (the casync chunk store in the delta tests), with
//! an access log of one `URI STATUS BODY_BYTES` line per request: the bytes a device fetched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Guard, free_port, require_tool, wait_port};

pub struct Nginx {
    pub port: u16,
    pub access_log: PathBuf,
    _dir: tempfile::TempDir,
    child: Option<Guard>,
}

/// One request in the access log.
#[derive(Debug, Clone)]
pub struct Hit {
    pub uri: String,
    pub status: u16,
    pub body_bytes: u64,
}

impl Nginx {
    /// Serves `root` (which must be readable by nginx's unprivileged workers) at `/`;
    /// `limit_rate` (e.g. `"64k"`) throttles every response.
    pub fn start(root: &Path, limit_rate: Option<&str>) -> Self {
        require_tool("nginx");
        let dir = tempfile::Builder::new()
            .prefix("eyas-nginx-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("temp")).expect("mkdir");
        let port = free_port();
        let access_log = d.join("access.log");
        let rate = limit_rate.map_or(String::new(), |r| format!("limit_rate {r};"));
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "daemon off;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
                 events {{ worker_connections 64; }}\nhttp {{\n  log_format bytes '$request_uri $status $body_bytes_sent';\n\
                 access_log {log} bytes;\n  client_body_temp_path {d}/temp; proxy_temp_path {d}/temp; fastcgi_temp_path {d}/temp;\n\
                 uwsgi_temp_path {d}/temp; scgi_temp_path {d}/temp;\n  sendfile on;\n\
                 server {{ listen 127.0.0.1:{port}; root {root}; {rate} }}\n}}\n",
                d = d.display(),
                log = access_log.display(),
                root = root.display(),
            ),
        )
        .expect("nginx.conf");
        let mut me = Self {
            port,
            access_log,
            _dir: dir,
            child: None,
        };
        me.restart();
        me
    }

    /// (Re)starts nginx with the same configuration (port, root, log).
    pub fn restart(&mut self) {
        self.stop();
        let d = self._dir.path();
        self.child = Some(Guard(
            Command::new(require_tool("nginx"))
                .arg("-c")
                .arg(d.join("nginx.conf"))
                .arg("-p")
                .arg(format!("{}/", d.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nginx"),
        ));
        wait_port(self.port, Duration::from_secs(10));
    }

    /// Stops nginx: SIGTERM to its master (by pid), which closes every connection and ends its
    /// worker, then waits for the master; the store is down.
    pub fn stop(&mut self) {
        if let Some(mut g) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &g.0.id().to_string()])
                .status();
            for _ in 0..100 {
                if matches!(g.0.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every request logged so far (nginx writes a line once the response is sent).
    pub fn hits(&self) -> Vec<Hit> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some(Hit {
                    uri: f.next()?.to_owned(),
                    status: f.next()?.parse().ok()?,
                    body_bytes: f.next()?.parse().ok()?,
                })
            })
            .collect()
    }

    /// The chunk requests (`*.cacnk`) so far.
    pub fn chunk_hits(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.uri.ends_with(".cacnk"))
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

//! nginx serving one directory on 127.0.0.1 (the casync chunk store in the delta tests), with an
//! access log of one `URI STATUS BODY_BYTES` line per request: the bytes a device fetched.

use std::path::Path;

pub struct Nginx {
    server: hil_tests::nginx::Nginx,
    _dir: tempfile::TempDir,
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
        let dir = tempfile::Builder::new()
            .prefix("eyas-nginx-")
            .tempdir()
            .expect("tempdir");
        let rate = limit_rate.map_or(String::new(), |r| format!("limit_rate {r};"));
        let server = hil_tests::nginx::Nginx::start(
            dir.path(),
            "$request_uri $status $body_bytes_sent",
            |_| format!("    root {}; {rate}", root.display()),
        );
        Self { server, _dir: dir }
    }

    /// (Re)starts nginx with the same configuration (port, root, log).
    pub fn restart(&mut self) {
        self.server.restart();
    }

    /// Stops nginx (every connection closes); the store is down.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Every request logged so far (nginx writes a line once the response is sent).
    pub fn hits(&self) -> Vec<Hit> {
        self.server
            .log_lines()
            .iter()
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

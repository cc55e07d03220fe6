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

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct DavNginx {
    /// The directory the locations are served from.
    pub root: PathBuf,
    server: hil_tests::nginx::Nginx,
    _dir: tempfile::TempDir,
}

/// One request in the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub method: String,
    pub uri: String,
    pub status: u16,
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
        let out = Command::new("openssl")
            .args(["passwd", "-apr1", password])
            .output()
            .expect("openssl passwd runs (run .ci/install-deps)");
        assert!(out.status.success(), "openssl passwd -apr1: {out:?}");
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        std::fs::write(d.join("htpasswd"), format!("{user}:{hash}\n")).expect("htpasswd");
        let server = hil_tests::nginx::Nginx::start(
            d,
            "$request_method $request_uri $status",
            |d| {
                format!(
                    "    root {root};\n\
                 location /store/ {{\n      dav_methods PUT;\n      create_full_put_path on;\n\
                 dav_access user:rw group:r all:r;\n      client_max_body_size 0;\n\
                 limit_except GET {{ auth_basic \"chunk store\"; auth_basic_user_file {d}/htpasswd; }}\n    }}\n\
                 location /nodav/ {{ }}\n    location /down/ {{ return 503; }}",
                    d = d.display(),
                    root = root.display(),
                )
            },
        );
        Self {
            root,
            server,
            _dir: dir,
        }
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
                    method: f.next()?.to_owned(),
                    uri: f.next()?.to_owned(),
                    status: f.next()?.parse().ok()?,
                })
            })
            .collect()
    }
}

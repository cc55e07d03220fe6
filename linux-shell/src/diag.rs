//! `eyas download-verify` (hidden, diagnostic): one artifact download through the production
//! path — the agent's runtime shape (current-thread tokio + the blocking pool), [`Http`] with the
//! system roots, [`download::download`] feeding the core's `Verifier` in the same pass, fsync of
//! file and directory, and the core's size/digest verdict — without hawkBit and RAUC.
//!
//! For benchmarks (`benches/download_vs_curl.rs`) and for checking a device's download speed.
//! With `--wait-stdin` it prints `idle` on stdout once set up and waits for a line on stdin
//! before downloading, so a caller can read the idle memory first.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use eyas_core::verify::ArtifactSpec;

use crate::download::{self, DownloadRequest, hex};
use crate::http::{Http, HttpSettings};

/// Arguments of `eyas download-verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct DownloadVerifyArgs {
    /// Artifact URL (http or https)
    pub url: String,
    /// Expected SHA-256, hex
    #[arg(long)]
    pub sha256: String,
    /// Expected size in bytes
    #[arg(long)]
    pub size: u64,
    /// Destination file
    #[arg(long)]
    pub out: PathBuf,
    /// Print `idle` once set up, then wait for a line on stdin before downloading
    #[arg(long)]
    pub wait_stdin: bool,
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (n, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * n..2 * n + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Runs `eyas download-verify`: 0 = downloaded and verified, 1 = failed, 2 = bad arguments.
pub fn download_verify(args: &DownloadVerifyArgs) -> ExitCode {
    let Some(sha256) = parse_hex32(&args.sha256) else {
        eprintln!("eyas download-verify: --sha256 needs 64 hex digits");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("eyas download-verify: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The agent's defaults (connect_timeout 20 s, timeout 60 s, low_speed_time 60 s).
    let http = match Http::new(&HttpSettings {
        connect_timeout: Duration::from_secs(20),
        ..HttpSettings::with_limits(Duration::from_secs(60))
    }) {
        Ok(http) => http,
        Err(e) => {
            eprintln!("eyas download-verify: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args = args.clone();
    let result = rt.block_on(async move {
        if args.wait_stdin {
            // Idle as the agent is between polls: runtime parked, blocking-pool thread alive.
            let _ = tokio::task::spawn_blocking(|| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "idle");
                let _ = out.flush();
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
            })
            .await;
        }
        let spec = ArtifactSpec {
            size: args.size,
            sha256: Some(sha256),
            sha1: None,
        };
        tokio::task::spawn_blocking(move || {
            let cancel = AtomicBool::new(false);
            let req = DownloadRequest {
                url: &args.url,
                dest: &args.out,
                expected_size: Some(args.size),
                auth: None,
                client_cert: false,
                resume: false,
                keep_partial: false,
                low_speed_time: Duration::ZERO,
                low_speed_rate: 0,
                rate_limit: 0,
                sha1: false,
                spec: Some(spec),
                cancel: &cancel,
            };
            let done =
                download::download(&http, &req, &mut |_, _| {}).map_err(|e| e.to_string())?;
            let verifier = done.verifier.ok_or("no verifier")?;
            let verified = verifier
                .finish("", None)
                .map_err(|e| format!("verification failed: {e:?}"))?;
            Ok::<_, String>((done.bytes, done.elapsed, hex(&verified.sha256)))
        })
        .await
        .map_err(|e| e.to_string())?
    });
    match result {
        Ok((bytes, elapsed, digest)) => {
            println!(
                "ok {bytes} bytes sha256 {digest} in {:.3} s",
                elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("eyas download-verify: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex32() {
        let h = "00".repeat(31) + "ff";
        assert_eq!(parse_hex32(&h).map(|b| b[31]), Some(0xff));
        assert!(parse_hex32("abc").is_none());
        assert!(parse_hex32(&"zz".repeat(32)).is_none());
    }
}

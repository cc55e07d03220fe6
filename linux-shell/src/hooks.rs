//! External commands: health check, per-part handlers, confirmation, reboot.
//!
//! A command line from the configuration runs as `sh -c '<command> "$@"' eyas <args…>`, so
//! arguments (artifact paths) are passed verbatim, never re-parsed by the shell. It is killed
//! when `limit` passes. Output goes to eyas' stderr (and so to the journal).

use std::process::Stdio;
use std::time::Duration;

/// Runs `command` with `args`; `Ok` on exit status 0.
pub async fn run(command: &str, args: &[String], limit: Duration) -> Result<(), String> {
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{command} \"$@\""))
        .arg("eyas")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    match tokio::time::timeout(limit, child.wait()).await {
        Err(_) => {
            let _ = child.kill().await;
            Err(format!(
                "{command:?} did not finish within {} s and was killed",
                limit.as_secs()
            ))
        }
        Ok(Err(e)) => Err(format!("{command:?}: {e}")),
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{command:?} failed with {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn exit_codes_args_and_timeouts() {
        assert!(run("true", &[], Duration::from_secs(5)).await.is_ok());
        let e = run("exit 3", &[], Duration::from_secs(5))
            .await
            .expect_err("fails");
        assert!(e.contains("exit status: 3"), "{e}");
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("args");
        let cmd = format!("printf '%s|' > {}", out.display());
        run(&cmd, &["a b".into(), "$(x)".into()], Duration::from_secs(5))
            .await
            .expect("runs");
        assert_eq!(std::fs::read_to_string(&out).expect("read"), "a b|$(x)|");
        let start = std::time::Instant::now();
        let e = run("sleep 10", &[], Duration::from_millis(300))
            .await
            .expect_err("killed");
        assert!(e.contains("killed"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

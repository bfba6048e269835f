//! Real peers for the end-to-end tests: processes bounded in time and ended by their own PID,
//! and the throwaway MariaDB of `scripts/mariadb.sh`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::repo_root;

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with stdout and stderr in files under `dir` (no pipe can fill up), killing it by PID
/// when it outlives `timeout`.
pub fn run_bounded(mut cmd: Command, name: &str, dir: &Path, timeout: Duration) -> Finished {
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name}: still running after {timeout:?}; killed pid {} ({cmd:?}); stderr:\n{}",
                child.id(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned(),
    }
}

pub fn mariadb_script(action: &str, port: u16, dir: &Path) -> Finished {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/mariadb.sh"))
        .args([action, &port.to_string()]);
    run_bounded(
        cmd,
        &format!("mariadb-{action}"),
        dir,
        Duration::from_secs(90),
    )
}

/// The throwaway MariaDB; stopped (its PID killed, its directory removed) when dropped.
pub struct MariaDb {
    dir: PathBuf,
    port: u16,
}

impl MariaDb {
    pub fn start(dir: &Path, port: u16) -> MariaDb {
        // A server left by an interrupted run on this port is ours (mariadb.sh checks that the
        // PID belongs to its directory): start from a clean one.
        mariadb_script("stop", port, dir);
        let guard = MariaDb {
            dir: dir.to_path_buf(),
            port,
        };
        let out = mariadb_script("start", port, dir);
        assert!(
            out.status.success(),
            "scripts/mariadb.sh start {port} failed (needs mariadb-server, mariadb-client and \
             openssl: scripts/test.sh installs them):\n{}",
            out.stderr
        );
        let pid = out.stdout.trim();
        assert!(
            pid.parse::<u32>().is_ok(),
            "scripts/mariadb.sh start printed {pid:?}, not a PID"
        );
        eprintln!("mariadb up on 127.0.0.1:{port}, pid {pid}");
        guard
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // Never panics (it also runs while a failed assertion unwinds).
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("scripts/mariadb.sh"))
            .args(["stop", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match cmd.spawn() {
            Ok(mut child) => {
                let deadline = Instant::now() + Duration::from_secs(60);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if matches!(child.try_wait(), Ok(None)) {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!(
                        "scripts/mariadb.sh stop {} hung; see {}",
                        self.port,
                        self.dir.display()
                    );
                }
            }
            Err(e) => eprintln!("cannot run scripts/mariadb.sh stop {}: {e}", self.port),
        }
    }
}

//! `wirelag inject delay` (applying), `status` and `clear` through the real binary, on the paths
//! that are safe on any host: each either fails before any `tc ... add`/`del` runs or only reads
//! the kernel (`tc -j ... show`). Every test uses its own WIRELAG_STATE_DIR. Applying itself is
//! tested against a fake kernel in src/inject/apply/tests.rs, and for real inside a VM.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct StateDir(PathBuf);

impl StateDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "wirelag-inject-apply-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        StateDir(p)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wirelag(state: &StateDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wirelag"))
        .args(args)
        .env("WIRELAG_STATE_DIR", &state.0)
        .output()
        .expect("run wirelag")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn host_has_netem() -> bool {
    if Path::new("/sys/module/sch_netem").exists() {
        return true;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let modules = Path::new("/lib/modules").join(release.trim());
    ["modules.builtin", "modules.dep"].iter().any(|f| {
        std::fs::read_to_string(modules.join(f)).is_ok_and(|t| t.contains("/sch_netem.ko"))
    })
}

fn have_cap_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|bits| bits & (1 << 12) != 0)
}

/// On a kernel without sch_netem (this host's) applying fails naming the proxy backend, before
/// any tc command. On a kernel with it, the test must not apply anything: it hides tc instead
/// (empty PATH) and expects the tc check to refuse, which also comes before any tc command.
#[test]
fn delay_without_netem_names_the_proxy_backend() {
    let state = StateDir::new("nonetem");
    let args = ["inject", "delay", "--dev", "lo", "--time", "10"];
    if host_has_netem() {
        let out = Command::new(env!("CARGO_BIN_EXE_wirelag"))
            .args(args)
            .env("WIRELAG_STATE_DIR", &state.0)
            .env("PATH", "")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("tc not found"), "{}", stderr(&out));
    } else {
        let out = wirelag(&state, &args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let e = stderr(&out);
        assert!(e.contains("no sch_netem"), "{e}");
        assert!(e.contains("--backend proxy"), "{e}");
        assert!(stdout(&out).is_empty());
    }
    assert_eq!(
        std::fs::read_dir(&state.0).unwrap().count(),
        0,
        "no state file written"
    );
}

#[test]
fn delay_on_an_unknown_interface_is_a_usage_error() {
    let state = StateDir::new("unknownif");
    let out = wirelag(
        &state,
        &[
            "inject", "delay", "--dev", "wlnope0", "--time", "10", "--force",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no interface named wlnope0"));
}

#[test]
fn status_without_state_says_so() {
    let state = StateDir::new("status");
    let out = wirelag(&state, &["inject", "status", "--dev", "lo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("nothing of wirelag's on lo (no state file "),
        "{text}"
    );
    assert!(text.contains(&state.0.display().to_string()), "{text}");
    assert!(text.contains("root qdisc: "), "{text}");
}

#[test]
fn status_json_without_state() {
    let state = StateDir::new("statusjson");
    let out = wirelag(&state, &["inject", "status", "--dev", "lo", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["schema"], "wirelag.inject-status/v1");
    assert_eq!(j["dev"], "lo");
    assert!(j["state"].is_null());
    assert!(j["qdiscs"].is_array(), "{j}");
}

#[test]
fn clear_with_nothing_changes_nothing() {
    let state = StateDir::new("clear");
    let out = wirelag(&state, &["inject", "clear", "--dev", "lo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("nothing of wirelag's on lo"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn status_and_clear_on_an_unknown_interface_are_usage_errors() {
    let state = StateDir::new("unknown");
    for sub in ["status", "clear"] {
        let out = wirelag(&state, &["inject", sub, "--dev", "wlnope0"]);
        assert_eq!(out.status.code(), Some(2), "{sub}: {}", stderr(&out));
        assert!(stderr(&out).contains("no interface named wlnope0"));
        let out = wirelag(&state, &["inject", sub, "--dev", "bad/name"]);
        assert_eq!(out.status.code(), Some(2), "{sub}: {}", stderr(&out));
        assert!(stderr(&out).contains("not a valid interface name"));
    }
}

/// A state file as a crashed holder leaves it, for a root kind no kernel has, so that `clear`
/// can never match (and delete) a real root: it finds the tree "already gone".
fn crashed_state(dev: &str) -> String {
    format!(
        r#"{{
  "schema": "wirelag.inject-state/v1",
  "dev": "{dev}",
  "backend": "tc",
  "phase": "applied",
  "spec": {{"time_ms": 200, "offset_ms": null, "remote_ports": ["27017"], "local_ports": [],
    "destination_ips": [], "exclude_ports": [], "exclude_ips": [], "protocol": null,
    "loss_pct": null, "limit": null, "duration_s": 60}},
  "commands": [
    ["tc","qdisc","add","dev","{dev}","root","handle","1:","prio","bands","4"],
    ["tc","qdisc","add","dev","{dev}","parent","1:4","handle","40:","netem","delay","200ms"],
    ["tc","filter","add","dev","{dev}","parent","1:","prio","4","protocol","ip","u32","match","ip","dport","27017","0xffff","flowid","1:4"],
    ["tc","filter","add","dev","{dev}","parent","1:","prio","5","protocol","ipv6","u32","match","ip6","dport","27017","0xffff","flowid","1:4"]
  ],
  "revert": ["tc","qdisc","del","dev","{dev}","root"],
  "root": {{"kind": "wirelag-test-no-such-kind", "handle": "1:"}},
  "previous_root": null,
  "holder_pid": 4194305,
  "holder_start": null,
  "applied_at": "2024-01-01T00:00:00.000Z",
  "applied_at_epoch_ms": 1704067200000,
  "deadline": "2024-01-01T00:01:00.000Z",
  "deadline_epoch_ms": 1704067260000
}}
"#
    )
}

#[test]
fn status_reads_a_crashed_holders_state() {
    let state = StateDir::new("crashed");
    std::fs::write(state.0.join("inject-lo.json"), crashed_state("lo")).unwrap();
    let out = wirelag(&state, &["inject", "status", "--dev", "lo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "wirelag delay applied on lo (tc; state file ",
        "delay 200ms, remote ports 27017",
        "applied 2024-01-01T00:00:00.000Z (",
        "deadline 2024-01-01T00:01:00.000Z passed ",
        "holder pid 4194305 is not running",
        "    tc qdisc add dev lo root handle 1: prio bands 4\n",
        "kernel: DIFFERS from the record: expected prio 1: root bands 4, found ",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

#[test]
fn clear_after_a_crash_removes_the_stale_state() {
    let state = StateDir::new("clearcrashed");
    let path = state.0.join("inject-lo.json");
    std::fs::write(&path, crashed_state("lo")).unwrap();
    let out = wirelag(&state, &["inject", "clear", "--dev", "lo"]);
    if have_cap_net_admin() {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), "wirelag's tree on lo was already gone\n");
        assert!(!path.exists());
    } else {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("needs CAP_NET_ADMIN"),
            "{}",
            stderr(&out)
        );
        assert!(path.exists());
    }
}

#[test]
fn a_corrupt_state_file_is_named() {
    let state = StateDir::new("corrupt");
    std::fs::write(state.0.join("inject-lo.json"), "{\"schema\": ").unwrap();
    for sub in ["status", "clear"] {
        let out = wirelag(&state, &["inject", sub, "--dev", "lo"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("is not a wirelag state file"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn help_describes_applying() {
    let state = StateDir::new("help");
    let out = wirelag(&state, &["inject", "delay", "--help"]);
    let text = stdout(&out);
    for needle in [
        "--force",
        "CAP_NET_ADMIN",
        "--backend proxy",
        "inject clear",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let out = wirelag(&state, &["inject", "--help"]);
    let text = stdout(&out);
    assert!(!text.contains("not built yet"), "{text}");
}

//! apply / verify / revert / status / clear against the fake kernel ([`FakeTc`]): no root, no
//! netem, no host changes. Each test has its own state directory under the temp dir.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use super::*;
use crate::inject::fake::{FakeHost, FakeTc, Knobs};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("wirelag-apply-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts(dir: &TempDir, force: bool) -> ApplyOptions {
    ApplyOptions {
        force,
        state_dir: dir.0.clone(),
    }
}

fn host() -> FakeHost {
    FakeHost::capable(&["lo", "eth0"])
}

fn targeted() -> DelaySpec {
    let mut s = DelaySpec::new("eth0", 200);
    s.remote_ports = tc::parse_ports("--remote-port", "27017").unwrap();
    s.offset_ms = Some(10);
    s.loss_pct = Some(1.5);
    s.limit = Some(100);
    s.duration_s = Some(60);
    s
}

fn default_root(fake: &FakeTc) -> bool {
    fake.root("eth0") == Some(("noqueue".into(), "0:".into()))
}

/// A pid above the kernel's largest pid_max (2^22), so never running.
const DEAD_PID: u32 = (1 << 22) + 1;

#[test]
fn apply_verifies_records_and_reverts() {
    let dir = TempDir::new("roundtrip");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    assert!(g.verification().ok, "{:?}", g.verification());
    assert_eq!(
        g.verification().summary(),
        "prio 1: root bands 4; netem 40: on 1:4 delay 200ms jitter 10ms loss 1.5% limit 100; \
         1 u32 rule prio 4 protocol ip to 1:4; 1 u32 rule prio 5 protocol ipv6 to 1:4"
    );
    let path = state_path(&dir.0, "eth0");
    let s = load_state(&path).unwrap().unwrap();
    assert_eq!(s.schema, STATE_SCHEMA);
    assert_eq!(s.phase, Phase::Applied);
    assert_eq!(s.backend, "tc");
    assert_eq!(s.holder_pid, std::process::id());
    assert!(holder_alive(&s));
    assert_eq!(
        s.root,
        RootRecord {
            kind: "prio".into(),
            handle: Some("1:".into())
        }
    );
    assert_eq!(s.commands.len(), 4);
    assert_eq!(
        s.revert,
        argv_of(&["tc", "qdisc", "del", "dev", "eth0", "root"])
    );
    assert_eq!(s.spec.remote_ports, vec!["27017"]);
    assert_eq!(
        s.deadline_epoch_ms,
        Some(s.applied_at_epoch_ms + 60_000),
        "deadline = applied + --duration"
    );
    assert!(
        s.applied_at.ends_with('Z') && s.applied_at.len() == 24,
        "{}",
        s.applied_at
    );
    assert!(s.previous_root.is_none());
    assert_eq!(fake.root("eth0"), Some(("prio".into(), "1:".into())));

    let r = g.revert().unwrap().unwrap();
    assert_eq!(r.removed.as_deref(), Some("prio 1:"));
    assert!(default_root(&fake));
    assert!(!path.exists(), "state file removed");
    assert_eq!(
        fake.changes().last().unwrap(),
        "tc qdisc del dev eth0 root",
        "only wirelag's root is deleted"
    );
}

#[test]
fn root_netem_handle_is_read_back_into_the_state() {
    let dir = TempDir::new("rootnetem");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(
        &DelaySpec::new("eth0", 50),
        &opts(&dir, false),
        &host(),
        &fake,
    )
    .unwrap();
    assert_eq!(g.state().root.handle.as_deref(), Some("8001:"));
    let on_disk = load_state(g.state_path()).unwrap().unwrap();
    assert_eq!(on_disk.root.handle.as_deref(), Some("8001:"));
    assert_eq!(g.state().deadline, None);
    drop(g);
    assert!(default_root(&fake));
}

#[test]
fn failure_mid_way_rolls_back_and_names_the_command() {
    let dir = TempDir::new("midway");
    // Change 0 is the root prio, 1 the netem, 2 the first filter.
    let fake = FakeTc::new(&["eth0"]).with_knobs(Knobs {
        fail_change: Some(2),
        ..Knobs::default()
    });
    let e = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("`tc filter add dev eth0 parent 1: prio 4 protocol ip u32 match ip dport 27017 0xffff flowid 1:4` failed: RTNETLINK answers: Invalid argument"),
        "{msg}"
    );
    assert!(
        msg.contains("rolled back: eth0 is as it was before"),
        "{msg}"
    );
    assert!(default_root(&fake));
    assert!(!state_path(&dir.0, "eth0").exists());
    assert_eq!(fake.changes().last().unwrap(), "tc qdisc del dev eth0 root");
}

#[test]
fn failure_of_the_root_deletes_nothing() {
    let dir = TempDir::new("firstfails");
    let fake = FakeTc::new(&["eth0"]).with_knobs(Knobs {
        fail_change: Some(0),
        ..Knobs::default()
    });
    assert!(apply(&targeted(), &opts(&dir, false), &host(), &fake).is_err());
    // The failed add and nothing else: no `del root` of a root wirelag did not add.
    assert_eq!(fake.changes().len(), 1, "{:?}", fake.changes());
    assert!(!state_path(&dir.0, "eth0").exists());
}

#[test]
fn unknown_qdisc_kind_names_the_proxy() {
    let dir = TempDir::new("nokind");
    let fake = FakeTc::new(&["eth0"]).with_knobs(Knobs {
        unknown_kinds: vec!["netem".into()],
        ..Knobs::default()
    });
    let msg = format!(
        "{:#}",
        apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap_err()
    );
    assert!(msg.contains("Specified qdisc kind is unknown"), "{msg}");
    assert!(msg.contains("--backend proxy"), "{msg}");
    assert!(default_root(&fake));
}

#[test]
fn verification_mismatch_reverts_and_fails() {
    let dir = TempDir::new("mismatch");
    let fake = FakeTc::new(&["eth0"]).with_knobs(Knobs {
        netem_delay_s: Some(0.1),
        ..Knobs::default()
    });
    let msg = format!(
        "{:#}",
        apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap_err()
    );
    assert!(msg.contains("verification failed on eth0"), "{msg}");
    assert!(
        msg.contains("expected netem 40: on 1:4 delay 200ms"),
        "{msg}"
    );
    assert!(msg.contains("found netem 40: on 1:4 delay 100ms"), "{msg}");
    assert!(msg.contains("rolled back"), "{msg}");
    assert!(default_root(&fake));
    assert!(!state_path(&dir.0, "eth0").exists());
}

#[test]
fn missing_filters_fail_verification() {
    let dir = TempDir::new("nofilters");
    let fake = FakeTc::new(&["eth0"]).with_knobs(Knobs {
        drop_filters: true,
        ..Knobs::default()
    });
    let msg = format!(
        "{:#}",
        apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap_err()
    );
    assert!(
        msg.contains("expected 1 u32 rule prio 4 protocol ip to 1:4, found 0"),
        "{msg}"
    );
    assert!(default_root(&fake));
}

#[test]
fn foreign_root_is_refused_without_force() {
    let dir = TempDir::new("foreign");
    let fake = FakeTc::new(&["eth0"]);
    fake.set_root("eth0", "fq", "8001:", json!({}));
    let msg = format!(
        "{:#}",
        apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap_err()
    );
    assert!(
        msg.contains("a qdisc wirelag did not make: root fq 8001:"),
        "{msg}"
    );
    assert!(msg.contains("--force"), "{msg}");
    assert!(fake.changes().is_empty());
    assert!(!state_path(&dir.0, "eth0").exists());
}

#[test]
fn force_records_and_restores_the_previous_root() {
    let dir = TempDir::new("force");
    let fake = FakeTc::new(&["eth0"]);
    fake.set_root("eth0", "pfifo", "8003:", json!({"limit": 50}));
    let g = apply(&targeted(), &opts(&dir, true), &host(), &fake).unwrap();
    let prev = g.state().previous_root.clone().unwrap();
    assert_eq!(
        (prev.kind.as_str(), prev.handle.as_str()),
        ("pfifo", "8003:")
    );
    assert_eq!(
        tc::render_argv(&prev.restore),
        "tc qdisc add dev eth0 root handle 8003: pfifo limit 50"
    );
    assert!(prev.options_restored);
    assert!(
        g.notes()[0].contains("--force: replacing the root pfifo 8003:"),
        "{:?}",
        g.notes()
    );
    assert_eq!(fake.changes()[0], "tc qdisc del dev eth0 root");
    let r = g.revert().unwrap().unwrap();
    assert_eq!(r.restored.as_deref(), Some("pfifo 8003:"));
    assert_eq!(fake.root("eth0"), Some(("pfifo".into(), "8003:".into())));
    assert_eq!(
        fake.dev("eth0").unwrap().root.options["limit"],
        json!(50),
        "options restored"
    );
}

#[test]
fn force_says_what_it_cannot_restore() {
    let dir = TempDir::new("forcehtb");
    let fake = FakeTc::new(&["eth0"]);
    fake.set_root("eth0", "htb", "1:", json!({"r2q": 10, "default": "0x30"}));
    let g = apply(
        &DelaySpec::new("eth0", 20),
        &opts(&dir, true),
        &host(),
        &fake,
    )
    .unwrap();
    assert!(
        g.notes()[0].contains("options are not restored"),
        "{:?}",
        g.notes()
    );
    let r = g.revert().unwrap().unwrap();
    assert!(
        r.describe().contains("htb's options were not restored"),
        "{}",
        r.describe()
    );
    assert_eq!(fake.root("eth0"), Some(("htb".into(), "1:".into())));
}

#[test]
fn rollback_under_force_restores_the_previous_root() {
    let dir = TempDir::new("forcerollback");
    // Change 0 deletes the previous root, 1 adds wirelag's root prio, 2 fails.
    let fake = FakeTc::new(&["eth0"]).with_knobs(Knobs {
        fail_change: Some(2),
        ..Knobs::default()
    });
    fake.set_root("eth0", "pfifo", "8003:", json!({"limit": 50}));
    assert!(apply(&targeted(), &opts(&dir, true), &host(), &fake).is_err());
    assert_eq!(fake.root("eth0"), Some(("pfifo".into(), "8003:".into())));
    assert!(!state_path(&dir.0, "eth0").exists());
}

#[test]
fn existing_state_is_refused_even_with_force() {
    let dir = TempDir::new("twice");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    for force in [false, true] {
        let msg = format!(
            "{:#}",
            apply(&targeted(), &opts(&dir, force), &host(), &fake).unwrap_err()
        );
        assert!(msg.contains("wirelag already has rules on eth0"), "{msg}");
        assert!(msg.contains("inject clear --dev eth0"), "{msg}");
    }
    assert!(
        g.still_recorded(),
        "the refused run did not touch the state"
    );
    drop(g);
    assert!(default_root(&fake));
}

#[test]
fn missing_cap_net_admin_changes_nothing() {
    let dir = TempDir::new("nocap");
    let fake = FakeTc::new(&["eth0"]);
    let mut h = host();
    h.cap_net_admin = false;
    let msg = format!(
        "{:#}",
        apply(&targeted(), &opts(&dir, false), &h, &fake).unwrap_err()
    );
    assert!(msg.contains("needs CAP_NET_ADMIN"), "{msg}");
    assert!(fake.log().is_empty());
    assert!(!state_path(&dir.0, "eth0").exists());
}

#[test]
fn panic_while_holding_reverts() {
    let dir = TempDir::new("panic");
    let fake = FakeTc::new(&["eth0"]);
    let o = opts(&dir, false);
    let h = host();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = apply(&targeted(), &o, &h, &fake).unwrap();
        assert_eq!(fake.root("eth0"), Some(("prio".into(), "1:".into())));
        panic!("workload blew up");
    }));
    assert!(result.is_err());
    assert!(default_root(&fake));
    assert!(!state_path(&dir.0, "eth0").exists());
}

#[test]
fn deadline_and_stop_revert() {
    let dir = TempDir::new("deadline");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    assert!(g.deadline().is_some());
    let end = g
        .hold_until(&StopFlag::new(), Some(Instant::now()))
        .unwrap();
    assert!(
        matches!(end, HoldEnd::Deadline(ref r) if r.removed.is_some()),
        "{end:?}"
    );
    assert!(default_root(&fake));

    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    let stop = StopFlag::new();
    stop.request();
    let end = g.hold(&stop).unwrap();
    assert!(matches!(end, HoldEnd::Stopped(_)), "{end:?}");
    assert!(default_root(&fake));
    assert!(!state_path(&dir.0, "eth0").exists());
}

#[test]
fn guard_does_not_revert_what_clear_removed() {
    let dir = TempDir::new("clearedelsewhere");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    let c = clear("eth0", &host(), Some(&fake), &dir.0).unwrap();
    assert!(matches!(c, Cleared::Reverted(_)), "{c:?}");
    assert!(!g.still_recorded());
    let changes = fake.changes().len();
    // Someone applies again; the old guard must leave the new rules alone.
    let g2 = apply(
        &DelaySpec::new("eth0", 5),
        &opts(&dir, false),
        &host(),
        &fake,
    )
    .unwrap();
    let changes2 = fake.changes().len();
    assert!(changes2 > changes);
    let stop = StopFlag::new();
    stop.request();
    assert_eq!(g.hold(&stop).unwrap(), HoldEnd::ClearedElsewhere);
    assert_eq!(
        fake.changes().len(),
        changes2,
        "the old guard changed nothing"
    );
    assert!(g2.still_recorded());
    drop(g2);
    assert!(default_root(&fake));
}

/// Simulates a holder killed with SIGKILL: the guard never runs, the pid is dead.
fn crash(g: Applied<'_>) -> PathBuf {
    let path = g.state_path().to_path_buf();
    std::mem::forget(g);
    let mut s = load_state(&path).unwrap().unwrap();
    s.holder_pid = DEAD_PID;
    update_state(&path, &s).unwrap();
    path
}

#[test]
fn clear_after_a_crash_removes_the_tree_and_restores() {
    let dir = TempDir::new("crash");
    let fake = FakeTc::new(&["eth0"]);
    fake.set_root(
        "eth0",
        "prio",
        "8002:",
        json!({"bands": 3, "priomap": [1,2,2,2,1,2,0,0,1,1,1,1,1,1,1,1]}),
    );
    let g = apply(&targeted(), &opts(&dir, true), &host(), &fake).unwrap();
    let path = crash(g);

    let st = status("eth0", &host(), Some(&fake), &dir.0).unwrap();
    assert_eq!(st.holder_alive, Some(false));
    let text = render_status(&st);
    assert!(
        text.contains(&format!("holder pid {DEAD_PID} is not running")),
        "{text}"
    );
    assert!(text.contains("kernel: matches the record"), "{text}");
    assert!(
        text.contains("replaced root prio 8002: (--force)"),
        "{text}"
    );

    let c = clear("eth0", &host(), Some(&fake), &dir.0).unwrap();
    let Cleared::Reverted(r) = c else {
        panic!("{c:?}")
    };
    assert_eq!(
        r.describe(),
        "removed wirelag's prio 1: tree from eth0; restored the previous root prio 8002:"
    );
    assert_eq!(fake.root("eth0"), Some(("prio".into(), "8002:".into())));
    assert_eq!(
        fake.changes().last().unwrap(),
        "tc qdisc add dev eth0 root handle 8002: prio bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"
    );
    assert!(!path.exists());
}

#[test]
fn clear_with_nothing_touches_nothing() {
    let dir = TempDir::new("nothing");
    let fake = FakeTc::new(&["eth0"]);
    fake.set_root("eth0", "fq", "8001:", json!({}));
    assert_eq!(
        clear("eth0", &host(), Some(&fake), &dir.0).unwrap(),
        Cleared::Nothing
    );
    assert!(fake.log().is_empty());
    let e = clear("eth9", &host(), Some(&fake), &dir.0).unwrap_err();
    assert!(e.downcast_ref::<crate::UsageError>().is_some(), "{e:#}");
}

#[test]
fn clear_leaves_a_root_that_is_not_wirelags() {
    let dir = TempDir::new("notours");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    let path = crash(g);
    // Someone replaced wirelag's tree with their own after the crash.
    fake.set_root("eth0", "fq", "8009:", json!({}));
    let msg = format!(
        "{:#}",
        clear("eth0", &host(), Some(&fake), &dir.0).unwrap_err()
    );
    assert!(
        msg.contains("now fq 8009:, not the prio wirelag installed"),
        "{msg}"
    );
    assert_eq!(fake.root("eth0"), Some(("fq".into(), "8009:".into())));
    assert!(path.exists(), "state kept for a human to decide");
}

#[test]
fn clear_when_the_tree_is_already_gone() {
    let dir = TempDir::new("gone");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    let path = crash(g);
    fake.set_root("eth0", "noqueue", "0:", json!({}));
    let Cleared::Reverted(r) = clear("eth0", &host(), Some(&fake), &dir.0).unwrap() else {
        panic!()
    };
    assert_eq!(r.removed, None);
    assert!(r.describe().contains("already gone"));
    assert!(!path.exists());
}

#[test]
fn clear_when_the_interface_is_gone() {
    let dir = TempDir::new("ifgone");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    let path = crash(g);
    let h = FakeHost::capable(&["lo"]);
    assert_eq!(
        clear("eth0", &h, Some(&fake), &dir.0).unwrap(),
        Cleared::InterfaceGone
    );
    assert!(!path.exists());
}

#[test]
fn clear_needs_cap_net_admin_only_when_there_is_something() {
    let dir = TempDir::new("clearcap");
    let fake = FakeTc::new(&["eth0"]);
    let mut h = host();
    h.cap_net_admin = false;
    assert_eq!(
        clear("eth0", &h, Some(&fake), &dir.0).unwrap(),
        Cleared::Nothing
    );
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    let path = crash(g);
    let msg = format!("{:#}", clear("eth0", &h, Some(&fake), &dir.0).unwrap_err());
    assert!(msg.contains("needs CAP_NET_ADMIN"), "{msg}");
    assert!(path.exists());
}

#[test]
fn status_with_rules_shows_age_remaining_holder_and_kernel_check() {
    let dir = TempDir::new("status");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(&targeted(), &opts(&dir, false), &host(), &fake).unwrap();
    let st = status("eth0", &host(), Some(&fake), &dir.0).unwrap();
    assert_eq!(st.holder_alive, Some(true));
    assert!(st.age_s.unwrap() <= 2);
    let rem = st.remaining_s.unwrap();
    assert!((57..=60).contains(&rem), "{rem}");
    let text = render_status(&st);
    for needle in [
        "wirelag delay applied on eth0 (tc; state file ",
        "delay 200ms jitter 10ms loss 1.5% limit 100, remote ports 27017",
        "s ago)",
        "(in ",
        &format!("held by pid {} (running)", std::process::id()),
        "    tc qdisc add dev eth0 parent 1:4 handle 40: netem delay 200ms 10ms loss 1.5% limit 100",
        "kernel: matches the record (prio 1: root bands 4;",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let j = serde_json::to_value(&st).unwrap();
    assert_eq!(j["schema"], "wirelag.inject-status/v1");
    assert_eq!(j["state"]["spec"]["time_ms"], 200);
    assert_eq!(j["verification"]["ok"], true);
    drop(g);
}

#[test]
fn status_notices_a_kernel_that_drifted() {
    let dir = TempDir::new("drift");
    let fake = FakeTc::new(&["eth0"]);
    let g = apply(
        &DelaySpec::new("eth0", 200),
        &opts(&dir, false),
        &host(),
        &fake,
    )
    .unwrap();
    // Someone ran `tc qdisc change dev eth0 root netem delay 50ms`.
    fake.set_root(
        "eth0",
        "netem",
        "8001:",
        json!({"limit": 1000, "delay": {"delay": 0.05, "jitter": 0, "correlation": 0}}),
    );
    let text = render_status(&status("eth0", &host(), Some(&fake), &dir.0).unwrap());
    assert!(
        text.contains("kernel: DIFFERS from the record: expected netem root delay 200ms, found root netem 8001: delay 50ms"),
        "{text}"
    );
    g.revert().unwrap();
}

#[test]
fn status_without_state_shows_foreign_qdiscs() {
    let dir = TempDir::new("nostate");
    let fake = FakeTc::new(&["eth0"]);
    let text = render_status(&status("eth0", &host(), Some(&fake), &dir.0).unwrap());
    assert!(
        text.starts_with("nothing of wirelag's on eth0 (no state file "),
        "{text}"
    );
    assert!(
        text.contains("root qdisc: noqueue (the kernel's default)"),
        "{text}"
    );
    fake.set_root("eth0", "fq", "8001:", json!({}));
    let text = render_status(&status("eth0", &host(), Some(&fake), &dir.0).unwrap());
    assert!(text.contains("not wirelag's: root fq 8001:"), "{text}");
    assert!(fake.changes().is_empty(), "status changes nothing");
    let e = status("eth9", &host(), Some(&fake), &dir.0).unwrap_err();
    assert!(e.downcast_ref::<crate::UsageError>().is_some());
}

#[test]
fn iproute2_json_is_read_as_printed() {
    // iproute2 6.1 on this host (`tc -j qdisc show dev lo` / `dev eth0`), and netem, prio and
    // u32 as q_netem.c / q_prio.c / f_u32.c print them.
    let q =
        parse_qdiscs(r#"[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}}]"#)
            .unwrap();
    assert!(foreign_qdiscs(&q).is_empty());
    let q = parse_qdiscs(
        r#"[{"kind":"mq","handle":"0:","root":true,"options":{}},
            {"kind":"fq_codel","handle":"0:","parent":":1","options":{"limit":10240}},
            {"kind":"ingress","handle":"ffff:","parent":"ffff:fff1","options":{}}]"#,
    )
    .unwrap();
    assert!(
        foreign_qdiscs(&q).is_empty(),
        "mq and its kernel children are default"
    );
    let q = parse_qdiscs(
        r#"[{"kind":"prio","handle":"1:","root":true,"refcnt":2,"options":{"bands":4,"priomap":[1,2,2,2,1,2,0,0,1,1,1,1,1,1,1,1],"multiqueue":false}},
            {"kind":"netem","handle":"40:","parent":"1:4","options":{"limit":100,"delay":{"delay":0.2,"jitter":0.01,"correlation":0},"loss-random":{"loss":0.015,"correlation":0},"ecn":false,"gap":0}}]"#,
    )
    .unwrap();
    let f = parse_filters(
        r#"[{"parent":"1:","protocol":"ip","pref":4,"kind":"u32","chain":0},
            {"parent":"1:","protocol":"ip","pref":4,"kind":"u32","chain":0,"options":{"fh":"800:","ht_divisor":1}},
            {"parent":"1:","protocol":"ip","pref":4,"kind":"u32","chain":0,"options":{"fh":"800::800","order":2048,"key_ht":"800","bkt":"0","flowid":"1:4","not_in_hw":true,"match":{"value":"6989","mask":"ffff","offmask":"","off":20}}},
            {"parent":"1:","protocol":"ipv6","pref":5,"kind":"u32","chain":0,"options":{"fh":"801::800","order":2048,"key_ht":"801","bkt":"0","flowid":"1:4","not_in_hw":true}}]"#,
    )
    .unwrap();
    assert_eq!(f.len(), 2, "hash-table entries are not rules");
    let cmds = tc::build(&targeted()).unwrap();
    let v = verify(&cmds, &q, &f);
    assert!(v.ok, "{v:?}");
    // An older iproute2 printing %g seconds: 4294967ms -> 4294.97 s is within tolerance.
    let big = Netem {
        delay_ms: 4_294_967,
        jitter_ms: None,
        loss_pct: None,
        limit: None,
    };
    assert_eq!(
        netem_mismatch(&json!({"delay": {"delay": 4294.97, "jitter": 0}}), &big),
        None
    );
    assert!(
        netem_mismatch(&json!({"limit": 1000}), &big).is_some(),
        "no delay shown"
    );
}

#[test]
fn spec_record_round_trips() {
    let mut s = targeted();
    s.local_ports = tc::parse_ports("--local-port", "8000-8010,22").unwrap();
    s.destination_ips = tc::parse_ips("--destination-ip", "10.0.0.5,2001:db8::/64").unwrap();
    s.exclude_ips = tc::parse_ips("--exclude-ip", "192.168.0.0/16").unwrap();
    s.protocol = Some(tc::Proto::Tcp);
    let r = SpecRecord::from_spec(&s);
    assert_eq!(r.local_ports, vec!["8000-8010", "22"]);
    assert_eq!(r.to_spec("eth0").unwrap(), s);
    let text = serde_json::to_string(&r).unwrap();
    let back: SpecRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
}

#[test]
fn times_render_for_people() {
    assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339_ms(1_433_536_241_428), "2015-06-05T20:30:41.428Z");
    assert_eq!(human_duration(7), "7s");
    assert_eq!(human_duration(245), "4m 05s");
    assert_eq!(human_duration(3723), "1h 02m 03s");
}

#[test]
fn restore_commands_for_known_kinds() {
    let q = |kind: &str, options: Value| Qdisc {
        kind: kind.into(),
        handle: "8001:".into(),
        parent: None,
        root: true,
        options,
    };
    let (a, ok) = restore_argv(
        "eth0",
        &q(
            "netem",
            json!({"limit": 1000, "delay": {"delay": 0.1, "jitter": 0.005}, "loss-random": {"loss": 0.01}}),
        ),
    );
    assert!(ok);
    assert_eq!(
        tc::render_argv(&a),
        "tc qdisc add dev eth0 root handle 8001: netem limit 1000 delay 100000us 5000us loss 1%"
    );
    let (a, ok) = restore_argv("eth0", &q("tbf", json!({"rate": 1000})));
    assert!(!ok);
    assert_eq!(
        tc::render_argv(&a),
        "tc qdisc add dev eth0 root handle 8001: tbf"
    );
}

/// The kernel's own words: every rule layout was applied in the QEMU VM (Linux 6.1, iproute2 6.1)
/// by scripts/vm-tc-samples.sh, and `tc -j qdisc/filter show` recorded in fixtures/tc/. The
/// verifier must accept each of them for the commands the same flags build, and those commands
/// must be the ones the VM ran.
#[test]
fn verify_accepts_what_a_real_kernel_reported_for_every_layout() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        delay: crate::inject::DelayArgs,
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/vm-tc-samples-payload.sh")).unwrap();
    let dir = root.join("fixtures/tc/linux-6.1-iproute2-6.1");
    let mut cases = 0;
    for line in script.lines().filter(|l| l.starts_with("sample ")) {
        let mut words = line.split_whitespace().skip(1);
        let name = words.next().unwrap();
        let args = ["inject-delay", "--dev", "lo"]
            .into_iter()
            .chain(words)
            .collect::<Vec<_>>();
        let spec = Cli::try_parse_from(&args).unwrap().delay.spec().unwrap();
        let commands = tc::build(&spec).unwrap();
        let case = dir.join(name);
        let ran = std::fs::read_to_string(case.join("inject-dry-run.txt")).unwrap();
        assert!(
            ran.starts_with(&tc::render(&commands)),
            "{name}: the VM ran\n{ran}\nbut the flags now build\n{}",
            tc::render(&commands)
        );
        let qdiscs =
            parse_qdiscs(&std::fs::read_to_string(case.join("tc-qdisc.json")).unwrap()).unwrap();
        let filters =
            parse_filters(&std::fs::read_to_string(case.join("tc-filter.json")).unwrap()).unwrap();
        let v = verify(&commands, &qdiscs, &filters);
        assert!(v.ok, "{name}: {}", v.mismatches());
        cases += 1;
    }
    assert_eq!(cases, 10);
}

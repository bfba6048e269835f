//! A fake kernel behind [`TcRunner`], for tests of applying, verifying, reverting and clearing
//! without root, without netem and without touching the host.
//!
//! It keeps a qdisc tree and a u32 filter list per interface, runs the `tc` argv that
//! [`super::tc`] and [`super::apply`] produce, refuses what the kernel refuses (a second root,
//! deleting a default root, a parent that does not exist) with the kernel's messages, and
//! answers `tc -j qdisc show` / `tc -j filter show` in iproute2 6.x's JSON layout (netem's
//! delay in seconds, loss as a fraction, u32 hash-table entries beside the rules). Knobs make it
//! misbehave: fail the n-th change, install another delay than asked, drop filters, not know a
//! qdisc kind. Public so that other commands' tests (`experiment`) can use it too.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::apply::{TcOutput, TcRunner};

#[derive(Debug, Clone, PartialEq)]
pub struct FakeQdisc {
    pub kind: String,
    pub handle: String,
    /// None for the root.
    pub parent: Option<String>,
    pub options: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeFilter {
    pub pref: u16,
    pub protocol: String,
    pub flowid: String,
}

#[derive(Debug, Clone)]
pub struct FakeDev {
    pub root: FakeQdisc,
    pub children: Vec<FakeQdisc>,
    pub filters: Vec<FakeFilter>,
}

impl FakeDev {
    fn with_default_root(kind: &str) -> Self {
        FakeDev {
            root: FakeQdisc {
                kind: kind.into(),
                handle: "0:".into(),
                parent: None,
                options: json!({}),
            },
            children: Vec::new(),
            filters: Vec::new(),
        }
    }
}

/// How the fake kernel misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// The n-th (0-based) state-changing command fails with EINVAL.
    pub fail_change: Option<usize>,
    /// netem installs this delay (seconds) whatever it was asked.
    pub netem_delay_s: Option<f64>,
    /// `filter add` succeeds but installs nothing.
    pub drop_filters: bool,
    /// Qdisc kinds this kernel does not have (e.g. "netem").
    pub unknown_kinds: Vec<String>,
}

#[derive(Debug, Default)]
struct Kernel {
    devs: BTreeMap<String, FakeDev>,
    knobs: Knobs,
    changes: usize,
    next_handle: u32,
    log: Vec<Vec<String>>,
}

/// The fake kernel; `run` takes the same argv the real `tc` would.
#[derive(Debug, Default)]
pub struct FakeTc(Mutex<Kernel>);

impl FakeTc {
    /// A kernel with `devs`, each with the default `noqueue` root.
    pub fn new(devs: &[&str]) -> Self {
        let fake = FakeTc::default();
        {
            let mut k = fake.lock();
            k.next_handle = 0x8001;
            for d in devs {
                k.devs
                    .insert((*d).to_string(), FakeDev::with_default_root("noqueue"));
            }
        }
        fake
    }

    pub fn with_knobs(self, knobs: Knobs) -> Self {
        self.lock().knobs = knobs;
        self
    }

    pub fn set_knobs(&self, knobs: Knobs) {
        self.lock().knobs = knobs;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kernel> {
        // A test that panicked while holding the lock must not hide the kernel from the others.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces `dev`'s root with a user-made one (e.g. `fq` with handle `8001:`), as if an
    /// administrator had run `tc qdisc add dev D root ...`.
    pub fn set_root(&self, dev: &str, kind: &str, handle: &str, options: Value) {
        let mut k = self.lock();
        let d = k
            .devs
            .entry(dev.to_string())
            .or_insert_with(|| FakeDev::with_default_root("noqueue"));
        d.root = FakeQdisc {
            kind: kind.into(),
            handle: handle.into(),
            parent: None,
            options,
        };
        d.children.clear();
        d.filters.clear();
    }

    pub fn dev(&self, dev: &str) -> Option<FakeDev> {
        self.lock().devs.get(dev).cloned()
    }

    /// The root's (kind, handle).
    pub fn root(&self, dev: &str) -> Option<(String, String)> {
        self.dev(dev).map(|d| (d.root.kind, d.root.handle))
    }

    /// Every argv run so far.
    pub fn log(&self) -> Vec<Vec<String>> {
        self.lock().log.clone()
    }

    /// The state-changing argv run so far (no `-j ... show`).
    pub fn changes(&self) -> Vec<String> {
        self.lock()
            .log
            .iter()
            .filter(|a| a.get(1).map(String::as_str) != Some("-j"))
            .map(|a| a.join(" "))
            .collect()
    }
}

fn ok(stdout: String) -> TcOutput {
    TcOutput {
        success: true,
        stdout,
        stderr: String::new(),
    }
}

fn fail(stderr: &str) -> TcOutput {
    TcOutput {
        success: false,
        stdout: String::new(),
        stderr: format!("{stderr}\n"),
    }
}

/// `200ms`, `1.5s`, `300us` → seconds.
fn parse_time(t: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1e-6)
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

fn netem_options(args: &[String], knobs: &Knobs) -> Result<Value, &'static str> {
    let mut delay = 0.0;
    let mut jitter = 0.0;
    let mut loss: Option<f64> = None;
    let mut limit = 1000u64;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "delay" => {
                delay = args
                    .get(i + 1)
                    .and_then(|t| parse_time(t))
                    .ok_or("Illegal \"latency\"")?;
                i += 2;
                if let Some(j) = args.get(i).and_then(|t| parse_time(t)) {
                    jitter = j;
                    i += 1;
                }
            }
            "loss" => {
                let p = args
                    .get(i + 1)
                    .and_then(|t| t.trim_end_matches('%').parse::<f64>().ok())
                    .ok_or("Illegal \"loss\"")?;
                loss = Some(p / 100.0);
                i += 2;
            }
            "limit" => {
                limit = args
                    .get(i + 1)
                    .and_then(|t| t.parse().ok())
                    .ok_or("Illegal \"limit\"")?;
                i += 2;
            }
            _ => return Err("What is this netem argument?"),
        }
    }
    if let Some(d) = knobs.netem_delay_s {
        delay = d;
    }
    let mut o = json!({"limit": limit});
    if delay > 0.0 {
        o["delay"] = json!({"delay": delay, "jitter": jitter, "correlation": 0});
    }
    if let Some(l) = loss {
        o["loss-random"] = json!({"loss": l, "correlation": 0});
    }
    o["ecn"] = json!(false);
    o["gap"] = json!(0);
    Ok(o)
}

fn prio_options(args: &[String]) -> Result<Value, &'static str> {
    let mut bands = 3u64;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "bands" => {
                bands = args
                    .get(i + 1)
                    .and_then(|t| t.parse().ok())
                    .ok_or("Illegal \"bands\"")?;
                i += 2;
            }
            "priomap" => i = args.len(),
            _ => return Err("What is this prio argument?"),
        }
    }
    Ok(json!({"bands": bands, "priomap": [1,2,2,2,1,2,0,0,1,1,1,1,1,1,1,1], "multiqueue": false}))
}

impl Kernel {
    fn qdisc_json(&self, dev: &str) -> Option<String> {
        let d = self.devs.get(dev)?;
        let mut all = vec![json!({
            "kind": d.root.kind, "handle": d.root.handle, "root": true, "refcnt": 2,
            "options": d.root.options,
        })];
        for c in &d.children {
            all.push(json!({
                "kind": c.kind, "handle": c.handle, "parent": c.parent, "options": c.options,
            }));
        }
        Some(Value::Array(all).to_string())
    }

    fn filter_json(&self, dev: &str) -> Option<String> {
        let d = self.devs.get(dev)?;
        let mut all = Vec::new();
        let mut seen: Vec<(u16, &str)> = Vec::new();
        for (n, f) in d.filters.iter().enumerate() {
            let chain = (f.pref, f.protocol.as_str());
            let base = json!({"parent": "1:", "protocol": f.protocol, "pref": f.pref,
                "kind": "u32", "chain": 0});
            if !seen.contains(&chain) {
                seen.push(chain);
                all.push(base.clone());
                let mut ht = base.clone();
                ht["options"] = json!({"fh": "800:", "ht_divisor": 1});
                all.push(ht);
            }
            let mut rule = base;
            rule["options"] = json!({"fh": format!("800::{:x}", 0x800 + n), "order": 2048,
                "key_ht": "800", "bkt": "0", "flowid": f.flowid, "not_in_hw": true,
                "match": {"value": "0", "mask": "0", "offmask": "", "off": 0}});
            all.push(rule);
        }
        Some(Value::Array(all).to_string())
    }

    fn change(&mut self, argv: &[String]) -> TcOutput {
        let n = self.changes;
        self.changes += 1;
        if self.knobs.fail_change == Some(n) {
            return fail("RTNETLINK answers: Invalid argument");
        }
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        match a.as_slice() {
            ["tc", "qdisc", "del", "dev", dev, "root"] => {
                let Some(d) = self.devs.get_mut(*dev) else {
                    return fail("Cannot find device");
                };
                if d.root.handle == "0:" {
                    return fail("Error: Cannot delete qdisc with handle of zero.");
                }
                *d = FakeDev::with_default_root("noqueue");
                ok(String::new())
            }
            ["tc", "qdisc", "add", "dev", dev, rest @ ..] => self.add_qdisc(dev, rest),
            ["tc", "filter", "add", "dev", dev, "parent", "1:", "prio", prio, "protocol", proto, "u32", rest @ ..] =>
            {
                let drop = self.knobs.drop_filters;
                let Some(d) = self.devs.get_mut(*dev) else {
                    return fail("Cannot find device");
                };
                if d.root.handle != "1:" {
                    return fail("Error: Parent Qdisc doesn't exists.");
                }
                let Some(flowid) = rest
                    .iter()
                    .position(|x| *x == "flowid")
                    .and_then(|i| rest.get(i + 1))
                else {
                    return fail("Illegal \"classid\"");
                };
                let Ok(pref) = prio.parse() else {
                    return fail("Illegal \"priority\"");
                };
                if d.filters
                    .iter()
                    .any(|f| f.pref == pref && f.protocol != *proto)
                {
                    return fail("Error: Filter with specified priority/protocol not found.");
                }
                if !drop {
                    d.filters.push(FakeFilter {
                        pref,
                        protocol: proto.to_string(),
                        flowid: flowid.to_string(),
                    });
                }
                ok(String::new())
            }
            _ => fail("Command line is not complete. Try option \"help\""),
        }
    }

    fn add_qdisc(&mut self, dev: &str, rest: &[&str]) -> TcOutput {
        let (parent, rest) = match rest {
            ["root", r @ ..] => (None, r),
            ["parent", p, r @ ..] => (Some(p.to_string()), r),
            _ => return fail("Command line is not complete."),
        };
        let (handle, rest) = match rest {
            ["handle", h, r @ ..] => (Some(h.to_string()), r),
            r => (None, r),
        };
        let Some((kind, args)) = rest.split_first() else {
            return fail("Command line is not complete.");
        };
        if self.knobs.unknown_kinds.iter().any(|k| k == kind) {
            return fail("Error: Specified qdisc kind is unknown.");
        }
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let options = match *kind {
            "netem" => netem_options(&args, &self.knobs),
            "prio" => prio_options(&args),
            // Other kinds: numeric `key value` pairs, as `pfifo limit 50` prints.
            _ => Ok(Value::Object(
                args.chunks(2)
                    .filter_map(|kv| match kv {
                        [k, v] => v.parse::<u64>().ok().map(|n| (k.clone(), json!(n))),
                        _ => None,
                    })
                    .collect(),
            )),
        };
        let options = match options {
            Ok(o) => o,
            Err(e) => return fail(e),
        };
        let handle = match handle {
            Some(h) => h,
            None => {
                let h = format!("{:x}:", self.next_handle);
                self.next_handle += 1;
                h
            }
        };
        let Some(d) = self.devs.get_mut(dev) else {
            return fail("Cannot find device");
        };
        let q = FakeQdisc {
            kind: kind.to_string(),
            handle,
            parent: parent.clone(),
            options,
        };
        match parent {
            None => {
                if d.root.handle != "0:" {
                    return fail("Error: Exclusivity flag on, cannot modify.");
                }
                d.root = q;
            }
            Some(p) => {
                let Some((major, band)) = p.split_once(':') else {
                    return fail("Error: Invalid parent.");
                };
                let bands = d.root.options["bands"].as_u64().unwrap_or(0);
                let band: u64 = band.parse().unwrap_or(0);
                if d.root.handle != format!("{major}:") || band == 0 || band > bands {
                    return fail("Error: Failed to find specified qdisc.");
                }
                if d.children.iter().any(|c| c.parent.as_deref() == Some(&p)) {
                    return fail("Error: Exclusivity flag on, cannot modify.");
                }
                d.children.push(q);
            }
        }
        ok(String::new())
    }
}

impl TcRunner for FakeTc {
    fn run(&self, argv: &[String]) -> anyhow::Result<TcOutput> {
        let mut k = self.lock();
        k.log.push(argv.to_vec());
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        Ok(match a.as_slice() {
            ["tc", "-j", "qdisc", "show", "dev", dev] => match k.qdisc_json(dev) {
                Some(j) => ok(j),
                None => fail(&format!("Cannot find device \"{dev}\"")),
            },
            ["tc", "-j", "filter", "show", "dev", dev] => match k.filter_json(dev) {
                Some(j) => ok(j),
                None => fail(&format!("Cannot find device \"{dev}\"")),
            },
            _ => k.change(argv),
        })
    }
}

/// A host for [`super::preflight`]: interfaces, tc, kernel modules and CAP_NET_ADMIN as given.
#[derive(Debug, Clone)]
pub struct FakeHost {
    pub interfaces: Vec<String>,
    pub tc: bool,
    pub modules: Vec<String>,
    pub cap_net_admin: bool,
}

impl FakeHost {
    /// `devs`, tc installed, sch_netem + sch_prio + cls_u32, CAP_NET_ADMIN.
    pub fn capable(devs: &[&str]) -> Self {
        FakeHost {
            interfaces: devs.iter().map(|d| d.to_string()).collect(),
            tc: true,
            modules: ["sch_netem", "sch_prio", "cls_u32"]
                .iter()
                .map(|m| m.to_string())
                .collect(),
            cap_net_admin: true,
        }
    }

    pub fn without_module(mut self, module: &str) -> Self {
        self.modules.retain(|m| m != module);
        self
    }
}

impl super::Host for FakeHost {
    fn interfaces(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.interfaces.clone())
    }
    fn find_tc(&self) -> Option<std::path::PathBuf> {
        self.tc.then(|| std::path::PathBuf::from("/usr/sbin/tc"))
    }
    fn has_module(&self, module: &str) -> anyhow::Result<bool> {
        Ok(self.modules.iter().any(|m| m == module))
    }
    fn has_cap_net_admin(&self) -> anyhow::Result<bool> {
        Ok(self.cap_net_admin)
    }
}

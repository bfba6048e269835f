//! `tcp.stream` numbering on situations the corpus lacks (reused 4-tuples, retransmitted SYNs,
//! captures that start mid-connection), checked frame by frame against tshark.

mod common;

use std::net::IpAddr;

use common::pcapgen::*;
use common::*;

struct Conv {
    c: (IpAddr, u16),
    s: (IpAddr, u16),
}

impl Conv {
    fn new(c: &str, cp: u16, s: &str, sp: u16) -> Self {
        Conv {
            c: (c.parse().unwrap(), cp),
            s: (s.parse().unwrap(), sp),
        }
    }
    fn to_s(&self, seq: u32, ack: u32, flags: u8, payload: &[u8], t_us: u64) -> Seg {
        Seg {
            src: self.c,
            dst: self.s,
            seq,
            ack,
            flags,
            payload: payload.to_vec(),
            t_us,
        }
    }
    fn to_c(&self, seq: u32, ack: u32, flags: u8, payload: &[u8], t_us: u64) -> Seg {
        Seg {
            src: self.s,
            dst: self.c,
            seq,
            ack,
            flags,
            payload: payload.to_vec(),
            t_us,
        }
    }
    /// Handshake, one request/response, FIN both ways, starting at `t` with ISNs `ci`, `si`.
    fn full(&self, ci: u32, si: u32, t: u64) -> Vec<Seg> {
        vec![
            self.to_s(ci, 0, SYN, b"", t),
            self.to_c(si, ci + 1, SYN | ACK, b"", t + 100),
            self.to_s(ci + 1, si + 1, ACK, b"", t + 200),
            self.to_s(ci + 1, si + 1, PSH | ACK, b"ping", t + 300),
            self.to_c(si + 1, ci + 5, PSH | ACK, b"pong!", t + 900),
            self.to_s(ci + 5, si + 6, FIN | ACK, b"", t + 1000),
            self.to_c(si + 6, ci + 6, FIN | ACK, b"", t + 1100),
            self.to_s(ci + 6, si + 7, ACK, b"", t + 1200),
        ]
    }
}

/// Per-frame stream numbers from wirelag and tshark must be identical.
fn assert_same_numbering(name: &str, segs: &[Seg]) -> Vec<Option<u64>> {
    let path = temp_path(&format!("{name}.pcap"));
    std::fs::write(&path, pcap(segs)).unwrap();
    let p = path.to_str().unwrap();
    let theirs: Vec<Option<u64>> = tshark(&["-r", p, "-T", "fields", "-e", "tcp.stream"])
        .lines()
        .map(|l| l.trim().parse().ok())
        .collect();
    let out = run_wirelag(&["frames", p, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours: Vec<Option<u64>> = doc["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["stream"].as_u64())
        .collect();
    assert_eq!(
        ours, theirs,
        "{name}: wirelag vs tshark tcp.stream per frame"
    );
    ours
}

#[test]
fn reused_port_after_fin_is_a_new_stream() {
    let c = Conv::new("10.0.0.1", 40000, "10.0.0.2", 3306);
    let mut segs = c.full(1000, 7000, 0);
    segs.extend(c.full(900_000, 3_000_000, 5000));
    let n = assert_same_numbering("reuse-fin", &segs);
    assert_eq!(n.iter().flatten().max(), Some(&1));
}

#[test]
fn reused_port_after_rst_is_a_new_stream() {
    let c = Conv::new("10.0.0.1", 40001, "10.0.0.2", 3306);
    let mut segs = c.full(1000, 7000, 0)[..5].to_vec();
    segs.push(c.to_s(1005, 0, RST, b"", 1000));
    segs.extend(c.full(55_555, 66_666, 2000));
    assert_same_numbering("reuse-rst", &segs);
}

#[test]
fn retransmitted_syn_stays_in_its_stream() {
    let c = Conv::new("10.0.0.1", 40002, "10.0.0.2", 27017);
    let mut segs = vec![c.to_s(1000, 0, SYN, b"", 0)];
    segs.extend(c.full(1000, 7000, 1_000_000));
    let n = assert_same_numbering("syn-retrans", &segs);
    assert!(n.iter().all(|s| *s == Some(0)));
}

#[test]
fn new_syn_on_an_open_connection_starts_a_stream() {
    let c = Conv::new("10.0.0.1", 40003, "10.0.0.2", 3306);
    let mut segs = c.full(1000, 7000, 0)[..5].to_vec();
    segs.extend(c.full(424_242, 5, 3000));
    assert_same_numbering("syn-while-open", &segs);
}

#[test]
fn mid_stream_start_then_reuse() {
    let c = Conv::new("10.0.0.1", 40004, "10.0.0.2", 3306);
    let mut segs = c.full(1000, 7000, 0)[3..].to_vec();
    segs.extend(c.full(8_000_000, 9_000_000, 4000));
    assert_same_numbering("midstream-reuse", &segs);
}

#[test]
fn syn_ack_first_and_interleaved_conversations() {
    let a = Conv::new("10.0.0.1", 40005, "10.0.0.2", 3306);
    let b = Conv::new("10.0.0.3", 50000, "10.0.0.2", 3306);
    let mut segs = Vec::new();
    let fa = a.full(10, 20, 0);
    let fb = b.full(30, 40, 50);
    for i in 1..8 {
        segs.push(fa[i].clone());
        segs.push(fb[i - 1].clone());
    }
    segs.extend(a.full(99_999, 1, 9000));
    assert_same_numbering("interleaved", &segs);
}

#[test]
fn ipv6_reuse() {
    let c = Conv::new("2001:db8::1", 40006, "2001:db8::2", 3306);
    let mut segs = c.full(1000, 7000, 0);
    segs.extend(c.full(5_000_000, 77, 3000));
    assert_same_numbering("ipv6-reuse", &segs);
}

#[test]
fn server_side_syn_on_an_old_pair() {
    // The old server reopens toward the old client port: a SYN in the other direction.
    let c = Conv::new("10.0.0.1", 40007, "10.0.0.2", 3306);
    let mut segs = c.full(1000, 7000, 0);
    let r = Conv::new("10.0.0.2", 3306, "10.0.0.1", 40007);
    segs.extend(r.full(123_456, 654_321, 5000));
    assert_same_numbering("reverse-syn", &segs);
}

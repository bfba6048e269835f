//! Live capture through libpcap on the loopback interface (needs CAP_NET_RAW: CI runs as root).
//! Real traffic from this test, captured by the real binary.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn live_capture_on_loopback_numbers_streams_and_sees_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = wirelag()
        .args([
            "live",
            "-i",
            "lo",
            "-f",
            &format!("tcp port {port}"),
            "--json-lines",
            "-c",
            "20",
            "--duration",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the capture is open.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains("capturing on lo"),
        "live did not start: {line}"
    );

    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).unwrap();
            s.write_all(b"pong!").unwrap();
        }
    });
    for _ in 0..2 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        drop(c);
        std::thread::sleep(Duration::from_millis(50));
    }
    server.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(out.status.success(), "{line}{rest}");
    let frames: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        frames.len() >= 14,
        "expected two full connections, got {} frames",
        frames.len()
    );
    let syns: Vec<&serde_json::Value> = frames
        .iter()
        .filter(|f| f["tcp"]["flags"] == "SYN")
        .collect();
    assert_eq!(syns.len(), 2);
    assert_eq!(syns[0]["stream"], 0);
    assert_eq!(syns[1]["stream"], 1);
    assert_eq!(syns[0]["dst_port"], port);
    // Nanosecond kernel timestamps survive into microsecond output; the clock is now-ish.
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let t = syns[0]["time_epoch_us"].as_i64().unwrap();
    assert!(
        (now_us - t).abs() < 60_000_000,
        "timestamp {t} vs now {now_us}"
    );
    let payload: Vec<&serde_json::Value> = frames.iter().filter(|f| f["tcp"]["len"] == 4).collect();
    assert_eq!(payload.len(), 2, "the two 'ping' segments");
}

//! `wirelag interfaces`: the host's network interfaces (what `live -i` and `--dev` take), as a
//! table or as `wirelag.interfaces/v1` JSON.

use std::io::Write;

use serde::Serialize;

use crate::interfaces::{self, InterfaceInfo};

#[derive(Serialize)]
struct InterfacesJson<'a> {
    schema: &'static str,
    interfaces: &'a [InterfaceInfo],
}

pub fn run(json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let list = interfaces::list();
    if json {
        serde_json::to_writer(
            &mut *out,
            &InterfacesJson {
                schema: "wirelag.interfaces/v1",
                interfaces: &list,
            },
        )?;
        out.write_all(b"\n")?;
    } else {
        print_table(&list, out)?;
    }
    out.flush()?;
    Ok(())
}

/// One row per interface; an interface's further addresses go on lines of their own under the
/// first, so every column stays aligned.
pub fn print_table(list: &[InterfaceInfo], out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|i| {
            [
                i.index.to_string(),
                i.name.clone(),
                i.mtu.map_or_else(|| "-".into(), |m| m.to_string()),
                i.mac.clone().unwrap_or_else(|| "-".into()),
                i.flag_names().join(","),
            ]
        })
        .collect();
    let header = ["INDEX", "NAME", "MTU", "MAC", "FLAGS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5], addr: &str, out: &mut dyn Write| -> std::io::Result<()> {
        let mut text = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            text.push_str(&format!("{cell:<w$}  "));
        }
        text.push_str(addr);
        writeln!(out, "{}", text.trim_end())
    };
    line(header, "ADDRESSES", out)?;
    for (i, row) in list.iter().zip(&rows) {
        let addrs: Vec<String> = i
            .addresses
            .iter()
            .map(|a| format!("{}/{}", a.address, a.prefix_len))
            .collect();
        let cells = [
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[3].as_str(),
            row[4].as_str(),
        ];
        line(cells, addrs.first().map_or("-", String::as_str), out)?;
        for a in addrs.iter().skip(1) {
            line(["", "", "", "", ""], a, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interfaces::AddressInfo;

    #[test]
    fn the_table_aligns_and_lists_every_address() {
        let lo = InterfaceInfo {
            name: "lo".into(),
            index: 1,
            mac: Some("00:00:00:00:00:00".into()),
            mtu: Some(65536),
            up: true,
            running: true,
            loopback: true,
            broadcast: false,
            multicast: false,
            point_to_point: false,
            addresses: vec![
                AddressInfo {
                    family: "inet",
                    address: "127.0.0.1".into(),
                    prefix_len: 8,
                },
                AddressInfo {
                    family: "inet6",
                    address: "::1".into(),
                    prefix_len: 128,
                },
            ],
        };
        let wg = InterfaceInfo {
            name: "wg0".into(),
            index: 12,
            mac: None,
            mtu: None,
            up: false,
            running: false,
            loopback: false,
            broadcast: false,
            multicast: false,
            point_to_point: true,
            addresses: vec![],
        };
        let mut out = Vec::new();
        print_table(&[lo, wg], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let expected = "\
INDEX  NAME  MTU    MAC                FLAGS                ADDRESSES
1      lo    65536  00:00:00:00:00:00  UP,RUNNING,LOOPBACK  127.0.0.1/8
                                                            ::1/128
12     wg0   -      -                  POINTOPOINT          -
";
        assert_eq!(text, expected);
    }
}

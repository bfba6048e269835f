#!/usr/bin/env python3
"""Makes a bigger benchmark capture from a loopback one: N copies back to back, each copy's
client side moved to its own address (127.k.0.1, IPv4 over Ethernet) and shifted in time, so the
copies are distinct connections rather than retransmissions of the first.

usage: scale-capture.py IN.pcap OUT.pcap N SERVER_PORT
"""
import struct, sys

src, dst, n, server_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = open(src, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
assert magic in (0xA1B2C3D4, 0xA1B23C4D), "little-endian pcap expected"
frac = 1_000_000 if magic == 0xA1B2C3D4 else 1_000_000_000
assert struct.unpack("<I", data[20:24])[0] == 1, "Ethernet expected"
recs, off = [], 24
while off + 16 <= len(data):
    s, f, incl, orig = struct.unpack("<IIII", data[off:off + 16])
    recs.append((s, f, data[off + 16:off + 16 + incl], orig))
    off += 16 + incl
span = (recs[-1][0] - recs[0][0]) + 1
with open(dst, "wb") as out:
    out.write(data[:24])
    for k in range(n):
        for s, f, pkt, orig in recs:
            p = bytearray(pkt)
            if len(p) >= 38 and p[12:14] == b"\x08\x00" and p[23] == 6:
                ihl = (p[14] & 15) * 4
                sport, dport = struct.unpack(">HH", p[14 + ihl:18 + ihl])
                if k:
                    if sport != server_port:
                        p[26:30] = bytes([127, k, 0, 1])   # client is the source
                    if dport != server_port:
                        p[30:34] = bytes([127, k, 0, 1])   # client is the destination
            out.write(struct.pack("<IIII", s + k * span, f, len(p), orig))
            out.write(p)

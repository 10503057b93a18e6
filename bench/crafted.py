#!/usr/bin/env python3
"""Writes the captures built to fill phonehome's tables, stores and queues, for
bench/memory.sh. Usage: crafted.py DIRECTORY. Plain pcap, Ethernet, microsecond times.

  filled.pcap   2,200 connections of 46 out-of-order segments behind a gap; 700
                unfinished 110 KB ClientHellos in 16 KiB records; 220,000 DNS answers for
                250-byte names; 1.2 million SYNs from distinct sources (391 MB)
  emails.pcap   40,000 connections, each sending 30 distinct e-mail addresses: 1.2 million
                distinct findings (52 MB)
  queries.pcap  8,000 client ports of 256 unanswered DNS queries with long names (594 MB)
  pipelined.pcap 300 connections of 64 pipelined requests with 16 KB heads, never
                answered (325 MB)
  datagrams.pcap a million one-datagram UDP flows, each carrying an e-mail address (89 MB)
  malformed.pcap 20,000 frames whose IPv4 length claims more than was captured: 40,000
                anomalies, past the 10,000 kept in detail (1.4 MB; memory.sh gives it 100
                times over, as links)

Host logs built to fill the host model (its budget, --host-memory):
  tables.strace  1.1 million processes, each exec'ing a script, opening a file of its own
                 and connecting to a distinct IPv4 and IPv6 end (653 MB)
  unfinished.strace 2 million calls on distinct threads waiting for their second half
                 (a connect with its address) (253 MB)
  egress.log     2 million netfilter LOG lines of distinct tuples (460 MB)
  network.csv    300,000 Procmon network rows of distinct processes (110 MB)
"""
import os
import struct
import sys


class Capture:
    def __init__(self, path):
        self.out = open(path, "wb")
        self.out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.seconds, self.micros = 1700000000, 0

    def frame(self, packet):
        self.micros += 1
        if self.micros >= 1000000:
            self.seconds, self.micros = self.seconds + 1, 0
        data = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00" + packet
        self.out.write(struct.pack("<IIII", self.seconds, self.micros, len(data), len(data)))
        self.out.write(data)

    def close(self):
        self.out.close()


def ipv4(src, dst, proto, payload):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0, bytes(src), bytes(dst)) + payload


def tcp(sport, dport, seq, ack, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, flags, 65535, 0, 0) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


CLIENT = [10, 0, 0, 5]


def connection(c, server, port, dport, stream, ack_every):
    """A handshake, then `stream` from the client in 1,448-byte segments, the server
    acknowledging every `ack_every`-th one; nothing ever answers it."""
    c.frame(ipv4(CLIENT, server, 6, tcp(port, dport, 1000, 0, 0x02)))
    c.frame(ipv4(server, CLIENT, 6, tcp(dport, port, 5000, 1001, 0x12)))
    seq = 1001
    for k, i in enumerate(range(0, len(stream), 1448)):
        segment = stream[i:i + 1448]
        c.frame(ipv4(CLIENT, server, 6, tcp(port, dport, seq, 5001, 0x18, segment)))
        seq += len(segment)
        if k % ack_every == 0:
            c.frame(ipv4(server, CLIENT, 6, tcp(dport, port, 5001, seq, 0x10)))


def filled(c):
    held = b"A" * 1448
    for n in range(2200):
        server, port = [198, 18, n // 256, n % 256], 20000 + n
        c.frame(ipv4(CLIENT, server, 6, tcp(port, 8080, 1000, 0, 0x02)))
        c.frame(ipv4(server, CLIENT, 6, tcp(8080, port, 5000, 1001, 0x12)))
        for k in range(46):  # the first 1,448 bytes never come: the rest waits
            c.frame(ipv4(CLIENT, server, 6, tcp(port, 8080, 1001 + 1448 + k * 1448, 5001, 0x18, held)))
    hello = b"\x01" + (120000).to_bytes(3, "big") + b"\x03\x03" + b"B" * (120000 - 2)
    records = b"".join(b"\x16\x03\x01" + len(hello[i:i + 16384]).to_bytes(2, "big") + hello[i:i + 16384]
                       for i in range(0, 110000, 16384))
    for n in range(700):
        connection(c, [198, 19, n // 256, n % 256], 30000 + n, 443, records, 1)
    for i in range(220000):
        labels = [("n%07d" % i) + "x" * 55, "y" * 63, "z" * 63, "example", "com"]
        name = b"".join(bytes([len(l)]) + l.encode() for l in labels) + b"\x00"
        answer = (struct.pack("!HHHHHH", i & 0xFFFF, 0x8180, 1, 1, 0, 0) + name + b"\x00\x01\x00\x01"
                  + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04" + bytes([100, (i >> 16) & 255, (i >> 8) & 255, i & 255]))
        c.frame(ipv4([10, 0, 0, 1], CLIENT, 17, udp(53, 40000 + i % 20000, answer)))
    for i in range(1200000):
        source = [10, 1 + (i >> 16) % 200, (i >> 8) & 255, i & 255]
        c.frame(ipv4(source, [198, 20, 0, 1], 6, tcp(1024 + i % 60000, 443, 7, 0, 0x02)))


def emails(c):
    server = [198, 51, 100, 9]
    for n in range(40000):
        source, port = [10, 2, n >> 8, n & 255], 10000 + n % 50000
        payload = b" ".join(b"user%07d.%02d@mail-example.com" % (n, k) for k in range(30)) + b"\n"
        c.frame(ipv4(source, server, 6, tcp(port, 9000, 100, 0, 0x02)))
        c.frame(ipv4(server, source, 6, tcp(9000, port, 900, 101, 0x12)))
        c.frame(ipv4(source, server, 6, tcp(port, 9000, 101, 901, 0x18, payload)))
        c.frame(ipv4(source, server, 6, tcp(port, 9000, 101 + len(payload), 901, 0x11)))
        c.frame(ipv4(server, source, 6, tcp(9000, port, 901, 102 + len(payload), 0x11)))


def queries(c):
    labels = b"".join(bytes([63]) + b"q" * 63 for _ in range(3))
    for n in range(8000):
        for q in range(256):
            name = bytes([10]) + b"%010d" % (n * 256 + q) + labels + b"\x07example\x03com\x00"
            message = struct.pack("!HHHHHH", q, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
            c.frame(ipv4(CLIENT, [10, 0, 0, 1], 17, udp(30000 + n, 53, message)))


def pipelined(c):
    head = b"GET /x HTTP/1.1\r\nHost: a.example\r\nX-Pad: " + b"p" * 16000 + b"\r\n\r\n"
    stream = head * 64
    for n in range(300):
        connection(c, [198, 18, 1, n % 250 + 1], 20000 + n, 80, stream, 8)


def datagrams(c):
    for i in range(1000000):
        source = [10, 1 + (i >> 16) % 200, (i >> 8) & 255, i & 255]
        c.frame(ipv4(source, [198, 20, 0, 1], 17, udp(1024 + i % 60000, 9999, b"id u%07d@mail-example.com ok" % i)))


def tables_strace(out):
    for i in range(1100000):
        pid, t = 100000 + i, "%d.%06d" % (1700000000 + i // 1000, i % 1000 * 1000)
        out.write(b'%d %s execve("/usr/bin/python3", ["python3", "/srv/jobs/job%d.py", "--flag"], 0x7ffd /* 20 vars */) = 0\n'
                  % (pid, t.encode(), i))
        out.write(b'%d %s openat(AT_FDCWD, "/srv/lib/python3/site-packages/pkg%d/__init__.py", O_RDONLY|O_CLOEXEC) = 3\n'
                  % (pid, t.encode(), i))
        out.write(b'%d %s connect(4, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("93.%d.%d.%d")}, 16) = 0\n'
                  % (pid, t.encode(), i >> 16, (i >> 8) & 255, i & 255))
        out.write(b'%d %s connect(5, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
                  b'inet_pton(AF_INET6, "2001:db8::%x:%x", &sin6_addr), sin6_scope_id=0}, 28) = -1 EINPROGRESS '
                  b'(Operation now in progress)\n' % (pid, t.encode(), i >> 16, i & 0xFFFF))


def unfinished_strace(out):
    for i in range(2000000):
        out.write(b'%d 1700000000.%06d connect(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("93.184.%d.%d")}, 16'
                  b' <unfinished ...>\n' % (100000 + i, i % 1000000, (i >> 8) & 255, i & 255))


def egress_log(out):
    for i in range(2000000):
        out.write(b'2025-01-01T00:%02d:%02d.%06d+00:00 host kernel: EGRESS-ALLOW IN= OUT=eth0 SRC=10.0.%d.%d DST=93.%d.%d.%d LEN=60 '
                  b'TOS=0x00 PREC=0x00 TTL=64 ID=%d DF PROTO=TCP SPT=%d DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0 UID=1000 GID=1000\n'
                  % (i // 60000 % 60, i // 1000 % 60, i % 1000, (i >> 8) & 255, i & 255, i >> 16, (i >> 8) & 255, i & 255,
                     i & 0xFFFF, 1024 + i % 60000))


def network_csv(out):
    out.write(b'"Time of Day","Process Name","PID","Operation","Path","Result","Detail","TID","Event Class","Date & Time",'
              b'"Image Path","User","Command Line","Parent PID"\n')
    for i in range(300000):
        out.write(b'"4:33:14.%07d PM","python%d.exe","%d","TCP Connect","10.0.0.2:%d -> 93.%d.%d.%d:443","SUCCESS",'
                  b'"Length: 0, mss: 1460","%d","Network","7/11/2020 4:33:14 PM","C:\\Python\\python%d.exe","HOST\\user%d",'
                  b'"C:\\Python\\python%d.exe C:\\jobs\\job%d.py --upload https://example.com/%d","4"\n'
                  % (i % 10000000, i, 100000 + i, 1024 + i % 60000, i >> 16, (i >> 8) & 255, i & 255, 100000 + i, i, i, i, i, i))


def malformed(c):
    for i in range(20000):
        packet = bytearray(ipv4([10, 0, i >> 8 & 255, i & 255], [93, 184, 216, 34], 6, b"\x00" * 8))
        packet[2:4] = struct.pack("!H", 1500)
        c.frame(bytes(packet))


def image_cdx(out):
    """A CycloneDX of an image near the 256 MiB cap: 400,000 components, each with its
    hashes, licence, properties and evidence (fields read and fields skipped)."""
    out.write(b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[')
    for i in range(400000):
        out.write(b'%s{"type":"library","bom-ref":"pkg:pypi/package-%d@1.%d.0?package-id=%016x","name":"package-%d",'
                  b'"version":"1.%d.0","purl":"pkg:pypi/package-%d@1.%d.0","licenses":[{"license":{"id":"MIT"}}],'
                  b'"hashes":[{"alg":"SHA-256","content":"%064x"}],"properties":[{"name":"syft:package:foundBy",'
                  b'"value":"python-installed-package-cataloger"},{"name":"syft:location:0:path",'
                  b'"value":"/usr/lib/python3/dist-packages/package_%d-1.0.dist-info/METADATA"}],"evidence":{"occurrences":'
                  b'[{"location":"/usr/lib/python3/dist-packages/package_%d/__init__.py"}]}}'
                  % (b"," if i else b"", i, i % 7, i, i, i % 7, i, i % 7, i * 2654435761, i, i))
    out.write(b"]}")


def image_syft(out):
    """A syft JSON listing every file of every package (a dpkg database's file lists):
    20,000 packages of 100 files."""
    out.write(b'{"schema":{"version":"16.0.0"},"artifacts":[')
    for i in range(20000):
        files = b",".join(b'{"path":"/usr/lib/x86_64-linux-gnu/pkg%d/file%d.so","digest":{"algorithm":"md5","value":"%032x"}}'
                          % (i, j, i * 100 + j) for j in range(100))
        out.write(b'%s{"id":"%016x","name":"pkg%d","version":"1.0","type":"deb","purl":"pkg:deb/debian/pkg%d@1.0",'
                  b'"locations":[{"path":"/var/lib/dpkg/status"}],"metadata":{"package":"pkg%d","files":[%s]}}'
                  % (b"," if i else b"", i, i, i, i, files))
    out.write(b"]}")


def tiny_cdx(out):
    """Two million components of a name each (14 bytes): the most packages a byte."""
    out.write(b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[')
    out.write(b",".join(b'{"name":"%x"}' % i for i in range(2000000)))
    out.write(b"]}")


LOGS = [("tables.strace", tables_strace), ("unfinished.strace", unfinished_strace), ("egress.log", egress_log),
        ("network.csv", network_csv), ("image.cdx.json", image_cdx), ("image.syft.json", image_syft),
        ("tiny.cdx.json", tiny_cdx)]

CAPTURES = [("filled.pcap", filled), ("emails.pcap", emails), ("queries.pcap", queries),
            ("pipelined.pcap", pipelined), ("datagrams.pcap", datagrams), ("malformed.pcap", malformed)]

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: crafted.py DIRECTORY")
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, write in CAPTURES:
        path = os.path.join(sys.argv[1], name)
        if os.path.exists(path):
            continue
        capture = Capture(path + ".partial")
        write(capture)
        capture.close()
        os.rename(path + ".partial", path)
        print(f"{path}: {os.path.getsize(path) // 1000000} MB", flush=True)
    for name, write in LOGS:
        path = os.path.join(sys.argv[1], name)
        if os.path.exists(path):
            continue
        with open(path + ".partial", "wb") as out:
            write(out)
        os.rename(path + ".partial", path)
        print(f"{path}: {os.path.getsize(path) // 1000000} MB", flush=True)

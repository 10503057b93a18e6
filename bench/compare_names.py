#!/usr/bin/env python3
"""Agreement of names between tshark and phonehome on one capture (benchmark report,
not a test).

Usage: compare_names.py TSHARK_TSV PHONEHOME_OUTDIR

TSHARK_TSV is the output of
  tshark -r X -T fields -e dns.qry.name -e http.host -e http.request.uri \
         -e tls.handshake.extensions_server_name
and PHONEHOME_OUTDIR the --out directory of `phonehome analyze X`. Prints, per kind
of name, how many distinct values each tool found, how many both found, and a few
examples of each side's extras.
"""
import json
import os
import sys


def host_without_port(host):
    """What phonehome logs as url.domain (ECS): the Host header without its port."""
    if host.startswith("[") and "]" in host:
        return host[1:host.index("]")]
    if host.count(":") == 1:
        return host.split(":")[0]
    return host


def tshark_sets(path):
    dns, http, sni = set(), set(), set()
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            cols += [""] * (4 - len(cols))
            names, hosts, uris, snis = cols[:4]
            # Several values in one frame are joined with commas.
            for n in filter(None, names.split(",")):
                dns.add(n.lower())
            if hosts or uris:
                for h, u in zip(hosts.split(","), uris.split(",")):
                    if h or u:
                        http.add((host_without_port(h.lower()), u))
            for s in filter(None, snis.split(",")):
                sni.add(s.lower())
    return dns, http, sni


def phonehome_sets(outdir):
    dns, http, sni = set(), set(), set()
    with open(os.path.join(outdir, "dns.jsonl"), encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            questions = [e.get("dns", {}).get("question")] + e.get("phonehome", {}).get("more_questions", [])
            for q in questions:
                if q and q.get("name") not in (None, "."):
                    dns.add(q["name"].lower())
    with open(os.path.join(outdir, "http.jsonl"), encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if "method" not in e.get("http", {}).get("request", {}):
                continue   # a response without a request: tshark has no host/URI either
            host = e.get("url", {}).get("domain", "")
            uri = e.get("url", {}).get("original", "")
            http.add((host.lower(), uri))
    with open(os.path.join(outdir, "tls.jsonl"), encoding="utf-8") as f:
        for line in f:
            name = json.loads(line).get("tls", {}).get("client", {}).get("server_name")
            if name:
                sni.add(name.lower())
    return dns, http, sni


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    theirs = tshark_sets(sys.argv[1])
    ours = phonehome_sets(sys.argv[2])
    print("names\ttshark\tphonehome\tboth\tagreement\tonly tshark\tonly phonehome")
    for kind, t, p in zip(("dns query names", "http (host, uri)", "tls sni"), theirs, ours):
        both = len(t & p)
        union = len(t | p)
        agreement = 100.0 * both / union if union else 100.0
        print(f"{kind}\t{len(t)}\t{len(p)}\t{both}\t{agreement:.2f}%\t{len(t - p)}\t{len(p - t)}")
    for kind, t, p in zip(("dns", "http", "sni"), theirs, ours):
        for label, extra in (("only tshark", t - p), ("only phonehome", p - t)):
            for value in sorted(extra, key=str)[:8]:
                print(f"  {kind} {label}: {value!r}")


if __name__ == "__main__":
    main()

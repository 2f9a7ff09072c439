#!/usr/bin/env python3
"""Media relay benchmark: sipmask's relay beside rtpengine (Debian's
rtpengine-daemon, userspace forwarding: no kernel table), the same streams
through each in one run.

For each relay and each number of concurrent calls N: start the relay,
set up N calls (sipmask: real SIP calls through it, a caller on 127.0.0.2
and the trunk on 127.0.0.3; rtpengine: NG offer/answer), then run
examples/rtpload (G.711-sized RTP, 50 packets/s each way per call) for
SECONDS and read the relay's CPU time (/proc/PID/stat, all threads) and
memory. Prints per step: packets relayed, loss, jitter added (|D|, p99 and
max), CPU per 1,000 packets, the calls one core would carry at that cost,
and memory per call.

With perf installed it also counts the relay's system calls over the load
(perf stat, syscall tracepoints, every thread) and prints packets relayed
per system call. `--bin NAME=PATH` (repeatable) runs more sipmask builds
beside the default one, e.g. a build from before a change.

usage: scripts/bench-media.py [-n 250,500,1000] [-s 10] [--only NAME]
                              [--bin NAME=PATH]...
Needs: cargo build --release --example rtpload; rtpengine-daemon installed.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
A_IP, B_IP = "127.0.0.2", "127.0.0.3"


def free_port(ip, even=False):
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ip, 0))
        p = s.getsockname()[1]
        s.close()
        if not even or p % 2 == 0:
            return p


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sdp(ip, port, user="-"):
    return (f"v=0\r\no={user} 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def media_of(body):
    ip = re.search(r"c=IN IP4 ([0-9.]+)", body).group(1)
    port = re.search(r"m=audio (\d+)", body).group(1)
    return f"{ip}:{port}"


# --- sipmask: calls set up over SIP -------------------------------------

def sip_msg(data):
    text = data.decode(errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    return head.split("\r\n"), body


def header(lines, name):
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return ""


BINS = {"sipmask": os.environ.get("SIPMASK_BIN", os.path.join(ROOT, "target/release/sipmask"))}


def start_sipmask(work, n, binary):
    data = os.path.join(work, "data")
    csv = os.path.join(work, "b.csv")
    with open(csv, "w") as f:
        f.write("caller,virtual,callee\n+8613800000000,+8617000000000,+8613900000000\n")
    subprocess.run([binary, "bindings", "import", "--data-dir", data, csv],
                   check=True, stdout=subprocess.DEVNULL)
    cfg = os.path.join(work, "sipmask.toml")
    with open(cfg, "w") as f:
        f.write("[media]\nport_min = 20000\nport_max = 39999\ntimeout_secs = 0\n"
                "[log]\nlevel = \"warn\"\n")
    sip_port, trunk = free_port("127.0.0.1"), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trunk.bind((B_IP, 0))
    proc = subprocess.Popen([binary, "serve", "--config", cfg, "--data-dir", data,
                             "--listen", f"127.0.0.1:{sip_port}",
                             "--trunk", f"{B_IP}:{trunk.getsockname()[1]}",
                             "--api-listen", "", "--trust", "127.0.0.0/8"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"))
    return proc, ("127.0.0.1", sip_port), trunk


def setup_sipmask(server, trunk, n, gen_a, gen_b):
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind((A_IP, 0))
    caller.settimeout(5)
    trunk.settimeout(5)
    me = "%s:%d" % caller.getsockname()
    srv = "%s:%d" % server
    # Wait for the server to answer.
    for _ in range(100):
        try:
            caller.sendto(f"OPTIONS sip:{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKo\r\n"
                          f"From: <sip:x@{me}>;tag=o\r\nTo: <sip:{srv}>\r\nCall-ID: o\r\n"
                          f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".encode(), server)
            caller.settimeout(0.1)
            caller.recvfrom(65535)
            break
        except OSError:
            time.sleep(0.1)
    caller.settimeout(5)
    pairs = []
    for i in range(n):
        body = sdp(A_IP, gen_a[1])
        inv = (f"INVITE sip:+8617000000000@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{i}\r\n"
               f"From: <sip:+8613800000000@{me}>;tag=a{i}\r\nTo: <sip:+8617000000000@{srv}>\r\n"
               f"Call-ID: bench-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{me}>\r\nMax-Forwards: 70\r\n"
               f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        caller.sendto(inv.encode(), server)
        while True:
            data, src = trunk.recvfrom(65535)
            lines, b_body = sip_msg(data)
            if lines[0].startswith("INVITE"):
                break
        to_b = media_of(b_body)
        ans = sdp(B_IP, gen_b[1])
        vias = "".join(f"{l}\r\n" for l in lines[1:] if l.lower().startswith("via"))
        ok = (f"SIP/2.0 200 OK\r\n{vias}From: {header(lines, 'From')}\r\n"
              f"To: {header(lines, 'To')};tag=b{i}\r\nCall-ID: {header(lines, 'Call-ID')}\r\n"
              f"CSeq: {header(lines, 'CSeq')}\r\nContact: <sip:b@{B_IP}:{trunk.getsockname()[1]}>\r\n"
              f"Content-Type: application/sdp\r\nContent-Length: {len(ans)}\r\n\r\n{ans}")
        trunk.sendto(ok.encode(), src)
        while True:
            data, _ = caller.recvfrom(65535)
            lines, a_body = sip_msg(data)
            if lines[0].startswith("SIP/2.0 200"):
                break
        to_a = media_of(a_body)
        ack = (f"ACK sip:x@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKack{i}\r\n"
               f"From: <sip:+8613800000000@{me}>;tag=a{i}\r\nTo: {header(lines, 'To')}\r\n"
               f"Call-ID: bench-{i}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
        caller.sendto(ack.encode(), server)
        pairs.append((to_a, to_b))
    # Drain the ACKs relayed to the trunk.
    trunk.settimeout(0.2)
    try:
        while trunk.recvfrom(65535):
            pass
    except OSError:
        pass
    return pairs


# --- rtpengine: calls set up over the NG protocol -------------------------

def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    return b"d" + b"".join(bencode(k) + bencode(x) for k, x in sorted(v.items())) + b"e"


def bdecode(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l":
        out, i = [], i + 1
        while b[i:i + 1] != b"e":
            x, i = bdecode(b, i)
            out.append(x)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while b[i:i + 1] != b"e":
            k, i = bdecode(b, i)
            out[k.decode()], i = bdecode(b, i)
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


def start_rtpengine(work, n):
    ng = free_port("127.0.0.1")
    proc = subprocess.Popen(["rtpengine", "-f", "-E", "-t", "-1", "-i", "127.0.0.1",
                             "-n", f"127.0.0.1:{ng}", "-m", "40000", "-M", "59999",
                             "-L", "3", "--num-threads", str(os.cpu_count() or 2),
                             "-p", os.path.join(work, "rtpengine.pid")],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"))
    return proc, ("127.0.0.1", ng), None


def setup_rtpengine(ng, _unused, n, gen_a, gen_b):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)

    def cmd(i, d):
        cookie = b"c%d " % i
        for _ in range(50):
            try:
                s.sendto(cookie + bencode(d), ng)
                data, _ = s.recvfrom(65535)
                break
            except OSError:
                time.sleep(0.1)
        r, _ = bdecode(data[len(cookie):])
        if r.get("result") != b"ok":
            raise RuntimeError(r)
        return r["sdp"].decode()

    pairs = []
    for i in range(n):
        off = cmd(2 * i, {"command": "offer", "call-id": f"bench-{i}", "from-tag": "a",
                          "sdp": sdp(A_IP, gen_a[1])})
        ans = cmd(2 * i + 1, {"command": "answer", "call-id": f"bench-{i}", "from-tag": "a",
                              "to-tag": "b", "sdp": sdp(B_IP, gen_b[1])})
        pairs.append((media_of(ans), media_of(off)))
    return pairs


# --- one step --------------------------------------------------------------

def syscalls(pid, secs):
    """perf counting the system calls of pid's threads for secs, or None."""
    if not shutil.which("perf"):
        return None
    return subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(pid),
                             "--", "sleep", str(secs)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def step(name, n, secs, rtpload):
    work = tempfile.mkdtemp(prefix=f"bench-media-{name}-")
    if name in BINS:
        proc, addr, extra = start_sipmask(work, n, BINS[name])
        setup = setup_sipmask
    else:
        proc, addr, extra = start_rtpengine(work, n)
        setup = setup_rtpengine
    try:
        time.sleep(0.5)
        rss0 = rss_kib(proc.pid)
        gen_a, gen_b = (A_IP, free_port(A_IP, True)), (B_IP, free_port(B_IP, True))
        pairs = setup(addr, extra, n, gen_a, gen_b)
        time.sleep(0.5)
        rss1 = rss_kib(proc.pid)
        calls = os.path.join(work, "calls")
        with open(calls, "w") as f:
            for a, b in pairs:
                f.write(f"{a} {b}\n")
        idle0 = cpu_secs(proc.pid)
        time.sleep(1.0)
        idle = cpu_secs(proc.pid) - idle0
        c0, t0 = cpu_secs(proc.pid), time.time()
        counting = syscalls(proc.pid, secs)
        out = subprocess.run([rtpload, "%s:%d" % gen_a, "%s:%d" % gen_b, calls, str(secs)],
                             check=True, capture_output=True, text=True).stdout
        cpu = cpu_secs(proc.pid) - c0 - idle * (time.time() - t0)
        r = json.loads(out)
        r["pkts_per_syscall"] = 0.0
        if counting:
            err = counting.communicate()[1]
            n_sys = next((int(l.split(",")[0]) for l in err.splitlines()
                          if "sys_enter" in l and l.split(",")[0].isdigit()), 0)
            r["pkts_per_syscall"] = round(r["received"] / max(n_sys, 1), 2)
        r.update(relay=name, cpu_s=round(cpu, 2), rss_mib=round(rss1 / 1024, 1),
                 kib_per_call=round((rss1 - rss0) / n, 1))
        r["cpu_ms_per_1000_pkts"] = round(1000 * cpu / max(r["received"], 1) * 1000, 3)
        # Calls one core would carry at this cost (100 packets/s per call).
        r["calls_per_core"] = int(1 / max(cpu / max(r["received"], 1) * 100, 1e-9))
        return r
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", default="250,500,1000")
    ap.add_argument("-s", type=float, default=10)
    ap.add_argument("--only", default="")
    ap.add_argument("--rtpload", default=os.path.join(ROOT, "target/release/examples/rtpload"))
    ap.add_argument("--bin", action="append", default=[])
    a = ap.parse_args()
    for b in a.bin:
        name, _, path = b.partition("=")
        BINS[name] = os.path.abspath(path)
    relays = [r for r in (*BINS, "rtpengine") if not a.only or r == a.only]
    print(f"{'relay':10} {'calls':>6} {'pkts/s':>8} {'loss%':>7} {'D p99 ms':>9} {'D max':>7} "
          f"{'cpu ms/1k pkts':>15} {'calls/core':>10} {'KiB/call':>9} {'pkts/syscall':>12}")
    for n in [int(x) for x in a.n.split(",")]:
        for name in relays:
            r = step(name, n, a.s, a.rtpload)
            print(f"{name:10} {n:6} {r['rate_pps']:8.0f} {r['loss_pct']:7.3f} {r['jitter_p99_ms']:9.3f} "
                  f"{r['jitter_max_ms']:7.1f} {r['cpu_ms_per_1000_pkts']:15.3f} {r['calls_per_core']:10} "
                  f"{r['kib_per_call']:9.1f} {r['pkts_per_syscall']:12.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

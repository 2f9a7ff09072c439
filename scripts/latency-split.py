#!/usr/bin/env python3
"""Where a masked call's INVITE->200 time goes, from a capture on loopback.

    tcpdump -i lo -s 1000 -B 262144 -w cap.pcap udp &   # while SIPp runs
    scripts/latency-split.py cap.pcap [--caller 5070 --sut 5080 --callee 5090] [--slow MS]

SIPp's own figure (-trace_rtt) is read off a 4 ms clock on these machines
(24, 28, 32 ...), and it cannot say whose time it was. The capture can: per
call, t0 the caller's INVITE to the system under test, t1 the system's
INVITE to the callee, t2 the callee's 200, t3 the system's 200 to the
caller. Printed: percentiles of fwd = t1-t0 and back = t3-t2 (the system's
time), callee = t2-t1 (SIPp's answer delay, 20 ms in the bench), and
net = t3-t0; the 100 ms windows with calls over 30 ms; and each gap over
5 ms, while calls were still arriving, in which the system sent nothing (a stall of its SIP thread shows as
such a gap, with fwd and back of the calls around it falling by a
millisecond a millisecond). --slow MS lists each call whose fwd or back is
over MS.

The two legs are matched without trusting anything a header says to be
equal across them (they share nothing by design): the callee's number ends
in the caller's last 8 digits in the bench's bindings, and INVITEs leave
in the order they came, per caller.
"""
import argparse
import collections
import re
import struct

CALL_ID = re.compile(rb"^(?:Call-ID|i):\s*(\S+)", re.M | re.I)
FROM = re.compile(rb"^(?:From|f):.*?sip:\+?(\d+)@", re.M | re.I)
TO = re.compile(rb"^(?:To|t):.*?sip:\+?(\d+)@", re.M | re.I)
CSEQ = re.compile(rb"^CSeq:\s*\d+\s+(\w+)", re.M | re.I)


def udp_packets(path):
    """(time, source port, destination port, payload) of each IPv4 UDP packet."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        scale = 1e9 if magic == 0xA1B23C4D else 1e6
        link = struct.unpack("<I", head[20:24])[0]
        skip = 14 if link == 1 else 16  # Ethernet, else Linux cooked
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack("<IIII", rec)
            data = f.read(incl)
            ip = data[skip:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            udp = ip[(ip[0] & 15) * 4 :]
            sport, dport = struct.unpack(">HH", udp[:4])
            yield sec + frac / scale, sport, dport, udp[8:]


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pcap")
    ap.add_argument("--caller", type=int, default=5070)
    ap.add_argument("--sut", type=int, default=5080)
    ap.add_argument("--callee", type=int, default=5090)
    ap.add_argument("--slow", type=float)
    a = ap.parse_args()

    t0, t1, t2, t3 = {}, {}, {}, {}
    waiting = collections.defaultdict(collections.deque)  # digits -> caller Call-IDs
    ours = {}  # our Call-ID towards the callee -> the caller's
    base, last_out, gaps = None, None, []
    for t, sport, dport, p in udp_packets(a.pcap):
        m = CALL_ID.search(p)
        if not m:
            continue
        cid = m.group(1)
        invite = p.startswith(b"INVITE ")
        if invite and dport == a.sut and sport == a.caller and cid not in t0:
            base = t if base is None else base
            t0[cid] = t
            f = FROM.search(p)
            if f:
                waiting[f.group(1)[-8:]].append(cid)
        elif invite and dport == a.callee and sport == a.sut and cid not in ours:
            to = TO.search(p)
            q = waiting.get(to.group(1)[-8:]) if to else None
            if q:
                ours[cid] = q.popleft()
                t1[ours[cid]] = t
        elif p.startswith(b"SIP/2.0 200"):
            cs = CSEQ.search(p)
            if not cs or cs.group(1).upper() != b"INVITE":
                pass
            elif sport == a.callee and cid in ours:
                t2.setdefault(ours[cid], t)
            elif dport == a.caller and cid in t0:
                t3.setdefault(cid, t)
        if sport == a.sut and base is not None:
            if last_out is not None and t - last_out > 0.005:
                gaps.append((last_out - base, (t - last_out) * 1e3))
            last_out = t

    # After the last INVITE the traffic thins out and gaps are expected.
    end = max(t0.values(), default=0) - (base or 0)
    gaps = [g for g in gaps if g[0] < end]
    rows = sorted(
        (t0[c] - base, (t1[c] - t0[c]) * 1e3, (t2[c] - t1[c]) * 1e3,
         (t3[c] - t2[c]) * 1e3, (t3[c] - t0[c]) * 1e3)
        for c in t3 if c in t1 and c in t2
    )
    print(f"calls matched: {len(rows)} of {len(t0)}")
    for i, name in enumerate(["fwd", "callee", "back", "net"], start=1):
        col = [r[i] for r in rows]
        print(f"{name:7} ms  p50 {pct(col, 50):6.2f}  p90 {pct(col, 90):6.2f}  "
              f"p99 {pct(col, 99):6.2f}  max {max(col, default=float('nan')):6.1f}")
    slow = collections.Counter(int(r[0] * 10) for r in rows if r[4] > 30)
    print("100 ms windows with calls over 30 ms (window: calls):",
          " ".join(f"{w / 10:.1f}s:{n}" for w, n in sorted(slow.items())) or "none")
    print(f"gaps over 5 ms with nothing sent: {len(gaps)}, longest "
          f"{max((g[1] for g in gaps), default=0):.1f} ms")
    for at, ms in sorted(gaps, key=lambda g: -g[1])[:10]:
        print(f"  at {at:8.4f} s  {ms:5.1f} ms")
    if a.slow is not None:
        print("t_s fwd_ms callee_ms back_ms net_ms")
        for r in rows:
            if r[1] > a.slow or r[3] > a.slow:
                print(" ".join(f"{x:.4f}" if i == 0 else f"{x:.2f}" for i, x in enumerate(r)))


if __name__ == "__main__":
    main()

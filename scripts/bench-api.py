#!/usr/bin/env python3
"""Measures the HTTP API of a running sipmask (standard library only).

  bench-api.py URL KEY create N        AXB bindings created one per request
  bench-api.py URL KEY bulk N [C]      N requests of 1,000 bindings each, from
                                       C clients at once (default 1)
  bench-api.py URL KEY latency SECS    mixed GET/POST at ~200 requests/s; p50/p99
  bench-api.py URL KEY list SECS       GET /v1/bindings for SECS seconds: a page
                                       at a random cursor, the page after it,
                                       filtered by a party and by an X; p50/p99

Every request waits for its answer (durability is on: the API answers after
the commit). Numbers are made unique per run so runs can repeat."""
import json
import os
import random
import sys
import time
import urllib.parse

from benchlib import call, client, pct


def main():
    url, key, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    conn = client(url)
    run = random.randrange(10**6)
    pool = ["+86171%08d" % (run * 100 + i) for i in range(50)]
    call(conn, key, "POST", "/v1/numbers", {"numbers": pool})
    pair = lambda i: {"a": "+86130%08d" % (run * 1000 + i % 10**8), "b": "+86131%08d" % (run * 1000 + i % 10**8)}
    if mode == "create":
        lat = []
        t0 = time.perf_counter()
        for i in range(n):
            s, body, dt = call(conn, key, "POST", "/v1/bindings", pair(i))
            assert s == 201, body
            lat.append(dt)
        el = time.perf_counter() - t0
        print(f"single: {n} bindings in {el:.2f} s = {n / el:.0f}/s; p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms")
    elif mode == "bulk":
        clients = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        t0 = time.perf_counter()
        kids = []
        for c in range(clients):
            pid = os.fork()
            if pid == 0:
                conn = client(url)
                for r in range(n):
                    base = 100000 + (c * n + r) * 1000
                    items = [pair(base + i) for i in range(1000)]
                    s, body, _ = call(conn, key, "POST", "/v1/bindings/bulk", {"bindings": items})
                    assert s == 201, body[:300]
                os._exit(0)
            kids.append(pid)
        ok = all(os.waitpid(k, 0)[1] == 0 for k in kids)
        el = time.perf_counter() - t0
        assert ok, "a client failed"
        total = n * 1000 * clients
        print(f"bulk: {total} bindings from {clients} client(s) in {el:.2f} s = {total / el:.0f}/s")
    elif mode == "latency":
        lat = []
        end = time.perf_counter() + n
        i = 0
        ids = []
        while time.perf_counter() < end:
            if i % 4 == 0 or not ids:
                s, body, dt = call(conn, key, "POST", "/v1/bindings", pair(500000 + i))
                if s == 201:
                    ids.append(json.loads(body)["id"])
            else:
                s, body, dt = call(conn, key, "GET", "/v1/bindings/%d" % random.choice(ids))
            assert s in (200, 201), body
            lat.append(dt)
            i += 1
            time.sleep(max(0.0, 0.005 - dt))
        print(f"latency: {len(lat)} requests over {n} s; p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms max {pct(lat, 100):.2f} ms")
    elif mode == "list":
        list_bindings(conn, key, n, pool)


def list_bindings(conn, key, secs, pool):
    """Pages of the tenant's bindings, as a console or an app reads them."""
    s, body, _ = call(conn, key, "POST", "/v1/bindings", {"a": "+8613999999998", "b": "+8613999999999"})
    assert s in (201, 409), body
    top = json.loads(body)["id"] if s == 201 else 10**6
    lat = {"page": [], "next": [], "party": [], "x": []}
    end = time.perf_counter() + secs
    while time.perf_counter() < end:
        cursor = random.randrange(1, top)
        s, body, dt = call(conn, key, "GET", "/v1/bindings?limit=100&cursor=%d" % cursor)
        assert s == 200, body[:300]
        lat["page"].append(dt)
        page = json.loads(body)
        if page["next_cursor"]:
            s, body, dt = call(conn, key, "GET", "/v1/bindings?limit=100&cursor=" + page["next_cursor"])
            assert s == 200, body[:300]
            lat["next"].append(dt)
        if page["items"]:
            party = urllib.parse.quote(random.choice(page["items"])["a"])
            s, body, dt = call(conn, key, "GET", "/v1/bindings?limit=100&party=" + party)
            assert s == 200 and json.loads(body)["items"], body[:300]
            lat["party"].append(dt)
        x = urllib.parse.quote(random.choice(pool))
        s, body, dt = call(conn, key, "GET", "/v1/bindings?limit=100&x=%s&cursor=%d" % (x, cursor))
        assert s == 200, body[:300]
        lat["x"].append(dt)
    for k, v in lat.items():
        print(f"list {k}: {len(v)} requests; p50 {pct(v, 50):.2f} ms p99 {pct(v, 99):.2f} ms max {pct(v, 100):.2f} ms")


if __name__ == "__main__":
    main()

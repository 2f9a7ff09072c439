#!/usr/bin/env python3
"""Flow 2 at scale against a running sipmask (standard library only).

  bench-flow.py URL KEY PID [USERS AGENTS TEAMS INTERACTIONS ACQUISITIONS]

Defaults: 100,000 users, 10,000 agents in 500 teams (every other team
shares), 1,000,000 interactions, 5,000 acquisitions. Builds the world over
the API (users and agents with 4 connections in parallel), then measures:
interactions ingested per second in bulk (requests of 10,000, one at a
time, all or none, committed before the answer); acquisitions per second
(4 connections) and the latency of one acquisition (one connection, one
request at a time: p50/p99); the server's memory (PSS of PID) at the end.
Numbers are made unique per run, so the same server may serve several."""
import json
import random
import sys
import threading
import time

from benchlib import call, client, pct


def parallel(url, key, jobs, work, threads=4):
    """Runs work(conn, key, job) over jobs on `threads` connections; returns results in order."""
    out = [None] * len(jobs)

    def run(i0):
        conn = client(url)
        for i in range(i0, len(jobs), threads):
            out[i] = work(conn, key, jobs[i])

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def pss_mib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return -1
    return -1


def main():
    url, key, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    n_users, n_agents, n_teams, n_inter, n_acq = (
        [int(a) for a in sys.argv[4:9]] if len(sys.argv) >= 9 else [100_000, 10_000, 500, 1_000_000, 5_000]
    )
    run = random.randrange(10_000, 99_999)
    conn = client(url)
    # Numbers for X: acquisitions spread over them.
    pool = [f"+86171{run:05d}{i:03d}" for i in range(1000)]
    s, body, _ = call(conn, key, "POST", "/v1/numbers", {"numbers": pool})
    assert s == 201, body
    t0 = time.perf_counter()
    teams = []
    for i in range(n_teams):
        s, body, _ = call(conn, key, "POST", "/v1/teams", {"name": f"t{run}-{i}", "shares": i % 2 == 0})
        assert s == 201, body
        teams.append(json.loads(body)["id"])
    agents = [f"+8613{run % 100:02d}{i:07d}" for i in range(n_agents)]

    def add_agent(c, k, j):
        i, number = j
        s, body, _ = call(c, k, "POST", "/v1/agents", {"number": number, "team": teams[i % n_teams]})
        assert s == 201, body

    parallel(url, key, list(enumerate(agents)), add_agent)
    users = [f"+8615{run % 100:02d}{i:07d}" for i in range(n_users)]

    def add_user(c, k, number):
        s, body, _ = call(c, k, "POST", "/v1/users", {"number": number})
        assert s in (200, 201), body
        return json.loads(body)["soft_number"]

    softs = parallel(url, key, users, add_user)
    build = time.perf_counter() - t0
    print(f"world: {n_users} users, {n_agents} agents in {n_teams} teams, built in {build:.1f} s")

    # The first connection sat idle while others built the world.
    conn = client(url)
    kinds = ["browse", "favourite", "chat", "call", "viewing"]
    pairs = []
    t_ingest = 0.0
    batch = 10_000
    sent = 0
    while sent < n_inter:
        items = []
        for _ in range(min(batch, n_inter - sent)):
            u, a = random.randrange(n_users), random.randrange(n_agents)
            items.append({"soft_number": softs[u], "agent": agents[a], "kind": random.choice(kinds)})
            if len(pairs) < n_acq * 4:
                pairs.append((u, a))
        s, body, dt = call(conn, key, "POST", "/v1/interactions/bulk", {"items": items})
        assert s == 201, body[:300]
        t_ingest += dt
        sent += len(items)
    print(f"interactions: {sent} in bulk of {batch} in {t_ingest:.2f} s: {sent / t_ingest:,.0f}/s")

    jobs = [{"agent": agents[a], "soft_number": softs[u]} for (u, a) in random.sample(pairs, n_acq)]

    def acquire(c, k, body):
        s, payload, dt = call(c, k, "POST", "/v1/acquisitions", body)
        assert s in (200, 201), payload
        return dt

    t0 = time.perf_counter()
    parallel(url, key, jobs, acquire)
    wall = time.perf_counter() - t0
    print(f"acquisitions: {n_acq} on 4 connections in {wall:.2f} s: {n_acq / wall:,.0f}/s")
    # One at a time: the latency of one acquisition (renewals of the pairs
    # above, and as many new pairs of agents that share a team).
    conn = client(url)
    lat = []
    for body in jobs[:2000]:
        lat.append(acquire(conn, key, body))
    fresh = [{"agent": agents[a], "soft_number": softs[u]} for (u, a) in random.sample(pairs, min(2000, len(pairs)))]
    new_lat = []
    for body in fresh:
        s, payload, dt = call(conn, key, "POST", "/v1/acquisitions", body)
        assert s in (200, 201), payload
        new_lat.append(dt)
    print(f"acquisition latency, one at a time: renewals p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms; "
          f"mixed p50 {pct(new_lat, 50):.2f} ms p99 {pct(new_lat, 99):.2f} ms")
    # A refused one (no interaction: a fresh agent of a team that does not share).
    print(f"memory (PSS): {pss_mib(pid)} MiB")


main()

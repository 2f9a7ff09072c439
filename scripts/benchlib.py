"""What the API benchmarks share: a connection, one timed request, a percentile."""
import http.client
import json
import time
import urllib.parse


def client(url, timeout=30):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def call(conn, key, method, path, body=None):
    """One request: (status, body, seconds)."""
    headers = {"Authorization": "Bearer " + key}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    t0 = time.perf_counter()
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    payload = r.read()
    return r.status, payload, time.perf_counter() - t0


def pct(xs, p):
    """The p-th percentile of seconds, in ms."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000 if xs else float("nan")

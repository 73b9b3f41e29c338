#!/usr/bin/env python3
"""Side-by-side load-generator bench: wrk, oha (when present) and sdload against the same
loopback target, same duration and connections; prints one table with req/s, p50/p99, client
CPU per request (user + sys of the client process, from /usr/bin/time), peak RSS, and sdload's
ratios to each peer. Every cell is the median of --repeat runs, so noise does not decide.

It installs nothing. Needs: nginx and wrk (Debian: apt-get install nginx wrk), GNU time
(apt-get install time), optionally oha (cargo install oha --locked, ~9 min on 2 cores).

  scripts/bench-peers.sh                      # nginx static target, 16 and 64 connections
  scripts/bench-peers.sh --target mock        # sdload's own mock server
  scripts/bench-peers.sh --duration 5 --repeat 1 --connections 16
  scripts/bench-peers.sh --open-rate 10000    # open model against the mock: schedule lag
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
USER, PASSWORD = "user0001", "pass-1"
BODY = json.dumps({"username": USER, "password": PASSWORD}, separators=(",", ":"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port}")


def timed(cmd, cwd):
    """Runs cmd under GNU time; returns (stdout, cpu seconds, peak RSS in MB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        out = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name] + cmd,
                             cwd=cwd, capture_output=True, text=True)
        if out.returncode not in (0,):
            sys.stderr.write(f"{' '.join(cmd)} exited {out.returncode}\n{out.stderr[-2000:]}\n")
        user, system, rss_kb = open(tf.name).read().split()[-3:]
        return out.stdout, float(user) + float(system), int(rss_kb) / 1024.0


def ms(text):
    """wrk's latency cell (`137.00us`, `2.79ms`, `1.02s`, `1.50m`) in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        sys.exit(f"cannot read wrk's latency `{text}`")
    v, unit = float(m.group(1)), m.group(2)
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url, conns, secs, tmp):
    out, cpu, rss = timed(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--latency",
                           "-s", os.path.join(HERE, "bench", "wrk-post.lua"), url], tmp)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    return dict(requests=total, rps=total / secs, p50=p50, p99=p99, cpu=cpu, rss=rss)


def run_oha(url, conns, secs, tmp):
    out, cpu, rss = timed(["oha", "-z", f"{secs}s", "-c", str(conns), "-m", "POST", "-d", BODY,
                           "-H", "Content-Type: application/json", "--no-tui",
                           "--output-format", "json", url], tmp)
    d = json.loads(out)
    total = sum(d.get("statusCodeDistribution", {}).values())
    pct = d["latencyPercentiles"]
    return dict(requests=total, rps=total / secs, p50=pct["p50"] * 1000, p99=pct["p99"] * 1000,
                cpu=cpu, rss=rss)


def run_sdload(sdload, root, conns, secs, tmp):
    creds = os.path.join(tmp, "users.csv")
    report = os.path.join(tmp, "sdload.json")
    _, cpu, rss = timed([sdload, "run", "--target", root, "--credentials", creds, "--bad-ratio", "0",
                         "-c", str(conns), "-d", f"{secs}s", "--warmup", "0s", "--quiet",
                         "--json", report], tmp)
    d = json.load(open(report))
    total = d["counts"]["total"]
    lat = d["latency_ms"]["all"]
    if d["counts"]["token_issued"] != total:
        sys.stderr.write(f"warning: sdload saw other outcomes than token_issued: {d['counts']}\n")
    return dict(requests=total, rps=total / secs, p50=lat["p50"], p99=lat["p99"], cpu=cpu, rss=rss)


def run_open(sdload, root, rate, secs, tmp):
    """One open-model run at `rate`: schedule lag (how late requests start) and service time."""
    creds = os.path.join(tmp, "users.csv")
    report = os.path.join(tmp, "sdload-open.json")
    _, cpu, rss = timed([sdload, "run", "--target", root, "--credentials", creds, "--bad-ratio", "0",
                         "--rate", str(rate), "-d", f"{secs}s", "--warmup", "2s", "--quiet",
                         "--json", report], tmp)
    d = json.load(open(report))
    lag = d["schedule_lag_ms"]["all"]
    service = d["service_time_ms"]["all"]
    return dict(requests=d["counts"]["total"], not_sent=d["counts"].get("not_sent", 0),
                lag_p50=lag["p50"], lag_p99=lag["p99"], lag_max=lag["max"],
                service_p99=service["p99"], cpu=cpu, rss=rss)


def open_model(args):
    """--open-rate: sdload alone, open model against its own mock server."""
    tmp = tempfile.mkdtemp(prefix="sdload-bench-")
    with open(os.path.join(tmp, "users.csv"), "w") as f:
        f.write(f"username,password\n{USER},{PASSWORD}\n")
    port = free_port()
    server = subprocess.Popen([args.sdload, "serve", "--listen", f"127.0.0.1:{port}",
                               "--users", os.path.join(tmp, "users.csv")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    try:
        runs = [run_open(args.sdload, f"http://127.0.0.1:{port}/", args.open_rate, args.duration, tmp)
                for _ in range(args.repeat)]
    finally:
        server.terminate()
        server.wait()
    print(f"open model at {args.open_rate:g} req/s against sdload serve · {args.duration} s per run "
          f"(after 2 s warm-up) · {os.cpu_count()} cores")
    print(f"{'run':>4} {'requests':>9} {'not sent':>9} {'lag p50':>8} {'lag p99':>8} {'lag max':>8} "
          f"{'service p99':>12} {'CPU µs/req':>11}")
    for i, r in enumerate(runs + [median_of(runs)] if len(runs) > 1 else runs):
        name = "med" if i == len(runs) else str(i + 1)
        print(f"{name:>4} {r['requests']:>9.0f} {r['not_sent']:>9.0f} {r['lag_p50']:>8.3f} "
              f"{r['lag_p99']:>8.3f} {r['lag_max']:>8.3f} {r['service_p99']:>12.3f} "
              f"{r['cpu'] / max(r['requests'], 1) * 1e6:>11.1f}")
    print("(milliseconds; the target is lag p99 < 1 ms at 10,000 req/s)")


def median_of(runs):
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=["nginx", "mock"], default="nginx")
    ap.add_argument("--connections", default="16,64")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sdload", default=os.path.join(ROOT, "target", "release", "sdload"))
    ap.add_argument("--open-rate", type=float, metavar="RATE",
                    help="instead of the peer table: sdload's open model at RATE req/s against "
                         "its mock server, schedule lag and service time")
    args = ap.parse_args()
    # The runs start in a temporary directory: a relative --sdload must not depend on it.
    args.sdload = os.path.abspath(args.sdload)

    if args.open_rate:
        if not os.path.exists(args.sdload):
            subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
        return open_model(args)
    for tool in ["wrk", "/usr/bin/time"] + (["nginx"] if args.target == "nginx" else []):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install nginx wrk time")
    if not os.path.exists(args.sdload):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    peers = ["wrk"] + (["oha"] if shutil.which("oha") else [])

    tmp = tempfile.mkdtemp(prefix="sdload-bench-")
    with open(os.path.join(tmp, "users.csv"), "w") as f:
        f.write(f"username,password\n{USER},{PASSWORD}\n")
    port = free_port()
    if args.target == "nginx":
        conf = open(os.path.join(HERE, "bench", "nginx.conf")).read()
        conf = conf.replace("__PORT__", str(port)).replace("__DIR__", tmp)
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(conf)
        server = subprocess.Popen(["nginx", "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"),
                                   "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    else:
        server = subprocess.Popen([args.sdload, "serve", "--listen", f"127.0.0.1:{port}",
                                   "--users", os.path.join(tmp, "users.csv")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    root = f"http://127.0.0.1:{port}/"
    url = root + "api/authorization/token"
    rows = []
    try:
        for conns in [int(c) for c in args.connections.split(",")]:
            cells = {}
            for tool in peers + ["sdload"]:
                runs = []
                for _ in range(args.repeat):
                    if tool == "wrk":
                        runs.append(run_wrk(url, conns, args.duration, tmp))
                    elif tool == "oha":
                        runs.append(run_oha(url, conns, args.duration, tmp))
                    else:
                        runs.append(run_sdload(args.sdload, root, conns, args.duration, tmp))
                cells[tool] = median_of(runs)
            rows.append((conns, cells))
    finally:
        server.terminate()
        server.wait()

    print(f"target: {args.target} on {root} · {args.duration} s per run · median of {args.repeat} · "
          f"{os.cpu_count()} cores")
    print(f"{'conns':>5}  {'tool':<7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} {'RSS MB':>7}")
    for conns, cells in rows:
        for tool, c in cells.items():
            cpu_us = c["cpu"] / max(c["requests"], 1) * 1e6
            print(f"{conns:>5}  {tool:<7} {c['rps']:>9.0f} {c['p50']:>8.3f} {c['p99']:>8.3f} {cpu_us:>11.1f} {c['rss']:>7.1f}")
        s = cells["sdload"]
        for peer in peers:
            p = cells[peer]
            cpu_ratio = (s["cpu"] / s["requests"]) / (p["cpu"] / p["requests"])
            print(f"{'':>5}  sdload/{peer}: req/s ×{s['rps'] / p['rps']:.2f}, CPU per request ×{cpu_ratio:.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load test for `gemma4 serve`, and llama.cpp's llama-server on the same GGUF for comparison.

Starts each server on loopback, then at each concurrency level (default 1, 4, 16) runs closed-loop
clients: each client sends a streamed /v1/completions request, waits for it to end, and sends the
next, until the level's request count or time budget is used up. Every request asks for exactly
--max-tokens tokens (ignore_eos) after the same prompt, so both servers do the same work.

Reported per level:
  throughput   generated tokens per second of wall time, all clients together
  TTFT         time to first token: from sending the request to the first streamed text
  TPOT         time per output token after the first: (end - first token) / (tokens - 1)
as p50 / p90 / p99 over the level's requests.

Usage:
  bench/serve_load.py --gemma4 build/gemma4 --model m.gguf [--llama-server /path/to/llama-server]
                      [--concurrency 1,4,16] [--requests 32] [--duration 120] [--max-tokens 64]
Nothing is built or downloaded; only 127.0.0.1 is used.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

PROMPT_WORDS = ("the quick brown fox jumps over the lazy dog while seven wizards quietly judge "
                "boxing matches in a jolly mood beside twelve amber lamps").split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not ready in time")


def percentile(values, p):
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def one_request(port, body):
    """Sends one streamed completion; returns (ttft, tpot, tokens) or raises."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
    first = None
    tokens = None
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            break
        ev = json.loads(data)
        if ev.get("usage"):
            tokens = ev["usage"].get("completion_tokens", tokens)
        for c in ev.get("choices", []):
            if c.get("text") and first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    conn.close()
    if first is None:
        raise RuntimeError("no text was streamed")
    return first - t0, end, first, tokens


def run_level(port, concurrency, n_requests, duration, max_tokens, prompt):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "ignore_eos": True, "stream_options": {"include_usage": True}})
    lock = threading.Lock()
    results, errors = [], []
    issued = [0]
    start = time.perf_counter()
    deadline = start + duration

    def client():
        while True:
            with lock:
                if issued[0] >= n_requests or time.perf_counter() > deadline:
                    return
                issued[0] += 1
            try:
                ttft, end, first, tokens = one_request(port, body)
                n = tokens if tokens else max_tokens
                tpot = (end - first) / (n - 1) if n > 1 else float("nan")
                with lock:
                    results.append((ttft, tpot, n, end))
            except Exception as e:  # noqa: BLE001 - reported, not fatal
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = (max(r[3] for r in results) if results else time.perf_counter()) - start
    tokens = sum(r[2] for r in results)
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "tokens": tokens,
        "wall_s": wall,
        "throughput": tokens / wall if wall > 0 else float("nan"),
        "ttft": [percentile([r[0] for r in results], p) for p in (50, 90, 99)],
        "tpot": [percentile([r[1] for r in results], p) for p in (50, 90, 99)],
    }


def bench_server(name, cmd, port, args, prompt):
    print(f"\n== {name}: {' '.join(cmd)}", flush=True)
    log = open(os.devnull, "w") if not args.verbose else None
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    rows = []
    try:
        wait_ready(port, proc, args.ready_timeout)
        one_request(port, json.dumps({"prompt": prompt, "max_tokens": 4, "temperature": 0, "stream": True}))  # warm up
        for c in args.concurrency:
            row = run_level(port, c, args.requests, args.duration, args.max_tokens, prompt)
            rows.append(row)
            print(f"  {c:>3} clients: {row['requests']:>3} requests, {row['throughput']:8.1f} tok/s, "
                  f"TTFT p50/p90/p99 {row['ttft'][0]*1000:7.0f} {row['ttft'][1]*1000:7.0f} {row['ttft'][2]*1000:7.0f} ms, "
                  f"TPOT p50/p90/p99 {row['tpot'][0]*1000:6.1f} {row['tpot'][1]*1000:6.1f} {row['tpot'][2]*1000:6.1f} ms"
                  + (f", {row['errors']} errors ({row['first_error']})" if row["errors"] else ""), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gemma4", default="build/gemma4", help="the gemma4 binary")
    ap.add_argument("--model", required=True, help="GGUF model file")
    ap.add_argument("--llama-server", default="", help="llama-server binary, to compare on the same file")
    ap.add_argument("--concurrency", default="1,4,16", help="client counts, comma-separated")
    ap.add_argument("--requests", type=int, default=32, help="requests per level (at most)")
    ap.add_argument("--duration", type=float, default=120, help="seconds per level (at most)")
    ap.add_argument("--max-tokens", type=int, default=64, help="tokens generated per request")
    ap.add_argument("--prompt-words", type=int, default=64, help="words in the prompt")
    ap.add_argument("--ctx", type=int, default=1024, help="context per slot")
    ap.add_argument("--threads", type=int, default=0, help="threads (0: the servers' default)")
    ap.add_argument("--gemma4-args", default="", help="extra arguments for gemma4 serve")
    ap.add_argument("--llama-args", default="", help="extra arguments for llama-server")
    ap.add_argument("--ready-timeout", type=float, default=600)
    ap.add_argument("--json", default="", help="also write the results here")
    ap.add_argument("--verbose", action="store_true", help="show the servers' logs")
    args = ap.parse_args()
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    slots = max(args.concurrency)
    prompt = " ".join(PROMPT_WORDS[i % len(PROMPT_WORDS)] for i in range(args.prompt_words))
    results = {}

    port = free_port()
    cmd = [args.gemma4, "serve", "-m", args.model, "--host", "127.0.0.1", "--port", str(port), "--parallel", str(slots),
           "--ctx", str(args.ctx), "--queue", str(4 * slots), "--no-log"]
    if args.threads:
        cmd += ["-t", str(args.threads)]
    cmd += args.gemma4_args.split()
    results["gemma4"] = bench_server("gemma4 serve", cmd, port, args, prompt)

    if args.llama_server:
        port = free_port()
        cmd = [args.llama_server, "-m", args.model, "--host", "127.0.0.1", "--port", str(port), "-np", str(slots),
               "-c", str(args.ctx * slots), "--no-webui"]
        if args.threads:
            cmd += ["-t", str(args.threads)]
        cmd += args.llama_args.split()
        results["llama-server"] = bench_server("llama-server", cmd, port, args, prompt)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "max_tokens": args.max_tokens, "prompt_words": args.prompt_words,
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

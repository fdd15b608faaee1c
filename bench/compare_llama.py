#!/usr/bin/env python3
"""gemma4.cpp against llama.cpp on the same GGUF files, in one run.

For every model it runs `gemma4 bench --json` and llama.cpp's `llama-bench -o json` with the same
tests (-p, -n, -t, -r), alternating which goes first round by round so that neither is favoured by
the machine warming up or by other load, and prints a markdown table per model: the median t/s of
each engine over the rounds, the ratio, gemma4's fraction of the memory-bandwidth roofline for
generation tests, and each engine's peak resident memory (from the kernel, per process).

llama.cpp is never built here: pass --llama-bench PATH, or have llama-bench on PATH (for example a
build outside this repository, or the binary inside the npm package node-llama-cpp).

Usage: /usr/bin/python3 bench/compare_llama.py -m A.gguf [-m B.gguf ...] [-p 512] [-n 128] [-t 2]
           [-r 3] [--rounds 2] [--gemma4 build/gemma4] [--llama-bench PATH] [--json OUT.json]
"""
import argparse
import json
import os
import shutil
import statistics
import sys


def run_rss(cmd):
    """Runs cmd and returns (stdout, peak resident bytes of that very process, from wait4)."""
    with open(os.devnull, "wb") as devnull:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(devnull.fileno(), 2)
            try:
                os.execvp(cmd[0], cmd)
            finally:
                os._exit(127)
        os.close(w)
        chunks = []
        while True:
            b = os.read(r, 1 << 16)
            if not b:
                break
            chunks.append(b)
        os.close(r)
        _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"compare_llama: {' '.join(cmd)} exited with {code}")
    return b"".join(chunks).decode(), usage.ru_maxrss * 1024


def test_name(r):
    p, n = int(r.get("n_prompt", 0)), int(r.get("n_gen", 0))
    if p and n:
        return f"pp{p}+tg{n}"
    return f"pp{p}" if p else f"tg{n}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", action="append", required=True, help="GGUF file (repeatable)")
    ap.add_argument("-p", default="512", help="prompt lengths, comma-separated (0 = none)")
    ap.add_argument("-n", default="128", help="generation lengths, comma-separated (0 = none)")
    ap.add_argument("-t", default="2", help="threads")
    ap.add_argument("-r", type=int, default=3, help="repetitions per engine per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    ap.add_argument("--gemma4", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "gemma4"))
    ap.add_argument("--llama-bench", default=None, help="llama-bench binary (default: from PATH)")
    ap.add_argument("--json", default=None, help="also write every sample here")
    a = ap.parse_args()

    llama = a.llama_bench or shutil.which("llama-bench")
    if not llama or not os.access(llama, os.X_OK):
        sys.exit("compare_llama: llama-bench not found: pass --llama-bench PATH or put it on PATH")
    if not os.access(a.gemma4, os.X_OK):
        sys.exit(f"compare_llama: {a.gemma4} not found: build gemma4.cpp first (scripts/build.sh)")
    if a.rounds < 1 or a.r < 1:
        sys.exit("compare_llama: --rounds and -r must be at least 1")

    record = []
    for model in a.model:
        if not os.path.isfile(model):
            sys.exit(f"compare_llama: {model}: no such file")
        common = ["-m", model, "-p", a.p, "-n", a.n, "-t", a.t, "-r", str(a.r)]
        engines = {
            "gemma4": [a.gemma4, "bench", "--json"] + common,
            "llama.cpp": [llama, "-o", "json"] + common,
        }
        ts = {e: {} for e in engines}
        extra = {}
        roofs = {}  # test -> [(roofline fraction, bandwidth it was measured against)] per round
        rss = {e: 0 for e in engines}
        for rnd in range(a.rounds):
            order = list(engines) if rnd % 2 == 0 else list(reversed(list(engines)))
            for e in order:
                print(f"[round {rnd + 1}/{a.rounds}] {e}: {os.path.basename(model)}", file=sys.stderr, flush=True)
                out, peak = run_rss(engines[e])
                rss[e] = max(rss[e], peak)
                for r in json.loads(out[out.index("["):]):
                    name = test_name(r)
                    ts[e].setdefault(name, []).append(float(r["avg_ts"]))
                    if e == "gemma4":
                        extra[name] = r
                        if r.get("roofline_fraction"):
                            roofs.setdefault(name, []).append((float(r["roofline_fraction"]), float(r.get("test_read_bytes_per_s", 0))))
                    record.append({"model": model, "engine": e, "round": rnd, "test": name, "result": r})
        print(f"\n### {os.path.basename(model)} ({a.t} threads, median of {a.rounds} rounds x {a.r} repetitions)\n")
        print("| test | gemma4.cpp t/s | llama.cpp t/s | ratio | gemma4 roofline (per round) | gemma4 ms/run |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in ts["gemma4"]:
            g = statistics.median(ts["gemma4"][name])
            l = statistics.median(ts["llama.cpp"].get(name, [float("nan")]))
            x = extra.get(name, {})
            # Every round's roofline, each against the bandwidth measured during that round's test.
            roof = ", ".join(f"{100 * f:.0f}% of {bwt / 1e9:.1f} GB/s" if bwt else f"{100 * f:.0f}%"
                             for f, bwt in roofs.get(name, []))
            ms = f"{x['ms_per_run']:.0f}" if "ms_per_run" in x else ""
            print(f"| {name} | {g:.2f} | {l:.2f} | {g / l:.2f}x | {roof} | {ms} |")
        bw = extra[next(iter(extra))].get("mem_read_bytes_per_s", 0) if extra else 0
        print(f"\npeak resident memory: gemma4.cpp {rss['gemma4'] / 2**30:.2f} GiB, llama.cpp {rss['llama.cpp'] / 2**30:.2f} GiB;"
              f" memory read bandwidth before loading {bw / 1e9:.1f} GB/s (the roofline uses the bandwidth read during each test)")
        sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()

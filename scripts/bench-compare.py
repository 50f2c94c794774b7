#!/usr/bin/env python3
"""The table of scripts/bench.sh: each benchmark's mean time before and after, and criterion's change estimate.

    bench-compare.py snapshot CRITERION_DIR BASELINE          > previous.json   (before the run)
    bench-compare.py table CRITERION_DIR previous.json SINCE                    (after it; SINCE: epoch seconds)

Reads criterion's own files (no critcmp to install): `<bench>/<BASELINE>/estimates.json` for the previous
times, `<bench>/new/{estimates,benchmark}.json` for this run's, `<bench>/change/estimates.json` for the
relative change with its 95% confidence interval. Only files written since SINCE count, so a benchmark left
out by a filter does not show stale numbers. A change whose whole interval is beyond criterion's noise
threshold (2%) is "slower" or "faster"; anything else is "~". Standard library only.
"""

import json
import os
import sys

NOISE = 0.02


def benchmark_dirs(root):
    """Directories holding a benchmark's results (they have a `new/` with estimates), relative to root."""
    for path, dirs, files in os.walk(root):
        if os.path.basename(path) == "new" and "estimates.json" in files:
            yield os.path.relpath(os.path.dirname(path), root)


def mean_ns(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)["mean"]["point_estimate"]


def snapshot(root, baseline):
    previous = {}
    for bench in benchmark_dirs(root):
        path = os.path.join(root, bench, baseline, "estimates.json")
        if os.path.isfile(path):
            previous[bench] = mean_ns(path)
    json.dump(previous, sys.stdout, indent=1, sort_keys=True)
    print()


def duration(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3f} {unit}"
    return f"{ns:.1f} ns"


def percent(x):
    return f"{x * 100:+.1f}%"


def table(root, previous_path, since):
    with open(previous_path, encoding="utf-8") as f:
        previous = json.load(f)
    rows, verdicts = [], {}
    for bench in sorted(benchmark_dirs(root)):
        new = os.path.join(root, bench, "new")
        if os.path.getmtime(os.path.join(new, "estimates.json")) < since:
            continue
        title = bench
        meta = os.path.join(new, "benchmark.json")
        if os.path.isfile(meta):
            with open(meta, encoding="utf-8") as f:
                title = json.load(f).get("title", bench)
        now = mean_ns(os.path.join(new, "estimates.json"))
        before = previous.get(bench)
        change_path = os.path.join(root, bench, "change", "estimates.json")
        if before is None:
            change, verdict = "", "new"
        elif os.path.isfile(change_path) and os.path.getmtime(change_path) >= since:
            with open(change_path, encoding="utf-8") as f:
                mean = json.load(f)["mean"]
            low, high = mean["confidence_interval"]["lower_bound"], mean["confidence_interval"]["upper_bound"]
            change = f"{percent(mean['point_estimate'])} ({percent(low)} … {percent(high)})"
            verdict = "slower" if low > NOISE else "faster" if high < -NOISE else "~"
        else:
            change, verdict = percent(now / before - 1), "~"
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
        rows.append((title, duration(before) if before is not None else "—", duration(now), change, verdict))
    if not rows:
        print("No benchmark ran since the start of this run.")
        return
    print("| benchmark | previous | now | change (95% CI) | verdict |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    counts = ", ".join(f"{verdicts.get(v, 0)} {v}" for v in ("slower", "faster", "~", "new"))
    plural = "" if len(rows) == 1 else "s"
    print(f"{len(rows)} benchmark{plural}: {counts} (~: not beyond the {NOISE:.0%} noise threshold at 95% confidence)")


def main(argv):
    if len(argv) == 4 and argv[1] == "snapshot":
        snapshot(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "table":
        table(argv[2], argv[3], float(argv[4]))
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The measuring and the tables of scripts/perf-compare.sh (standard library only).

  compare.py measure --name NAME --runs N [--warmup W] -- COMMAND ARGS...
      Runs COMMAND W times untimed, then N times, each as a child process of GNU time (/usr/bin/time), which
      reports that child's peak RSS and CPU time; the wall time is measured here. Not os.wait4 from this process:
      Linux carries a process' high-water RSS across exec, so a child forked from Python would report at least
      Python's own RSS (about 15 MiB), while GNU time's is about 2 MiB. `{tmpdir}` in an argument becomes a fresh
      empty directory for each run, removed after it. A command that prints one JSON object on its last line of
      standard output has it kept with the run. Prints the measurement as JSON; exits 1 naming the run and
      showing the end of its standard error when a run fails.

  compare.py report --out DIR --file FILE_JSON --large-file FILE_JSON MEASUREMENT_JSON...
      Reads the measurements (by name: floor, ours, polars, ours-large, download-ours-fetch, download-ours,
      download-ours-two-passes, download-python) and the trades files' descriptions (what `harness mocks trades-file --json` printed), prints the Markdown tables
      with the machine and the date, and writes them to DIR/perf-compare.{md,json} (the JSON with every run).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
TIME = "/usr/bin/time"


def run_once(command, tmp_root):
    """One run of `command`: wall seconds, its peak RSS bytes, its CPU seconds (user + system), the CPU seconds
    other processes used meanwhile, its exit status, standard output and error."""
    workdir = tempfile.mkdtemp(dir=tmp_root) if any("{tmpdir}" in arg for arg in command) else None
    argv = [arg.replace("{tmpdir}", workdir) if workdir else arg for arg in command]
    usage_path = os.path.join(tmp_root, "usage")
    busy_before = busy_cpu_s()
    with tempfile.TemporaryFile(dir=tmp_root) as out, tempfile.TemporaryFile(dir=tmp_root) as err:
        started = time.perf_counter()
        # %M: peak RSS in KiB; %U, %S: user and system CPU seconds; %x: the command's exit status.
        code = subprocess.call(
            [TIME, "-f", "%M %U %S %x", "-o", usage_path, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        wall = time.perf_counter() - started
        busy = busy_cpu_s() - busy_before
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    try:
        with open(usage_path) as f:
            # A command killed by a signal makes GNU time write a "Command terminated by signal" line first.
            rss_kib, user, system, _ = f.read().split("\n")[-2].split()
    except (OSError, IndexError, ValueError):
        return wall, 0, 0.0, 0.0, code or 1, stdout, stderr + f"\n(no usage from {TIME})"
    cpu = float(user) + float(system)
    return wall, int(rss_kib) * 1024, cpu, max(busy - cpu, 0.0), code, stdout, stderr


def busy_cpu_s():
    """CPU seconds every CPU of the machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    # user nice system idle iowait irq softirq steal (guest time is already in user); clock ticks of 1/100 s.
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def last_json(stdout):
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        return None
    try:
        value = json.loads(lines[-1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def measure(args):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("compare.py measure: no command given (put it after `--`)")
    if not os.access(TIME, os.X_OK):
        sys.exit(f"compare.py measure: {TIME} (GNU time, Debian's package `time`) is needed for the peak RSS")
    tmp_root = tempfile.mkdtemp(prefix="perf-")
    runs = []
    try:
        for index in range(args.warmup + args.runs):
            warmup = index < args.warmup
            label = f"warm-up {index + 1}" if warmup else f"run {index - args.warmup + 1}/{args.runs}"
            print(f"perf-compare: {args.name}: {label}", file=sys.stderr, flush=True)
            wall, rss, cpu, others, code, stdout, stderr = run_once(command, tmp_root)
            if code != 0:
                tail = "\n".join(stderr.strip().splitlines()[-20:])
                print(f"perf-compare: {args.name}: {label} exited with {code}: {' '.join(command)}\n{tail}",
                      file=sys.stderr)
                return 1
            if not warmup:
                run = {"wall_s": wall, "peak_rss_bytes": rss, "cpu_s": cpu, "other_cpu_s": others}
                runs.append(run | {"output": last_json(stdout)})
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    result = {
        "name": args.name,
        "command": command,
        "warmup": args.warmup,
        "runs": runs,
        "median_wall_s": statistics.median(r["wall_s"] for r in runs),
        "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
    }
    print(json.dumps(result))
    return 0


# --- the report -------------------------------------------------------------------------------------------------


def machine():
    cpu = "unknown"
    memory = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            kib = next((int(line.split()[1]) for line in f if line.startswith("MemTotal:")), None)
            memory = kib * 1024 if kib else None
    except OSError:
        pass
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_bytes": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit.stdout.strip() or None,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def size(nbytes):
    if nbytes is None:
        return "–"
    return f"{nbytes / (1 << 30):.2f} GiB" if nbytes >= 1 << 30 else f"{nbytes / MIB:.0f} MiB"


def candles_rows(results, files):
    """The rows of the candles table: (label, measurement, file) in order, for the measurements present."""
    labels = [
        ("floor", "decode floor (gunzip-floor)", "file"),
        ("ours", "ours (pipeline candles)", "file"),
        ("polars", "polars (read_csv + group_by_dynamic)", "file"),
        ("ours-large", "ours, 4× the trades", "large"),
    ]
    present = [(name, label, which) for name, label, which in labels if name in results and which in files]
    return [(name, label, results[name], files[which]) for name, label, which in present]


def candles_table(results, files):
    floor = results.get("floor")
    ours = results.get("ours")
    rows = []
    lines = [
        "| | trades | median wall | CSV MB/s | M trades/s | peak RSS | CPU (user+sys) | × decode floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label, result, file in candles_rows(results, files):
        wall = result["median_wall_s"]
        row = {
            "name": name,
            "label": label,
            "trades": file["trades"],
            "csv_bytes": file["csv_bytes"],
            "gzip_bytes": file["gzip_bytes"],
            "median_wall_s": wall,
            "csv_mb_per_s": file["csv_bytes"] / wall / 1e6,
            "million_trades_per_s": file["trades"] / wall / 1e6,
            "peak_rss_bytes": result["peak_rss_bytes"],
            "median_cpu_s": result["median_cpu_s"],
            "walls_s": [r["wall_s"] for r in result["runs"]],
            "vs_floor": wall / floor["median_wall_s"] if floor and name != "ours-large" else None,
            "output": result["runs"][-1]["output"],
        }
        rows.append(row)
        lines.append(
            f"| {label} | {file['trades'] / 1e6:.2f} M | {wall:.2f} s | {row['csv_mb_per_s']:.0f} | "
            f"{row['million_trades_per_s']:.2f} | {size(row['peak_rss_bytes'])} | {row['median_cpu_s']:.2f} s | "
            + (f"{row['vs_floor']:.2f}× |" if row["vs_floor"] is not None else "– |")
        )
    ratios = {}
    if ours and floor:
        ratios["ours_over_floor"] = ours["median_wall_s"] / floor["median_wall_s"]
    if ours and "polars" in results:
        ratios["polars_over_ours"] = results["polars"]["median_wall_s"] / ours["median_wall_s"]
        ratios["polars_rss_over_ours"] = results["polars"]["peak_rss_bytes"] / ours["peak_rss_bytes"]
    polars_output = results["polars"]["runs"][-1]["output"] if "polars" in results else None
    if polars_output:
        inside = polars_output["read_seconds"] + polars_output["candles_seconds"]
        ratios["polars_inside_s"] = inside
        ratios["polars_inside_over_ours"] = inside / ours["median_wall_s"] if ours else None
    if ours and "ours-large" in results and "large" in files:
        ratios["large_rss_over_ours"] = results["ours-large"]["peak_rss_bytes"] / ours["peak_rss_bytes"]
        ratios["large_wall_over_ours"] = results["ours-large"]["median_wall_s"] / ours["median_wall_s"]
    notes = []
    if "ours_over_floor" in ratios:
        notes.append(f"ours / decode floor: {ratios['ours_over_floor']:.2f}× the time of decompression alone.")
    if "polars_over_ours" in ratios:
        faster = ratios["polars_over_ours"]
        verdict = f"ours is {faster:.2f}× as fast" if faster >= 1 else f"polars is {1 / faster:.2f}× as fast"
        notes.append(
            f"polars / ours: {faster:.2f} in wall time ({verdict}); "
            f"{ratios['polars_rss_over_ours']:.1f}× our peak RSS."
        )
    if "polars_inside_s" in ratios:
        out = polars_output
        notes.append(
            f"polars inside its process: read_csv {out['read_seconds']:.2f} s + group_by_dynamic "
            f"{out['candles_seconds']:.2f} s (the rest of its wall time is starting Python and importing polars); "
            f"{out['candles']} candles of {out['trades_in_candles']:,} trades."
        )
    if "large_rss_over_ours" in ratios:
        large = files["large"]
        capped = large.get("capped_hours", 0)
        notes.append(
            f"{large['trades'] / files['file']['trades']:.2f}× larger file: "
            f"{ratios['large_wall_over_ours']:.2f}× the wall time, {ratios['large_rss_over_ours']:.2f}× the peak RSS"
            + (
                f" ({capped} of its busiest hours reached the generator's cap of a million rows an hour)."
                if capped
                else "."
            )
        )
    return lines, notes, rows, ratios


def download_table(results, concurrency):
    rows = []
    lines = [
        "| client | files | gzip MB | download time | gzip MB/s | process wall | reads each file back | peak RSS "
        "| CPU (user+sys) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    labels = [
        ("download-ours-fetch", "ours, fetch only (`--pass none`)", "no: saves the body"),
        ("download-python", "tardis-dev (official Python client)", "no: saves the body"),
        (
            "download-ours",
            "ours, the download stage (`--pass candles`)",
            "once: verifies every row and builds the file's candles",
        ),
        (
            "download-ours-two-passes",
            "ours, two passes (`--pass two-passes`: verify, then build from the files)",
            "twice: verifies every row, then reads it again for the candles",
        ),
    ]
    for name, label, verifies in labels:
        if name not in results:
            continue
        result = results[name]
        outputs = [r["output"] or {} for r in result["runs"]]
        # Each client times itself from its first request to its last file: a Python interpreter's start and
        # imports are not download time.
        seconds = statistics.median(o.get("seconds", float("nan")) for o in outputs)
        gzip_bytes = outputs[-1].get("gzip_bytes", 0)
        row = {
            "name": name,
            "label": label,
            "files": outputs[-1].get("files"),
            "gzip_bytes": gzip_bytes,
            "rows_verified": outputs[-1].get("rows"),
            "median_download_s": seconds,
            "gzip_mb_per_s": gzip_bytes / seconds / 1e6,
            "median_wall_s": result["median_wall_s"],
            "peak_rss_bytes": result["peak_rss_bytes"],
            "median_cpu_s": result["median_cpu_s"],
            "downloads_s": [o.get("seconds") for o in outputs],
        }
        rows.append(row)
        lines.append(
            f"| {label} | {row['files']} | {gzip_bytes / 1e6:.1f} | {seconds:.2f} s | {row['gzip_mb_per_s']:.0f} | "
            f"{row['median_wall_s']:.2f} s | {verifies} | {size(row['peak_rss_bytes'])} | {row['median_cpu_s']:.2f} s |"
        )
    notes, ratios = [], {}
    by_name = {row["name"]: row for row in rows}
    python = by_name.get("download-python")
    fetch = by_name.get("download-ours-fetch")
    stage = by_name.get("download-ours")
    if python and fetch:
        ratios["ours_over_python_bytes_per_s"] = fetch["gzip_mb_per_s"] / python["gzip_mb_per_s"]
        notes.append(
            f"ours / tardis-dev in bytes per second, the same work (fetch and save): "
            f"{ratios['ours_over_python_bytes_per_s']:.2f} (both {concurrency} files in flight from the same mock "
            "Tardis on loopback)."
        )
    two = by_name.get("download-ours-two-passes")
    if stage and two:
        ratios["two_passes_over_one_pass_s"] = two["median_download_s"] / stage["median_download_s"]
        notes.append(
            f"two passes / one pass in time to a day's candles: {ratios['two_passes_over_one_pass_s']:.2f} "
            "(the same files, downloads and instruments; the one pass builds each file's candles as it verifies it)."
        )
    if python and stage:
        ratios["stage_over_python_bytes_per_s"] = stage["gzip_mb_per_s"] / python["gzip_mb_per_s"]
        notes.append(
            f"the download stage / tardis-dev in bytes per second: {ratios['stage_over_python_bytes_per_s']:.2f} "
            "(the stage also decompresses and parses every file once, verifying it and building its candles, so "
            "the candles stage after it reads no file: decompression, not the network, bounds it here)."
        )
    return lines, notes, rows, ratios


def report(args):
    results = {}
    for path in args.measurements:
        with open(path) as f:
            result = json.load(f)
        results[result["name"]] = result
    files = {}
    for which, path in (("file", args.file), ("large", args.large_file)):
        if path:
            with open(path) as f:
                files[which] = json.load(f)
    host = machine()
    memory = size(host["memory_bytes"])
    file = files["file"]
    md = [
        "## Candles of one trades file: ours, the decode floor, polars",
        "",
        f"{host['date']}; {host['cpus']} CPUs ({host['cpu_model']}), {memory} of memory, Linux {host['kernel']}; "
        f"commit {host['commit']}.",
        "",
        f"File: {file['exchange']}:{file['symbol']} on {file['day']}, seed {file['seed']}, {file['trades']:,} trades, "
        f"{file['csv_bytes'] / 1e6:.0f} MB of CSV in {file['gzip_bytes'] / 1e6:.0f} MB of gzip. "
        f"Median of {args.runs} run{'s' if args.runs != 1 else ''} after one warm-up; peak RSS is the largest of "
        "the runs; MB are 10^6 bytes.",
        "",
    ]
    disturbed = [
        f"{name} ({max(r['other_cpu_s'] for r in result['runs']):.1f} s)"
        for name, result in results.items()
        if not name.startswith("download-") and any(r["other_cpu_s"] > 0.25 * r["wall_s"] for r in result["runs"])
    ]
    if disturbed:
        md += [
            "**Other processes used more than a quarter of a CPU during some runs (their CPU seconds, most in "
            f"one run): {', '.join(disturbed)}. Those times are disturbed; run again on a quiet machine.**",
            "",
        ]
    lines, notes, candle_rows, candle_ratios = candles_table(results, files)
    md += lines + [""] + [f"- {note}" for note in notes]
    download_rows, download_ratios = [], {}
    if any(name.startswith("download-") for name in results):
        md += ["", "## Downloading one date's files: ours and the official Python client", ""]
        if args.download_note:
            md += [args.download_note, ""]
        lines, notes, download_rows, download_ratios = download_table(results, args.concurrency)
        md += lines + [""] + [f"- {note}" for note in notes]
    text = "\n".join(md) + "\n"
    document = {
        "machine": host,
        "runs": args.runs,
        "files": files,
        "candles": {"rows": candle_rows, "ratios": candle_ratios},
        "download": {"concurrency": args.concurrency, "rows": download_rows, "ratios": download_ratios},
        "measurements": results,
    }
    os.makedirs(args.out, exist_ok=True)
    for ext, content in (("md", text), ("json", json.dumps(document, indent=2) + "\n")):
        with open(os.path.join(args.out, f"perf-compare.{ext}"), "w") as f:
            f.write(content)
    print(text, end="")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="what", required=True)
    m = commands.add_parser("measure")
    m.add_argument("--name", required=True)
    m.add_argument("--runs", type=int, default=3)
    m.add_argument("--warmup", type=int, default=1)
    m.add_argument("command", nargs=argparse.REMAINDER)
    r = commands.add_parser("report")
    r.add_argument("--out", required=True)
    r.add_argument("--runs", type=int, required=True)
    r.add_argument("--file", required=True)
    r.add_argument("--large-file")
    r.add_argument("--concurrency", type=int, default=0)
    r.add_argument("--download-note")
    r.add_argument("measurements", nargs="+")
    args = parser.parse_args()
    if args.what == "measure":
        if args.runs < 1:
            sys.exit("compare.py measure: --runs must be at least 1")
        return measure(args)
    return report(args)


if __name__ == "__main__":
    sys.exit(main())

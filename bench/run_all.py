"""Run every benchmark once and rewrite the results section of bench/README.md: the one command.

    .venv/bin/python -m bench.run_all            # full sizes (about 8 minutes on a quiet 2-core machine)
    .venv/bin/python -m bench.run_all --quick    # seconds-sized check of every script; README untouched
    make bench                                    # the same as the first line

Each script runs in its own process (fresh peak RSS, its own thread settings). The 1-minute load
average is recorded at the start and the end, next to the results: other processes on the machine
distort every number. With `--wait-quiet` the run first waits (up to 15 minutes) for a load of 1.0 or less.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import REPO, loadavg, machine_line

README = REPO / "bench" / "README.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
MODULES = ("head_epoch", "decode_vs_jpeg", "extract_bound", "r3d_precision", "dask_scaling", "extract_memory",
           "cache_size", "shipping", "stage_overhead")
MEMORY = {False: ["--sizes", "10", "100", "1000", "--extractors", "alexnet_fc7"],
          True: ["--sizes", "5", "10", "--extractors", "alexnet_fc7"]}


def command(module: str, quick: bool) -> list[str]:
    if module == "extract_memory":   # the older script, run by path with its own size arguments
        return [sys.executable, str(REPO / "bench" / "extract_memory.py"), *MEMORY[quick]]
    return [sys.executable, "-m", f"bench.{module}", *(["--quick"] if quick else [])]


def run(module: str, quick: bool) -> str:
    start = time.perf_counter()
    done = subprocess.run(command(module, quick), cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(f"{module}: {seconds:.0f} s, exit {done.returncode}", file=sys.stderr, flush=True)
    if done.returncode != 0:
        return f"### {module}: FAILED (exit {done.returncode})\n\n```\n{done.stderr[-2000:]}\n```\n"
    out = done.stdout
    if module == "extract_memory":
        shown = " ".join(MEMORY[quick])
        out = (f"### 5. Memory: peak RSS of an extraction stage over N videos\n\n    .venv/bin/python "
               f"bench/extract_memory.py {shown}\n\n{out}\n")
    return out + f"\n({seconds:.0f} s)\n"


def wait_quiet(limit_s: float = 900) -> None:
    deadline = time.time() + limit_s
    while float(loadavg().split()[0]) > 1.0 and time.time() < deadline:
        print(f"load {loadavg()}: waiting for a quieter moment", file=sys.stderr, flush=True)
        time.sleep(60)


def rewrite_readme(body: str) -> None:
    text = README.read_text(encoding="utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + START + "\n" + body + "\n" + END + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## Results (`make bench`)\n\n{START}\n{body}\n{END}\n"
    README.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes; print, leave the README alone")
    parser.add_argument("--wait-quiet", action="store_true", help="wait (<= 15 min) for load <= 1.0 first")
    parser.add_argument("--only", nargs="+", choices=MODULES, help="run these scripts only")
    args = parser.parse_args()
    if args.wait_quiet:
        wait_quiet()
    started, load_start = time.perf_counter(), loadavg()
    modules, sections = args.only or MODULES, []
    for i, module in enumerate(modules):
        sections.append(run(module, args.quick))
        minutes, load_now = (time.perf_counter() - started) / 60, loadavg()
        status = "at the end" if i == len(modules) - 1 else f"after {module} (run still in progress)"
        body = (f"Run of {machine_line()}: {minutes:.1f} min in all; load average (1, 5, 15 min) "
                f"{load_start} at the start, {load_now} {status}.\n\n    .venv/bin/python -m bench.run_all"
                f"{' --quick' if args.quick else ''}\n\n" + "\n".join(sections))
        if not args.quick and not args.only:
            rewrite_readme(body)    # after every script, so an interrupted run leaves what it measured
    print(body)


if __name__ == "__main__":
    main()

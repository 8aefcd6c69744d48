"""Before/after: one benchmark against another commit and this checkout, in one run.

    python benchmarks/compare.py --ref COMMIT --bench latency [--rounds 2] -- [BENCH ARGS]

Checks ``COMMIT`` out into a temporary worktree, then runs the benchmark alternately against
it and against this checkout (before, after, before, after, ...), so drift on a shared
machine hits both alike. The benchmark file is the commit's own when it has one, else this
checkout's, copied into the worktree. Prints the median of
every figure on each side and the after/before ratio; never asserts anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def leaves(data: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(leaves(value, f"{prefix}{key}."))
    elif isinstance(data, int | float) and not isinstance(data, bool):
        out[prefix.rstrip(".")] = float(data)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True)
    ap.add_argument("--bench", required=True, help="latency, throughput, ...")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    extra = [a for a in args.rest if a != "--"]

    tmp = Path(tempfile.mkdtemp(prefix="taskq-compare-"))
    before_root = tmp / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                    str(before_root), args.ref], check=True)
    for name in (f"{args.bench}.py", "common.py"):
        # A benchmark newer than the commit runs there as written here.
        if not (before_root / "benchmarks" / name).exists():
            shutil.copy(ROOT / "benchmarks" / name, before_root / "benchmarks" / name)
    sides = {"before": before_root, "after": ROOT}
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        for round_ in range(args.rounds):
            for side, root in sides.items():
                script = root / "benchmarks" / f"{args.bench}.py"
                out = tmp / f"{side}-{round_}.json"
                env = dict(os.environ, TASKQ_BENCH_ROOT=str(root), PYTHONPATH=str(root))
                print(f"== round {round_ + 1}/{args.rounds}: {side} ({script})", flush=True)
                subprocess.run([sys.executable, str(script), "--json", str(out), *extra],
                               env=env, check=True, cwd=root)
                results[side].append(leaves(json.loads(out.read_text())))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                        str(before_root)], check=False)
    keys = sorted(set(results["before"][0]) & set(results["after"][0]))
    print(f"\n{args.bench}: median of {args.rounds} run(s) each; before = {args.ref}")
    print(f"{'figure':<48}{'before':>12}{'after':>12}{'after/before':>14}")
    for key in keys:
        b = statistics.median(r[key] for r in results["before"])
        a = statistics.median(r[key] for r in results["after"])
        ratio = a / b if b else float("nan")
        print(f"{key:<48}{b:12.2f}{a:12.2f}{ratio:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

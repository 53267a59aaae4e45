"""How long `cronkit sandbox up` takes, cold (nothing exists) and warm (stopped sandbox).

Baseline, measured in the same run: a bare `pg_ctl start -w` of the same data directory — the
floor any sandbox start pays. Prints medians of N runs and the ratio to the baseline.

    .venv/bin/python bench/bench_sandbox_up.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cronkit_sandbox.manager import Sandbox


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cronkit-bench-", dir="/var/tmp"))
    root.chmod(0o755)  # the cluster's OS user must reach it when we are root
    cold, warm, bare = [], [], []
    try:
        for i in range(args.runs):
            sandbox = Sandbox(root / f"cold{i}")
            cold.append(timed(sandbox.up))
            sandbox.down()
            warm.append(timed(sandbox.up))
            sandbox.down()
            state = sandbox.load_state()
            assert state is not None
            cluster = sandbox._cluster(state)
            bare.append(timed(cluster.start))
            cluster.stop()
            sandbox.down(reset=True)
    finally:
        for leftover in root.glob("cold*"):
            Sandbox(leftover).down(reset=True)
    base = statistics.median(bare)
    print(f"runs: {args.runs}")
    print(f"baseline  bare pg_ctl start -w     median {base:6.3f} s")
    for name, values in (("warm", warm), ("cold", cold)):
        med = statistics.median(values)
        print(f"{name:<9} cronkit sandbox up        median {med:6.3f} s  ({med / base:5.1f}x baseline)  "
              f"min {min(values):.3f} max {max(values):.3f}")


if __name__ == "__main__":
    main()

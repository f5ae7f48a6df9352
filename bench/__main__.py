"""Run every benchmark: ``.venv/bin/python -m bench`` (about three minutes on 2 cores).

Each prints one JSON line; the run then rewrites docs/benchmarks.md and
docs/benchmarks-latency.png. ``--quick`` runs one round of each (for a smoke check; the
figures it writes are noisier).
"""

from __future__ import annotations

import platform
import sys

from bench import bench_callbacks, bench_failover, bench_memory, bench_send
from bench.common import quiet_logs
from bench.report import write_report


def main(argv: list[str]) -> None:
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return
    quiet_logs()
    quick = "--quick" in argv
    send = bench_send.main(rounds=1 if quick else bench_send.ROUNDS)
    failover = bench_failover.main(rounds=1 if quick else bench_failover.ROUNDS)
    callbacks = bench_callbacks.main(rounds=1 if quick else bench_callbacks.ROUNDS)
    memory = bench_memory.main()
    machine = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    write_report(send, failover, callbacks, memory, machine=machine)


if __name__ == "__main__":
    main(sys.argv[1:])

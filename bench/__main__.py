"""Run every benchmark: ``.venv/bin/python -m bench`` (several minutes on 2 cores).

Each prints one JSON line; the run then rewrites docs/benchmarks.md and
docs/benchmarks-latency.png. ``--quick`` runs one round of each (for a smoke check; the
figures it writes are noisier); ``NOTIFYKIT_BENCH_SCALE=0.1`` runs a tenth of every
benchmark's sends and pushes (a smoke run in bounded time; the report says it was scaled). The plot needs matplotlib (``pip install -e '.[bench]'``):
without it the run stops at once, before measuring anything, unless ``--no-plot`` is given
(then the report is written without the plot). The many-instances comparisons
(bench/bench_postgres.py) need PostgreSQL at ``$NOTIFYKIT_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and the ``postgres`` extra: without them the
run stops at once too, unless ``--no-postgres`` is given (then the report says they were
not run).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys

from bench.common import SCALE, quiet_logs


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    plot = "--no-plot" not in argv
    if plot and importlib.util.find_spec("matplotlib") is None:
        print(
            "bench: matplotlib is not installed, so the latency plot cannot be drawn.\n"
            "Install it (.venv/bin/pip install -e '.[bench]') or run with --no-plot.",
            file=sys.stderr,
        )
        return 2
    with_postgres = "--no-postgres" not in argv
    if with_postgres and (why := _postgres_missing()) is not None:
        print(
            f"bench: {why}, so the many-instances comparisons cannot run.\n"
            "Start PostgreSQL (or set NOTIFYKIT_TEST_POSTGRES_URL) or run with --no-postgres.",
            file=sys.stderr,
        )
        return 2
    from bench import bench_callbacks, bench_failover, bench_memory, bench_send
    from bench.report import write_report

    quiet_logs()
    before = os.getloadavg()
    quick = "--quick" in argv
    send = bench_send.main(rounds=1 if quick else bench_send.ROUNDS)
    callbacks = bench_callbacks.main(rounds=1 if quick else bench_callbacks.ROUNDS)
    failover = bench_failover.main(rounds=1 if quick else bench_failover.ROUNDS)
    memory = bench_memory.main()
    postgres = None
    if with_postgres:
        from bench import bench_postgres

        postgres = bench_postgres.main(rounds=1 if quick else bench_postgres.ROUNDS)
    from bench import round_trips

    counted = round_trips.main(postgres=with_postgres)
    after = os.getloadavg()
    machine = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    load = f" (1-minute load average {before[0]:.1f} at the start, {after[0]:.1f} at the end)"
    if SCALE < 1:
        load += (
            f"; scaled to {SCALE:g} of the sends and pushes (NOTIFYKIT_BENCH_SCALE): a smoke"
            " run, not figures to quote"
        )
    write_report(
        send,
        failover,
        callbacks,
        memory,
        postgres,
        machine=machine,
        plot_it=plot,
        load=load,
        round_trips=counted,
    )
    return 0


def _postgres_missing() -> str | None:
    """None when the PostgreSQL comparisons can run, else why not."""
    if (
        importlib.util.find_spec("psycopg") is None
        or importlib.util.find_spec("psycopg_pool") is None
    ):
        return "the postgres extra is not installed (pip install -e '.[postgres]')"
    from bench.bench_postgres import reachable

    return reachable()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

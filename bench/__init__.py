"""notifykit's benchmarks: run by hand with ``.venv/bin/python -m bench`` (never by pytest).

Each benchmark prints one JSON line with its figures; the run rewrites
``docs/benchmarks.md`` and ``docs/benchmarks-latency.png``. Everything is on loopback,
bounded in count and time.
"""

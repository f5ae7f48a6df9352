"""``postgresql://`` and ``postgres://``: the store shared by many instances.

Needs the ``postgres`` extra (``pip install notifykit[postgres]``: psycopg 3 and
psycopg_pool); imported only when a ``[store] url`` names one of these schemes.
"""

from __future__ import annotations

from notifykit.store.postgres.schema import SchemaStatus
from notifykit.store.postgres.store import PostgresStore

__all__ = ["PostgresStore", "SchemaStatus"]

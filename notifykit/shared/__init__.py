"""``[shared_state]``: breakers, account cooldowns and the recipient guard shared by every
instance (Redis), degrading to process-local state while the server is unreachable.

The Redis client is an optional extra (``pip install notifykit[redis]``), imported only
when ``[shared_state] url`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from notifykit.errors import ConfigError
from notifykit.shared.base import SharedState

if TYPE_CHECKING:
    from notifykit.config import Config
    from notifykit.routing.breaker import Breaker
    from notifykit.store.base import Store

__all__ = ["SharedState", "open_shared_state"]


def open_shared_state(
    config: Config, store: Store, breakers: Mapping[str, Breaker]
) -> SharedState | None:
    """The shared state ``config`` names, or None when ``[shared_state] url`` is unset.

    ``breakers`` (one per provider instance) and ``store`` (its recipient guard) are the
    fallback while the server cannot be reached. Raises ConfigError when the client
    library is missing."""
    if config.shared_state.url is None:
        return None
    try:
        from notifykit.shared.redis import RedisState
    except ModuleNotFoundError as exc:  # redis not installed
        raise ConfigError(
            f"shared_state.url: redis:// needs `pip install notifykit[redis]` "
            f"({exc.name} is missing)"
        ) from None
    return RedisState.from_config(config, store, breakers)

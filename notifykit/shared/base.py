"""What instances share: circuit breakers per provider instance (account cooldowns
included) and the recipient guard.

Without ``[shared_state]`` nothing is shared: each router keeps its own in-process
:class:`~notifykit.routing.breaker.CircuitBreaker` per instance and the recipient guard
lives in the store. With it, a :class:`SharedState` answers for every process, and falls
back to exactly that local behaviour while its server cannot be reached.
"""

from __future__ import annotations

# The interface lives with its user, the router (notifykit.routing.shared_state), so that
# routing never imports this package; it is re-exported here for implementations.
from notifykit.routing.shared_state import SharedState

__all__ = ["SharedState"]

"""Routing and failover: which providers take a message, in what order, and when to stop."""

from __future__ import annotations

from notifykit.routing.router import Router

__all__ = ["Router"]

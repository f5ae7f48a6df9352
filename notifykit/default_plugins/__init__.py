"""Providers built into notifykit, registered through the same hook as outside plugins."""

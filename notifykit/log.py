"""Structured logging under the ``notifykit`` logger, without taking over the host's logging.

The library only creates structlog loggers that hand their events to the standard
``logging`` module (logger ``notifykit``); nothing is configured at import. Phone numbers
in the well-known fields are masked before any handler sees them. The CLI calls
:func:`configure_cli_logging` to render (JSON when output is not a terminal).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from notifykit.phone import mask_phone

__all__ = ["PHONE_FIELDS", "configure_cli_logging", "get_logger", "mask_phone_fields"]

PHONE_FIELDS = frozenset({"to", "phone", "mobile", "recipient", "number"})


def mask_phone_fields(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask every phone-number field."""
    for key in PHONE_FIELDS.intersection(event_dict):
        value = event_dict[key]
        if isinstance(value, str):
            event_dict[key] = mask_phone(value)
    return event_dict


def get_logger(name: str = "notifykit") -> structlog.stdlib.BoundLogger:
    """A structlog logger over the standard logger ``name``; configures nothing globally."""
    return structlog.wrap_logger(  # type: ignore[no-any-return]
        logging.getLogger(name),
        processors=[
            mask_phone_fields,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.render_to_log_kwargs,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def configure_cli_logging(level: int = logging.WARNING, *, json: bool | None = None) -> None:
    """Render notifykit's log records on stderr: JSON when stderr is not a terminal."""
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.ExtraAdder()],
        )
    )
    logger = logging.getLogger("notifykit")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False

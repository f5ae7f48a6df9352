"""Structured logging under the ``notifykit`` logger, without taking over the host's logging.

The library only creates structlog loggers that hand their events to the standard
``logging`` module (logger ``notifykit``); nothing is configured at import. Phone numbers
in the well-known fields are masked before any handler sees them. The CLI calls
:func:`configure_cli_logging` to render (JSON when output is not a terminal).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from notifykit.phone import mask_phone

__all__ = [
    "PHONE_FIELDS",
    "configure_cli_logging",
    "get_logger",
    "mask_phone_fields",
    "protect_record_fields",
]

PHONE_FIELDS = frozenset({"to", "phone", "mobile", "recipient", "number"})

# Keys ``logging.LogRecord`` owns: passing one in ``extra`` raises KeyError inside
# ``Logger.makeRecord``, which would turn a log call into a failed send.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


def mask_phone_fields(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask every phone-number field."""
    for key in PHONE_FIELDS.intersection(event_dict):
        value = event_dict[key]
        if isinstance(value, str):
            event_dict[key] = mask_phone(value)
    return event_dict


def protect_record_fields(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: rename keys that would collide with ``LogRecord`` attributes
    (``name`` -> ``name_``), so that no log call can raise."""
    for key in _RECORD_FIELDS.intersection(event_dict):
        if key not in ("event", "exc_info", "stack_info"):
            event_dict[f"{key}_"] = event_dict.pop(key)
    return event_dict


class _LevelCheckedLogger(structlog.stdlib.BoundLogger):
    """A stdlib BoundLogger that asks the standard logger whether the level is enabled
    before building anything: a send logs one event per attempt at INFO, which must cost
    next to nothing when INFO is off."""

    def _proxy_to_logger(
        self, method_name: str, event: str | None = None, *event_args: str, **event_kw: Any
    ) -> Any:
        level = _LEVELS.get(method_name)
        if level is not None and not self._logger.isEnabledFor(level):
            return None
        return super()._proxy_to_logger(method_name, event, *event_args, **event_kw)


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def get_logger(name: str = "notifykit") -> structlog.stdlib.BoundLogger:
    """A structlog logger over the standard logger ``name``; configures nothing globally.

    Bound once, here (no lazy proxy re-binding on every call), and checking the level
    before any processing."""
    return _LevelCheckedLogger(
        logging.getLogger(name),
        context={},
        processors=[
            # First, so that a level the host does not log costs no processing (masking
            # parses phone numbers): the standard logger's own check, made early.
            structlog.stdlib.filter_by_level,
            mask_phone_fields,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            protect_record_fields,
            structlog.stdlib.render_to_log_kwargs,
        ],
    )


def configure_cli_logging(
    level: int = logging.WARNING, *, json: bool | None = None
) -> Callable[[], None]:
    """Render notifykit's log records on stderr: JSON when stderr is not a terminal.

    Only the ``notifykit`` logger is touched (not the root logger, not structlog's global
    configuration). Returns a function that puts that logger back as it was, so that a CLI
    run inside a host process (tests, ``CliRunner``) leaves no trace.
    """
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
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.ExtraAdder(),
                mask_phone_fields,
            ],
        )
    )
    logger = logging.getLogger("notifykit")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False

    def restore() -> None:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]

    return restore

"""Logging under the ``notifykit`` logger, through the standard ``logging`` module.

The library logs as httpx and urllib3 do: plain stdlib records whose message reads well
under any handler (``attempt primary failed: InsufficientBalance (余额不足) in 18 ms``),
the same fields in ``extra`` (``record.provider``, ``record.outcome``, and the event's
name in ``record.event``) for structured handlers, phone numbers masked before any
handler sees them. The package logger has a ``NullHandler`` and nothing else: a host that
configured no logging gets no output from notifykit (no "last resort" lines on stderr).
structlog renders only in the CLI (:func:`configure_cli_logging`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import structlog

from notifykit.phone import mask_phone

__all__ = [
    "PHONE_FIELDS",
    "EventLogger",
    "configure_cli_logging",
    "get_logger",
    "mask_phone_fields",
    "readable",
]

PHONE_FIELDS = frozenset({"to", "phone", "mobile", "recipient", "number"})

# Keys ``logging.LogRecord`` owns: passing one in ``extra`` raises KeyError inside
# ``Logger.makeRecord``, which would turn a log call into a failed send.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)

logging.getLogger("notifykit").addHandler(logging.NullHandler())


def mask_phone_fields(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask every phone-number field."""
    for key in PHONE_FIELDS.intersection(event_dict):
        value = event_dict[key]
        if isinstance(value, str):
            event_dict[key] = mask_phone(value)
    return event_dict


def readable(event: str, fields: Mapping[str, Any]) -> str:
    """The message of a log record: the event in words with its fields.

    ``attempt`` reads ``attempt primary failed: InsufficientBalance (余额不足) in 18 ms``;
    any other event ``callback_refused: provider=primary, reason=...``.
    """
    if event == "attempt":
        text = f"attempt {fields.get('provider', '?')} {fields.get('outcome', '?')}"
        if fields.get("error_type"):
            text += f": {fields['error_type']}"
            if fields.get("error_message"):
                text += f" ({fields['error_message']})"
        if isinstance(fields.get("duration_ms"), int | float):
            text += f" in {fields['duration_ms']:.0f} ms"
        if fields.get("message_id"):
            text += f", message {fields['message_id']}"
        return text
    shown = ", ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    return f"{event}: {shown}" if shown else event


class EventLogger:
    """A standard logger that takes an event name and fields: ``log.warning("attempt",
    provider="primary", outcome="failed")``. The level is checked before anything is
    built, so an event the host does not log costs one check."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def isEnabledFor(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)

    def log(self, level: int, event: str, /, **fields: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        exc_info = fields.pop("exc_info", None)
        for key in PHONE_FIELDS.intersection(fields):
            if isinstance(fields[key], str):
                fields[key] = mask_phone(fields[key])
        extra = {(f"{k}_" if k in _RECORD_FIELDS else k): v for k, v in fields.items()}
        extra["event"] = event
        self.logger.log(
            level, readable(event, fields), exc_info=exc_info, extra=extra, stacklevel=3
        )

    def debug(self, event: str, /, **fields: Any) -> None:
        self.log(logging.DEBUG, event, **fields)

    def info(self, event: str, /, **fields: Any) -> None:
        self.log(logging.INFO, event, **fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        self.log(logging.WARNING, event, **fields)

    def error(self, event: str, /, **fields: Any) -> None:
        self.log(logging.ERROR, event, **fields)

    def exception(self, event: str, /, **fields: Any) -> None:
        self.log(logging.ERROR, event, exc_info=True, **fields)

    def critical(self, event: str, /, **fields: Any) -> None:
        self.log(logging.CRITICAL, event, **fields)


def get_logger(name: str = "notifykit") -> EventLogger:
    """The :class:`EventLogger` over the standard logger ``name``; configures nothing."""
    return EventLogger(logging.getLogger(name))


def _fields_of_record(json: bool) -> Callable[[Any, str, MutableMapping[str, Any]], Any]:
    """structlog processor for the CLI: a record's extra fields into the event dict. In
    JSON ``event`` is the event's name, then the fields; on a terminal the readable text
    leads and the fields follow."""
    extras = structlog.stdlib.ExtraAdder()

    def add(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> Any:
        text = event_dict.get("event")
        event_dict = extras(logger, name, event_dict)
        if not json:
            event_dict["event"] = text
        return event_dict

    return add


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
    if level > logging.INFO:
        # Commands report each attempt with their result: a warning line per failed attempt
        # before it would say everything twice. -v shows them as they happen.
        handler.addFilter(lambda record: getattr(record, "event", None) != "attempt")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                _fields_of_record(use_json),
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

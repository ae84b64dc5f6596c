"""Exception hierarchy. Every message names the file, field, stage or value at fault."""
from __future__ import annotations


class RtfaceError(Exception):
    """Base class for every error rtface raises on purpose (CLI exits non-zero with its message)."""


class ConfigError(RtfaceError):
    """A configuration file or option is invalid (message names the stage and field)."""


class SourceError(RtfaceError):
    """A frame source cannot be opened or read (message names the source)."""


class StageError(RtfaceError):
    """A stage failed while processing a frame (message names the stage)."""


class TransportError(RtfaceError):
    """A ZeroMQ endpoint cannot be bound/connected, or a message cannot be decoded."""


class DataError(RtfaceError):
    """An input table or recording is malformed (message names the file and column)."""

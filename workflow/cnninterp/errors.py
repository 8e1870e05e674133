"""Exception types that carry a message a user can act on (what, where, what to do)."""


class CnninterpError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CnninterpError, ValueError):
    """A configuration value is missing, misspelt or of the wrong type."""


class DataError(CnninterpError, ValueError):
    """Input data (a file, archive, shard or label) is missing, corrupt or inconsistent."""


class ModelError(CnninterpError, ValueError):
    """A model, checkpoint or layer name does not fit what was asked of it."""

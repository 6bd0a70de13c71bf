"""Errors of a config that the tools report in one line, without a traceback."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""


class UnknownKeyError(ConfigError, TypeError):
    """A config key that the component it configures does not take (a
    ``TypeError`` too, as Python's unexpected-keyword error is)."""


__all__ = ['ConfigError', 'UnknownKeyError']

"""Silence the one third-party warning every tool printed several times.

mmengine 0.10.7 imports and reloads setuptools' ``pkg_resources`` each time a
config names an ``mmseg::`` base (``mmengine.utils.is_installed``); recent
setuptools warn "pkg_resources is deprecated as an API" on every reload. The
filter matches that message only (and only UserWarning); every other warning
is shown as before. Installed when :mod:`mmgscnn` is imported, i.e. before
the tools read a config.
"""
import warnings

PKG_RESOURCES_MESSAGE = r'pkg_resources is deprecated as an API'


def silence_known_warnings() -> None:
    """Ignore the ``pkg_resources`` deprecation UserWarning (idempotent)."""
    warnings.filterwarnings('ignore', message=PKG_RESOURCES_MESSAGE, category=UserWarning)


__all__ = ['PKG_RESOURCES_MESSAGE', 'silence_known_warnings']

from .known_warnings import silence_known_warnings

silence_known_warnings()  # first: before mmengine reads any config

from .checkpoint_compat import patch_mmengine_checkpoint_loading  # noqa: E402

__all__ = ['patch_mmengine_checkpoint_loading', 'silence_known_warnings']

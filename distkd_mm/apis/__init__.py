"""The application layer: what the command-line tools build on.

It sits above the distillers and hooks (which it configures) and is never
imported by them: ``--teacher`` presets (:mod:`.attach`) and the runner
options shared by tools/train.py and tools/test.py (:mod:`.cli`).
"""
from .attach import PRESETS, attach_teacher, guess_preset, load_config

__all__ = ['PRESETS', 'attach_teacher', 'guess_preset', 'load_config']

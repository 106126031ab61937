# A package, so tests/seg/conftest.py imports as `seg.conftest` and does not
# replace the `conftest` module that other test folders import helpers from.

"""The cases that ``tools/benchmark.py`` times, one job per module.

``tasks`` (what runs), ``models`` (the Distillers), ``data`` (synthetic
inputs), ``steps`` (one step of each case), ``measure`` (time and peak
memory in this process), ``child`` (a case in a fresh process), ``cases``
(the cases of a task, and their ratios) and ``report`` (the printed
tables). Imported as ``benchmarking``: the script's folder is on
``sys.path`` when it runs.
"""

"""Time and peak memory of a step, in this process."""
import gc
import resource
import statistics
import time
from typing import Callable, Dict, Optional

import torch


def _reset_peak_rss() -> None:
    """Restart the peak RSS from the current RSS (Linux >= 4.0); elsewhere
    the peak of the set-up stays (an underestimate if that was higher)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    """This process's peak RSS: ``VmHWM`` on Linux, else ``ru_maxrss``
    (which a process inherits from its parent across ``exec`` on Linux)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(fn: Callable[[], object], steps: int, warmup: int, device: str,
            memory: bool) -> Dict[str, Optional[float]]:
    """Median ms per call after ``warmup`` calls, and the peak MiB held
    above the state before a call (None when not measured).

    On the CPU the peak is taken from one more call after the timed ones:
    the first call's one-off allocations (autograd engine, thread pools)
    are not the step's, and RSS only shows what the step holds when the
    allocator returns freed blocks (see ``child.MALLOC_ENV``).
    """
    cuda = device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    gc.collect()
    if cuda:
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    peak = None
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    elif memory:
        gc.collect()
        _reset_peak_rss()
        base = _peak_rss_bytes()
        fn()
        peak = (_peak_rss_bytes() - base) / 2**20
    return dict(ms=statistics.median(times), peak_mib=peak)

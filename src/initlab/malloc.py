"""The training process's memory allocator: glibc's malloc told to keep the memory that a training step frees.

A training step allocates and frees the same activations, a few MB each, at every step. By default glibc serves
blocks above an adaptive threshold with fresh ``mmap`` pages, hands memory at the top of its heap back to the system,
and gives each thread that allocates its own arena, a heap of at most 64 MB (``HEAP_MAX`` in glibc's arena.c): every
step then touches new pages again, and threads that fault pages in at once wait for each other on the process's
memory map lock.

:func:`keep_freed_memory` sets glibc's options; :func:`one_arena` says whether every thread now shares one arena,
which holds only where the options were set before a second thread allocated: glibc never frees an arena, and new
threads take turns on every arena there is.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys

log = logging.getLogger(__name__)

#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX): blocks above it are always mapped
#: afresh.
MMAP_THRESHOLD_MAX = 32 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's malloc keep the memory a training step frees for the next step (Linux only; once per process).

    - The mmap threshold is set to its largest value (32 MiB) and the trim threshold to 1 GiB: the process keeps up
      to that much freed memory for reuse. A population of 12 ``cnn:16,32;head=64`` MNIST models took about 6,000
      page faults per training step (``ru_minflt``) by default, none with the thresholds raised (the zeroed gradient
      of the first pooling, 6.4 MB, alone took 15 ms to fill for want of pages).
    - One arena for every thread (``M_ARENA_MAX`` = 1), so that the threads that train slices of a population
      (:data:`initlab.training.slices.SLICED_PATHS`) reuse the same freed memory. With an arena per thread, 12
      ``resnet:16,32`` MNIST models in two slices took about 60,000 page faults per step and 7.1 to 8.7 s for three
      steps, against 4.1 to 4.3 s and none with one arena (AMD EPYC, 2 cores; the whole population in one thread
      took 5.1 to 5.4 s).

    Returns whether the settings were made (False off glibc, e.g. on musl or macOS)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return all(
            bool(libc.mallopt(option, value))
            for option, value in (
                (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX),
                (_M_TRIM_THRESHOLD, 1 << 30),
                (_M_ARENA_MAX, 1),
            )
        )
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def _arenas() -> int | None:
    """How many arenas glibc's malloc has: the ``<heap nr=...>`` entries of ``malloc_info``; None off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.open_memstream.restype = ctypes.c_void_p
        libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.free.argtypes = [ctypes.c_void_p]
        text, size = ctypes.c_void_p(), ctypes.c_size_t()
        stream = libc.open_memstream(ctypes.byref(text), ctypes.byref(size))
        if not stream:
            return None
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        xml = ctypes.string_at(text, size.value).decode()
        libc.free(text)
    except (OSError, AttributeError):
        return None
    return xml.count("<heap nr=")


@functools.cache
def one_arena() -> bool:
    """Whether every thread of this process allocates from one arena from now on: :func:`keep_freed_memory` made its
    settings and malloc has a single arena. Where another thread made its own arena before the settings, the answer is
    False for good (glibc never frees an arena, and new threads take turns on every arena there is): the threads that
    would train slices of a population in parallel could fault pages in at every step, so the population trains
    whole. Programs that train populations call :func:`keep_freed_memory` first (the ``initlab`` command does)."""
    if not keep_freed_memory():
        return False
    count = _arenas()
    if count != 1:
        log.debug("malloc has %s arenas: populations train whole, not in parallel slices", count)
    return count == 1

"""Deferred numba: the kernels run as plain Python until numba has compiled them (or loaded them from its cache).

Why: importing numba and loading the cached kernels costs about half a second, more than everything else a
one-photo run does besides MediaPipe. A run of stills therefore never loads numba unless it calls the kernels
often; the engine loads it for every other run while its first stage opens (``rtface.graph.runner``), as before.

Each kernel module writes its kernels as plain functions (numba's nopython subset) under private names, lists them
with :func:`register` and exports a :class:`Kernel` per public entry point. A :class:`Kernel` calls whatever the
module's private name is bound to at call time: the plain function until :func:`load` rebinds every registered
name to ``numba.njit(cache=True)`` of it (so kernels that call each other compile together), the compiled
dispatcher afterwards. Both run the same code; tests compare the compiled kernels with NumPy references.
A kernel that has run ``AUTO_LOAD_AFTER`` times in plain Python loads numba itself, so long jobs that never call a
warmup (build scripts, folders of photos) do not stay slow.

Thread safety: :func:`load` is idempotent and serialised by a lock; calls racing with it run either binding.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

AUTO_LOAD_AFTER = 50  # plain-Python calls of one kernel before it loads numba itself

_LOCK = threading.Lock()
_REGISTERED: list[tuple[dict[str, Any], tuple[str, ...], dict[str, Any]]] = []
_state = {"loaded": False}


def register(module_globals: dict[str, Any], names: tuple[str, ...], **njit_options: Any) -> None:
    """Mark the plain functions ``names`` of a kernel module for compilation by :func:`load`."""
    with _LOCK:
        _REGISTERED.append((module_globals, tuple(names), dict(njit_options)))
        if _state["loaded"]:  # a module imported after load(): compile its kernels too
            _compile(module_globals, tuple(names), dict(njit_options))


def _compile(g: dict[str, Any], names: tuple[str, ...], options: dict[str, Any]) -> None:
    from numba import njit

    for n in names:
        g[n] = njit(cache=True, **options)(g[n])


def load() -> None:
    """Bind every registered kernel to its numba dispatcher (compiled on its first call, or loaded from the cache
    in ``rtface.userdirs.cache_dir()/numba``). Idempotent."""
    with _LOCK:
        if _state["loaded"]:
            return
        from rtface.userdirs import configure_numba_cache

        configure_numba_cache()
        for g, names, options in _REGISTERED:
            _compile(g, names, options)
        _state["loaded"] = True


def loaded() -> bool:
    """True once :func:`load` has run in this process."""
    return bool(_state["loaded"])


class Kernel:
    """Callable entry point of one kernel: the module's current binding of ``name`` (see module doc)."""

    def __init__(self, module_globals: dict[str, Any], name: str) -> None:
        self._g = module_globals
        self._name = name
        self._plain_calls = 0
        fn: Callable[..., Any] = module_globals[name]
        self.__doc__ = fn.__doc__
        self.__name__ = name.lstrip("_")

    def __call__(self, *args: Any) -> Any:
        if not _state["loaded"]:
            self._plain_calls += 1
            if self._plain_calls > AUTO_LOAD_AFTER:
                load()
        return self._g[self._name](*args)

    @property
    def py_func(self) -> Callable[..., Any]:
        """The plain Python function (what runs before :func:`load`)."""
        f = self._g[self._name]
        return getattr(f, "py_func", f)

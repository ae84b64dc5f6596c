"""Import only the parts of MediaPipe the legacy backends use.

``import mediapipe`` runs the package's ``__init__``, which imports every legacy solution, their drawing helpers
(``drawing_utils`` imports ``matplotlib.pyplot``) and the whole Tasks API: about 1.4 s on the reference machine,
of which rtface's legacy FaceMesh / FaceDetection path needs a fraction. :func:`solutions` imports
``mediapipe.python.solutions.face_mesh`` and ``.face_detection`` with the two package ``__init__`` files standing
in as lazy packages: the first access to anything else (``mediapipe.tasks``, ``mp.solutions.drawing_utils``, ...)
runs the real ``__init__`` in the same module object, so later code, a user's included, sees the normal package.
Only for the pinned mediapipe layout; on any surprise it falls back to ``import mediapipe``.
Safe from any thread (imports hold the import lock).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_LAZY = ("mediapipe", "mediapipe.python.solutions")


class _LazyPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first attribute it does not have yet."""

    def __getattr__(self, name: str):
        if name.startswith("__") or self.__dict__.get("_rtface_done", True):
            raise AttributeError(name)
        self.__dict__["_rtface_done"] = True
        self.__spec__.loader.exec_module(self)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None


def _stub(name: str) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        raise ImportError(name)
    mod = _LazyPackage(name)
    mod.__spec__, mod.__path__, mod.__file__ = spec, list(spec.submodule_search_locations), spec.origin
    mod.__loader__, mod.__package__ = spec.loader, name
    mod.__dict__["_rtface_done"] = False
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, mod)


def solutions() -> types.ModuleType:
    """``mediapipe.python.solutions`` with ``face_mesh`` and ``face_detection`` imported (module doc)."""
    if "mediapipe" not in sys.modules:
        try:
            _stub("mediapipe")
            importlib.import_module("mediapipe.python")
            _stub("mediapipe.python.solutions")
        except Exception:  # noqa: BLE001 - another layout: the plain import
            for name in _LAZY:
                sys.modules.pop(name, None)
            import mediapipe  # noqa: F401
    importlib.import_module("mediapipe.python.solutions.face_mesh")
    importlib.import_module("mediapipe.python.solutions.face_detection")
    return sys.modules["mediapipe.python.solutions"]

"""rtface: real-time facial behaviour engine."""
from rtface.userdirs import configure_numba_cache as _configure_numba_cache

__version__ = "0.1.0"

# numba's JIT cache goes to a per-user cache folder, never into the installed package (see rtface.userdirs)
_configure_numba_cache()

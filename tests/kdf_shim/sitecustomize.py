"""Test runs only: key files get a cheap KDF in every Python process the suite starts.

``tests/conftest.py`` puts this folder first on ``PYTHONPATH``. When ``matter_pki.backends.keyfile``
is imported, its PBKDF2 iteration count and floor are lowered to ``TEST_KDF_ITERATIONS`` (still
above the 2,048 of old key files, so those stay "weak" in tests too). The product has no setting
for this: thousands of homes are made by the suite, and 600,000 iterations per key would cost
minutes. ``tests/unit/test_local_keyfile.py`` checks the real defaults in a process without this shim.
"""

from __future__ import annotations

import importlib.machinery
import sys
from typing import Any

TEST_KDF_ITERATIONS = 4096
_MODULE = "matter_pki.backends.keyfile"


class _CheapKdf:
    """A meta path finder that patches the key-file module right after it is executed."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name != _MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            module.PBKDF2_ITERATIONS = module.PBKDF2_MIN_ITERATIONS = TEST_KDF_ITERATIONS

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _CheapKdf)

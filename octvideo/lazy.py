"""Package attributes imported on first use (PEP 562), for the packages whose submodules cost
seconds to import (``octvideo.data`` and ``octvideo.engine`` reach Lightning)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, submodules: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__``.
        submodules: each public name and the submodule it is imported from on first use; the
            package keeps it, so the next lookup does not come back here.
        public: the package's ``__all__``, listed by ``dir()`` before any is imported.
    """
    namespace = sys.modules[package].__dict__

    def getattr_(name: str) -> Any:
        if name not in submodules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{submodules[name]}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *public})

    return getattr_, dir_

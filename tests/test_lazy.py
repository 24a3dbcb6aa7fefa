"""``lazy_exports``: a package's public names are imported from their submodules on first use,
then kept in the package; ``dir()`` lists them before; an unknown name is an AttributeError."""

from __future__ import annotations

import textwrap

import pytest

from tests.scripts import run_code

_FIRST_USE = textwrap.dedent(
    """
    import sys
    import octvideo.engine as engine
    assert "octvideo.engine.optim" not in sys.modules
    assert "scaled_lr" in dir(engine) and "scaled_lr" not in vars(engine)
    first = engine.scaled_lr
    assert "octvideo.engine.optim" in sys.modules
    assert vars(engine)["scaled_lr"] is first is sys.modules["octvideo.engine.optim"].scaled_lr
    """
)


def test_a_name_is_imported_on_first_use_and_then_kept_by_the_package():
    done = run_code(_FIRST_USE)
    assert done.returncode == 0, done.stderr


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    import octvideo.data

    with pytest.raises(AttributeError, match="module 'octvideo.data' has no attribute 'nope'"):
        octvideo.data.nope  # noqa: B018

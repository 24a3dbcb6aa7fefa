"""The built package carries what octvideo reads at run time: a wheel (``pip install .``,
``pip install git+...``) and an sdist hold every shipped config and the Kinetics-400 class names,
and the installed copy finds a config by its short name from a folder outside the repository.

Builds run offline, with this interpreter's setuptools, from a copy of the checkout, so the
checkout gets no ``build/`` or ``*.egg-info``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# Files the package reads at run time, other than its modules, relative to the repository.
DATA = ["octvideo/data/kinetics400_classes.txt"]


def _shipped() -> dict[str, str]:
    """Every file the package must carry: its path in the repository -> its path in the wheel."""
    modules = [p.relative_to(ROOT).as_posix() for p in (ROOT / "octvideo").rglob("*.py")]
    wanted = {name: name for name in [*modules, *DATA]}
    for path in sorted((ROOT / "configs").rglob("*")):
        if path.is_file():
            name = path.relative_to(ROOT).as_posix()
            wanted[name] = f"octvideo/{name}"  # pyproject.toml maps configs/ to octvideo/configs
    return wanted


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,  # only stops a hang
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what a build reads from the checkout."""
    copy = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("octvideo", "configs"):
        shutil.copytree(ROOT / name, copy / name, ignore=skip)
    return copy


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip = ["-m", "pip", "wheel", str(source), "--no-deps", "--no-index", "--no-build-isolation"]
    _run([*pip, "--quiet", "-w", str(out)], cwd=out)
    (built,) = out.glob("octvideo-*.whl")
    return built


def test_wheel_holds_every_module_config_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [repo for repo, packed in _shipped().items() if packed not in names]
    assert not missing, f"{wheel.name} lacks {missing} (pyproject.toml [tool.setuptools])"
    assert not [n for n in names if n.startswith("configs/")]  # no top-level configs package


def test_sdist_holds_every_config_and_data_file(source: Path, tmp_path: Path) -> None:
    code = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    _run(["-c", code, str(tmp_path)], cwd=source)
    (built,) = tmp_path.glob("octvideo-*.tar.gz")
    with tarfile.open(built) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = [repo for repo in _shipped() if repo not in names]
    assert not missing, f"{built.name} lacks {missing}"


def test_installed_wheel_resolves_shipped_names_outside_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = ["-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site)]
    _run([*pip, str(wheel)], cwd=elsewhere)
    code = (
        "import octvideo\n"
        "from octvideo.config import CONFIG_DIR, resolve_config_path, shipped_configs\n"
        "from octvideo.engine.zoo import kinetics400_classes\n"
        "print(octvideo.__file__)\n"
        "print(CONFIG_DIR)\n"
        "print(resolve_config_path('i3d_oct.yaml'))\n"
        "print(resolve_config_path('oct_i3d_synth.yaml'))\n"
        "print(len(shipped_configs()), len(kinetics400_classes()))\n"
    )
    lines = _run(["-c", code], cwd=elsewhere, env={"PYTHONPATH": str(site)}).splitlines()
    package = site / "octvideo"
    assert lines[:4] == [
        str(package / "__init__.py"),  # the installed copy, not the checkout
        str(package / "configs"),
        str(package / "configs/kinetics400/i3d_r50_oct_a0.1_8x8.yaml"),
        str(package / "configs/demo/oct_i3d_synth.yaml"),
    ]
    configs = sum(1 for p in (ROOT / "configs").rglob("*.yaml") if p.is_file())
    assert lines[4] == f"{configs} 400"

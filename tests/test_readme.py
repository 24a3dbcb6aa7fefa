"""The commands and links in the README and the other docs are real.

Every shell line in a code block (fenced, or indented after a blank line) that runs `octvideo`,
`make`, or a tool under `tools/` is checked without being run: an `octvideo` line must parse with
the real argument parser, its `--cfg` must resolve to a config and its `key=value` overrides must
load onto it; a `make` target must exist in the Makefile; a `tools/bench.py` line must parse with
the benchmarks' own parser, and any other tool must exist and take every option the line gives
it. Every relative link and every backquoted repository path must exist. A renamed
option, config key, target, tool or file fails here.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from octvideo.bench.cli import parse_args as parse_bench_args
from octvideo.cli import build_parser
from octvideo.config import load_config, resolve_config_path
from octvideo.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "BENCHMARKS.md",
    ROOT / "datasets" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
# Fenced blocks in these languages hold code or data, not shell lines.
NOT_SHELL = {"python", "py", "yaml", "yml", "json", "jsonl", "toml"}
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
WRITTEN_BASE = "kinetics400/i3d_r50_8x8.yaml"
REPO_PATH = re.compile(
    r"`((?:docs|tools|configs|datasets|octvideo|tests)/[\w./-]*|[A-Z]+\.md|Makefile)`"
)


@dataclass(frozen=True)
class Command:
    doc: Path
    line: int
    text: str
    written: frozenset[str] = frozenset()  # run configs that earlier lines of the doc write

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def _shell_lines(doc: Path) -> list[tuple[int, str]]:
    """(line number, text) of each line of a doc's shell blocks, continuations joined."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, str]] = []
    fence: str | None = None
    in_indented = False
    previous_blank = True
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith("```"):
                fence = None
            elif fence not in NOT_SHELL:
                found.append((number, stripped))
        elif stripped.startswith("```"):
            fence = stripped[3:].strip().lower()
        elif line.startswith("    ") and (in_indented or previous_blank):
            in_indented = True
            found.append((number, stripped))
        else:
            in_indented = False
        previous_blank = not stripped
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in found:
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text
            pending = None
        if text.endswith("\\"):
            pending = (number, text[:-1].rstrip())
        else:
            joined.append((number, text))
    return joined


def _argv(text: str) -> list[str]:
    """The words of a shell line, without a prompt, a comment and leading VAR=value settings."""
    text = text.removeprefix("$ ")
    words = shlex.split(text, comments=True)
    while words and ENV_ASSIGNMENT.match(words[0]):
        words.pop(0)
    return words


def _kind(argv: list[str]) -> str | None:
    if not argv:
        return None
    head = Path(argv[0]).name
    if head == "octvideo":
        return "octvideo"
    if head == "make":
        return "make"
    if head in ("python", "python3", "bash") and len(argv) > 1:
        if argv[1].startswith("tools/"):
            return "tool"
        if argv[1:3] in (["-m", "octvideo"], ["-m", "octvideo.cli"]):
            return "octvideo"
    return None


def _written_config(argv: list[str]) -> str | None:
    """The run config that an `octvideo import ... --out X.ckpt` line writes beside it: X.yaml."""
    if argv[:2] != ["octvideo", "import"]:
        return None
    for i, word in enumerate(argv):
        if word == "--out" and i + 1 < len(argv):
            return Path(argv[i + 1]).with_suffix(".yaml").as_posix()
        if word.startswith("--out="):
            return Path(word.split("=", 1)[1]).with_suffix(".yaml").as_posix()
    return None


def collect_commands(docs: list[Path]) -> list[Command]:
    commands = []
    for doc in docs:
        written: set[str] = set()
        for number, text in _shell_lines(doc):
            argv = _argv(text)
            if _kind(argv) is not None:
                commands.append(Command(doc, number, text, frozenset(written)))
                if (config := _written_config(argv)) is not None:
                    written.add(config)
    return commands


@functools.cache
def _parser():
    return build_parser()


def check_octvideo(argv: list[str], written: frozenset[str] = frozenset()) -> None:
    """Parses an `octvideo` line and loads its config and overrides.

    A config that an earlier line of the doc writes (``written``) does not exist yet; its
    overrides are checked against a shipped recipe instead, which has the same keys and types.
    """
    args = argv[3:] if argv[1] == "-m" else argv[1:]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            ns = _parser().parse_args(args)
    except SystemExit as err:
        raise AssertionError(f"does not parse: {stderr.getvalue().strip()}") from err
    cfg = getattr(ns, "cfg", None)
    if cfg is not None:
        path = resolve_config_path(WRITTEN_BASE if cfg in written else cfg)
        overrides = [o for o in getattr(ns, "overrides", None) or [] if "=" in o]
        load_config(path, overrides)


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w.-]+)\s*:(?!=)", text, flags=re.MULTILINE))


def check_make(argv: list[str]) -> None:
    targets = [a for a in argv[1:] if not a.startswith("-") and "=" not in a]
    missing = sorted(set(targets) - _make_targets())
    assert not missing, f"Makefile has no target {missing}"


def check_bench(argv: list[str]) -> None:
    """Parses a `tools/bench.py` line with the benchmarks' parser (and its option checks)."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parse_bench_args(argv[2:])
    except SystemExit as err:
        if err.code != 0:  # 0: a --help line
            raise AssertionError(f"does not parse: {stderr.getvalue().strip()}") from err


def check_tool(argv: list[str]) -> None:
    if argv[1] == "tools/bench.py":
        check_bench(argv)
        return
    tool = ROOT / argv[1]
    assert tool.is_file(), f"{argv[1]} does not exist"
    source = tool.read_text(encoding="utf-8")
    for word in argv[2:]:
        if not word.startswith("--"):
            continue
        option = word.split("=", 1)[0]
        names = {option}
        if option.startswith("--no-"):  # argparse.BooleanOptionalAction's negative form
            names.add("--" + option[len("--no-") :])
        assert any(n in source for n in names), f"{argv[1]} takes no option {option}"


def check_command(text: str, written: frozenset[str] = frozenset()) -> None:
    argv = _argv(text)
    kind = _kind(argv)
    if kind == "octvideo":
        check_octvideo(argv, written)
    elif kind == "make":
        check_make(argv)
    elif kind == "tool":
        check_tool(argv)


COMMANDS = collect_commands(DOCS)


@pytest.mark.parametrize("command", [pytest.param(c, id=c.id) for c in COMMANDS])
def test_doc_command_is_real(command):
    check_command(command.text, command.written)


def test_readme_commands_are_found():
    found = [c.text for c in COMMANDS if c.doc.name == "README.md" and c.doc.parent == ROOT]
    assert any(t.startswith("make demo") for t in found)
    assert any(t.startswith("make test") for t in found)
    assert any(t.startswith("octvideo train") for t in found)
    assert any(t.startswith("$ octvideo predict") for t in found)


def _links(doc: Path) -> list[tuple[str, Path]]:
    text = doc.read_text(encoding="utf-8")
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        out.append((target, doc.parent / target.split("#", 1)[0]))
    for name in REPO_PATH.findall(text):
        out.append((name, ROOT / name))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_doc_links_exist(doc):
    missing = [target for target, path in _links(doc) if not path.exists()]
    assert not missing, f"{doc.relative_to(ROOT)} names files that do not exist: {missing}"


def test_readme_and_benchmarks_stay_short():
    assert len((ROOT / "README.md").read_bytes()) <= 11_000
    assert len((ROOT / "BENCHMARKS.md").read_bytes()) <= 16_500


@pytest.mark.parametrize(
    "line",
    [
        "octvideo predict --ckpt best.ckpt video.mp4 --windw 2s",  # a renamed option
        "octvideo train --cfg no_such_recipe.yaml",
        "octvideo train --cfg i3d_r50_8x8.yaml optim.learning_rate=0.1",  # an unknown key
        "make no-such-target",
        "python tools/bench.py models --no-such-option 3",
        "python tools/bench.py no-such-bench",
        "python tools/bench.py predict --workers 0",  # parses, but its check refuses it
        "python tools/bench_models.py --alpha 0.5",  # the scripts before tools/bench.py
        "python tools/no_such_tool.py",
    ],
)
def test_a_stale_command_is_caught(line):
    with pytest.raises((AssertionError, ConfigError)):
        check_command(line)


def test_a_config_written_by_an_earlier_import_is_accepted(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "    octvideo test --cfg zoo.yaml --ckpt zoo.ckpt\n\n"
        "    octvideo import z.pyth --from pytorchvideo --model slow_r50 --out zoo.ckpt\n\n"
        "    octvideo test --cfg zoo.yaml --ckpt zoo.ckpt model.num_classes=6\n\n"
        "    octvideo test --cfg zoo.yaml --ckpt zoo.ckpt model.num_clases=6\n",
        encoding="utf-8",
    )
    before, _, after, typo = collect_commands([doc])
    with pytest.raises(ConfigError):  # used before the import writes it
        check_command(before.text, before.written)
    check_command(after.text, after.written)
    with pytest.raises(ConfigError):  # its overrides are still checked
        check_command(typo.text, typo.written)


def test_shell_blocks_are_read_with_continuations(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Text\n\n    octvideo models \\\n        --frames 8\n\n```python\noctvideo = 1\n```\n"
        "```\n$ make demo   # comment\noutput line\n```\n",
        encoding="utf-8",
    )
    assert [text for _, text in _shell_lines(doc) if _kind(_argv(text))] == [
        "octvideo models --frames 8",
        "$ make demo   # comment",
    ]

"""Command-line entry point: a thin dispatcher over subcommands.

Each command group is a module of this package, which exposes ``register(subparsers)``;
``register`` adds its parsers and sets ``func`` to a plain function taking the parsed namespace.
``entry`` is the ``octvideo`` program (``main``, then ``signals.exit_now``); tests call ``main``,
which returns the status, or the command functions, in-process.
The package sits on top of octvideo: nothing else in ``octvideo/`` imports it.

    data.py       octvideo data synth | check | prepare
    run.py        octvideo train, octvideo test
    sweep.py      octvideo sweep
    zoo.py        octvideo import
    inference.py  octvideo predict, octvideo export
    models.py     octvideo models

Every parser is a ``CommandParser``: a command's options, inputs and overrides come in any order,
an argument that nothing takes is refused under the command's own usage, and ``--help`` gives
every option's default. The argparse types the commands share are in ``octvideo.argtypes``.

A command whose output is files (every one but ``models`` and ``predict`` without ``--out`` or
``--render``: ``STDOUT_OUTPUTS``) prints a view of its progress, which a stdout or stderr that
cannot be written does not stop, its reader gone (``octvideo predict --out F ... | head -1``) or
full (``> /dev/full``): the rest goes to /dev/null, and the command writes its files whole and
ends with its own status, a full stdout named in one line on stderr at the end. A command whose
output is what it prints ends there, quietly with status 1 at a reader gone, as Unix tools do,
and with one line, status 1, at a full stream. One started with stdout or stderr closed (``>&-``)
writes what it would print there to /dev/null.

Ctrl-C and SIGTERM stop a command with one line, ``octvideo CMD: stopped by ...``
(CMD is ``data check`` for a data subcommand), and status 130 or 143 (SIGHUP, the terminal
closed, is taken as SIGTERM): the command unwinds, stopping its workers, committing the outputs
it finished and removing those it had not. A command prints its last lines, its summary, with
``print_last``: its work written, a signal from then on stops nothing and prints nothing.
``train``, ``test`` and ``sweep`` answer SIGTERM themselves, at a step boundary; for the others,
and for every command while it starts, it raises ``Terminated`` where the command is. A stop
while a command imports its modules (torch, Lightning: seconds) waits for the imports to end.
Before the command line is parsed, the line names the command its first words give
(``COMMANDS``): ``octvideo data synth: stopped by Ctrl-C``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import io
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

from octvideo import signals
from octvideo.allocator import keep_freed_memory
from octvideo.argtypes import breaks_escaped
from octvideo.engine.logs import command_logging
from octvideo.errors import Interrupted, RunStopped, UsageError, raise_terminated
from octvideo.paths import TEXT_ERRORS
from octvideo.streams import open_closed_streams, progress_streams, stream_stopped, to_devnull

# Modules that contribute subcommands, in the order ``octvideo --help`` lists them.
_COMMAND_MODULES: tuple[str, ...] = (
    "octvideo.cli.data",
    "octvideo.cli.run",
    "octvideo.cli.sweep",
    "octvideo.cli.zoo",
    "octvideo.cli.inference",
    "octvideo.cli.models",
)


# The commands and their subcommands, for the lines of a command stopped before its parser is
# built (which imports the commands' modules: seconds); a test holds it to the parser's.
COMMANDS: dict[str, tuple[str, ...]] = {
    "data": ("synth", "check", "prepare"),
    "train": (),
    "test": (),
    "sweep": (),
    "import": (),
    "predict": (),
    "export": (),
    "models": (),
}


# The help of every command's --cfg (train, test, sweep): each takes the three forms
# (``octvideo.config.resolve_config_path``)
CFG_HELP = "config path, shipped name or short name"


# The modules a command imports as it runs, beyond its parser's (train and test: Lightning,
# which imports matplotlib), imported before it runs, with the stops held (``_run``).
HEAVY_IMPORTS: dict[str, tuple[str, ...]] = {
    "train": ("octvideo.engine.run",),
    "test": ("octvideo.engine.run",),
}


# The commands whose output is what they print on stdout, for the arguments that make it so: a
# reader that goes away (``| head -1``) has taken all it wants, and they end there (``_run``).
# Every other command's output is files, and what it prints only a view of its progress.
STDOUT_OUTPUTS: dict[str, Callable[[argparse.Namespace], bool]] = {
    "models": lambda args: True,  # its table
    "predict": lambda args: not (args.out or args.render),  # its records, as tables
}


def command_name(argv: Sequence[str]) -> str:
    """``octvideo data synth`` for ``["-v", "data", "synth", "--out", "x"]``: ``octvideo`` and
    the words after ``octvideo``'s own options that name a command and its subcommand
    (``COMMANDS``), as the parser's ``prog`` will say."""
    words = list(argv)
    while words and words[0].startswith("-"):  # -v, before the command
        words.pop(0)
    names = ["octvideo"]
    if words and words[0] in COMMANDS:
        names.append(words[0])
        if len(words) > 1 and words[1] in COMMANDS[words[0]]:
            names.append(words[1])
    return " ".join(names)


class DefaultsFormatter(argparse.HelpFormatter):
    """``--help`` that ends each option's text with its default, ``(default: 5)``, unless the
    text gives it already or there is none to give (a required option, a flag that is off, an
    option whose absence means nothing is done)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text is None or "default" in text or action.required:
            return text
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return text
        return f"{text} (default: %(default)s)"


class CommandParser(argparse.ArgumentParser):
    """The parser of ``octvideo`` and of each of its commands.

    A command without subcommands takes its options and positionals in any order (argparse's
    intermixed parsing): ``predict --ckpt C a.mp4 --topk 3 b.mp4``, ``train --cfg C key=value
    --out D key=value``. After ``--`` every word is an input or override, also one that starts
    with ``-`` (``predict --ckpt C a.mp4 -- -b.mp4``); before it, the order is free. An argument
    that nothing takes is refused under the usage and the name of the command it was given to
    (``octvideo predict: error: unrecognized arguments: ...``), not under ``octvideo``'s:
    ``parse_known_args`` leaves no extras to the parser above. A refusal where a path that begins
    with ``-`` was read as an option says how to give it (``./-b.mp4``). ``--help`` gives
    every option's default (``DefaultsFormatter``). The namespace's ``prog`` is the name of the
    innermost command, ``octvideo data check``: the prefix of the lines ``main`` prints.

    A value that an option's ``type=`` or ``choices=`` refuses (``--topk 2000``, ``--seeds 1_0``,
    ``--preset bogus``) is refused in one line, ``octvideo CMD: error: argument --topk: '2000':
    give 1 to 1000``, exit status 2, without the usage block (``_ValueReader``): the command line
    was read, one value in it is wrong. The usage block is kept for a command line that cannot be
    read: an option or argument the command does not take, a required one missing, an option
    without its value.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.set_defaults(prog=self.prog)  # a subcommand's parse sets its own over its group's
        self._has_subcommands = False
        self._in_intermixed = False
        self._passes = 0  # of the intermixed parse below: options, then positionals
        self._after_dashes: list[str] = []  # the words after "--", all of them positionals
        self._words: list[str] = []  # the command's words, for the hint of a refusal
        # a word that begins with "-" and a digit is a value, as argparse takes "-2" and "-0.5":
        # "--window -2s" is a window refused in one line, not a window option without its value
        # (no option of octvideo's begins with a digit)
        self._negative_number_matcher = re.compile(r"^-\d")

    def add_subparsers(self, **kwargs: object) -> argparse._SubParsersAction:
        self._has_subcommands = True
        return super().add_subparsers(**kwargs)  # type: ignore[arg-type]

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._in_intermixed:  # one of the two passes of the intermixed parse below
            self._passes += 1
            if self._passes == 2 and self._after_dashes:  # positionals: append those after --
                args = [*(args or ()), "--", *self._after_dashes]
            return super().parse_known_args(args, namespace)
        words = list(sys.argv[1:] if args is None else args)
        self._words = words
        _read_values_in_one_line(self)
        try:
            return self._parse_words(words, namespace)
        except _ValueRefused as refusal:  # caught by the innermost command's parser: its prog
            self.exit(2, f"{self.prog}: error: {refusal}\n")

    def _parse_words(
        self, words: list[str], namespace: argparse.Namespace | None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._has_subcommands:  # argparse parses a subcommand's words in order only
            namespace, extras = super().parse_known_args(words, namespace)
        else:
            # argparse's intermixed parse drops a "--" (Python 3.11) and then reads the words
            # after it as options: those words join the positionals' pass here, after a "--"
            dashes = words.index("--") if "--" in words else len(words)
            self._after_dashes = words[dashes + 1 :]
            self._in_intermixed, self._passes = True, 0
            try:
                namespace, extras = self.parse_known_intermixed_args(words[:dashes], namespace)
            finally:
                self._in_intermixed, self._after_dashes = False, []
        if extras:
            # an unknown option also leaves the positionals after it untaken: name the options
            # ("--" itself is no argument, only the mark that the words after it are positional)
            words_left = [word for word in extras if word != "--"]
            unknown = [word for word in words_left if word.startswith("-")] or words_left
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        super().error(message + self._dash_path_hint())

    def _dash_path_hint(self) -> str:
        """What a refusal adds where a path that begins with "-" came before "--": argparse
        reads it as an option, which leaves the command without its input (``predict --ckpt C
        -b.mp4``: "the following arguments are required: inputs") or an option without its
        value (``export --ckpt -m.ckpt``: "expected one argument"). A path is a word that is a
        file here or holds a "." or "/", which no option does."""
        words = self._words[: self._words.index("--")] if "--" in self._words else self._words
        paths = [
            word
            for word in words
            if word.startswith("-")
            and word.split("=", 1)[0] not in self._option_string_actions
            and ("." in word or "/" in word or os.path.lexists(word))
        ]
        if not paths:
            return ""
        return (
            f"; {paths[0]} begins with - and is read as an option: write it as ./{paths[0]} "
            "(an input may also follow --)"
        )


class _ValueRefused(Exception):
    """A value an option's type or choices refuse; its text is argparse's line for it."""


class _ValueReader:
    """An option's ``type=`` that also checks its ``choices=``, raising ``_ValueRefused`` for a
    value either refuses, which argparse lets through (it turns only ``ArgumentTypeError``,
    ``TypeError`` and ``ValueError`` into its usage-block error) to ``CommandParser``'s one line.
    The text is argparse's own: ``argument --seeds: '1_0' is not a whole number``,
    ``argument --preset: invalid choice: 'x' (choose from 'demo', 'yardstick')``."""

    def __init__(self, action: argparse.Action) -> None:
        self.action = action
        self.type = action.type
        self.__name__ = getattr(action.type, "__name__", "value")

    def __call__(self, text: str) -> object:
        try:
            value = text if self.type is None else self.type(text)  # type: ignore[operator]
        except argparse.ArgumentTypeError as err:
            raise _ValueRefused(argparse.ArgumentError(self.action, str(err))) from None
        except (TypeError, ValueError):
            message = f"invalid {self.__name__} value: {text!r}"
            raise _ValueRefused(argparse.ArgumentError(self.action, message)) from None
        choices = self.action.choices
        if choices is not None and value not in choices:
            listed = ", ".join(map(repr, choices))
            message = f"invalid choice: {value!r} (choose from {listed})"
            raise _ValueRefused(argparse.ArgumentError(self.action, message))
        return value


def _read_values_in_one_line(parser: argparse.ArgumentParser) -> None:
    """Gives each option of ``parser`` that has a type or choices its ``_ValueReader``, once; at
    parse time, so that an option added in an argument group has one too. A command's choice
    (``octvideo bogus``) stays argparse's: a command line it cannot read."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or isinstance(action.type, _ValueReader):
            continue
        if action.type is not None or action.choices is not None:
            action.type = _ValueReader(action)


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="octvideo",
        description="Video action recognition with 3D Octave Convolution.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


# errors that say a path the user gave cannot be used at all, wherever a command meets it: a
# name too long, a loop of links, no permission. A command's own checks name the option first.
_PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ELOOP, errno.EACCES, errno.EPERM})


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command ``argv`` names (the command line's words by default) and returns its
    exit status; the signal handlers and the streams' settings it found are put back."""
    with _command_context():
        return _run(argv)


def entry() -> NoReturn:
    """The ``octvideo`` program: the command line's command, run as ``main`` runs it, then the
    process ends with its status (``signals.exit_now``): a SIGTERM or Ctrl-C after the
    command's last line, its work written, neither kills it by the signal's default action nor
    reports a stop. ``exit_now`` runs inside the command's context, whose handlers it replaces:
    put back first, they would leave a moment in which a SIGTERM kills the finished command."""
    with _command_context():
        signals.exit_now(_run(None))


def print_last(*lines: str) -> None:
    """Prints a command's last lines, its summary, once its work is written and its status
    known: from here on a signal stops nothing (``signals.finishing``). With no lines (a
    process of a distributed run other than the first), a signal stops nothing all the same."""
    signals.finishing()
    if lines:
        print(*lines, sep="\n", flush=True)  # noqa: T201


@contextlib.contextmanager
def _command_context() -> Iterator[None]:
    # SIGTERM raises Terminated from the first line on: the commands' modules import torch (and
    # train's, Lightning) for seconds, in which a scheduler's SIGTERM is as likely as later on.
    # The commands that answer it themselves take it over: in train and test, Lightning's loops
    # put their stop at a step boundary in its place (``octvideo.engine.run._lightning_loop``);
    # a sweep stops its runs (``octvideo.cli.sweep``).
    # SIGHUP (the terminal closed) does what SIGTERM does, wherever the command is.
    # Outermost, the handlers a caller in-process had are put back, also after ``print_last``.
    with (
        signals.restored(*signals.STOPS),
        signals.handler(signal.SIGTERM, raise_terminated),
        signals.hangup_as_terminate(),
        _names_escaped(),
    ):
        yield


def _run(argv: Sequence[str] | None) -> int:
    """The command ``argv`` names, its errors reported as one line with its exit status."""
    # the prefix of the lines below: until the command line is parsed, read from its words
    prog = command_name(sys.argv[1:] if argv is None else argv)
    try:
        open_closed_streams()
        _check_current_folder()  # before torch, which dies with an unrelated line without one
        # the imports take seconds, during which a stop is likely; raised inside one, it left a
        # module half made (a traceback of the next import) or was caught by its code (the
        # command ran on): held until they end, it then stops the command as anywhere else
        with signals.deferred():
            parser = build_parser()  # imports torch
            args = parser.parse_args(argv)
            prog = args.prog
            for name in HEAVY_IMPORTS.get(args.command, ()):
                importlib.import_module(name)
        command_logging(logging.DEBUG if args.verbose else logging.INFO)
        keep_freed_memory()  # no page faults for tensors freed and allocated again each step
        prints_output = STDOUT_OUTPUTS.get(args.command, lambda args: False)(args)
        with contextlib.nullcontext() if prints_output else progress_streams(prog):
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:  # the reader of its output went away (``| head``): it has all it wants
        to_devnull(sys.stdout)
        return 1
    except UsageError as err:  # an InputPathError too; any other FileNotFoundError is a bug's
        print(f"{prog}: error: {breaks_escaped(str(err))}", file=sys.stderr)  # noqa: T201
        return 2
    except RunStopped as err:
        print(f"{prog}: stopped: {breaks_escaped(str(err))}", file=sys.stderr)  # noqa: T201
        return 1
    except OSError as err:
        stopped = stream_stopped(prog, err)
        if stopped is not None:
            return stopped
        if err.errno not in _PATH_ERRNOS:
            raise
        name = f"{err.filename}: " if err.filename is not None else ""
        print(  # noqa: T201
            f"{prog}: error: {breaks_escaped(name)}{err.strerror}; check the path",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as err:
        # Interrupted says where the command stopped and what it kept; a bare Ctrl-C says no more
        stop = err if isinstance(err, Interrupted) else Interrupted()
        with contextlib.suppress(OSError, ValueError):  # stdout's reader may be gone too
            sys.stdout.flush()
        print(f"{prog}: {stop}", file=sys.stderr)  # noqa: T201
        return stop.status


@contextlib.contextmanager
def _names_escaped() -> Iterator[None]:
    """stdout and stderr write a file name's bytes that are not UTF-8 as the escapes logs and
    files write (``paths.TEXT_ERRORS``: ``\\udcff``), for every line of the command, ``print``
    and ``tqdm.write`` alike: by default stdout fails on them (``UnicodeEncodeError`` under a
    UTF-8 locale such as en_US.UTF-8) or writes the raw bytes (C.UTF-8). The streams' own
    setting is put back after, for a caller of ``main`` in-process."""
    changed = []
    for stream in (sys.stdout, sys.stderr):
        errors = getattr(stream, "errors", TEXT_ERRORS)
        if errors != TEXT_ERRORS and isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(OSError, ValueError):  # a stream full, closed or gone
                stream.reconfigure(errors=TEXT_ERRORS)
                changed.append((stream, errors))
    try:
        yield
    finally:
        for stream, errors in changed:
            with contextlib.suppress(OSError, ValueError):
                stream.reconfigure(errors=errors)


def _check_current_folder() -> None:
    """Refuses to run in a current folder that was deleted (or moved away): relative paths have
    nowhere to point, and torch's oneMKL fails to load there ("Intel oneMKL FATAL ERROR: Cannot
    load libtorch_cpu.so"), a line that names a library instead of the folder."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise UsageError(
            "the current folder no longer exists (it was deleted, or moved away); cd to a folder "
            "that exists and run the command again"
        ) from None

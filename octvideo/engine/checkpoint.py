"""Checkpoints that survive a crash or a full disk mid-write and load with ``weights_only=True``.

A checkpoint is serialised in memory (one extra copy of it in host memory, about 300 MB for the
largest models), then written by ``octvideo.paths.AtomicOutput``: to a temporary file in the
destination folder, fsynced, and atomically renamed over the destination; the folder is fsynced
so the rename itself is durable. A crash at any point leaves either the old file or the new one,
never a torn one; a full disk is a plain ``OSError`` from the file write (torch's own zip writer
wraps it in a ``RuntimeError``), which becomes one line naming the checkpoint kept. A process
killed mid-write (SIGKILL, power loss) leaves its temporary file behind; the next successful
write of the same checkpoint removes it, as for every output (``AtomicOutput``: the temporaries
of writers that are gone). Checkpoints get the umask's permissions, as every other output.

Loading checks the zip structure first: ``check_torch_archive`` refuses, before ``torch.load``
reads a byte of it, a TorchScript model (an ``octvideo export``, named as one), members that
would take more memory than the file's size (torch writes them stored, uncompressed; a 4 MB
file whose member inflates to 4 GiB is refused) and pickles larger than any checkpoint's
metadata. It then always uses ``torch.load(weights_only=True)``: a
checkpoint holds tensors and plain Python values only (the module stores its config and metadata
as plain dicts), so nothing in it can run code. Weights that no network can hold (a NaN, an
infinity, a batch norm's negative variance) are refused there, for every command that loads them
(``check_weight_values``), except ``train model.pretrained=``: it checks the tensors it loads
into the model, so a classifier it replaces for another class count may hold NaN. A refusal
advises the file its caller asks for (``load_checkpoint``'s ``wants``, worded by ``WANTED``): a
PyTorchVideo ``.pyth`` for ``import --from pytorchvideo``, a checkpoint of ``train`` or
``import`` for predict, test and export.
``load_pytorchvideo_checkpoint`` loads a PyTorchVideo zoo file into an octvideo model of any
alpha (the network a checkpoint's own metadata describes is
``octvideo.network.build_network``'s).
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

import torch
from torch import nn

from octvideo.errors import CheckpointError, UsageError
from octvideo.models.weights import (
    Impossible,
    NonFinite,
    broken_tensors,
    convert_pytorchvideo,
    first_non_finite,
    load_state_dict_checked,
)
from octvideo.paths import AtomicOutput, why_not_a_file

# where a checkpoint keeps the network's weights: octvideo's and Lightning's ``state_dict``,
# PyTorchVideo's zoo and PySlowFast's ``model_state``, torchvision's reference scripts' ``model``
_WEIGHTS_KEYS = ("state_dict", "model_state", "model")
# what a caller asks for (``load_checkpoint``'s ``wants``), as its refusals advise passing it: a
# checkpoint of octvideo's (predict, test, export, model.pretrained, import --from octvideo), a
# run's to resume, or weights made elsewhere (import --from, model.pretrained_kind)
Wanted = Literal["octvideo", "run", "pytorchvideo", "torchvision", "imagenet2d"]
_TORCHVISION = "a torchvision ResNet state dict (a .pth of torch.save(model.state_dict()))"
WANTED: dict[str, str] = {
    "octvideo": "a checkpoint written by 'octvideo train' or 'octvideo import'",
    "run": "a checkpoint written by 'octvideo train' (a run's checkpoints/last.ckpt)",
    "pytorchvideo": "a PyTorchVideo model-zoo checkpoint (a .pyth, weights under 'model_state')",
    "torchvision": _TORCHVISION,
    "imagenet2d": _TORCHVISION,  # model.pretrained_kind's name for it
}
# the object torch's weights-only unpickler refused, as its messages name it ("Unsupported
# global: GLOBAL pathlib.PosixPath", "Trying to load unsupported GLOBAL posix.system")
_REFUSED_OBJECT = re.compile(r"GLOBAL ([\w.]+)")


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` through memory, a temporary file and an atomic rename.

    Raises:
        UsageError: ``path`` is a symbolic link.
        OutputWriteError: the file cannot be written (full disk, quota, read-only file system);
            the previous file is intact and no temporary file is left.
    """
    path = Path(path)
    with AtomicOutput(path) as out:  # which makes the folder
        buffer = io.BytesIO()
        torch.save(obj, buffer)  # in memory: the file write below fails with a plain OSError
        with buffer.getbuffer() as data:
            out.write(data)
    return path


# A checkpoint's pickle holds its metadata (names, shapes, config, loop state): about 10 KB for
# ResNets, under 1 MB for any octvideo model with its optimiser state. A larger pickle is not a
# checkpoint's, and unpickling can build objects tens of times its size.
MAX_PICKLE_BYTES = 16 * 2**20
_ZIP_MAGIC = b"PK\x03\x04"  # torch.serialization._is_zipfile checks the same bytes
# how a torch checkpoint starts: a zip archive (torch.save since 1.6), or the legacy format's
# pickle of its magic number (protocol 2)
_TORCH_MAGIC = (_ZIP_MAGIC, b"\x80\x02")


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _is_torchscript(members: list[zipfile.ZipInfo]) -> bool:
    """Whether a zip archive is a TorchScript model: it holds ``constants.pkl`` and ``code/``
    beside its data (as torch's own ``_is_torchscript_zip`` tells them), which torch.save never
    writes."""
    inside = [m.filename.partition("/")[2] for m in members]
    return "constants.pkl" in inside or any(n.startswith("code/") for n in inside)


def check_torch_archive(
    file: BinaryIO, name: str | os.PathLike[str], *, wants: Wanted = "octvideo"
) -> None:
    """Refuses a torch checkpoint whose zip directory declares more than the file can hold,
    before ``torch.load`` reads any member (it reads members whole into memory).

    torch writes every member stored, so a checkpoint's members together are never larger than
    the file. Refused: a TorchScript model (``octvideo export``), a zip archive of something
    else (no ``data.pkl``), a compressed member, a member
    or all members together declaring more bytes than the file has, a pickle over
    ``MAX_PICKLE_BYTES``, a zip directory that cannot be read. A file that is not a zip archive
    (torch's legacy format, or no checkpoint at all) is left to ``torch.load``. ``file`` is read
    from its current position, which is restored.

    Args:
        file: the file, open for reading in binary.
        name: the file as messages name it.
        wants: the file the caller asks for, which the advice names (``WANTED``).

    Raises:
        UsageError: one line naming ``name`` and the member, or what the file is.
    """
    start = file.tell()
    magic = file.read(len(_ZIP_MAGIC))
    file.seek(start)
    if magic != _ZIP_MAGIC:
        return
    size = os.fstat(file.fileno()).st_size - start
    what = f"checkpoint {os.fspath(name)!r}"
    advice = f"pass {WANTED[wants]}"
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as err:
        raise UsageError(
            f"{what} is a damaged zip archive: a checkpoint cut short or corrupted (a copy that "
            f"did not finish?); {advice}"
        ) from err
    finally:
        file.seek(start)
    if _is_torchscript(members):  # its code members are compressed: say what the file is
        raise UsageError(
            f"{what} is a TorchScript model (what 'octvideo export --format torchscript' and "
            "torch.jit.save write), not a checkpoint: it holds no training state or metadata; "
            "pass the .ckpt it was exported from (a run's checkpoints/last.ckpt or best.ckpt)"
        )
    if not any(m.filename.rpartition("/")[2] == "data.pkl" for m in members):
        raise UsageError(
            f"{what} is a zip archive but not a torch checkpoint: it holds no data.pkl, which "
            f"every archive of torch.save does; {advice}"
        )
    total = 0
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED:
            raise UsageError(
                f"{what} is refused before loading: its member {member.filename} is compressed "
                f"({_mib(member.file_size)} inflated from a {_mib(size)} file), which torch never "
                f"writes; {advice}"
            )
        if member.file_size > size:
            raise UsageError(
                f"{what} is refused before loading: its member {member.filename} declares "
                f"{_mib(member.file_size)}, more than the whole file ({_mib(size)}); {advice}"
            )
        if member.filename.endswith(".pkl") and member.file_size > MAX_PICKLE_BYTES:
            raise UsageError(
                f"{what} is refused before loading: its pickle {member.filename} is "
                f"{_mib(member.file_size)}, more than a checkpoint's metadata takes "
                f"({_mib(MAX_PICKLE_BYTES)} at most); {advice}"
            )
        total += member.file_size
    if total > size:
        raise UsageError(
            f"{what} is refused before loading: its members declare {_mib(total)} together, more "
            f"than the whole file ({_mib(size)}; members that share their bytes); {advice}"
        )


def _open_checkpoint(path: Path) -> BinaryIO:
    """``path`` opened for reading, once it is a regular file (through links).

    Raises:
        UsageError: it does not exist, is a directory, a pipe, a device or a socket (``/dev/stdin``,
            a shell's ``<(...)``: torch seeks in a checkpoint, and a pipe may wait for ever), a
            broken symlink or a symlink loop, or cannot be opened; the message says which.
    """
    problem = why_not_a_file(path)
    if problem is not None:
        # something is there (a folder, a pipe, a link): not a checkpoint, and what to give
        there = os.path.lexists(path)
        advice = ", not a checkpoint file; give the path of the checkpoint file" if there else ""
        raise UsageError(f"checkpoint {str(path)!r} {problem}{advice}")
    try:
        return path.open("rb")
    except OSError as err:
        raise UsageError(
            f"checkpoint {str(path)!r} cannot be read ({err.strerror or err}); check its "
            "permissions"
        ) from err


def load_checkpoint(
    path: str | os.PathLike,
    map_location: Any = "cpu",
    *,
    check_values: bool = True,
    wants: Wanted = "octvideo",
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``, after checking its zip structure.

    Args:
        path: the checkpoint file.
        map_location: as ``torch.load``'s.
        check_values: refuse weights no network can hold (``check_weight_values``). False
            only for a caller that checks the tensors it uses itself (``load_pretrained``,
            which drops a classifier of another class count).
        wants: the file the caller asks for, which a refusal's advice names (``WANTED``): an
            octvideo checkpoint (the default), a run's to resume, or weights of another source.

    Raises:
        UsageError: the file is missing, a directory, a pipe, a device, a broken symlink or
            unreadable (``_open_checkpoint`` says which), is empty, is no torch checkpoint at
            all (neither a zip archive nor torch's legacy format), is a zip archive that is not
            torch's or whose members declare more than the file holds (``check_torch_archive``),
            cannot be read with ``weights_only=True`` (objects other than tensors and plain
            values, cut short, damaged: ``_load_failure`` words it without torch's words), or
            holds something other than a dict (octvideo and Lightning checkpoints and state
            dicts are dicts). Each is one line naming the file and what to pass instead.
        CheckpointError: its weights hold a NaN, an infinity or a negative variance
            (``check_weight_values``), where ``check_values``.
    """
    path = Path(path)
    # one open file for the check and the load: the file checked is the file loaded
    with _open_checkpoint(path) as fh:
        check_torch_archive(fh, path, wants=wants)
        head = fh.read(4)
        fh.seek(0)
        if not head:
            raise UsageError(
                f"checkpoint {str(path)!r} is an empty file (a copy or download that did not "
                f"finish?); pass {WANTED[wants]}"
            )
        if not head.startswith(_TORCH_MAGIC):
            raise UsageError(
                f"checkpoint {str(path)!r} is not a torch checkpoint: neither the zip archive "
                "torch.save writes nor its legacy format (a video or another file given as the "
                f"checkpoint?); pass {WANTED[wants]}"
            )
        try:
            checkpoint = torch.load(fh, map_location=map_location, weights_only=True)
        except Exception as err:  # torch raises UnpicklingError, RuntimeError or EOFError here
            raise UsageError(
                f"checkpoint {str(path)!r} {_load_failure(err)}; pass {WANTED[wants]}"
            ) from err
    if not isinstance(checkpoint, dict):
        raise UsageError(
            f"checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not the dict of "
            f"weights that checkpoints and state dicts are; pass {WANTED[wants]}"
        )
    if check_values:
        check_weight_values(checkpoint, path)
    return checkpoint


def check_weight_values(checkpoint: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuses a checkpoint whose weights no network can hold, naming the first such tensor:
    NaN or infinite values (a NaN reaches every logit after it), or values no training writes,
    such as a batch norm's negative running variance (``broken_tensors``).

    The weights are those under ``state_dict`` (octvideo, Lightning), ``model_state``
    (PyTorchVideo's zoo) or ``model``, else the checkpoint's own tensors (a plain state dict);
    optimiser and callback state (an early stop's infinite best score) are not weights.

    Raises:
        CheckpointError: as ``refuse_broken_weights``.
    """
    nested = [checkpoint[k] for k in _WEIGHTS_KEYS if isinstance(checkpoint.get(k), Mapping)]
    refuse_broken_weights(checkpoint, path, broken_tensors(nested[0] if nested else checkpoint))


def refuse_broken_weights(
    checkpoint: Mapping[str, Any],
    path: str | os.PathLike[str],
    broken: Sequence[NonFinite | Impossible],
) -> None:
    """Refuses ``checkpoint`` if ``broken`` (its weights that no network can hold) is not
    empty; what to do depends on where the file came from (``broken_advice``).

    Raises:
        CheckpointError: one line naming ``path``, the first tensor of ``broken`` and what it
            holds, the likely cause and what to do.
    """
    if not broken:
        return
    first = broken[0]
    cause = (
        "a diverged run, or a damaged file"
        if isinstance(first, NonFinite)
        else f"a damaged or edited file: no training writes a {first.what}"
    )
    raise CheckpointError(
        f"checkpoint {str(path)!r}: {first_non_finite(broken, 'tensor')}; the checkpoint is "
        f"broken ({cause}): {broken_advice(checkpoint)}"
    )


# what to do about a training run's broken checkpoint, or one whose origin is not known
RUN_ADVICE = "use an earlier checkpoint of the run, or get the file again"


def broken_advice(checkpoint: Mapping[str, Any]) -> str:
    """What to do about a checkpoint whose weights are broken (values no network holds, or
    logits that overflow): a training run's has earlier ones (``RUN_ADVICE``), an imported one
    has its source file (named in its metadata), any other file is got again."""
    hyper = checkpoint.get("hyper_parameters")
    meta = hyper.get("meta") if isinstance(hyper, Mapping) else None
    source = meta.get("source") if isinstance(meta, Mapping) else None
    if isinstance(source, Mapping):  # octvideo import's
        file = source.get("file")
        if isinstance(file, str) and 0 < len(file) <= 255:
            return f"get {file!r} again and import it anew"
        return "get the source file again and import it anew"
    if meta is not None or "global_step" in checkpoint:  # octvideo train's or Lightning's
        return RUN_ADVICE
    return "get the file again"


def _load_failure(err: Exception) -> str:
    """What a failed ``torch.load`` says of the file, in a reader's words: never torch's advice
    to load it with ``weights_only=False`` (which would let it run code), nor its exception's
    name. Only the name of an object the unpickler refused is taken from torch's message."""
    refused = _REFUSED_OBJECT.search(str(err))
    if refused is not None:
        return (
            f"holds objects other than tensors and plain values ({refused.group(1)}), which no "
            "checkpoint holds: a file made by other code, or an edited one, which could run code "
            "as it loads"
        )
    if isinstance(err, (EOFError, struct.error)):  # a read past the end, or a number cut in two
        return "ends before its data does: a checkpoint cut short (a copy that did not finish?)"
    return "is damaged: its data cannot be read as a checkpoint's (a corrupted copy?)"


def model_state_dict(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's weights from a checkpoint: the first of ``_WEIGHTS_KEYS`` that holds a dict
    (an octvideo checkpoint's, ``model.`` prefix removed; a PyTorchVideo zoo file's), else the
    checkpoint itself (a plain state dict)."""
    held = (checkpoint.get(key) for key in _WEIGHTS_KEYS)
    state = next((value for value in held if isinstance(value, Mapping)), checkpoint)
    if any(k.startswith("model.") for k in state):
        return {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    return dict(state)


def load_pytorchvideo_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Loads a PyTorchVideo zoo checkpoint (a local file) into an octvideo model of any alpha.

    The file is read as ``octvideo import`` and ``train model.pretrained_kind=pytorchvideo`` read
    it (``model_state_dict``, then ``convert_pytorchvideo``): renamed, missing batch counts
    filled, and sliced where the model has an octave.

    Raises:
        UsageError: ``path`` is no torch checkpoint that loads with ``weights_only=True``, or
            holds no dict (as ``load_checkpoint`` says).
        ValueError: the weights do not fit ``model`` (naming the keys).
    """
    checkpoint = load_checkpoint(path, wants="pytorchvideo")
    state = convert_pytorchvideo(model_state_dict(checkpoint), model)
    load_state_dict_checked(model, state)
    return model


def last_good(path: str | os.PathLike) -> str:
    """``"<path> (global step N) is kept"`` for a loadable checkpoint, else what is there."""
    path = Path(path)
    if not path.is_file():
        return f"no checkpoint had been written yet ({path})"
    try:
        step = load_checkpoint(path, wants="run").get("global_step", "?")
    except UsageError as err:
        return f"{path} cannot be loaded ({err})"
    return f"{path} (global step {step}) is kept"

"""Published weights as self-describing octvideo checkpoints (``octvideo import``).

A checkpoint ``octvideo train`` writes carries, besides the weights, the model section, the class
names, the normalisation and the clip protocol, which is what ``predict``, ``test``, ``export`` and
``train model.pretrained=`` read. ``import_checkpoint`` writes such a file from weights made
elsewhere, with the protocol their authors evaluated them with:

- a PyTorchVideo model-zoo checkpoint (``SLOW_8x8_R50.pyth``: a state dict under
  ``"model_state"``) of C2D, I3D, Slow or SlowFast ResNets: renamed key by key, exact at alpha 0;
  the zoo's Kinetics protocol (T x tau frames counted at 30 fps, mean 0.45 / std 0.225, short side
  256, 10 temporal clips x 3 crops of 256; Feichtenhofer et al., "SlowFast Networks for Video
  Recognition", ICCV 2019, and its PySlowFast / PyTorchVideo code);
- a torchvision 2D ImageNet ResNet state dict: inflated into C2D, I3D or Slow (Carreira &
  Zisserman, CVPR 2017), with ImageNet's normalisation, as a starting point for fine-tuning;
- an octvideo checkpoint (or a bare octvideo state dict), to octavise it or give it class names.

``alpha`` writes the octave network whose four OctConv blocks are slices of each vanilla weight
(Chen et al., "Drop an Octave", ICCV 2019: the paper fine-tunes Oct models from such weights).

Beside ``OUT.ckpt`` goes ``OUT.yaml``, a run config of the same model and clip protocol, so that
``octvideo test --cfg OUT.yaml --ckpt OUT.ckpt data.test_list=...`` tests it as its source did.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import importlib.resources
import io
import logging
import os
import re
import shlex
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from octvideo import __version__
from octvideo.argtypes import bounded_int
from octvideo.checkpoint_meta import (
    ADVICE,
    CheckpointMeta,
    ClipProtocol,
    model_config,
    stored_meta,
)
from octvideo.config import (
    CONFIG_DIR,
    LIMITS,
    ModelConfig,
    OutputConfig,
    RunConfig,
    dump_yaml,
    parse_overrides,
    shipped_names,
    to_dict,
)
from octvideo.data.config import DataConfig
from octvideo.engine.checkpoint import load_checkpoint, model_state_dict
from octvideo.engine.zoo_recipes import (
    DEFAULT_CLIP,
    FAST_STRIDE,
    ZOO_FPS,
    ZOO_MEAN,
    ZOO_STD,
    ZooRecipe,
    lateral_kernel,
    pytorchvideo_vanilla,
    speed_ratio,
    zoo_head_pool,
    zoo_recipe,
)
from octvideo.errors import (
    AnnotationError,
    CheckpointError,
    ConfigError,
    UsageError,
    first_line,
    usage_errors,
)
from octvideo.models import is_model, list_models, unknown_model_hint
from octvideo.models.weights import (
    StateMismatch,
    in_pytorchvideo_terms,
    is_alpha0_state,
    pytorchvideo_key,
    state_mismatch,
    with_batch_counts,
)
from octvideo.network import build_network
from octvideo.paths import (
    AtomicOutputs,
    ReadFiles,
    check_output_file,
    is_missing,
    keep_unless_earlier,
    not_utf8,
    why_not_a_file,
)

logger = logging.getLogger(__name__)

KINETICS400 = "kinetics400"
CLASS_FILES = {KINETICS400: "kinetics400_classes.txt"}  # shipped in octvideo/data

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what torchvision's ImageNet ResNets were trained on
IMAGENET_STD = (0.229, 0.224, 0.225)
CONFIG_MARK = b"# Written by octvideo import"  # first bytes of the run config beside a checkpoint
_ZOO_NAME = re.compile(r"(?:^|[_-])(\d+)x(\d+)(?:[_.-]|$)")  # SLOW_4x16_R50.pyth -> 4x16
_TV_BLOCKS = {  # torchvision ResNet depth by (blocks per layer, bottleneck)
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}


@dataclass(frozen=True)
class ImportResult:
    """What ``import_checkpoint`` wrote.

    Attributes:
        checkpoint: the octvideo checkpoint.
        config: the run config beside it (``--cfg`` of ``octvideo test``).
        meta: the metadata stored in the checkpoint (model section, classes, clip protocol).
        clip_source: where the clip protocol came from, for the command's report.
    """

    checkpoint: Path
    config: Path
    meta: dict[str, Any]
    clip_source: str


class ClipOrigin(NamedTuple):
    """Where an import's clip protocol came from: ``kind`` for the code to branch on, ``words``
    for its messages and the command's report."""

    kind: Literal["flag", "file_name", "recipe", "default", "checkpoint"]
    words: str  # "--clip", "the file name SLOW_4x16_R50.pyth", "the 8x8 default", ...


@dataclass(frozen=True)
class _Converted:
    """What a source's conversion gives: the weights under octvideo's keys, and what the
    checkpoint will say about them."""

    state: dict[str, Tensor]
    model: dict[str, Any]  # the model section (``to_dict(ModelConfig)``)
    classes: list[str]
    clip: ClipProtocol
    clip_origin: ClipOrigin
    classes_file: str = ""  # the source run's data.classes_file, which the run config names
    jitter_scales: tuple[int, int] | None = None  # the source run's data.train_jitter_scales
    # the folders a relative classes_file may be relative to, likeliest first (_run_folders)
    run_folders: tuple[Path, ...] = ()


def kinetics400_classes() -> list[str]:
    """The 400 Kinetics class names in the order the zoo's classifiers use (alphabetical)."""
    return _shipped_classes(KINETICS400)


def _shipped_classes(name: str) -> list[str]:
    text = importlib.resources.files("octvideo.data").joinpath(CLASS_FILES[name]).read_text()
    return [line for line in text.splitlines() if line]


def _shipped_path(name: str) -> Path:
    return Path(str(importlib.resources.files("octvideo.data").joinpath(CLASS_FILES[name])))


def parse_clip(text: str) -> tuple[int, int]:
    """``"8x8"`` -> (8, 8): frames x stride of the clip (the slow pathway's, for SlowFast).

    Raises:
        UsageError: not two whole numbers joined by ``x``, from 1 to the bounds of
            ``data.num_frames`` and ``data.sampling_rate``.
    """
    most = _clip_bounds()
    match = re.fullmatch(r"\s*([0-9]{1,9})\s*x\s*([0-9]{1,9})\s*", text)
    clip = (int(match[1]), int(match[2])) if match else (0, 0)
    if not all(1 <= n <= bound for n, bound in zip(clip, most, strict=True)):
        raise UsageError(
            f"--clip {text!r}: give frames x stride from 1x1 to {most[0]}x{most[1]}, e.g. 8x8 "
            "or 4x16"
        )
    return clip


def _clip_bounds() -> tuple[int, int]:
    """The largest T and tau of a clip: the bounds of ``data.num_frames`` and
    ``data.sampling_rate`` in ``octvideo.config.LIMITS``."""
    return int(LIMITS["data.num_frames"][0]), int(LIMITS["data.sampling_rate"][0])


def import_checkpoint(
    src: str | os.PathLike[str],
    *,
    source: str,
    model: str,
    out: str | os.PathLike[str],
    classes: str | None = None,
    alpha: float | None = None,
    clip: str | None = None,
) -> ImportResult:
    """Writes ``out`` (an octvideo checkpoint) and its run config ``out`` with ``.yaml``.

    Args:
        src: the weights file.
        source: ``"pytorchvideo"``, ``"torchvision"`` or ``"octvideo"``.
        model: the octvideo variant the weights belong to (``slow_r50``, ``i3d_r50``, ...).
        out: the checkpoint to write (a ``.ckpt`` name).
        classes: ``"kinetics400"``, a class-names file (one a line) or a whole number (classes
            named ``0``..``N-1``); default: the source's own (Kinetics-400 for a 400-output
            PyTorchVideo classifier, an octvideo checkpoint's names).
        alpha: write the octave network of this low-frequency share (res2-res4), its weights
            sliced from the vanilla ones; default: as the source is.
        clip: ``TxTAU`` frames x stride for a source without a clip protocol (the slow
            pathway's for SlowFast); default: the ``TxTAU`` in a zoo file name, else 8x8.

    Raises:
        UsageError: a bad argument, a missing or unreadable file, weights of another architecture
            than ``model`` (naming the one that fits, when one does), classes of another count
            than the classifier, or an output that is an input or cannot be written. Raised
            before anything is written.
        OutputWriteError: the checkpoint or its run config could not be written (full disk); both
            are as they were (a RunStopped).
    """
    src, out = Path(src), Path(out)
    clip_tt = _check_arguments(source, model, alpha, clip, out)
    config_path = out.with_suffix(".yaml")
    class_file = _class_file(classes)
    reads = ReadFiles(
        [
            ("the source checkpoint", src),
            *([("the classes file", class_file)] if class_file else []),
        ]
    )
    check_output_file("--out", out, reads)
    check_output_file("--out", config_path, reads, folder=False)
    _check_outputs_replaceable(config_path, out)
    names = _read_classes(classes, class_file)

    checkpoint = load_checkpoint(src, wants=source)  # its refusals advise a file of --from's
    got = _CONVERTERS[source](src, checkpoint, model, names, alpha, clip_tt)
    del checkpoint
    if classes is None and got.classes == kinetics400_classes():
        classes = KINETICS400  # the zoo's default, so the run config names the shipped list
    data = _data_config(src, got, classes, class_file)
    section = model_config(got.model)
    try:
        run_cfg = RunConfig(model=section, data=data, name=out.stem)
    except ValueError as err:  # a bound of octvideo.config.LIMITS (a SlowFast's Fast frames)
        t, tau = _user_clip(got.clip)
        raise UsageError(
            f"{_clip_words(t, tau, got.clip_origin)}: {first_line(err)}"
            f"{_clip_advice(got.clip_origin)}"
        ) from err
    _check_clip_fits(section, data, got)
    meta = CheckpointMeta(
        model=section,
        classes=tuple(got.classes),
        clip=got.clip,
        name=out.stem,
        config=to_dict(run_cfg),
        source={"from": source, "file": src.name, "sha256": _sha256(src)},
        octvideo_version=__version__,
    )
    _check_predict_reads(got, meta, out)
    _write(out, config_path, got.state, meta, run_cfg)
    return ImportResult(out, config_path, meta.to_dict(), got.clip_origin.words)


# ------------------------------------------------------------------------------------ sources


def _from_pytorchvideo(
    src: Path,
    checkpoint: dict[str, Any],
    model: str,
    names: list[str] | None,
    alpha: float | None,
    clip: tuple[int, int] | None,
) -> _Converted:
    raw = _plain_state(checkpoint)  # as train's model.pretrained_kind=pytorchvideo reads it
    if not any(k.startswith("blocks.") for k in raw):
        raise UsageError(
            f"{src} holds no PyTorchVideo weights (no 'model_state' of 'blocks.*' tensors)"
            f"{_other_source_hint(checkpoint, 'pytorchvideo')}"
        )
    vanilla = pytorchvideo_vanilla(raw, model)
    if vanilla is None or not _fits_alpha0(model, vanilla):
        raise UsageError(_pytorchvideo_refusal(src, raw, model))
    num_classes = _classifier_rows(vanilla)
    if names is None:
        if num_classes != 400:
            raise UsageError(
                f"{src}: its classifier has {num_classes} outputs, not Kinetics-400's 400; name "
                "its classes with --classes FILE"
            )
        names = kinetics400_classes()
    _check_class_count(src, names, num_classes)
    t, tau, origin = _weights_clip(model, vanilla, clip, src)
    extra = {**_extra_from_weights(model, vanilla, tau), "head_pool": zoo_head_pool(model, t, tau)}
    target = _model_section(model, num_classes, alpha or 0.0, extra)
    state = _octavised(vanilla, target)
    protocol = _protocol(model, t, tau, origin, fps=ZOO_FPS, mean=ZOO_MEAN, std=ZOO_STD)
    return _Converted(state, target, names, protocol, origin)


def _from_torchvision(
    src: Path,
    checkpoint: dict[str, Any],
    model: str,
    names: list[str] | None,
    alpha: float | None,
    clip: tuple[int, int] | None,
) -> _Converted:
    from octvideo.models.weights import check_resnet2d, inflate_resnet2d

    raw = _plain_state(checkpoint)
    if not any(k.startswith(("conv1.", "bn1.")) for k in raw) or not any(
        k.startswith("layer1.") for k in raw
    ):  # a stem and a first stage: a file that lost a key of them is named damaged below
        raise UsageError(
            f"{src} holds no torchvision ResNet weights (no conv1 / layer1 keys)"
            f"{_other_source_hint(checkpoint, 'torchvision')}"
        )
    if names is None:
        raise UsageError(
            f"--from torchvision: {src} has an ImageNet classifier, not a video one; name the "
            "classes to fine-tune on with --classes kinetics400, FILE or a number"
        )
    try:  # before the depth: no --model takes a ResNeXt or a wide ResNet
        check_resnet2d(raw)
    except ValueError as err:
        raise UsageError(f"{src} does not inflate into {model}: {first_line(err)}") from err
    depth = _torchvision_depth(raw)
    width = _stem_width(raw, ("conv1.weight", "bn1.", "layer1.0.conv1.weight"))
    extra = {} if width in (None, 64) else {"width": width}
    with torch.device("meta"):
        probe = _build(_model_section(model, len(names), 0.0, extra))
    if getattr(probe, "depth", None) != depth:
        fits = [n for n in _family(model) if n.endswith(f"_r{depth}")] if depth else []
        what = f"a torchvision ResNet-{depth}" if depth else "a torchvision network"
        hint = f"; use --model {fits[0]}" if fits else " (octvideo has no such depth)"
        raise UsageError(f"{src} holds {what}, which does not inflate into {model}{hint}")
    t, tau, origin = _clip_or_default(clip, src)
    target = _model_section(model, len(names), alpha or 0.0, extra)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # a fresh classifier that is the same on every import
        net = _build(target)
    try:
        state = inflate_resnet2d(raw, net)
    except ValueError as err:
        raise UsageError(f"{src} does not inflate into {model}: {first_line(err)}") from err
    protocol = _protocol(model, t, tau, origin, fps=None, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return _Converted(state, target, names, protocol, origin)


def _from_octvideo(
    src: Path,
    checkpoint: dict[str, Any],
    model: str,
    names: list[str] | None,
    alpha: float | None,
    clip: tuple[int, int] | None,
) -> _Converted:
    state = with_batch_counts(_plain_state(checkpoint))
    if not any(k.startswith(("stem.", "slow.stem.")) for k in state):
        raise UsageError(
            f"{src} holds no octvideo weights{_other_source_hint(checkpoint, 'octvideo')}"
        )
    own = stored_meta(checkpoint, src)  # checked as predict checks it: one line per bad entry
    if own is None:
        got = _octvideo_bare(src, state, model, names, clip)
    else:
        got = _octvideo_with_meta(src, state, own, model, names, clip)
    return _at_alpha(got, alpha, src)


_CONVERTERS: dict[str, Callable[..., _Converted]] = {  # --from SOURCE: its conversion
    "pytorchvideo": _from_pytorchvideo,
    "torchvision": _from_torchvision,
    "octvideo": _from_octvideo,
}
SOURCES = tuple(_CONVERTERS)


def _octvideo_with_meta(
    src: Path,
    state: dict[str, Tensor],
    own: CheckpointMeta,
    model: str,
    names: list[str] | None,
    clip: tuple[int, int] | None,
) -> _Converted:
    """A checkpoint ``octvideo train`` or ``import`` wrote: its model section, clip protocol
    and class names (``names``, from ``--classes``, rename them), checked against its weights."""
    trained = own.model.name
    if not is_model(trained):
        raise UsageError(
            f"checkpoint {str(src)!r} metadata: model.name is {trained!r}, which is not an "
            f"octvideo model; {ADVICE}"
        )
    if trained != model:
        raise UsageError(
            f"{src} is an octvideo {trained} checkpoint, not {model}; use --model {trained}"
        )
    if clip is not None:
        raise UsageError(
            f"--clip: {src} keeps the clip protocol it was trained with; --clip applies to "
            "weights without one (PyTorchVideo, torchvision, a bare state dict)"
        )
    section = to_dict(own.model)
    trained_on, scales = own.trained_classes_file(src), own.trained_jitter_scales(src)
    folders = _run_folders(src, own.config or {})
    names_from = "--classes"
    if names is None:
        names, names_from = list(own.classes), "its metadata"
    else:
        trained_on = ""  # the names --classes gives, not the run's
    problem = _mismatch(section, state)
    if problem:
        raise UsageError(
            f"{src} does not fit the model its metadata describes ({model}): {problem}"
        )
    _check_class_count(src, names, section["num_classes"], names_from)
    return _Converted(
        state,
        section,
        names,
        own.clip,
        ClipOrigin("checkpoint", "the source checkpoint"),
        classes_file=trained_on,
        jitter_scales=scales,
        run_folders=folders,
    )


def _octvideo_bare(
    src: Path,
    state: dict[str, Tensor],
    model: str,
    names: list[str] | None,
    clip: tuple[int, int] | None,
) -> _Converted:
    """A bare state dict of ``model``'s alpha-0 network: its width, lateral kernel and class
    count from the weights, the clip from ``clip`` or the file name, octvideo's normalisation."""
    if not is_alpha0_state(state):
        raise UsageError(
            f"{src} is a bare state dict of an octave network, which does not record its "
            "alpha; import its alpha-0 weights, or a checkpoint written by 'octvideo train'"
        )
    if not _fits_alpha0(model, state):
        fits = _fitting_models(lambda name: state, list_models())
        diff = None if fits else _few_keys_off(model, state)
        if diff:
            raise UsageError(_damaged(src, "octvideo", model, diff, "get the file again"))
        raise UsageError(_wrong_model(src, "octvideo", model, fits))
    t, tau, origin = _weights_clip(model, state, clip, src)
    extra = _extra_from_weights(model, state, tau)
    section = _model_section(model, _classifier_rows(state), 0.0, extra)
    protocol = _protocol(model, t, tau, origin, fps=None, mean=DataConfig.mean, std=DataConfig.std)
    if names is None:
        raise UsageError(
            f"{src} has no class names (a bare state dict); name them with --classes "
            "kinetics400, FILE or a number"
        )
    _check_class_count(src, names, section["num_classes"])
    return _Converted(state, section, names, protocol, origin)


def _at_alpha(got: _Converted, alpha: float | None, src: Path) -> _Converted:
    """``got`` as the network of ``--alpha`` (None: as it is): an alpha-0 source's weights
    sliced into the octave blocks; an octave source is refused at another alpha."""
    source_alpha = got.model["alpha"]
    if alpha is None or alpha == source_alpha:
        return got
    if not _is_alpha0(source_alpha):
        raise UsageError(
            f"--alpha {alpha}: {src} is already an octave network (alpha {source_alpha}); "
            "octavise from its alpha-0 checkpoint"
        )
    target = {**got.model, "alpha": float(alpha)}  # alpha is checked, in [0, 1)
    return dataclasses.replace(got, state=_octavised(got.state, target), model=target)


def _run_folders(src: Path, config: Mapping[str, Any]) -> tuple[Path, ...]:
    """Where a relative ``data.classes_file`` of the run that wrote ``src`` may be: the folder
    that run was started in, which ``octvideo train`` resolves it against, where the checkpoint
    still lies under the run folder its config names relative to it
    (``START/runs/a/checkpoints/last.ckpt`` for ``output.dir=runs/a``); then that run folder;
    then the current folder."""
    here = Path(os.path.abspath(src)).parent
    run_folder = here.parent if here.name == "checkpoints" else here
    folders = [run_folder, Path.cwd()]
    output = config.get("output")
    output = output if isinstance(output, Mapping) else {}
    named = output.get("dir") or os.path.join(
        str(output.get("root", OutputConfig.root)),
        str(output.get("name") or config.get("name") or ""),
    )
    parts = Path(os.path.normpath(str(named))).parts
    relative = not os.path.isabs(str(named)) and ".." not in parts and parts != (".",)
    if relative and parts and run_folder.parts[-len(parts) :] == parts:
        folders.insert(0, Path(*run_folder.parts[: -len(parts)]))
    return tuple(dict.fromkeys(folders))  # in order, once each


# ---------------------------------------------------------------------------------- checks


def _check_arguments(
    source: str, model: str, alpha: float | None, clip: str | None, out: Path
) -> tuple[int, int] | None:
    """Refuses a bad ``--from``, ``--model``, ``--alpha``, ``--clip`` or ``--out`` name, before
    any file is looked at; returns ``--clip`` as (T, tau), None when it is not given."""
    if source not in SOURCES:
        close = difflib.get_close_matches(source, SOURCES, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"--from {source!r}: use one of {', '.join(SOURCES)}{hint}")
    if not is_model(model):
        raise UsageError(
            f"--model {model!r} is not an octvideo model{unknown_model_hint(model)}; "
            "'octvideo models' lists them"
        )
    _check_model_for_source(model, source)
    if alpha is not None and not 0.0 <= alpha < 1.0:
        raise UsageError(f"--alpha {alpha}: give a low-frequency share in [0, 1), e.g. 0.1")
    clip_tt = parse_clip(clip) if clip is not None else None
    if out.suffix != ".ckpt":
        raise UsageError(f"--out {out}: give a .ckpt file name (the run config goes beside it)")
    _check_out_name(out)
    return clip_tt


def _check_predict_reads(got: _Converted, meta: CheckpointMeta, out: Path) -> None:
    """Guards the file ``predict`` reads: the weights load into the model section and the
    metadata reads back as ``predict`` reads it. Each conversion checks its own input, so a
    failure here is octvideo's bug, not the user's.

    Raises:
        RuntimeError: either does not.
    """
    problem = _mismatch(got.model, got.state)
    if problem:
        raise RuntimeError(f"imported weights do not fit {meta.model.name}: {problem}")
    try:
        CheckpointMeta.from_dict(meta.to_dict(), path=out)
    except CheckpointError as err:
        raise RuntimeError(f"import wrote metadata that predict refuses: {err}") from err


def _check_model_for_source(model: str, source: str) -> None:
    if source == "pytorchvideo" and not _zoo_family(model):
        raise UsageError(
            f"--model {model}: PyTorchVideo's zoo has C2D, I3D, Slow and SlowFast ResNets of "
            "depth 50 and more, without Non-local blocks; choose one of "
            f"{', '.join(n for n in list_models() if _zoo_family(n))}"
        )
    if source == "torchvision" and model.startswith("slowfast"):
        raise UsageError(
            f"--model {model}: a torchvision 2D ResNet inflates into one pathway (C2D, I3D, "
            "Slow), not SlowFast's two"
        )


def _zoo_family(model: str) -> bool:
    """Whether PyTorchVideo builds this architecture (bottleneck ResNets, no Non-local)."""
    return (
        model.startswith(("c2d_", "i3d_", "slow_", "slowfast_"))
        and "_nl_" not in model
        and not model.endswith(("_r18", "_r34"))
    )


# characters a name in the run config's comment lines cannot hold: control characters (a line
# break, a tab) and YAML's other line breaks (bytes not UTF-8 are paths.not_utf8's)
_UNWRITABLE = frozenset({"Cc", "Zl", "Zp"})


def _unwritable(name: str) -> str | None:
    """Why ``name`` cannot stand in a line of the run config, or None."""
    if not_utf8(name):
        return "is not UTF-8 text, which the run config (UTF-8) cannot name"
    if {unicodedata.category(c) for c in name} & _UNWRITABLE:
        return (
            "holds a line break or another control character, which the commands in the run "
            "config's comments cannot hold"
        )
    return None


def _check_out_name(out: Path) -> None:
    """Refuses an ``--out`` name the run config cannot name in its commands (one line: the
    name as Python writes it, its line breaks escaped)."""
    problem = _unwritable(out.name)
    if problem:
        raise UsageError(f"--out {os.fspath(out)!r}: its name {problem}; choose another --out name")


def _shell_word(name: str) -> str:
    """``name`` as a shell word that a command takes as that file: quoted as needed, and after
    ``./`` where it starts with a dash, which would read as an option."""
    return shlex.quote(f"./{name}" if name.startswith("-") else name)


def _override(key: str, name: str) -> str:
    """``key=name`` as a shell word whose value the config reads back as ``name``: in YAML single
    quotes where YAML would read it as something else (``a #b.ckpt``, ``[1].ckpt``)."""
    try:
        plain = parse_overrides([f"{key}={name}"])[0][1] == name
    except ConfigError:
        plain = False
    value = name if plain else "'" + name.replace("'", "''") + "'"
    word = f"{key}={value}"
    if shlex.quote(word) != word and not set(word) & set('"$`\\!'):
        return f'"{word}"'  # reads better than shlex's quotes around YAML's
    return shlex.quote(word)


def _check_outputs_replaceable(config_path: Path, out: Path) -> None:
    """Refuses outputs that are not an earlier import's (``paths.keep_unless_earlier``, as
    ``predict`` and ``export`` refuse theirs): a YAML file beside ``out`` that ``octvideo
    import`` did not write (a training config of the same name, say), a checkpoint at ``out``
    without such a run config beside it (a run's last.ckpt, its resume point), either one when
    it is read-only, and a run config named like a shipped config or short name, which
    ``--cfg`` would refuse as naming two configs."""
    shipped = shipped_names(config_path.name)
    if shipped:
        raise UsageError(
            f"--out {out}: its run config {config_path.name} would be named like the shipped "
            f"config {shipped[0].relative_to(CONFIG_DIR).as_posix()}, which --cfg would not "
            "tell apart; choose another --out name"
        )
    keep_unless_earlier(
        f"--out {out}: its run config",
        config_path,
        _is_import_config,
        "a run config of 'octvideo import'",
    )
    keep_unless_earlier(
        "--out",
        out,
        lambda _: config_path.is_file() and _is_import_config(config_path),
        "an earlier import (a checkpoint with the run config of 'octvideo import' beside it)",
    )


def _is_import_config(path: Path) -> bool:
    """Whether ``path`` begins as the run config ``octvideo import`` writes (``CONFIG_MARK``).

    Raises:
        OSError: it cannot be read.
    """
    with path.open("rb") as fh:
        return fh.read(len(CONFIG_MARK)) == CONFIG_MARK


def _is_count(classes: str) -> bool:
    """Whether ``--classes`` gives a number of classes (ASCII digits, signed or between spaces,
    as numbers are read; anything else is a file: ``./-1`` names a file called -1)."""
    return re.fullmatch(r"\s*[+-]?[0-9]+\s*", classes) is not None


def _class_file(classes: str | None) -> Path | None:
    if classes is None or classes in CLASS_FILES or _is_count(classes):
        return None
    return Path(classes)


def _read_classes(classes: str | None, class_file: Path | None) -> list[str] | None:
    """The class names ``--classes`` gives, or None when it is not given."""
    from octvideo.data.annotations import MAX_CLASSES, read_classes

    if classes is None:
        return None
    if classes in CLASS_FILES:
        return _shipped_classes(classes)
    if _is_count(classes):
        try:
            count = bounded_int(MAX_CLASSES)(classes)
        except argparse.ArgumentTypeError:
            raise UsageError(f"--classes {classes}: give 1 to {MAX_CLASSES} classes") from None
        return [str(i) for i in range(count)]
    assert class_file is not None
    why = why_not_a_file(class_file)
    if why:  # nothing there, a pipe (it would be read before the checkpoint), a broken link
        it = "no such file" if is_missing(why) else f"the path {why}"
        raise UsageError(
            f"--classes {classes}: {it}; give kinetics400, a class-names file (one a line) or a "
            "number of classes"
        )
    names = read_classes(class_file)
    if not names:
        raise UsageError(f"--classes {classes}: the file names no class")
    return names


def _check_class_count(
    src: Path, names: Sequence[str], rows: int, names_from: str = "--classes"
) -> None:
    if len(names) != rows:
        raise UsageError(
            f"{names_from} names {len(names)} classes but the classifier of {src} has {rows} "
            "outputs; give its own class list (fine-tune for another one with 'octvideo train "
            "model.pretrained=...', which replaces the classifier)"
        )


def _wrong_model(src: Path, kind: str, model: str, fits: Sequence[str]) -> str:
    if fits:
        return f"{src} holds {kind} weights of {fits[0]}, not of {model}; use --model {fits[0]}"
    return (
        f"{src} does not hold {kind} weights of {model}, nor of another octvideo model; "
        "check --model and --from"
    )


def _other_source_hint(checkpoint: Mapping[str, Any], asked: str) -> str:
    state = _plain_state(checkpoint)
    if state and all(k.startswith("module.") for k in state):
        return (
            "; every key starts with 'module.', as a DataParallel or DistributedDataParallel "
            "wrapper saves them: save model.module.state_dict() instead, or remove the prefix "
            "from the keys"
        )
    if asked != "pytorchvideo" and (
        "model_state" in checkpoint or any(k.startswith("blocks.") for k in state)
    ):
        return "; it looks like a PyTorchVideo checkpoint: use --from pytorchvideo"
    if asked != "torchvision" and "conv1.weight" in state:
        return "; it looks like a torchvision ResNet: use --from torchvision"
    if asked != "octvideo" and any(k.startswith(("stem.", "slow.stem.")) for k in state):
        return "; it looks like an octvideo checkpoint: use --from octvideo"
    return ""


def _mismatch(section: Mapping[str, Any], state: Mapping[str, Tensor]) -> str | None:
    """Why ``state`` does not load into the model ``section`` describes (built on the meta
    device: shapes only), or None."""
    try:
        with torch.device("meta"):
            net = _build(section)
    except (ValueError, TypeError) as err:
        return first_line(err)
    diff = state_mismatch(net, state)
    return str(diff) if diff else None


def _fitting_models(
    state_of: Callable[[str], Mapping[str, Tensor] | None], candidates: Sequence[str]
) -> list[str]:
    """The ``candidates`` whose alpha-0 network ``state_of(name)`` fits (first: the one to
    name in an error)."""
    fits = []
    for name in candidates:
        state = state_of(name)
        if state is not None and _fits_alpha0(name, state):
            fits.append(name)
    return fits


def _torchvision_depth(raw: Mapping[str, Tensor]) -> int | None:
    blocks = []
    for layer in range(1, 5):
        found = {int(k.split(".")[1]) for k in raw if k.startswith(f"layer{layer}.")}
        blocks.append(max(found) + 1 if found else 0)
    bottleneck = "layer1.0.conv3.weight" in raw
    return _TV_BLOCKS.get((tuple(blocks), bottleneck))


def _family(model: str) -> list[str]:
    prefix = model.rsplit("_r", 1)[0]
    return [n for n in list_models() if n.rsplit("_r", 1)[0] == prefix]


# -------------------------------------------------------------------------------- diagnosis
# Why a PyTorchVideo file that fits no octvideo model is refused: a damaged file (a few keys
# off), or an intact one of a zoo design octvideo does not build. Only _from_pytorchvideo asks.


def _pytorchvideo_refusal(src: Path, raw: Mapping[str, Tensor], model: str) -> str:
    """Why the PyTorchVideo state dict ``raw`` does not import as ``model``, in one line: the
    zoo model it does fit, else the zoo design it is of (``_other_design``), else the keys by
    which it misses ``model`` (``_pytorchvideo_keys_off``: a damaged file), else that it is no
    octvideo model's."""
    candidates = [n for n in list_models() if _zoo_family(n)]
    fits = _fitting_models(lambda name: pytorchvideo_vanilla(raw, name), candidates)
    if fits:
        return _wrong_model(src, "PyTorchVideo", model, fits)
    design = _other_design(src, raw, [model, *candidates])
    if design:
        return design
    keys = _pytorchvideo_keys_off(raw, model)
    if keys:
        return _damaged(src, "PyTorchVideo", model, keys, "download it again")
    return _wrong_model(src, "PyTorchVideo", model, fits)


def _damaged(src: Path, kind: str, model: str, keys: StateMismatch, advice: str) -> str:
    """The refusal of a file of ``model``'s layout but for the ``keys`` it misses it by."""
    return (
        f"{src} has the layout of {kind}'s {model} but not all its weights ({keys}); the file is "
        f"damaged or of a modified network: {advice}"
    )


def _pytorchvideo_keys_off(raw: Mapping[str, Tensor], model: str) -> StateMismatch | None:
    """The keys by which a PyTorchVideo state dict misses ``model``'s layout, in the file's
    names (``in_pytorchvideo_terms``: a missing key as the file would hold it), where it is
    ``model``'s but for a few keys (``_few_keys_off``); else None. A key the converter has no
    name for is unexpected."""
    unknown = [k for k in raw if pytorchvideo_vanilla({k: raw[k]}, model) is None]
    dropped = set(unknown)
    kept = {k: v for k, v in raw.items() if k not in dropped}
    vanilla = pytorchvideo_vanilla(kept, model) if kept else None
    diff = _few_keys_off(model, vanilla, len(unknown)) if vanilla else None
    if diff is None:
        return None
    theirs = in_pytorchvideo_terms(diff, kept, slowfast=model.startswith("slowfast"))
    return theirs._replace(unexpected=unknown + theirs.unexpected)


def _few_keys_off(model: str, state: Mapping[str, Tensor], others: int = 0) -> StateMismatch | None:
    """How ``state`` misses ``model``'s alpha-0 network (``_alpha0_net``, its settings read from
    the weights there are) where it is that network's but for a few keys: at most a tenth of
    them, counting ``others`` keys of the file that have no name in octvideo; else None."""
    net = _alpha0_net(model, state)
    if net is None:
        return None
    diff = state_mismatch(net, state) or StateMismatch({}, [], [])
    off = sum(map(len, diff)) + others
    if not off or off > max(1, len(net.state_dict()) // 10):
        return None
    return diff


# PyTorchVideo zoo designs that octvideo does not build, by the octvideo convolutions whose
# temporal kernel differs: SLOWFAST_16x8_R101_50_50.pyth has temporal kernel 1 in res4 blocks 6-22
# of both pathways, where slowfast_r101 (the zoo's SLOWFAST_8x8_R101) has 3.
_OTHER_DESIGNS = {
    (
        "slowfast_r101",
        frozenset(
            f"{path}.res4.{block}.conv_a.conv_hh.weight"
            for path in ("slow", "fast")
            for block in range(6, 23)
        ),
    ): "SlowFast 16x8 R101 50_50",
}


def _other_design(src: Path, raw: Mapping[str, Tensor], models: Sequence[str]) -> str | None:
    """The refusal of a PyTorchVideo file that is one of ``models`` (the one it differs from in
    the fewest weights, the first of a tie) but for what a design explains (``_design_off``): an
    intact file of a zoo design octvideo does not build, named where ``_OTHER_DESIGNS`` knows it,
    else by what differs; None where no model explains it so (a damaged file)."""
    offs = {model: _design_off(raw, model) for model in dict.fromkeys(models)}
    found = {model: off for model, off in offs.items() if off}
    if not found:
        return None
    model = min(found, key=lambda name: sum(map(len, found[name].values())))
    off = found[model]
    temporal = off.get("temporal", {})
    design = _OTHER_DESIGNS.get((model, frozenset(temporal))) if len(off) == 1 else None
    clauses = []
    for kind, found_off in off.items():
        key, (theirs, ours) = next(iter(found_off.items()))
        named = pytorchvideo_key(key, raw, slowfast=model.startswith("slowfast"))
        many = f"{len(found_off)} convolution{'s' if len(found_off) > 1 else ''}"
        if kind == "temporal":
            clauses.append(
                f"its temporal kernels differ from {model}'s in {many} ({named}: {theirs}, "
                f"{ours} in {model})"
            )
        elif kind == "groups":
            clauses.append(
                f"it has grouped convolutions where {model} has none, in {many} ({named}: "
                f"{theirs} groups of {ours} channel{'s' if ours > 1 else ''})"
            )
        else:
            clauses.append(
                f"it has no classifier where {model} has one (a backbone alone, or a detection "
                "network, whose head octvideo does not read)"
            )
    what = f"PyTorchVideo's {design}" if design else f"a PyTorchVideo {model} of another design"
    return (
        f"{src} holds {what}, which octvideo does not build: {'; '.join(clauses)}; the file is "
        "intact: import a zoo model that docs/zoo.md lists"
    )


def _design_off(
    raw: Mapping[str, Tensor], model: str
) -> dict[str, dict[str, tuple[int, int]]] | None:
    """How a PyTorchVideo state dict differs from ``model``'s alpha-0 network where another
    design explains every difference, by kind, each {octvideo key: (the file's, ``model``'s)}:
    ``"temporal"`` kernels (the file's, ``model``'s), ``"groups"`` (groups, channels in each),
    and ``"classifier"`` (a file without one; (0, rows)). None where anything else differs:
    another weight missing or left over, a norm's size, a convolution's output channels or
    spatial kernel, a tensor's rank (what a damaged file shows), or nothing differs."""
    vanilla = pytorchvideo_vanilla(raw, model)
    net = _alpha0_net(model, vanilla) if vanilla else None
    if net is None:
        return None
    own = net.state_dict()
    off: dict[str, dict[str, tuple[int, int]]] = {}
    missing = own.keys() - vanilla.keys()
    if vanilla.keys() - own.keys() or missing - {"head.fc.weight", "head.fc.bias"}:
        return None
    if missing:  # the whole classifier (a weight lost from it is a damaged file's)
        if missing != {"head.fc.weight", "head.fc.bias"}:
            return None
        off["classifier"] = {"head.fc.weight": (0, int(own["head.fc.weight"].shape[0]))}
    for key, value in vanilla.items():
        mine = own[key].shape
        if value.shape == mine:
            continue
        if value.ndim != 5 or len(mine) != 5 or value.shape[0] != mine[0]:
            return None
        if value.shape[3:] != mine[3:]:
            return None
        each = int(value.shape[1])
        if each != mine[1]:  # a grouped convolution reads ``each`` of the input channels
            if not 0 < each < mine[1] or mine[1] % each or mine[0] % (mine[1] // each):
                return None
            off.setdefault("groups", {})[key] = (mine[1] // each, each)
        if value.shape[2] != mine[2]:
            off.setdefault("temporal", {})[key] = (int(value.shape[2]), int(mine[2]))
    return off or None


# ------------------------------------------------------------------------------- building


def _extra_from_weights(model: str, vanilla: Mapping[str, Tensor], tau: int) -> dict[str, Any]:
    """Model keyword arguments the weights decide: a ResNet's width (stem channels) and a
    SlowFast's lateral kernel; a SlowFast's speed ratio comes from the clip's stride ``tau``
    (alpha = tau / 2)."""
    if model.startswith("slowfast"):
        kernel = _lateral_kernel(vanilla)
        extra: dict[str, Any] = {} if kernel is None else {"fusion_kernel": kernel}
        extra["slowfast_alpha"] = speed_ratio(tau)
        return extra
    width = _stem_width(vanilla, ("stem.conv.conv_hh.weight", "stem.bn.high.", "res2.0.conv_a."))
    return {} if width in (None, 64) else {"width": width}


def _stem_width(state: Mapping[str, Tensor], where: Sequence[str]) -> int | None:
    """A ResNet's stem width from the first of ``where`` (key prefixes: the stem conv's weight,
    its norm, the first block's conv, which the stem feeds) that the weights hold, so that a
    file missing one of them is still told which keys it misses; None where none is held."""
    for prefix in where:
        found = next((v for k, v in state.items() if k.startswith(prefix) and v.ndim), None)
        if found is not None:
            return int(found.shape[1 if prefix.startswith(("res2.", "layer1.")) else 0])
    return None


def _lateral_kernel(vanilla: Mapping[str, Tensor]) -> int | None:
    """A SlowFast's lateral kernel (``lateral_kernel``), else that of another of its lateral
    connections (the zoo's are all of one kernel) where the first one's weight is missing."""
    kernel = lateral_kernel(vanilla)
    if kernel is not None:
        return kernel
    fuse = (v for k, v in vanilla.items() if re.fullmatch(r"fuse_\w+\.conv\.conv_hh\.weight", k))
    return next((int(v.shape[2]) for v in fuse if v.ndim == 5), None)


def _clip_or_default(
    clip: tuple[int, int] | None, src: Path, recipe: ZooRecipe | None = None
) -> tuple[int, int, ClipOrigin]:
    """(T, tau, where it came from): ``--clip``, else the ``TxTAU`` of a zoo file name, else the
    clip of the zoo recipe the weights show (``recipe``), else 8x8.

    Raises:
        UsageError: the file name's clip is outside the bounds (0 frames or a stride of 0
            included), or is not ``recipe``'s.
    """
    if clip is not None:
        return clip[0], clip[1], ClipOrigin("flag", "--clip")
    match = _ZOO_NAME.search(src.name)
    if match:
        t, tau = int(match[1]), int(match[2])
        most = _clip_bounds()
        # as parse_clip refuses --clip: a name of 0 frames is refused, not read as the default
        if not (1 <= t <= most[0] and 1 <= tau <= most[1]):
            raise UsageError(
                f"the file name {src.name} gives clip {t}x{tau}, outside the bounds 1x1 to "
                f"{most[0]}x{most[1]} (data.num_frames x data.sampling_rate); pass --clip TxTAU"
            )
        if recipe is not None and (t, tau) != recipe.clip:
            want = "x".join(map(str, recipe.clip))
            raise UsageError(
                f"the file name {src.name} gives clip {t}x{tau}, but its weights' lateral kernel "
                f"of {recipe.kernel} frames is the zoo's {recipe.name}'s: pass --clip {want} for "
                f"the weights' recipe, or --clip {t}x{tau} to keep the name's"
            )
        return t, tau, ClipOrigin("file_name", f"the file name {src.name}")
    if recipe is not None:
        words = f"its weights' lateral kernel of {recipe.kernel} frames, the zoo's {recipe.name}'s"
        return (*recipe.clip, ClipOrigin("recipe", words))
    return DEFAULT_CLIP[0], DEFAULT_CLIP[1], ClipOrigin("default", "the 8x8 default")


def _weights_clip(
    model: str, vanilla: Mapping[str, Tensor], clip: tuple[int, int] | None, src: Path
) -> tuple[int, int, ClipOrigin]:
    """``_clip_or_default`` for weights that may show their zoo recipe (a SlowFast R50's lateral
    kernel): a file name of another clip is refused, and a ``--clip`` of another is followed with
    a warning (a network of that clip is not the one the weights were trained as)."""
    recipe = zoo_recipe(model, lateral_kernel(vanilla))
    t, tau, origin = _clip_or_default(clip, src, recipe)
    if recipe is not None and clip is not None and clip != recipe.clip:
        logger.warning(
            "--clip %dx%d: the lateral kernel of %s, %d frames, is the zoo's %s's; importing at "
            "%dx%d as asked",
            t,
            tau,
            src.name,
            recipe.kernel,
            recipe.name,
            t,
            tau,
        )
    return t, tau, origin


def _model_section(
    model: str, num_classes: int, alpha: float, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """The model section (``to_dict(ModelConfig)``) of ``model``; the other settings are the
    config's defaults."""
    with usage_errors(ValueError):
        section = ModelConfig(
            name=model, num_classes=num_classes, alpha=float(alpha), extra=dict(extra)
        )
    return to_dict(section)


def _alpha0_section(model: str, state: Mapping[str, Tensor]) -> dict[str, Any]:
    """The section of ``model``'s alpha-0 network with the width, lateral kernel and classifier
    rows of ``state`` (one row where it has no classifier), to compare ``state`` against; at the
    8x8 default's speed ratio, which only the lateral convolutions' stride shows, no shape."""
    extra = _extra_from_weights(model, state, DEFAULT_CLIP[1])
    return _model_section(model, max(_classifier_rows(state), 1), 0.0, extra)


def _alpha0_net(model: str, state: Mapping[str, Tensor]) -> nn.Module | None:
    """``model``'s alpha-0 network for the weights ``state`` (``_alpha0_section``), on the meta
    device (shapes only); None where the network refuses the settings the weights show (a
    ``ValueError`` or ``TypeError`` of its constructor): they are not ``model``'s weights.

    Raises:
        UsageError: a setting the weights show is beyond the config's bounds (a stem wider than
            ``model.extra.width`` takes), which no model would take either.
    """
    section = _alpha0_section(model, state)
    try:
        with torch.device("meta"):
            return _build(section)
    except (ValueError, TypeError):
        return None


def _fits_alpha0(model: str, state: Mapping[str, Tensor]) -> bool:
    """Whether ``state`` loads strictly into ``model``'s alpha-0 network (``_alpha0_net``)."""
    net = _alpha0_net(model, state)
    return net is not None and state_mismatch(net, state) is None


def _build(section: Mapping[str, Any]) -> nn.Module:
    return build_network(model_config(section))


def _octavised(vanilla: Mapping[str, Tensor], section: Mapping[str, Any]) -> dict[str, Tensor]:
    """``vanilla`` (alpha-0 keys) for the model ``section`` describes, sliced at its alpha."""
    from octvideo.models.weights import octavise_state_dict

    if _is_alpha0(section["alpha"]):
        return dict(vanilla)
    return octavise_state_dict(vanilla, _build(section))


def _is_alpha0(alpha: Any) -> bool:
    """Whether a model section's ``alpha`` (one share, or one per stage) is 0 throughout: the
    vanilla network, with no low-frequency group."""
    values = alpha if isinstance(alpha, list | tuple) else [alpha]
    return all(float(a) == 0.0 for a in values)


def _classifier_rows(state: Mapping[str, Tensor]) -> int:
    """The classifier's outputs: its weight's rows, else its bias's (a file that lost the weight
    is told so, not of another class count); 0 without a classifier."""
    for key in ("head.fc.weight", "head.fc.bias"):
        if key in state and state[key].ndim:
            return int(state[key].shape[0])
    return 0


def _plain_state(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The tensors of a checkpoint's weights, as every command reads them (``model_state_dict``:
    ``state_dict``, ``model.`` prefix removed; ``model_state``; ``model``; else the checkpoint
    itself)."""
    state = model_state_dict(dict(checkpoint))
    return {k: v for k, v in state.items() if isinstance(v, Tensor)}


def _protocol(
    model: str,
    t: int,
    tau: int,
    origin: ClipOrigin,
    *,
    fps: float | None,
    mean: Sequence[float],
    std: Sequence[float],
) -> ClipProtocol:
    """The clip protocol of a T x tau clip (the slow pathway's for SlowFast, whose Fast pathway
    takes alpha x T frames every ``FAST_STRIDE``th); the test views and crops are the config's
    defaults (the zoo's 10 x 3 of 256)."""
    slowfast_alpha = None
    frames, stride = t, tau
    if model.startswith("slowfast"):
        if tau % FAST_STRIDE or tau < 2 * FAST_STRIDE:
            raise UsageError(
                f"{_clip_words(t, tau, origin)}: a SlowFast clip's stride is an even number "
                f"of 4 or more (its Fast pathway takes every 2nd frame: 8x8, 4x16)"
                f"{_clip_advice(origin)}"
            )
        slowfast_alpha = speed_ratio(tau)
        frames, stride = t * slowfast_alpha, FAST_STRIDE
    data = DataConfig(
        num_frames=frames,
        sampling_rate=stride,
        target_fps=fps,
        slowfast_alpha=slowfast_alpha,
        mean=tuple(mean),
        std=tuple(std),
    )
    return ClipProtocol.from_data(data)


def _user_clip(clip: ClipProtocol) -> tuple[int, int]:
    """The ``TxTAU`` of a clip protocol as ``--clip`` gives it (the Slow pathway's for
    SlowFast)."""
    return clip.slow_frames, clip.sampling_rate * (clip.slowfast_alpha or 1)


def _clip_words(t: int, tau: int, origin: ClipOrigin) -> str:
    """The clip as an error names it: ``--clip 8x3`` where the user gave it, else with where it
    came from (a zoo file name, the default, the source checkpoint)."""
    return f"--clip {t}x{tau}" if origin.kind == "flag" else f"clip {t}x{tau} (from {origin.words})"


def _clip_advice(origin: ClipOrigin) -> str:
    """What to do about a clip that import did not take from the user, nor from a checkpoint that
    keeps its own: pass one."""
    return "" if origin.kind in ("flag", "checkpoint") else "; pass --clip TxTAU"


def _check_clip_fits(section: ModelConfig, data: DataConfig, got: _Converted) -> None:
    """Refuses a clip the network cannot run (too few frames for its temporal pools), as
    ``octvideo train`` does (``check_clip``, on the meta device), so that no checkpoint is written
    that predict and export would fail on; names the fewest frames it takes.

    Raises:
        UsageError: one line naming the clip, where it came from and the fewest frames.
    """
    from octvideo.engine.build import check_clip, fewest_frames

    crops = (data.train_crop_size, data.val_crop_size, data.test_crop_size)
    try:
        check_clip(section, data, crops)
    except ConfigError as err:
        t, tau = _user_clip(got.clip)
        if err.__cause__ is None:  # a setting refused by name, not by the network's run
            raise UsageError(f"{_clip_words(t, tau, got.clip_origin)}: {err}") from err
        fewest = fewest_frames(section, data, crops)
        # as --clip counts: the Slow pathway's frames
        least = dataclasses.replace(data, num_frames=fewest).slow_frames if fewest else None
        most = _clip_bounds()[0]
        takes = f"it takes {least} or more" if least else f"nor any of up to {most} frames"
        example = (
            f" (e.g. --clip {least}x{tau})"
            if least and got.clip_origin.kind != "checkpoint"
            else ""
        )
        raise UsageError(
            f"{_clip_words(t, tau, got.clip_origin)}: {section.name} cannot take clips of {t} "
            f"frame{'s' if t != 1 else ''}; {takes}{example} ({first_line(err.__cause__)})"
        ) from err


def _data_config(
    src: Path, got: _Converted, classes: str | None, class_file: Path | None
) -> DataConfig:
    """The data section of the run config beside the checkpoint: its clip protocol, the classes
    file its names came from (the shipped list, ``--classes FILE``, the source run's
    ``data.classes_file``; none for numbered classes), and the training scales: the source run's,
    else the default 256-320, grown in proportion where the clip's crops are larger than 256.

    Raises:
        CheckpointError: the source run's scales are smaller than its crops (an edited file).
    """
    clip = got.clip
    if classes in CLASS_FILES:
        classes_file = str(_shipped_path(classes))
    elif class_file is not None:
        classes_file = str(class_file.resolve())
    else:
        classes_file = _trained_classes_file(src, got)
    scales = got.jitter_scales
    if scales is None:
        low, high = DataConfig.train_jitter_scales
        crop = max(clip.train_crop_size, clip.val_crop_size, low)
        scales = (crop, -(-crop * high // low))
    try:
        return DataConfig(
            **clip.clip_dict(),
            train_jitter_scales=scales,
            classes_file=classes_file,
            mean=clip.mean,
            std=clip.std,
        )
    except ValueError as err:
        raise CheckpointError(
            f"checkpoint {str(src)!r} metadata: config.{first_line(err)}; {ADVICE}",
            field="config.data",
        ) from err


def _trained_classes_file(src: Path, got: _Converted) -> str:
    """The source run's ``data.classes_file`` as a path that means the same file wherever the
    run config is used: a relative one (which ``octvideo train`` read against the folder it was
    started in) resolved against the first of ``got.run_folders`` where it lists the checkpoint's
    classes. One that no such folder holds with those classes (the data moved, or the run was
    started elsewhere) is left out, with a warning: the checkpoint keeps its class names, which
    ``predict`` and ``test`` report, and a fine-tune names its own classes file.
    """
    from octvideo.data.annotations import read_classes

    name = got.classes_file
    if not name or os.path.isabs(name):
        return name
    for folder in got.run_folders:
        path = folder / name
        try:
            if path.is_file() and read_classes(path) == list(got.classes):
                return str(path.resolve())
        except (AnnotationError, OSError):  # not a class list of this run's: look on
            continue
    folders = ", ".join(str(folder) for folder in got.run_folders)
    logger.warning(
        "%s names data.classes_file=%s, relative to the folder its run was started in, and no %s "
        "in %s lists its %d classes: the run config leaves data.classes_file unset (the "
        "checkpoint keeps its class names); pass --classes FILE to name the file",
        src,
        name,
        name,
        folders,
        len(got.classes),
    )
    return ""


# ---------------------------------------------------------------------------------- writing


def _write(
    out: Path,
    config_path: Path,
    state: Mapping[str, Tensor],
    meta: CheckpointMeta,
    run_cfg: RunConfig,
) -> None:
    """The checkpoint (``octvideo train``'s layout) and its run config: one result, both new or
    both as they were (``paths.AtomicOutputs``).

    Raises:
        OutputWriteError: either cannot be written (full disk, an append-only earlier file);
            the earlier pair is kept, no temporary is left.
    """
    checkpoint = {
        "state_dict": {f"model.{k}": v.contiguous() for k, v in state.items()},
        "hyper_parameters": {"meta": meta.to_dict()},
        "octvideo_version": __version__,
    }
    text = _config_text(run_cfg, meta)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)  # in memory: the file write fails with a plain OSError
    with AtomicOutputs() as pair, buffer.getbuffer() as data:
        parts = pair.add(out, "--out"), pair.add(config_path, "--out")
        for part, content in zip(parts, (data, text), strict=True):
            part.write(content)
    logger.debug("wrote %s and %s", out, config_path)


def _config_text(run_cfg: RunConfig, meta: CheckpointMeta) -> str:
    """A short run config: the model and data sections; every other setting is the default."""
    model = {k: v for k, v in to_dict(run_cfg.model).items() if not k.startswith("pretrained")}
    data = to_dict(run_cfg.data)
    protocol = [*meta.clip.clip_dict(), "train_jitter_scales", "mean", "std", "classes_file"]
    sections = {"model": model, "data": {k: data[k] for k in protocol if k in data}}
    source = meta.source
    assert source is not None  # an import always records its source
    src = source["file"]
    src = repr(src) if _unwritable(src) else src  # a name of any bytes, on its one line
    cfg, ckpt = f"{run_cfg.name}.yaml", f"{run_cfg.name}.ckpt"  # pasted in their folder, run
    header = (
        f"{CONFIG_MARK.decode()}: {meta.model.name} from {src} (--from "
        f"{source['from']}), the model and clip protocol of {ckpt}.\n"
        f"# test:      octvideo test --cfg {_shell_word(cfg)} --ckpt {_shell_word(ckpt)} "
        "data.test_list=LIST\n"
        f"# fine-tune: octvideo train --cfg {_shell_word(cfg)} "
        f"{_override('model.pretrained', ckpt)} model.num_classes=N data.train_list=TRAIN "
        "data.val_list=VAL data.classes_file=CLASSES\n"
        "#            N: your number of classes; CLASSES: a file of yours that names them, one a "
        "line (written from TRAIN when it does not exist)\n"
    )
    return header + dump_yaml(sections, sort_keys=False, default_flow_style=None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

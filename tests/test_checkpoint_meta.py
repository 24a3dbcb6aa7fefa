"""One description of a checkpoint: ``to_dict`` and ``from_dict`` give back the same description,
a dict written by earlier versions still loads, and a missing or malformed entry is one line that
names it."""

from __future__ import annotations

import copy
import dataclasses
import io

import pytest
import torch

from octvideo.checkpoint_meta import (
    ADVICE,
    CheckpointMeta,
    ClipProtocol,
    stored_meta,
)
from octvideo.config import ModelConfig, load_config, to_dict
from octvideo.errors import CheckpointError, UsageError
from octvideo.network import build_network
from tests.conftest import META

# what octvideo train wrote before the metadata was one dataclass (run.checkpoint_meta), for a
# config of slowfast_r50 at 2 classes
TRAINED_BEFORE = {
    "octvideo_version": "0.1.0",
    "name": "slowfast_demo",
    "model": {
        "name": "slowfast_r50",
        "num_classes": 2,
        "alpha": [0.1, 0.1, 0.1, 0.0],
        "octave": [1, 2, 2],
        "dropout": 0.5,
        "pretrained": "",
        "pretrained_kind": "octvideo",
        "extra": {"slowfast_alpha": 4},
    },
    "classes": ["a", "b"],
    "normalization": {"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]},
    "clip": {
        "num_frames": 32,
        "sampling_rate": 2,
        "target_fps": 30.0,
        "slowfast_alpha": 4,
        "train_crop_size": 224,
        "val_crop_size": 224,
        "test_short_side": 256,
        "test_crop_size": 256,
        "test_num_clips": 10,
        "test_num_crops": 3,
    },
    "config": {"name": "slowfast_demo", "data": {"classes_file": "classes.txt"}},
}
# and what its first versions wrote: no version, no target_fps and no training crops
FIRST_FORMAT = {
    "name": "tiny",
    "model": {
        "name": "c2d_r18",
        "num_classes": 3,
        "alpha": 0.25,
        "octave": [1, 2, 2],
        "dropout": 0.0,
        "extra": {"width": 8},
    },
    "classes": ["left", "right", "still"],
    "normalization": {"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]},
    "clip": {
        "num_frames": 4,
        "sampling_rate": 2,
        "slowfast_alpha": None,
        "test_short_side": 32,
        "test_crop_size": 32,
        "test_num_clips": 3,
        "test_num_crops": 3,
    },
}


def _trained_meta() -> CheckpointMeta:
    cfg = load_config(
        None, ["data.target_fps=30", "model.alpha=[0.1,0.1,0.1,0]", "model.num_classes=2"]
    )
    return CheckpointMeta.from_run(cfg, ["a", "b"])


@pytest.mark.parametrize("make", [lambda: META, _trained_meta], ids=["fixture", "trained"])
def test_from_dict_of_to_dict_is_the_same_description(make):
    meta = make()
    stored = meta.to_dict()
    assert CheckpointMeta.from_dict(stored) == meta
    assert CheckpointMeta.from_dict(copy.deepcopy(stored)).to_dict() == stored


def test_a_training_run_records_its_model_clips_config_and_version():
    cfg = load_config(None, ["data.target_fps=30", "data.num_frames=16", "model.num_classes=2"])
    meta = CheckpointMeta.from_run(cfg, ["a", "b"])
    assert meta.model == cfg.model and meta.classes == ("a", "b")
    assert meta.clip == ClipProtocol.from_data(cfg.data)
    assert (meta.clip.num_frames, meta.clip.target_fps) == (16, 30.0)
    assert meta.config == to_dict(cfg) and meta.octvideo_version is not None
    stored = meta.to_dict()
    assert "source" not in stored  # only imports record one
    assert stored["normalization"] == {"mean": [0.45] * 3, "std": [0.225] * 3}


def test_a_dict_written_before_the_dataclass_loads_unchanged():
    meta = CheckpointMeta.from_dict(copy.deepcopy(TRAINED_BEFORE))
    assert meta.model.alpha == [0.1, 0.1, 0.1, 0.0] and meta.model.extra == {"slowfast_alpha": 4}
    assert (meta.clip.slowfast_alpha, meta.clip.target_fps, meta.clip.num_frames) == (4, 30.0, 32)
    assert meta.config == TRAINED_BEFORE["config"]
    assert meta.to_dict() == TRAINED_BEFORE  # the on-disk format is the one it was
    assert list(meta.to_dict()["clip"]) == list(TRAINED_BEFORE["clip"])  # in the same order
    assert meta.clip.slow_frames == 8 == meta.clip.data_config().slow_frames  # 32 / 4


def test_the_clip_entry_and_normalization_hold_every_field_of_the_protocol():
    stored = META.to_dict()
    written = {*stored["clip"], *stored["normalization"]}
    assert written == {f.name for f in dataclasses.fields(ClipProtocol)}


def test_training_crops_beyond_the_default_jitter_scales_load_and_evaluate():
    """The data section a checkpoint evaluates with takes its test crops, not its training
    crops, which fit only the run's own ``data.train_jitter_scales`` (not recorded)."""
    cfg = load_config(
        None,
        [
            "data.train_jitter_scales=[320,400]",
            "data.train_crop_size=288",
            "data.val_crop_size=288",
        ],
    )
    meta = CheckpointMeta.from_dict(CheckpointMeta.from_run(cfg, ["a"]).to_dict())
    assert (meta.clip.train_crop_size, meta.clip.val_crop_size) == (288, 288)
    data = meta.clip.data_config()
    assert (data.test_short_side, data.test_crop_size) == (256, 256)


def test_a_dict_of_the_first_format_takes_the_config_defaults():
    meta = CheckpointMeta.from_dict(copy.deepcopy(FIRST_FORMAT))
    assert meta.octvideo_version is None and meta.config is None
    assert meta.clip.target_fps is None  # trained at each video's own frame rate
    assert (meta.clip.train_crop_size, meta.clip.val_crop_size) == (224, 224)
    assert (meta.clip.test_num_clips, meta.clip.test_num_crops) == (3, 3)
    assert meta.model.pretrained_kind == ModelConfig.pretrained_kind
    assert meta == META  # the test fixture's checkpoint, written the new way
    net = build_network(meta.model)
    assert net(torch.zeros(1, 3, 4, 32, 32)).shape == (1, 3)


def _without(meta: dict, key: str) -> dict:
    meta = copy.deepcopy(meta)
    *sections, last = key.split(".")
    target = meta
    for section in sections:
        target = target[section]
    del target[last]
    return meta


@pytest.mark.parametrize(
    "key",
    ["clip.num_frames", "clip.test_crop_size", "normalization.mean", "model.name", "model.octave"],
)
def test_a_missing_entry_is_one_line_naming_it(key):
    with pytest.raises(CheckpointError) as info:
        CheckpointMeta.from_dict(_without(TRAINED_BEFORE, key), path="run/last.ckpt")
    message = str(info.value)
    assert message == f"checkpoint 'run/last.ckpt' has no {key} metadata; {ADVICE}"
    assert info.value.field == key
    assert isinstance(info.value, UsageError)  # the command line's one-line error, exit 2


def test_a_missing_section_is_named_with_every_other_missing_one():
    with pytest.raises(CheckpointError) as info:
        CheckpointMeta.from_dict(_without(_without(TRAINED_BEFORE, "clip"), "classes"))
    message = str(info.value)
    assert message.startswith(f"checkpoint has no classes, clip metadata: {ADVICE}")
    assert "\n" not in message and info.value.field == "classes"


@pytest.mark.parametrize(
    ("key", "value", "want"),
    [
        ("clip.num_frames", "32", "a whole number of 1 or more"),
        ("clip.sampling_rate", 0, "a whole number of 1 or more"),
        ("clip.slowfast_alpha", True, "a whole number of 1 or more"),
        ("clip.target_fps", -30, "a positive number or null"),
        ("normalization.std", [0.2, 0.2], "a list of 3 numbers (one per channel)"),
        ("model.alpha", "0.1", "a number or a list of numbers (one per stage)"),
        ("model.extra", [1], "a mapping of named entries"),
        ("classes", "abc", "a list of class names"),
        ("model", None, "a mapping of entries"),
        ("octvideo_version", 1, "text or null"),
    ],
)
def test_an_entry_of_the_wrong_type_is_one_line_naming_it(key, value, want):
    meta = copy.deepcopy(TRAINED_BEFORE)
    *sections, last = key.split(".")
    target = meta
    for section in sections:
        target = target[section]
    target[last] = value
    with pytest.raises(CheckpointError) as info:
        CheckpointMeta.from_dict(meta, path="x.ckpt")
    message = str(info.value)
    assert message == (
        f"checkpoint 'x.ckpt' metadata: {key} is {value!r} ({type(value).__name__}), not {want}; "
        f"{ADVICE}"
    )
    assert info.value.field == key


def test_the_trained_classes_file_is_the_runs_data_classes_file():
    assert CheckpointMeta.from_dict(copy.deepcopy(TRAINED_BEFORE)).trained_classes_file() == (
        "classes.txt"
    )
    for config in (None, {}, {"data": {}}, {"data": {"classes_file": None}}):
        assert dataclasses.replace(META, config=config).trained_classes_file() == ""


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"data": "x"}, "config.data is 'x' (str), not a mapping of named entries"),
        ({"data": {"classes_file": 3}}, "config.data.classes_file is 3 (int), not text or null"),
    ],
)
def test_a_trained_classes_file_of_the_wrong_type_is_one_line_naming_it(config, problem):
    with pytest.raises(CheckpointError) as info:
        dataclasses.replace(META, config=config).trained_classes_file("x.ckpt")
    assert str(info.value) == f"checkpoint 'x.ckpt' metadata: {problem}; {ADVICE}"


def test_a_value_the_model_section_refuses_names_it():
    meta = copy.deepcopy(TRAINED_BEFORE)
    meta["model"]["alpha"] = 1.5
    with pytest.raises(CheckpointError, match=r"^checkpoint metadata: model\.alpha must be a "):
        CheckpointMeta.from_dict(meta)


def test_a_checkpoint_without_metadata_has_none_stored_and_no_description():
    bare = {"state_dict": {"conv.weight": torch.zeros(1)}}
    lightning = {"state_dict": {}, "hyper_parameters": {"meta": None, "seed": 0}}
    assert stored_meta(bare) is None and stored_meta(lightning) is None
    with pytest.raises(
        CheckpointError, match=r"^checkpoint 'b\.ckpt' has no model, classes, clip, normalization "
    ):
        CheckpointMeta.from_checkpoint(bare, "b.ckpt")
    stored = {"hyper_parameters": {"meta": META.to_dict()}}
    assert stored_meta(stored) == CheckpointMeta.from_checkpoint(stored) == META


def _with(meta: dict, **entries: object) -> dict:
    """``meta`` with ``section__key=value`` entries replaced."""
    meta = copy.deepcopy(meta)
    for dotted, value in entries.items():
        section, key = dotted.split("__")
        meta[section][key] = value
    return meta


@pytest.mark.parametrize(
    ("entries", "key", "bound"),
    [
        ({"clip__num_frames": 10**9}, "clip.num_frames", "256 frames"),
        ({"clip__num_frames": 100_000}, "clip.num_frames", "256 frames"),
        ({"clip__sampling_rate": 1000}, "clip.sampling_rate", "64 frames"),
        (
            {"clip__test_short_side": 20_000, "clip__test_crop_size": 20_000},
            "clip.test_short_side",
            "2048 pixels",
        ),
        (
            {"clip__test_crop_size": 2000, "clip__test_short_side": 2000},
            "clip.test_crop_size",
            "1024 pixels",
        ),
        ({"clip__test_num_clips": 10**6}, "clip.test_num_clips", "100 clips"),
        ({"clip__train_crop_size": 5000}, "clip.train_crop_size", "1024 pixels"),
        ({"model__num_classes": 10**7}, "model.num_classes", "100000 classes"),
    ],
)
def test_a_size_beyond_the_configs_bound_is_one_line_naming_the_entry(entries, key, bound):
    # predict would allocate gigabytes for it, or die with an allocator traceback
    with pytest.raises(CheckpointError) as info:
        CheckpointMeta.from_dict(_with(TRAINED_BEFORE, **entries), path="x.ckpt")
    message = str(info.value)
    assert message.startswith(f"checkpoint 'x.ckpt' metadata: {key} ")
    assert f"is beyond the limit of {bound}" in message and message.endswith(ADVICE)
    assert info.value.field == key


def test_an_octave_beyond_its_bound_names_the_entry():
    with pytest.raises(
        CheckpointError, match=r"metadata: model\.octave 99 is beyond the limit of 4"
    ):
        CheckpointMeta.from_dict(_with(TRAINED_BEFORE, model__octave=[1, 2, 99]))


@pytest.mark.parametrize("width", [10**6, 0, "abc", True, float("inf"), 8.0])
def test_a_model_extra_width_the_config_refuses_is_one_line_naming_it(width):
    meta = copy.deepcopy(FIRST_FORMAT)
    meta["model"]["extra"] = {"width": width}
    with pytest.raises(CheckpointError) as info:
        CheckpointMeta.from_dict(meta, path="x.ckpt")
    assert str(info.value).startswith(
        "checkpoint 'x.ckpt' metadata: model.extra.width must be a whole number in [1, 1024] "
    )
    assert f"got {width!r}" in str(info.value)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ({"clip__test_num_crops": 2}, "clip.test_num_crops must be 1 or 3, got 2"),
        (
            {"clip__test_short_side": 200},
            "clip.test_short_side 200 is smaller than clip.test_crop_size 256",
        ),
        ({"clip__slowfast_alpha": 64}, "clip.slowfast_alpha 64 is beyond clip.num_frames 32"),
        (
            {"normalization__std": [0, 0.2, 0.2]},
            "normalization.std must be > 0, got [0.0, 0.2, 0.2]",
        ),
        ({"clip__target_fps": 1e-300}, "clip.target_fps 1e-300 is beyond [0.1, 1000] frames"),
        (
            {"clip__num_frames": 256, "clip__test_crop_size": 1024, "clip__test_short_side": 1024},
            "clip.num_frames 256 x clip.test_crop_size 1024^2 is beyond the limit of 16,777,216",
        ),
    ],
)
def test_a_clip_protocol_the_config_refuses_names_the_checkpoint_entry(entries, problem):
    # not "data.test_num_crops must be ...": predict has no data section
    with pytest.raises(CheckpointError) as info:
        CheckpointMeta.from_dict(_with(TRAINED_BEFORE, **entries), path="x.ckpt")
    message = str(info.value)
    assert message.startswith(f"checkpoint 'x.ckpt' metadata: {problem}")
    assert "data." not in message and message.endswith(ADVICE)
    assert info.value.field == problem.split()[0]


@pytest.mark.parametrize(
    "entries",
    [
        {"clip__num_frames": 10**9},
        {"clip__test_short_side": 100_000, "clip__test_crop_size": 100_000},
        {"clip__test_num_clips": 1000},
        {"clip__test_num_crops": 2},
        {"clip__slowfast_alpha": 64},
        {"normalization__std": [0, 0.2, 0.2]},
        {"clip__target_fps": 5000.0},
        {"clip__num_frames": 256, "clip__test_crop_size": 1024, "clip__test_short_side": 1024},
    ],
)
def test_a_protocol_built_directly_is_refused_as_its_checkpoint_entry_is(entries):
    # one check: the bounds that keep a checkpoint from allocating gigabytes hold for a
    # ClipProtocol made in code (Predictor(model, classes, protocol) checks it)
    with pytest.raises(CheckpointError) as stored:
        CheckpointMeta.from_dict(_with(TRAINED_BEFORE, **entries), path="x.ckpt")
    values = {key.split("__")[1]: value for key, value in entries.items()}
    direct = dataclasses.replace(CheckpointMeta.from_dict(TRAINED_BEFORE).clip, **values)
    with pytest.raises(ValueError) as built:
        direct.check("protocol")
    problem = str(stored.value).removeprefix("checkpoint 'x.ckpt' metadata: ")
    problem = problem.removesuffix(f"; {ADVICE}")
    named = problem.replace("clip.", "protocol.").replace("normalization.", "protocol.")
    assert str(built.value) == named and "\n" not in named


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num_frames": "4"}, "ClipProtocol.num_frames is '4' (str), not a whole number of 1 or"),
        ({"sampling_rate": True}, "ClipProtocol.sampling_rate is True (bool), not a whole number"),
        ({"test_num_crops": 3.0}, "ClipProtocol.test_num_crops is 3.0 (float), not a whole"),
        ({"mean": (0.5, 0.5)}, "ClipProtocol.mean is (0.5, 0.5) (tuple), not a list of 3 numbers"),
        ({"std": None}, "ClipProtocol.std is None (NoneType), not a list of 3 numbers"),
        ({"target_fps": "30"}, "ClipProtocol.target_fps is '30' (str), not a positive number"),
    ],
)
def test_a_protocol_of_the_wrong_types_is_one_line_naming_the_field(values, message):
    with pytest.raises(ValueError) as caught:
        dataclasses.replace(META.clip, **values).check()
    assert str(caught.value).startswith(message)


NOT_FINITE = [
    ("mean", (float("nan"), 0.4, 0.4), "nan"),
    ("std", [0.2, float("inf"), 0.2], "inf"),
    ("std", (0.2, 0.2, float("-inf")), "-inf"),
    ("mean", (0.4, 10**400, 0.4), repr(10**400)[:57] + "..."),  # past a float: no OverflowError
]


@pytest.mark.parametrize(("field", "value", "shown"), NOT_FINITE)
def test_a_mean_or_std_that_is_not_finite_is_named_in_a_protocol(field, value, shown):
    # not "(tuple), not a list of 3 numbers": a tuple is one, the nan is the fault
    with pytest.raises(ValueError) as caught:
        dataclasses.replace(META.clip, **{field: value}).check("protocol")
    assert str(caught.value) == f"protocol.{field} holds {shown}; give 3 finite numbers"


@pytest.mark.parametrize(("field", "value", "shown"), NOT_FINITE)
def test_a_mean_or_std_that_is_not_finite_is_named_in_a_checkpoint(field, value, shown):
    meta = _with(TRAINED_BEFORE, **{f"normalization__{field}": list(value)})
    with pytest.raises(CheckpointError) as caught:
        CheckpointMeta.from_dict(meta, path="x.ckpt")
    key = f"normalization.{field}"
    assert str(caught.value) == (
        f"checkpoint 'x.ckpt' metadata: {key} holds {shown}; give 3 finite numbers; {ADVICE}"
    )
    assert caught.value.field == key


def test_a_protocol_of_numpy_numbers_is_taken_as_python_numbers():
    # as DataConfig and the models take them: np.int64 from an array is a whole number
    np = pytest.importorskip("numpy")
    wholes = ("num_frames", "sampling_rate", "test_short_side", "test_crop_size")
    values = {name: np.int64(getattr(META.clip, name)) for name in wholes}
    values |= {"slowfast_alpha": np.int32(2), "target_fps": np.float32(30)}
    values |= {"mean": tuple(np.float32(0.5) for _ in range(3)), "std": (np.float32(0.25),) * 3}
    protocol = dataclasses.replace(META.clip, **values)
    protocol.check("protocol")
    clip = protocol.clip_dict()
    assert {type(clip[name]) for name in (*wholes, "slowfast_alpha")} == {int}
    assert {type(v) for v in (clip["target_fps"], *protocol.mean, *protocol.std)} == {float}
    # saved as plain numbers, so the checkpoint loads with weights_only=True
    buffer = io.BytesIO()
    torch.save(dataclasses.replace(META, clip=protocol).to_dict(), buffer)
    buffer.seek(0)
    assert CheckpointMeta.from_dict(torch.load(buffer, weights_only=True)).clip == protocol


def test_metadata_whose_model_extra_duplicates_a_model_key_is_one_line_naming_it():
    meta = copy.deepcopy(FIRST_FORMAT)
    meta["model"]["extra"] = {"alpha": 0.5}
    with pytest.raises(CheckpointError) as info:
        CheckpointMeta.from_dict(meta, path="x.ckpt")
    assert str(info.value).startswith(
        "checkpoint 'x.ckpt' metadata: model.extra.alpha duplicates model.alpha; set model.alpha"
    )


@pytest.mark.parametrize(
    ("classes", "problem"),
    [
        (["a", "b", "a"], "classes lists 'a' twice (entries 0 and 2)"),
        (["a", "", "b"], "classes[1] is '', an empty class name"),
        (["a", "  ", "b"], "classes[1] is '  ', an empty class name"),
        (["a\nb", "c"], "classes[0] 'a\\nb' holds a line break"),
    ],
)
def test_class_names_a_classes_file_could_not_hold_are_one_line_naming_them(classes, problem):
    # two equal labels cannot be told apart in the records; a line break splits the table and
    # any classes file written from them (import --from octvideo copies them on)
    meta = copy.deepcopy(TRAINED_BEFORE)
    meta["classes"] = classes
    with pytest.raises(CheckpointError) as info:
        CheckpointMeta.from_dict(meta, path="x.ckpt")
    message = str(info.value)
    assert message == f"checkpoint 'x.ckpt' metadata: {problem}; {ADVICE}"
    assert "\n" not in message and info.value.field == "classes"


@pytest.mark.parametrize(
    "field", ["num_frames", "test_crop_size", "test_num_crops", "slowfast_alpha"]
)
def test_a_protocol_number_too_long_to_write_is_named_by_its_digits(field):
    # Python refuses str() of an int over 4300 digits: the refusal itself failed
    values = {"num_frames": 8, "sampling_rate": 2, "test_short_side": 32, "test_crop_size": 32}
    protocol = ClipProtocol(**{**values, field: 10**5000})
    with pytest.raises(ValueError, match="a whole number of about 5000 digits"):
        protocol.check("protocol")
    with pytest.raises(ValueError, match="a negative whole number of about 5000 digits"):
        ClipProtocol(**{**values, field: -(10**5000)}).check("protocol")

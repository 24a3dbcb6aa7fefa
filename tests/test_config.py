"""Config loading: merge order, type checks, error messages, shipped-config lookup. Config text is
data and every size in it is bounded: YAML aliases, deep nesting, oversized or non-UTF-8 files and
syntax errors are one-line refusals naming the file; ``${...}`` stays text; every size and count
has a bound named in one place (``LIMITS``); the paper's recipes have short names. Impossible
values are refused when the config loads, in one line naming the key, the value and what is
allowed, so ``octvideo train`` / ``test`` stop with status 2 before any work; the boundary values
that are allowed still load."""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from pathlib import Path

import pytest
import yaml

from octvideo import cli
from octvideo.config import (
    ALIASES,
    CONFIG_DIR,
    LIMITS,
    MAX_BATCH_PIXELS,
    MAX_CLIP_PIXELS,
    MAX_CONFIG_BYTES,
    MAX_YAML_DEPTH,
    MONITORS,
    OTHER_BOUNDS,
    PATH_KEYS,
    RUN_CONFIG,
    RunConfig,
    canonical,
    dump_yaml,
    flatten,
    from_dict,
    load_config,
    parse_overrides,
    plain,
    resolve_config_path,
    save_config,
    shipped_configs,
    to_dict,
)
from octvideo.data import workers as workers_module
from octvideo.errors import ConfigError, UsageError
from tests.reliability.bad_input_matrix import NO_FILES, make_no_file

# the start of a "billion laughs": each level nine times the last (kept small here, so the test
# fails quickly rather than exhausting memory where aliases are expanded)
BOMB = """\
model:
  extra:
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
"""


def _one_line_cli_error(capsys, path) -> str:
    assert cli.main(["train", "--cfg", str(path)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("octvideo train: error: ")
    assert "Traceback" not in captured.err
    return line


# -- YAML is data ------------------------------------------------------------------------------


def test_yaml_alias_bomb_is_refused_naming_the_file(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(ConfigError, match=r"bomb\.yaml:3:\d+: found the anchor &a"):
        load_config(path)
    assert str(path) in _one_line_cli_error(capsys, path)


@pytest.mark.parametrize(
    ("text", "where", "found"),
    [
        ("model:\n  extra:\n    a: &x 1\n    b: *x\n", "3:8", "the anchor &x"),
        ("base: &base {lr: 0.1}\noptim:\n  <<: *base\n", "1:7", "the anchor &base"),
        ("optim: &o {lr: 0.2}\n", "1:8", "the anchor &o"),  # an anchor no alias reads
        ("optim:\n  lr: 0.1\n  momentum: *m\n", "3:13", "the alias *m"),  # an unknown alias
        # a merged mapping's keys are lost where the mapping gives the key too: momentum here
        ("<<: {optim: {lr: 0.2, momentum: 0.5}}\noptim:\n  lr: 0.3\n", "1:1", "the merge key <<"),
        ("optim: {<<: [{lr: 0.2}, {lr: 0.4}]}\n", "1:9", "the merge key <<"),
        ("model:\n  extra:\n    <<: {width: 8}\n", "3:5", "the merge key <<"),
    ],
)
def test_any_anchor_alias_or_merge_key_is_refused_at_its_place(
    tmp_path, capsys, text, where, found
):
    path = tmp_path / "refs.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(
        f"{path}:{where}: found {found}: configs take no YAML anchors, aliases or << merge keys; "
    )
    assert str(path) in _one_line_cli_error(capsys, path)


@pytest.mark.parametrize(
    ("override", "found"),
    [
        ("model.extra={a: &x [1, 2], b: *x}", "override 'model.extra': found the anchor &x"),
        ("optim.lr=*x", "override 'optim.lr': found the alias *x"),
        ("optim={<<: {lr: 0.7}}", "override 'optim': found the merge key <<"),
        ("model.extra={<<: {width: 8}}", "override 'model.extra': found the merge key <<"),
    ],
)
def test_an_anchor_alias_or_merge_key_in_an_override_is_refused(override, found):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value).startswith(f"{found}: configs take no YAML anchors, aliases or << ")


def test_nesting_past_the_depth_bound_is_refused(tmp_path):
    deep = "[" * (MAX_YAML_DEPTH + 5) + "]" * (MAX_YAML_DEPTH + 5)
    path = tmp_path / "deep.yaml"
    path.write_text(f"model:\n  extra:\n    a: {deep}\n")
    with pytest.raises(ConfigError, match=f"deep.yaml:3:.*more than {MAX_YAML_DEPTH} levels"):
        load_config(path)
    with pytest.raises(ConfigError, match="override 'model.extra'.*levels deep"):
        load_config(None, [f"model.extra={{a: {deep}}}"])


def test_a_file_over_the_size_bound_is_refused_before_parsing(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match=r"huge\.yaml: over 1024 KiB"):
        load_config(path)
    assert "huge.yaml" in _one_line_cli_error(capsys, path)


def test_a_file_that_is_not_utf8_is_one_line_naming_it(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model:\n  name: c2d_r50\noutput:\n  name: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml:4: not UTF-8 text \(byte 0xe9\)"):
        load_config(path)
    assert "latin1.yaml:4" in _one_line_cli_error(capsys, path)


def test_a_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path, capsys):
    path = tmp_path / "indent.yaml"
    path.write_text("model:\n  name: c2d_r50\n alpha: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:3:2: not valid YAML: expected <block end>")
    assert f"{path}:3:2" in _one_line_cli_error(capsys, path)


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        # a second section would reset the first one's keys to their defaults
        (
            "model:\n  name: i3d_r18\n  num_classes: 6\ndata: {}\nmodel:\n  alpha: 0.25\n",
            5,
            "model",
        ),
        ("optim:\n  lr: 0.05\n  momentum: 0.8\n  lr: 0.5\n", 4, "lr"),
        ("model:\n  extra: {width: 8, width: 16}\n", 2, "width"),
    ],
)
def test_a_key_given_twice_is_refused_naming_file_and_line(tmp_path, capsys, text, where, key):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"dup\.yaml:{where}:\d+: .*key '{key}' appears twice"):
        load_config(path)
    assert f"key '{key}' appears twice" in _one_line_cli_error(capsys, path)


def test_a_key_given_twice_in_an_override_is_refused():
    with pytest.raises(ConfigError, match=r"override 'model.extra'.*key 'a' appears twice"):
        load_config(None, ["model.extra={a: 1, a: 2}"])


@pytest.mark.parametrize(
    ("text", "where", "key", "reads_as"),
    [
        ("1: 2\n", "1:1", "1", "a number"),
        ("model:\n  name: i3d_r18\n  extra: {width: 8, 3: 4}\n", "3:21", "3", "a number"),
        ("model:\n  extra:\n    a: {1.5: x}\n", "3:9", "1.5", "a number"),
        ("data:\n  true: 1\n", "2:3", "true", "true or false"),
        ("trainer:\n  0x10: 2\n", "2:3", "0x10", "a number"),  # as typed, not 16
        ("data:\n  TRUE: 1\n", "2:3", "TRUE", "true or false"),
        ("null: 1\n", "1:1", "null", "null"),
        ("optim:\n  ? [lr]\n  : 0.1\n", "2:5", "[lr]", "a list or mapping"),
    ],
)
def test_a_key_that_is_not_text_is_refused_naming_file_and_line(
    tmp_path, capsys, text, where, key, reads_as
):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}:{where}: config key {key} is not a name (YAML reads it as {reads_as}); keys "
        "are names like model, lr or width"
    )
    assert f"keys.yaml:{where}: config key {key} is not a name" in _one_line_cli_error(capsys, path)


@pytest.mark.parametrize("override", ["model={1: 2}", "model.extra={a: {1: 2}}"])
def test_a_key_that_is_not_text_in_an_override_is_refused_naming_it(override):
    key, _, text = override.partition("=")
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == (
        f"override '{key}': config key 1 is not a name (YAML reads it as a number); keys are "
        f"names like model, lr or width (in {text})"
    )


@pytest.mark.parametrize(
    ("data", "key", "kind"),
    [
        ({"model": {1: 2}}, "model.1", "a number"),
        ({"model": {True: 2}}, "model.true", "true or false"),
    ],
)
def test_a_stored_config_with_a_key_that_is_not_text_names_it(data, key, kind):
    # a hand-edited checkpoint: said as a config file's key is
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    assert str(err.value) == (
        f"stored config: config key {key} is not a name (it is {kind}); keys are names like "
        "model, lr or width"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("010", 10),  # YAML 1.1: octal 8
        ("0010", 10),
        ("0x10", 16),
        ("1e-1", 0.1),  # YAML 1.1: the text '1e-1'
        ("1E+2", 100.0),
        ("-2.5e-3", -0.0025),
        ("1:20", "1:20"),  # YAML 1.1: base 60, 80
    ],
)
def test_numbers_read_as_yaml_1_2_reads_them(text, value):
    ((_, got),) = parse_overrides([f"model.extra={{a: {text}}}"])
    assert got == {"a": value} and type(got["a"]) is type(value)


def test_yaml_1_1_number_forms_do_not_change_a_value_in_a_file_or_override(tmp_path):
    path = tmp_path / "forms.yaml"
    path.write_text("trainer:\n  max_epochs: 010\ndata:\n  batch_size: 010\n")
    cfg = load_config(path, ["model.alpha=1e-1", "model.extra={width: 016}"])
    assert cfg.trainer.max_epochs == 10 and cfg.data.batch_size == 10
    assert cfg.model.alpha == 0.1 and cfg.model.extra == {"width": 16}
    with pytest.raises(ConfigError, match="trainer.max_epochs.*'1:20'"):
        load_config(None, ["trainer.max_epochs=1:20"])  # not 80


def test_a_bad_override_is_one_line():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model.extra={a: [1, 2}"])
    assert "\n" not in str(err.value)
    assert "override 'model.extra'" in str(err.value)


@pytest.fixture
def unbuilt(monkeypatch):
    """Loads configs without building their network (``check_network``): for the tests of the
    text layer that carry values in ``model.extra`` keys no model takes."""
    import octvideo.config as config_module

    monkeypatch.setattr(config_module, "check_network", lambda model: 0)


# -- ${...} is text ----------------------------------------------------------------------------


@pytest.mark.usefixtures("unbuilt")
@pytest.mark.parametrize("value", ["a${b}", "${oc.env:HOME}", "x\\${y}", "${a}${b}/${"])
def test_interpolation_syntax_is_kept_as_text_in_a_file(tmp_path, value):
    path = tmp_path / "interp.yaml"
    quoted = value.replace("\\", "\\\\")
    path.write_text(f'output:\n  name: "{quoted}"\nmodel:\n  extra:\n    tag: ["{quoted}"]\n')
    cfg = load_config(path)
    assert cfg.output.name == value
    assert cfg.model.extra == {"tag": [value]}


@pytest.mark.parametrize("value", ["a${b}", "${oc.env:HOME}", "x\\${y}"])
def test_interpolation_syntax_is_kept_as_text_in_an_override(value):
    cfg = load_config(None, [f"output.name={value}", f"data.root={value}"])
    assert cfg.output.name == value
    assert cfg.data.root == value


def test_literal_interpolation_text_survives_a_save_and_load(tmp_path):
    cfg = load_config(None, ["output.name=${oc.env:HOME}"])
    again = load_config(save_config(cfg, tmp_path / "saved.yaml"))
    assert again.output.name == "${oc.env:HOME}"


@pytest.mark.parametrize("text", ["1e5", "010", "0x1f", ".5", "1:20", "Zürich"])
def test_text_that_reads_as_a_number_elsewhere_survives_a_save_and_load(tmp_path, text):
    # YAML 1.1's dumper writes 1e5 bare (text to YAML 1.1), which YAML 1.2 reads as a number
    cfg = load_config(None, [f"data.train_list='{text}'", f"output.name='{text}'"])
    assert (cfg.data.train_list, cfg.output.name) == (text, text)
    again = load_config(save_config(cfg, tmp_path / "saved.yaml"))
    assert (again.data.train_list, again.output.name) == (text, text)


def test_interpolation_text_in_a_number_field_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["data.num_frames=${b}"])
    assert str(err.value) == "override: data.num_frames takes a whole number, got '${b}'"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # Python's int() and float() read these, YAML 1.2 reads them as text
        ("model.num_classes=6_0", "model.num_classes takes a whole number, got '6_0', which "
         "YAML 1.2 reads as text; write 60"),
        ("optim.lr=0_0.5", "optim.lr takes a number, got '0_0.5', which YAML 1.2 reads as text; "
         "write 0.5"),
        # no number key takes .nan or .inf: no spelling of them is offered
        ("optim.lr=nan", "optim.lr takes a number, got 'nan'"),
        ("data.target_fps=-inf", "data.target_fps takes a number or null, got '-inf'"),
        ("model.num_classes='6'", "model.num_classes takes a whole number, got '6', which YAML "
         "1.2 reads as text; write 6"),
        ("data.decode_short_side=\u0663", "data.decode_short_side takes a whole number or null, "
         "got '\u0663', which YAML 1.2 reads as text; write 3"),  # an Arabic-Indic 3
        ("optim.step_epochs=[1_0, 20]", "optim.step_epochs takes a list of whole numbers (like "
         "[30, 60]), got '1_0' in ['1_0', 20], which YAML 1.2 reads as text; write 10"),
        ("model.num_classes=6.0", "model.num_classes takes a whole number, got 6.0; write 6"),
        ("model.num_classes=abc", "model.num_classes takes a whole number, got 'abc'"),
        ("optim.lr=true", "optim.lr takes a number, got true"),
        # YAML 1.1 and OmegaConf read these as true or false, YAML 1.2 as text or a number
        ("trainer.deterministic=yes", "trainer.deterministic takes true or false, got 'yes', "
         "which YAML 1.2 reads as text; write true"),
        ("output.tensorboard=off", "output.tensorboard takes true or false, got 'off', which "
         "YAML 1.2 reads as text; write false"),
        ("data.random_flip=y", "data.random_flip takes true or false, got 'y', which YAML 1.2 "
         "reads as text; write true"),
        ("optim.nesterov='true'", "optim.nesterov takes true or false, got 'true', which YAML "
         "1.2 reads as text; write true"),
        ("trainer.deterministic=1", "trainer.deterministic takes true or false, got 1; write true"),
        ("trainer.deterministic=2", "trainer.deterministic takes true or false, got 2"),
    ],
)  # fmt: skip
def test_a_number_or_bool_key_takes_only_what_yaml_1_2_reads_as_one(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == f"override: {message}"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("model:\n  num_classes: 0_6\n", "model.num_classes", "takes a whole number, got '0_6', "
         "which YAML 1.2 reads as text; write 6"),
        ("trainer:\n  deterministic: on\n", "trainer.deterministic", "takes true or false, got "
         "'on', which YAML 1.2 reads as text; write true"),
    ],
)  # fmt: skip
def test_a_file_number_or_bool_key_takes_only_what_yaml_1_2_reads_as_one(
    tmp_path, text, key, message
):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: {key} {message}"


def _schema_keys(schema: type = RunConfig, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, type hint) of every key of the run config, sections included."""
    keys = []
    for name, hint in typing.get_type_hints(schema).items():
        keys.append((f"{prefix}{name}", hint))
        if dataclasses.is_dataclass(hint):
            keys += _schema_keys(hint, f"{prefix}{name}.")
    return keys


def _wrong_shapes() -> list[tuple[str, str]]:
    """(key, value) pairs of every key and values of a shape it does not take: null where it
    takes none, a number for a list, tuple, mapping or section, a list or mapping for one value,
    and one item too many for a tuple of fixed length."""
    pairs = []
    for key, hint in _schema_keys():
        args = typing.get_args(hint)
        if hint is typing.Any:  # model.alpha: its section checks it
            continue
        origin = typing.get_origin(hint)
        several = dataclasses.is_dataclass(hint) or origin in (dict, list, tuple)
        values = [] if type(None) in args else ["null"]
        values += ["56"] if several else ["[1, 2]", "{a: 1}"]
        if origin is tuple and args[-1] is not Ellipsis:
            values.append(str([1] * (len(args) + 1)))
        pairs += [(key, value) for value in values]
    return pairs


def _refused(override: str) -> str:
    """The message ``load_config`` refuses ``override`` with."""
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    return str(err.value)


@pytest.mark.parametrize(("key", "value"), _wrong_shapes())
def test_a_value_of_the_wrong_shape_is_refused_naming_what_the_key_takes(key, value):
    message = _refused(f"{key}={value}")
    shown = yaml.safe_dump(yaml.safe_load(value), default_flow_style=True).removesuffix("\n...\n")
    assert message.startswith(f"override: {key} takes "), message
    assert message.endswith(f", got {shown.strip()}"), message
    # nothing of OmegaConf's classes and type hints ("int is not a TupleConfig")
    assert not re.search(r"Config|Optional|hint|subclass|Dict\[", message)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.train_jitter_scales=56", "data.train_jitter_scales takes a list of two whole "
         "numbers [low, high] (like [256, 320]), got 56"),
        ("model.octave=[1,2]", "model.octave takes a list of three whole numbers [T, H, W] (like "
         "[1, 2, 2]), got [1, 2]"),
        ("data.mean=[a, 1, 2]", "data.mean takes a list of three numbers [R, G, B] (like [0.45, "
         "0.45, 0.45]), got 'a' in [a, 1, 2]"),
        ("data.video_extensions=.mp4", "data.video_extensions takes a list of text values (like "
         "[.mp4, .webm]), got '.mp4'"),
        ("optim=5", "optim takes a mapping of its keys (like {lr: 0.1}), got 5"),
        ("model.extra=null", "model.extra takes a mapping of keyword arguments (like {width: "
         "32}; {} for none), got null"),
        ("model.name=[1, 2]", "model.name takes text, got [1, 2]"),
        ("model.num_classes=null", "model.num_classes takes a whole number, got null"),
    ],
)  # fmt: skip
def test_a_list_tuple_section_or_mapping_key_says_how_to_write_it(override, message):
    assert _refused(override) == f"override: {message}"


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, v in _wrong_shapes() if v == "56"])
def test_the_example_a_refusal_gives_loads(key, value):
    message = _refused(f"{key}={value}")
    example = re.search(r"\(like (.+?)(?:; \{\} for none)?\), got", message).group(1)
    load_config(None, [f"{key}={example}"])


def test_a_file_value_of_the_wrong_shape_names_the_file_and_what_the_key_takes(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  octave: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: model.octave takes a list of three whole numbers [T, H, W] (like [1, 2, 2]), "
        "got 2"
    )


def test_yaml_1_2_numbers_and_bools_load_in_number_and_bool_keys():
    cfg = load_config(
        None,
        [
            "optim.lr=1",  # a whole number is a number
            "optim.weight_decay=1e-5",
            "model.num_classes=0x10",
            "data.target_fps=null",
            "trainer.deterministic=True",
            "output.tensorboard=FALSE",
        ],
    )
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.model.num_classes) == (1, 1e-5, 16)
    assert cfg.data.target_fps is None
    assert cfg.trainer.deterministic is True and cfg.output.tensorboard is False


@pytest.mark.usefixtures("unbuilt")
@pytest.mark.parametrize("text", ["yes", "no", "on", "Off", "y", "2024-01-01", "="])
def test_yaml_1_1_words_dates_and_equals_are_text(tmp_path, text):
    cfg = load_config(None, [f"output.name={text}", f"model.extra={{tag: {text}}}"])
    assert cfg.output.name == text and cfg.model.extra == {"tag": text}
    path = tmp_path / "c.yaml"
    path.write_text(f"output:\n  name: {text}\n")
    assert load_config(path).output.name == text
    # written quoted, so that a YAML 1.1 reader (PyYAML, OmegaConf.load) reads text as well
    saved = save_config(cfg, tmp_path / "saved.yaml")
    assert yaml.safe_load(saved.read_text())["output"]["name"] == text
    assert load_config(saved).output.name == text


# -- bounded sizes -----------------------------------------------------------------------------

# one value over each bound, with what else it needs to pass the checks that come first
OVER = {
    "model.num_classes": ["model.num_classes=100001"],
    "model.octave": ["model.octave=[1,2,5]"],
    "data.decode_short_side": ["data.decode_short_side=2049"],
    "data.num_frames": ["data.num_frames=257"],
    "data.sampling_rate": ["data.sampling_rate=65"],
    "data.train_jitter_scales": ["data.train_jitter_scales=[256,2049]"],
    "data.train_crop_size": ["data.train_crop_size=1025", "data.train_jitter_scales=[1025,1025]"],
    "data.val_crop_size": ["data.val_crop_size=1025", "data.train_jitter_scales=[1025,1025]"],
    "data.test_short_side": ["data.test_short_side=2049"],
    "data.test_crop_size": ["data.test_crop_size=1025", "data.test_short_side=1025"],
    "data.test_num_clips": ["data.test_num_clips=101"],
    "data.batch_size": ["data.batch_size=1025"],
    "data.prefetch_factor": ["data.prefetch_factor=65"],
    "data.max_retries": ["data.max_retries=1001"],
    "optim.lr_reference_batch": ["optim.lr_reference_batch=65537"],
    "optim.warmup_epochs": ["optim.warmup_epochs=10000.5"],
    "optim.step_epochs": ["optim.step_epochs=[30,10001]"],
    "optim.max_skipped_steps": ["optim.max_skipped_steps=10001"],
    "trainer.max_epochs": ["trainer.max_epochs=10001"],
    "trainer.devices": ["trainer.devices=1025"],
    "trainer.num_nodes": ["trainer.num_nodes=1025"],
    "trainer.accumulate_grad_batches": ["trainer.accumulate_grad_batches=1025"],
    "trainer.num_sanity_val_steps": ["trainer.num_sanity_val_steps=10001"],
    "trainer.precise_bn_batches": ["trainer.precise_bn_batches=10001"],
    "trainer.log_every_n_steps": ["trainer.log_every_n_steps=10000001"],
    "trainer.check_val_every_n_epoch": ["trainer.check_val_every_n_epoch=10001"],
    "output.ckpt_every_n_steps": ["output.ckpt_every_n_steps=10000001"],
}


def test_every_bound_has_a_case():
    assert set(OVER) == set(LIMITS)


def _whole_number_keys(schema: typing.Any = RunConfig, prefix: str = "") -> list[str]:
    """Every key of the schema holding whole numbers (alone, optional, or in a list or tuple)."""
    keys = []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        hint, key = hints[f.name], f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hint):
            keys += _whole_number_keys(hint, f"{key}.")
            continue
        args = set(typing.get_args(hint)) - {type(None), Ellipsis}
        if hint is int or int in args or any(int in typing.get_args(a) for a in args):
            keys.append(key)
    return keys


def test_every_whole_number_key_has_a_bound():
    keys = _whole_number_keys()
    assert {"output.ckpt_every_n_steps", "optim.step_epochs", "model.octave"} <= set(keys)
    unbounded = [k for k in keys if k not in LIMITS and k not in OTHER_BOUNDS]
    assert not unbounded, f"add a bound to octvideo.config.LIMITS for {unbounded}"
    assert not set(LIMITS) & set(OTHER_BOUNDS)


@pytest.mark.parametrize("key", sorted(OTHER_BOUNDS))
def test_a_whole_number_bounded_otherwise_is_refused_when_huge(key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(None, [f"{key}=99999999999999999999"])


@pytest.mark.parametrize("key", sorted(OVER))
def test_a_size_over_its_bound_is_refused_naming_key_and_bound(key):
    bound, unit = LIMITS[key]
    with pytest.raises(ConfigError) as err:
        load_config(None, OVER[key])
    message = str(err.value)
    assert message.startswith(f"{key}=")
    assert f"over the limit of {bound} {unit}" in message  # 10000000, not 1e+07


@pytest.mark.parametrize(
    "overrides",
    [
        [f"data.{k}=256" for k in ("num_frames", "train_crop_size", "val_crop_size")],
        [
            *(f"data.{k}=1024" for k in ("train_crop_size", "val_crop_size", "test_crop_size")),
            "data.train_jitter_scales=[1024,1024]",
            "data.test_short_side=1024",
        ],
        ["data.train_jitter_scales=[2048,2048]", "data.test_short_side=2048"],
        ["data.prefetch_factor=64", "trainer.max_epochs=10000", "model.num_classes=100000"],
    ],
)
def test_sizes_at_their_bounds_load(overrides):
    load_config(None, overrides)


@pytest.mark.parametrize(
    ("cores", "workers", "limit"), [(2, 8, None), (2, 9, 8), (1, 5, 4), (100, 257, 256)]
)
def test_data_workers_are_bounded_by_the_machines_cores(monkeypatch, cores, workers, limit):
    # a fixed 256 let a 2-core machine start 256 DataLoader processes, each holding batches
    monkeypatch.setattr(workers_module, "usable_cores", lambda: cores)
    if limit is None:
        assert load_config(None, [f"data.num_workers={workers}"]).data.num_workers == workers
        return
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"data.num_workers={workers}"])
    unit = "core" if cores == 1 else "cores"
    assert str(err.value) == (
        f"data.num_workers {workers}: give 0 to {limit} (at most 4 per CPU core and 256 in all; "
        f"this machine has {cores} CPU {unit} available)"
    )


def test_a_clip_of_too_many_pixels_is_refused():
    # each value within its own bound, the clip 256 x 512^2 = 4 x MAX_CLIP_PIXELS
    with pytest.raises(ConfigError) as err:
        load_config(
            None,
            [
                "data.num_frames=256",
                "data.train_crop_size=512",
                "data.train_jitter_scales=[512,600]",
            ],
        )
    assert "data.num_frames=256 x data.train_crop_size=512^2" in str(err.value)
    assert f"{MAX_CLIP_PIXELS:,}" in str(err.value)


def test_a_batch_of_too_many_pixels_is_refused():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["data.batch_size=1024", "data.num_frames=32"])
    assert "data.batch_size=1024" in str(err.value) and f"{MAX_BATCH_PIXELS:,}" in str(err.value)


# -- short names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("short", "recipe", "model"),
    [
        ("i3d_oct.yaml", "i3d_r50_oct_a0.1_8x8", "i3d_r50"),
        ("c2d_oct.yaml", "c2d_r50_oct_a0.1_8x8", "c2d_r50"),
        ("slowfast_oct.yaml", "slowfast_r50_oct_a0.1_4x16", "slowfast_r50"),
        ("i3d_oct", "i3d_r50_oct_a0.1_8x8", "i3d_r50"),
        ("oct_slowfast.yaml", "slowfast_r50_oct_a0.1_4x16", "slowfast_r50"),
    ],
)
def test_short_names_are_the_papers_kinetics400_recipes(short, recipe, model):
    path = resolve_config_path(short)
    assert path.parent.name == "kinetics400" and path.stem == recipe
    cfg = load_config(short)
    assert (cfg.name, cfg.model.name, cfg.model.alpha) == (recipe, model, 0.1)
    assert cfg.model.num_classes == 400


def test_every_short_name_points_at_a_shipped_config():
    for target in ALIASES.values():
        assert (CONFIG_DIR / target).is_file()


def test_an_unknown_name_lists_the_short_names(capsys):
    with pytest.raises(ConfigError) as err:
        resolve_config_path("i3d_octt.yaml")
    message = str(err.value)
    assert "did you mean 'i3d_oct.yaml'?" in message
    assert "i3d_oct.yaml" in message and "slowfast_oct.yaml" in message


def test_train_help_lists_the_short_names(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for short in ("i3d_oct.yaml", "c2d_oct.yaml", "slowfast_oct.yaml"):
        assert short in out


# (overrides, what the refusal names): each refused when the config loads
BAD_VALUES = [
    # 1. best.ckpt keeps the maximum: only metrics that are logged and higher-is-better
    (["output.monitor=val/foo"], ["output.monitor", "'val/foo'", "val/top1, val/top5"]),
    (["output.monitor=val/loss"], ["output.monitor", "'val/loss'", "highest"]),
    (["output.monitor=train/loss_epoch"], ["output.monitor", "'train/loss_epoch'"]),
    (["output.monitor=val/failed"], ["output.monitor", "'val/failed'"]),
    # 2. the DataLoader's workers assert prefetch_factor > 0
    (["data.prefetch_factor=0", "data.num_workers=1"], ["data.prefetch_factor", ">= 1", "0"]),
    (["data.prefetch_factor=-1", "data.num_workers=0"], ["data.prefetch_factor", "-1"]),
    # 3. null is "no resize"; 0 and negatives are no size
    (["data.decode_short_side=-5"], ["data.decode_short_side", "null", ">= 1", "-5"]),
    (["data.decode_short_side=0"], ["data.decode_short_side", "got 0"]),
    # 4.
    (["trainer.check_val_every_n_epoch=0"], ["trainer.check_val_every_n_epoch", ">= 1"]),
    # 5. 0 is off (last.ckpt per epoch only)
    (["output.ckpt_every_n_steps=-1"], ["output.ckpt_every_n_steps", ">= 0", "-1"]),
    # 6. SGD is the only optimiser
    (["optim.momentum=-1"], ["optim.momentum", "[0, 1)", "-1"]),
    (["optim.momentum=1.0"], ["optim.momentum", "[0, 1)", "1.0"]),
    (["optim.momentum=.nan"], ["optim.momentum", "nan"]),
    # 7. finite and in range
    (["optim.lr=.nan"], ["optim.lr", "finite", "> 0", "nan"]),
    (["optim.lr=.inf"], ["optim.lr", "inf"]),
    (["optim.lr=0"], ["optim.lr", "> 0"]),
    (["optim.lr_reference_batch=0"], ["optim.lr_reference_batch", ">= 1"]),
    (["optim.weight_decay=-1"], ["optim.weight_decay", ">= 0", "-1"]),
    (["optim.weight_decay=.nan"], ["optim.weight_decay", "finite", "nan"]),
    (["optim.weight_decay=.inf"], ["optim.weight_decay", "inf"]),
    (["optim.warmup_epochs=.inf"], ["optim.warmup_epochs", "finite", "inf"]),
    (["optim.warmup_epochs=-1"], ["optim.warmup_epochs", ">= 0"]),
    (["optim.warmup_start_factor=0"], ["optim.warmup_start_factor", "(0, 1]"]),
    (["optim.final_lr_factor=-0.1"], ["optim.final_lr_factor", "[0, 1]", "-0.1"]),
    (["optim.final_lr_factor=.nan"], ["optim.final_lr_factor", "nan"]),
    (["optim.step_gamma=0"], ["optim.step_gamma", "(0, 1]"]),
    (["optim.step_gamma=-0.1"], ["optim.step_gamma", "-0.1"]),
    (["optim.step_gamma=.inf"], ["optim.step_gamma", "inf"]),
    (["optim.step_epochs=[-1, 5]"], ["optim.step_epochs", ">= 0", "[-1, 5]"]),
    (["optim.label_smoothing=.nan"], ["optim.label_smoothing", "nan"]),
    # 8. model.extra keywords the models take: their type and size
    (["model.extra.width=abc"], ["model.extra.width", "whole number in [1, 1024]", "'abc'"]),
    (["model.extra.width=.inf"], ["model.extra.width", "whole number", "inf"]),
    (["model.extra.width=true"], ["model.extra.width", "whole number", "True"]),
    (["model.extra.width=1000000"], ["model.extra.width", "[1, 1024]", "1000000"]),
    (["model.extra.width=0"], ["model.extra.width", "[1, 1024]", "got 0"]),
    (["model.extra.slowfast_alpha=8.0"], ["model.extra.slowfast_alpha", "got 8.0"]),
    (["model.extra.oct_stem=1"], ["model.extra.oct_stem", "true or false", "got 1"]),
    (["model.extra.width=6_0"], ["model.extra.width", "'6_0', which YAML 1.2", "write 60"]),
    (["model.extra.temporal_pool=yes"], ["model.extra.temporal_pool", "write true"]),
    # 9. train and test score with a multiclass accuracy, which needs two classes
    (["model.num_classes=1"], ["model.num_classes", ">= 2", "got 1"]),
    # 10. torch's generators take 64-bit seeds; a tiny frame rate overflows the stride
    (["data.seed=100000000000000000000000"], ["data.seed", "[0, 4294967295]"]),
    (["data.seed=-1"], ["data.seed", "[0, 4294967295]", "got -1"]),
    (["data.target_fps=1e-300"], ["data.target_fps", "[0.1, 1000]", "1e-300"]),
    (["data.target_fps=5000"], ["data.target_fps", "[0.1, 1000]", "5000"]),
    (["optim.mixup_alpha=.inf"], ["optim.mixup_alpha", "finite", "inf"]),
    (["optim.cutmix_alpha=.nan"], ["optim.cutmix_alpha", "nan"]),
    (["optim.mix_prob=1.5"], ["optim.mix_prob", "[0, 1]", "1.5"]),
    # 8. validation clips are resized to the low jitter scale, then centre-cropped
    (
        ["data.val_crop_size=288"],
        ["data.train_jitter_scales low end 256", "data.val_crop_size 288"],
    ),
    # found in the scan of the numeric fields
    (["trainer.gradient_clip_val=.nan"], ["trainer.gradient_clip_val", "finite", "nan"]),
    (["trainer.gradient_clip_val=.inf"], ["trainer.gradient_clip_val", "inf"]),
    (["trainer.log_every_n_steps=-1"], ["trainer.log_every_n_steps", ">= 0", "-1"]),
    (["trainer.num_sanity_val_steps=-2"], ["trainer.num_sanity_val_steps", "-1 (all)", "-2"]),
    (["trainer.seed=-1"], ["trainer.seed", "[0, 4294967295]", "-1"]),
    (["trainer.seed=4294967296"], ["trainer.seed", "4294967296"]),
    (["trainer.precise_bn_batches=-1"], ["trainer.precise_bn_batches", ">= 0", "-1"]),
    (["data.target_fps=0"], ["data.target_fps", "> 0 or null", "0"]),
    (["data.num_workers=-1"], ["data.num_workers", ">= 0", "-1"]),
    (["data.max_retries=-1"], ["data.max_retries", ">= 0", "-1"]),
    (["data.std=[0.2, .nan, 0.2]"], ["data.std", "finite", "nan"]),
    (["data.mean=[0.4, .inf, 0.4]"], ["data.mean", "finite", "inf"]),
]


@pytest.mark.parametrize(("overrides", "needles"), BAD_VALUES)
def test_bad_value_names_the_key(overrides, needles):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert isinstance(err.value, UsageError)  # the CLI prints it and exits with status 2


def _set_in_python(cfg: RunConfig, key: str, value: object) -> None:
    """``cfg``'s ``key`` set to ``value`` as Python code sets it, unchecked: on the section's
    dataclass, or in a mapping (``model.extra.width``)."""
    *path, name = key.split(".")
    node: typing.Any = cfg
    for part in path:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    if isinstance(node, dict):
        node[name] = value
    else:
        setattr(node, name, value)


@pytest.mark.parametrize(("overrides", "needles"), BAD_VALUES)
def test_a_run_config_changed_in_python_is_refused_as_the_override_is(overrides, needles):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    expected = str(err.value).removeprefix("override: ")
    cfg = load_config(None)
    for key, value in parse_overrides(overrides):
        _set_in_python(cfg, key, value)
    changed = copy.deepcopy(cfg)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(err.value).removeprefix(f"{RUN_CONFIG}: ") == expected
    assert cfg == changed  # checked, not changed


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("optim.lr", "0.1", "optim.lr takes a number, got '0.1', which YAML 1.2 reads as text"),
        ("data.batch_size", 0, "data.batch_size must be >= 1, got 0"),
        ("data.num_frames", 10**6, "data.num_frames=1000000 is over the limit of 256 frames"),
        ("data.batchsize", 8, "unknown key 'data.batchsize'; did you mean 'data.batch_size'?"),
        ("model.octave", (1, 2), "model.octave takes a list of three whole numbers"),
        ("data", None, "data takes a mapping of its keys"),
    ],
)
def test_a_run_config_changed_in_python_is_one_line_naming_the_key(key, value, message):
    cfg = load_config("oct_i3d_synth.yaml")
    _set_in_python(cfg, key, value)
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_config(cfg, ["optim.lr=0.2"])
    assert "\n" not in str(err.value)


def test_a_run_config_loads_as_it_is_and_takes_overrides_on_a_copy(tmp_path):
    cfg = load_config("oct_i3d_synth.yaml", ["model.extra={width: 8}", "output.dir=runs/x"])
    cfg.data.batch_size = 2
    cfg.output.dir = tmp_path / "run"  # a Path where the key takes text, as Python code may
    kept = copy.deepcopy(cfg)
    again = load_config(cfg, ["optim.lr=0.2"])
    assert cfg == kept
    assert again == dataclasses.replace(
        kept,
        optim=dataclasses.replace(kept.optim, lr=0.2),
        output=dataclasses.replace(kept.output, dir=str(tmp_path / "run")),
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("optim.lr=0.1", "got one string: pass ['optim.lr=0.1']"),
        ([("optim.lr", 0.1)], "got the item ('optim.lr', 0.1)"),
        (["optim.lr=0.1", None], "got the item None"),
        ({"optim.lr": 0.1}, "got {'optim.lr': 0.1}"),
        (None, "got None"),
    ],
)
def test_overrides_that_are_not_a_list_of_strings_are_one_line(overrides, message):
    expected = "overrides takes a list of 'key=value' strings, " + message
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config("oct_i3d_synth.yaml", overrides)
    assert load_config(None, (o for o in ["optim.lr=0.2"])).optim.lr == 0.2  # any iterable


@pytest.mark.parametrize(
    "overrides",
    [
        *([f"output.monitor={m}"] for m in MONITORS),
        ["data.prefetch_factor=1", "data.num_workers=1"],
        ["data.prefetch_factor=1", "data.num_workers=0"],
        ["data.decode_short_side=1"],
        ["data.decode_short_side=null"],
        ["trainer.check_val_every_n_epoch=1"],
        ["output.ckpt_every_n_steps=0"],
        ["output.ckpt_every_n_steps=1"],
        ["optim.momentum=0", "optim.nesterov=false"],
        ["optim.momentum=0.999"],
        ["optim.lr=1.0e-12"],
        ["optim.weight_decay=0"],
        ["optim.warmup_epochs=0", "optim.warmup_start_factor=1"],
        ["optim.final_lr_factor=0"],
        ["optim.final_lr_factor=1"],
        ["optim.step_gamma=1", "optim.step_epochs=[0, 3]"],
        ["optim.label_smoothing=0", "optim.mixup_alpha=0", "optim.cutmix_alpha=0"],
        ["optim.mix_prob=0"],
        ["optim.mix_prob=1"],
        ["data.val_crop_size=256"],  # = the low jitter scale: the crop just fits
        ["data.train_jitter_scales=[224, 320]", "data.val_crop_size=224"],
        ["trainer.gradient_clip_val=0"],
        ["trainer.log_every_n_steps=0"],
        ["trainer.num_sanity_val_steps=-1"],
        ["trainer.seed=0"],
        ["trainer.seed=4294967295"],
        ["data.seed=0"],
        ["data.seed=4294967295"],
        ["data.target_fps=0.1"],
        ["data.target_fps=1000"],
        ["model.num_classes=2"],
        ["trainer.precise_bn_batches=0"],
        ["data.target_fps=null"],
        ["data.target_fps=29.97"],
        ["trainer.precise_bn_batches=1"],
        ["data.num_workers=0", "data.max_retries=0"],
    ],
)
def test_boundary_value_loads(overrides):
    cfg = load_config(None, overrides)
    for key, value in parse_overrides(overrides):  # loaded as given, never changed
        section, name = key.split(".")
        got = getattr(getattr(cfg, section), name)
        assert (list(got) if isinstance(got, tuple) else got) == value


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--cfg", "oct_i3d_synth"],
        ["test", "--cfg", "oct_i3d_synth", "--ckpt", "no_such.ckpt"],
    ],
)
def test_cli_refuses_a_bad_value_with_status_2(capsys, command):
    assert cli.main([*command, "output.monitor=val/loss"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "output.monitor" in err and "'val/loss'" in err


def test_defaults_are_the_paper_recipe():
    cfg = load_config()
    assert cfg == RunConfig(name="run")
    assert (cfg.data.num_frames, cfg.data.sampling_rate) == (8, 8)
    assert tuple(cfg.data.train_jitter_scales) == (256, 320)
    assert cfg.data.train_crop_size == 224
    assert (cfg.optim.momentum, cfg.optim.nesterov, cfg.optim.weight_decay) == (0.9, True, 1e-4)
    assert cfg.model.dropout == 0.5
    assert (cfg.data.test_num_clips, cfg.data.test_num_crops) == (10, 3)


@pytest.mark.parametrize(
    ("override", "extra"),
    [
        ("model.extra={}", {}),
        ("model.extra={channel_multiple: 4}", {"channel_multiple": 4}),
        ("model={extra: {}}", {}),  # the same, given through its section
        ("model.extra.channel_multiple=4", {"width": 8, "channel_multiple": 4}),  # one key
    ],
)
def test_a_mapping_override_replaces_the_files_mapping(tmp_path, override, extra):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  name: c2d_r18\n  alpha: 0.25\n  extra: {width: 8}\n")
    cfg = load_config(path, [override])
    assert cfg.model.extra == extra
    assert (cfg.model.name, cfg.model.alpha) == ("c2d_r18", 0.25)


def test_a_section_override_sets_only_the_keys_it_names_each_checked(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  name: c2d_r18\n  extra: {width: 8}\n")
    cfg = load_config(path, ["model={alpha: 0.1, extra: {}}"])
    assert (cfg.model.name, cfg.model.alpha, cfg.model.extra) == ("c2d_r18", 0.1, {})
    with pytest.raises(ConfigError, match=r"^override: model\.num_classes takes a whole number"):
        load_config(path, ["model={num_classes: 6_0}"])
    with pytest.raises(ConfigError, match=r"unknown key 'model\.alpah'; did you mean"):
        load_config(path, ["model={alpah: 0.1}"])


def test_file_then_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  name: c2d_r50\n  alpha: 0.1\noptim:\n  lr: 0.4\n")
    cfg = load_config(path, ["optim.lr=0.2", "model.alpha=[0.1, 0.2, 0.3, 0]"])
    assert cfg.name == "mine"
    assert cfg.model.name == "c2d_r50"
    assert cfg.optim.lr == 0.2
    assert cfg.model.alpha == [0.1, 0.2, 0.3, 0]
    assert isinstance(cfg.data.train_jitter_scales, tuple)


@pytest.mark.parametrize(
    ("text", "overrides", "needle"),
    [
        ("model:\n  alpah: 0.1\n", [], "unknown key 'model.alpah'; did you mean 'model.alpha'?"),
        ("", ["optim.weight_decy=0"], "'optim.weight_decay'"),
        ("", ["num_frames=4"], "did you mean 'data.num_frames'?"),
        ("optim:\n  lr: fast\n", [], "optim.lr takes a number, got 'fast'"),
        ("", ["trainer.max_epochs=1.5"], "trainer.max_epochs takes a whole number, got 1.5"),
        ("", ["model.alpha=1.5"], "model.alpha"),
        ("", ["optim.schedule=linear"], "optim.schedule"),
        ("", ["data.test_num_crops=2"], "data.test_num_crops"),
        ("", ["novalue"], "not key=value"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, overrides, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides)
    assert needle in str(err.value)
    assert isinstance(err.value, UsageError)  # the CLI prints it as one line


def test_cli_reports_a_bad_key_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  momentun: 0.9\n")
    assert cli.main(["train", "--cfg", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "'optim.momentun'" in err and "'optim.momentum'" in err


def test_validation_never_changes_values():
    cfg = load_config(None, ["model.alpha=0", "optim.lr=0.3", "trainer.gradient_clip_val=0"])
    assert cfg.model.alpha == 0 and cfg.optim.lr == 0.3 and cfg.trainer.gradient_clip_val == 0
    assert from_dict(to_dict(cfg)) == cfg


def test_plain_is_a_copy_of_dicts_and_lists_that_shares_nothing():
    from types import MappingProxyType

    inner = {"b": [1, (2, 3)]}
    value = {"a": inner, "m": MappingProxyType({"k": (4,)})}
    copy = plain(value)
    assert copy == {"a": {"b": [1, [2, 3]]}, "m": {"k": [4]}}
    assert type(copy["m"]) is dict
    copy["a"]["b"].append(5)
    assert inner == {"b": [1, (2, 3)]}


def test_flatten_gives_dotted_keys_with_lists_and_empty_mappings_as_values():
    nested = {"model": {"alpha": [0.1, 0.2], "extra": {}}, "name": "x"}
    assert list(flatten(nested)) == [
        ("model.alpha", [0.1, 0.2]),
        ("model.extra", {}),
        ("name", "x"),
    ]
    assert list(flatten({})) == []
    with pytest.raises(ConfigError, match=r"^config key model\.1 is not a name \(it is a number\)"):
        list(flatten({"model": {1: 2}}))


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["model.extra={width: 8}", "optim.step_epochs=[10, 20]"])
    path = save_config(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load(path.read_text())["model"]["extra"] == {"width": 8}
    assert load_config(path) == dataclasses.replace(cfg, name="run")


def test_saving_the_config_refuses_a_symlink_and_leaves_its_target(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("victim data\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        save_config(load_config(None, []), tmp_path / "run" / "config.yaml")
    assert victim.read_text() == "victim data\n"


def test_shipped_name_resolves_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shipped_configs(), "configs/ ships no config"
    some = shipped_configs()[0]
    for name in (some.name, some.stem, some.relative_to(CONFIG_DIR).as_posix()):
        assert resolve_config_path(name) == some
    with pytest.raises(ConfigError, match="neither a file nor a shipped config"):
        resolve_config_path("no_such_recipe.yaml")


@pytest.mark.usefixtures("unbuilt")
def test_model_extra_values_at_their_bounds_load():
    extra = "{width: 1024, channel_multiple: null, oct_stem: true, fusion_kernel: 64}"
    cfg = load_config(None, [f"model.extra={extra}", "model.extra.in_chans=1"])
    assert cfg.model.extra == {
        "width": 1024,
        "channel_multiple": None,
        "oct_stem": True,
        "fusion_kernel": 64,
        "in_chans": 1,
    }


def test_a_folder_given_as_the_config_is_named_a_folder(tmp_path, capsys):
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError) as err:
        resolve_config_path(folder)
    assert (
        str(err.value) == f"config {str(folder)!r} is a folder; pass a config file (a .yaml file)"
    )
    assert "is a folder" in _one_line_cli_error(capsys, folder)


@pytest.mark.parametrize("kind", NO_FILES)
def test_a_config_that_is_no_file_is_named_for_what_it_is(tmp_path, kind):
    path = tmp_path / "run.yaml"
    what = make_no_file(path, kind)
    with pytest.raises(ConfigError) as err:
        resolve_config_path(path)
    assert str(err.value) == f"config {str(path)!r} {what}; pass a config file (a .yaml file)"


@pytest.mark.parametrize("kind", NO_FILES)
def test_no_file_here_named_like_a_shipped_config_is_refused_not_passed_over(
    tmp_path, monkeypatch, kind
):
    # the shipped i3d_oct.yaml was loaded in its place, as if nothing were here
    monkeypatch.chdir(tmp_path)
    what = make_no_file(tmp_path / "i3d_oct.yaml", kind)
    with pytest.raises(ConfigError) as err:
        resolve_config_path("i3d_oct.yaml")
    assert str(err.value) == f"config 'i3d_oct.yaml' {what}; pass a config file (a .yaml file)"


def test_ambiguous_shipped_name_lists_the_choices():
    by_name: dict[str, list] = {}
    for path in shipped_configs():
        by_name.setdefault(path.name, []).append(path)
    dup = next(n for n, ps in by_name.items() if len(ps) > 1)  # K400 and K600 recipes
    with pytest.raises(ConfigError, match="ambiguous"):
        resolve_config_path(dup)


@pytest.mark.parametrize(
    ("name", "shipped", "kind"),
    [
        ("i3d_oct.yaml", "kinetics400/i3d_r50_oct_a0.1_8x8.yaml", "the short name of"),
        ("c2d_oct", "kinetics400/c2d_r50_oct_a0.1_8x8.yaml", "the short name of"),
        ("i3d_r50_8x8.yaml", "kinetics400/i3d_r50_8x8.yaml", "a shipped config"),
        ("oct_i3d_synth.yaml", "demo/oct_i3d_synth.yaml", "a shipped config"),
    ],
)
def test_a_file_here_named_like_a_shipped_config_is_refused_naming_both(
    tmp_path, monkeypatch, capsys, name, shipped, kind
):
    # `import --out i3d_oct.ckpt` writes i3d_oct.yaml here; it used to win over the short name
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text("name: mine\n")
    with pytest.raises(ConfigError) as err:
        resolve_config_path(name)
    message = str(err.value)
    assert message.startswith(f"config name {name!r} is both a file here and {kind}")
    assert f"use ./{name} for the file or {shipped} for the " in message
    assert "both a file here" in _one_line_cli_error(capsys, name)
    assert resolve_config_path(f"./{name}").resolve() == (tmp_path / name).resolve()
    assert resolve_config_path(shipped) == CONFIG_DIR / shipped


def test_a_name_without_its_suffix_finds_the_file_here_as_it_does_a_shipped_one(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("name: mine\n")
    assert resolve_config_path("mine") == Path("mine.yaml")
    (tmp_path / "i3d_oct.yaml").write_text("name: mine\n")  # the short name's own file name
    with pytest.raises(ConfigError) as err:
        resolve_config_path("i3d_oct")  # it took the shipped recipe without a word
    assert str(err.value).startswith("config name 'i3d_oct.yaml' is both a file here and the")
    assert "use ./i3d_oct.yaml for the file" in str(err.value)


def test_a_file_here_named_like_two_shipped_configs_names_all_three(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "i3d_r50_8x8_in1k.yaml").write_text("name: mine\n")
    with pytest.raises(ConfigError) as err:
        resolve_config_path("i3d_r50_8x8_in1k.yaml")
    assert str(err.value).endswith(
        "use ./i3d_r50_8x8_in1k.yaml for the file or one of kinetics400/i3d_r50_8x8_in1k.yaml, "
        "kinetics600/i3d_r50_8x8_in1k.yaml for a shipped one"
    )


def test_a_relative_path_that_is_also_a_shipped_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kinetics400").mkdir()
    (tmp_path / "kinetics400" / "i3d_r50_8x8.yaml").write_text("name: mine\n")
    with pytest.raises(ConfigError) as err:
        resolve_config_path("kinetics400/i3d_r50_8x8.yaml")
    assert str(err.value).endswith(
        f"use ./kinetics400/i3d_r50_8x8.yaml for the file or "
        f"{CONFIG_DIR / 'kinetics400/i3d_r50_8x8.yaml'} for the shipped one"
    )


def test_a_shipped_config_named_from_its_own_folder_is_that_file(monkeypatch):
    monkeypatch.chdir(CONFIG_DIR / "kinetics600")
    path = resolve_config_path("i3d_r50_8x8_in1k.yaml")  # K400 ships the same name
    assert path.resolve() == CONFIG_DIR / "kinetics600" / "i3d_r50_8x8_in1k.yaml"


# -- text keys take text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "kind"),
    [
        ("data.classes_file=0123", "a number"),
        ("data.classes_file=0x1F", "a number"),
        ("data.train_list=1e3", "a number"),
        ("output.name=.inf", "a number"),
        ("data.classes_file=false", "true or false"),
        ("model.name=True", "true or false"),
        ("data.decoder=FALSE", "true or false"),
    ],
)
def test_a_number_or_bool_for_a_text_key_is_refused_naming_it_as_typed(override, kind):
    key, text = override.split("=")
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == (
        f"override: {override} reads as {kind}; quote it ({key}=\"'{text}'\") to mean the text"
    )


def test_a_number_or_bool_for_a_text_key_in_a_file_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("data:\n  classes_file: 0700\n")
    with pytest.raises(ConfigError, match=r"data\.classes_file reads as a number \(700\); quote"):
        load_config(path)
    path.write_text("data:\n  decoder: false\n")
    with pytest.raises(ConfigError, match=r"data\.decoder reads as true or false \(false\)"):
        load_config(path)


def test_quoted_number_text_and_null_keep_their_meaning_in_text_keys():
    cfg = load_config(None, ["data.classes_file='0123'", "data.decoder='pyav'"])
    assert cfg.data.classes_file == "0123"
    assert load_config(None, ["data.video_extensions=['.mp4', '1']"]).data.video_extensions == (
        ".mp4",
        "1",
    )


# -- model.extra keys the section sets itself --------------------------------------------------


@pytest.mark.parametrize("key", ["alpha", "num_classes", "octave", "dropout"])
def test_a_model_extra_key_that_duplicates_a_model_key_is_refused(key):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"model.extra.{key}=1"])
    assert str(err.value) == f"model.extra.{key} duplicates model.{key}; set model.{key}"


def test_model_extra_depth_is_refused_as_set_by_the_model_name():
    with pytest.raises(ConfigError, match=r"^model\.extra\.depth is set by model\.name "):
        load_config(None, ["model.extra.depth=3"])


# -- null for "none" ----------------------------------------------------------------------------


def test_every_key_whose_default_is_null_takes_null_in_an_override_and_a_file(tmp_path):
    """A key that means "none" by null (``model.pretrained``: random weights) takes null as
    typed and in YAML, as the errors that advise ``KEY=null`` say."""
    keys = [k for k, v in flatten(dataclasses.asdict(RunConfig())) if v is None]
    assert "model.pretrained" in keys
    for key in keys:
        section, name = key.split(".")
        path = tmp_path / "null.yaml"
        path.write_text(f"{section}:\n  {name}: null\n")
        for cfg in (load_config(None, [f"{key}=null"]), load_config(path)):
            assert getattr(getattr(cfg, section), name) is None, key


def test_an_optional_text_keys_empty_text_is_read_as_null(tmp_path):
    """``model.pretrained`` "" and null both mean random init: loaded, they are one value, so a
    config (or a plan.json) stored with either compares equal to one with the other."""
    path = tmp_path / "empty.yaml"
    path.write_text('model:\n  pretrained: ""\n')
    for cfg in (load_config(None, ["model.pretrained="]), load_config(path)):
        assert cfg.model.pretrained is None
        assert to_dict(from_dict(to_dict(cfg)))["model"] == to_dict(load_config(None))["model"]
    stored = to_dict(load_config(None))
    stored["model"]["pretrained"] = ""  # as versions whose default was "" wrote it
    assert canonical(stored) == to_dict(load_config(None))
    assert canonical({"model": {"pretrained": "w.ckpt"}, "x": ""}) == {
        "model": {"pretrained": "w.ckpt"},
        "x": "",  # a key the config does not know is kept as it is
    }


@pytest.mark.parametrize("name", ["max_epochs", "num_nodes", "accumulate_grad_batches"])
def test_a_count_below_one_names_its_own_key_and_value(name):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"trainer.{name}=0"])
    assert str(err.value) == f"trainer.{name} must be >= 1, got 0"


@pytest.mark.parametrize("name", ["gpux", "tpu", "GPU", ""])
def test_an_accelerator_octvideo_does_not_run_on_is_refused_naming_the_choices(name):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"trainer.accelerator='{name}'"])
    assert str(err.value) == (
        f"trainer.accelerator: {name!r} is not one of auto, cpu, gpu, cuda, mps"
    )


@pytest.mark.parametrize(
    ("name", "found"), [("gpu", "no CUDA GPU"), ("cuda", "no CUDA GPU"), ("mps", "no Apple MPS")]
)
def test_an_accelerator_this_machine_lacks_is_one_line_when_the_config_loads(
    name, found, monkeypatch
):
    import torch
    import torch._dynamo  # noqa: F401  (it reads torch.cuda.is_available when first imported)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"trainer.accelerator={name}"])
    assert str(err.value).startswith(
        f"trainer.accelerator={name}: no such device on this machine (PyTorch "
    )
    assert found in str(err.value) and "use trainer.accelerator=cpu" in str(err.value)
    for here in ("cpu", "auto"):  # the CPU is always there, and auto takes what is
        assert load_config(None, [f"trainer.accelerator={here}"]).trainer.accelerator == here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert load_config(None, [f"trainer.accelerator={name}"]).trainer.accelerator == name


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["model.extra.stem_kernel=[2, 7, 7]"], "e.g. [5, 7, 7] for I3D: "),
        (["model.octave=[1, 3, 3]"], "[1, 2, 2] for the spatial octave, [2, 2, 2] for the "),
        (["model.extra.temporal_kernels=[[2]]"], "e.g. [[3], [3, 1], [3, 1], [1, 3]]; got [[2]]"),
        (["model.name=slowfast_r50", "model.extra.head_pool=[1, 2]"], "[[8, 7, 7], [32, 7, 7]]"),
    ],
)
def test_a_model_refusal_writes_its_examples_and_values_as_yaml(overrides, says):
    """A config's reader writes [5, 7, 7]: YAML reads (5, 7, 7) as text."""
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert says in str(err.value)
    assert "(5, 7, 7)" not in str(err.value) and "((" not in str(err.value)
    assert "got (" not in str(err.value)


# the text keys that are no path: names and choices (a new text key is one or the other)
_TEXT_KEYS_NOT_PATHS = {
    "name",
    "model.name",
    "model.pretrained_kind",
    "data.annotation_format",
    "data.decoder",
    "data.video_extensions",
    "optim.schedule",
    "optim.on_nonfinite_loss",
    "trainer.accelerator",
    "trainer.strategy",
    "trainer.precision",
    "trainer.memory_format",
    "output.monitor",
    "output.name",
}


def test_every_text_key_is_a_path_or_a_name():
    from octvideo.config import _TEXT_KEYS

    assert PATH_KEYS.isdisjoint(_TEXT_KEYS_NOT_PATHS)
    assert PATH_KEYS | _TEXT_KEYS_NOT_PATHS == _TEXT_KEYS


def test_a_leading_tilde_of_every_path_key_is_the_home_folder(tmp_path, monkeypatch):
    """``~`` is the home folder in each path key, in a file and in an override, as in --cfg."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = tmp_path / "home"
    path = tmp_path / "tilde.yaml"
    sections: dict[str, dict[str, str]] = {}
    for key in sorted(PATH_KEYS):
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = f"~/{name}"
    path.write_text(dump_yaml(sections))
    overrides = [f"{key}=~/{key.split('.')[1]}" for key in sorted(PATH_KEYS)]
    for cfg in (load_config(path), load_config(None, overrides)):
        got = dict(flatten(to_dict(cfg)))
        for key in PATH_KEYS:
            assert got[key] == str(home / key.split(".")[1]), key
    # only a leading ~ (a folder named ~ inside a path is a name), and no other key
    cfg = load_config(None, ["data.root=data/~/x", "output.name=~x"])
    assert (cfg.data.root, cfg.output.name) == ("data/~/x", "~x")


# One setting of each kind the registered models refuse -> the config key the refusal names.
_MODEL_REFUSED = [
    (["model.extra={stem_kernel: [2, 7, 7]}"], "model.extra.stem_kernel must be three odd"),
    (["model.extra={temporal_kernels: [[2], [3], [3], [3]]}"], "model.extra.temporal_kernels"),
    (["model.name=slowfast_r50", "model.extra={fusion_kernel: 4}"], "model.extra.fusion_kernel"),
    (["model.octave=[1, 3, 3]"], "model.octave must be three factors"),
    (["model.alpha=[0.1, 0.1, 0.1, 0.1, 0.1]"], "model.alpha needs one number"),
    (["model.name=slowfast_r50", "model.alpha=0.999"], "model.alpha=0.999 leaves"),
    (["model.name=slowfast_r50", "model.alpha=[0.999, 0, 0, 0]"], "model.alpha[0]=0.999"),
    (["model.name=slowfast_r50", "model.extra={fast_alpha: 2}"], "model.extra.fast_alpha"),
    (["model.extra={nonlocal_blocks: [[9], [], [], []]}"], "model.extra.nonlocal_blocks"),
    (["model.extra={head_pool: [0, 7, 7]}"], "model.extra.head_pool must be three"),
    (["model.name=slowfast_r50", "model.extra={head_pool: [[1, 1, 1], [0, 1, 1]]}"],
     "model.extra.head_pool[1] must be three"),
    (["model.extra={bogus: 1}"], "model.extra.bogus is not a setting of i3d_r50"),
    (["model.name=i3d_r5"], "model.name: unknown model 'i3d_r5'"),
    (["model.extra={width: 1024}"], "parameters, over the limit of"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "start"), _MODEL_REFUSED)
def test_a_model_setting_the_model_refuses_is_refused_when_the_config_loads(overrides, start):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    message = str(info.value)
    assert start in message and "\n" not in message, message
    assert message.startswith(("model.", "i3d_r50 with")), message


def test_a_config_file_with_an_even_kernel_is_refused_naming_the_file_key(tmp_path):
    path = tmp_path / "even.yaml"
    path.write_text("model:\n  name: c2d_r18\n  extra:\n    stem_kernel: [2, 7, 7]\n")
    with pytest.raises(ConfigError, match=r"^model\.extra\.stem_kernel .* got \[2, 7, 7\]$"):
        load_config(path)


def test_the_command_line_refuses_a_model_setting_in_one_line_with_status_2(tmp_path, capsys):
    path = tmp_path / "even.yaml"
    path.write_text("model:\n  name: c2d_r18\n  extra:\n    stem_kernel: [2, 7, 7]\n")
    out = tmp_path / "runs"
    assert cli.main(["train", "--cfg", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.extra.stem_kernel" in err, err
    assert not out.exists()

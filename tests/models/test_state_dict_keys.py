"""State-dict keys are a public contract (checkpoints, conversions): each variant's keys at alpha 0
and the keys an octave adds (alpha 0.25, spatial octave) are pinned in state_dict_keys.json.

After an intended change, regenerate with ``.venv/bin/python tests/models/test_state_dict_keys.py``
and review the JSON diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from octvideo.models import create_model, list_models

PINNED = Path(__file__).with_name("state_dict_keys.json")


def current_keys(name: str) -> dict[str, list[str]]:
    vanilla = list(create_model(name).state_dict())
    octave = create_model(name, alpha=0.25).state_dict()
    return {
        "alpha0": vanilla,
        "alpha0.25_added": sorted(set(octave) - set(vanilla)),
        "alpha0.25_removed": sorted(set(vanilla) - set(octave)),
    }


@pytest.mark.parametrize("name", list_models())
def test_state_dict_keys_pinned(name: str) -> None:
    pinned = json.loads(PINNED.read_text())
    assert name in pinned, f"{name} has no pinned keys: regenerate {PINNED.name}"
    assert current_keys(name) == pinned[name]


def test_every_pinned_model_is_registered() -> None:
    assert sorted(json.loads(PINNED.read_text())) == list_models()


if __name__ == "__main__":
    PINNED.write_text(json.dumps({n: current_keys(n) for n in list_models()}, indent=1) + "\n")

"""One set of defaults: the schema's. config/config.yaml shows every key at its schema
default, and the library's dataclasses and functions default every parameter that a config
key sets to that key's schema default, so a call from Python gets what the workflow gets."""

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from avsep.bases import NMFConfig
from avsep.dataset import build_manifest
from avsep.deep.model import DeepConfig
from avsep.deep.spectral import DeepAudio
from avsep.demo.plan import DemoSpec
from avsep.dictionary import reduce_bases
from avsep.miml.model import MIMLConfig, MIMLNet
from avsep.nmf import nmf
from avsep.probe.model import Probe
from avsep.probe.train import train_probe
from avsep.separation import guided_nmf_separate
from avsep.transforms import STFTConfig
from avsep.vision.correspondence import train_correspondence

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())


def _defaults(schema: dict) -> dict:
    """The schema's defaults, nested blocks as dicts."""
    out = {}
    for key, spec in schema["properties"].items():
        out[key] = _defaults(spec) if "properties" in spec else spec.get("default")
    return out


DEFAULTS = _defaults(SCHEMA)


def test_config_yaml_shows_every_key_at_its_schema_default():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())

    def differences(schema_defaults, shown, path=""):
        for key, default in schema_defaults.items():
            if key not in shown:
                yield f"{path}{key}: missing (schema default {default!r})"
            elif isinstance(default, dict) and isinstance(shown[key], dict):
                yield from differences(default, shown[key], f"{path}{key}.")
            elif shown[key] != default:
                yield f"{path}{key}: {shown[key]!r} in config.yaml, {default!r} in the schema"
        for key in set(shown) - set(schema_defaults):
            yield f"{path}{key}: not in the schema"

    assert list(differences(DEFAULTS, config)) == []


def _parameter_defaults(target) -> dict:
    """Parameters with a default; ``None`` is left out, since it means "derived from the other
    arguments" (``nmf``'s ``n_components`` from a given ``W``), not a setting."""
    if dataclasses.is_dataclass(target):
        found = {f.name: f.default for f in dataclasses.fields(target) if f.default is not dataclasses.MISSING}
    else:
        found = {name: p.default for name, p in inspect.signature(target).parameters.items()
                 if p.default is not inspect.Parameter.empty}
    return {k: v for k, v in found.items() if v is not None}


def _same(value, default) -> bool:
    return list(value) == default if isinstance(value, tuple) else value == default


#: What the library builds from each config block. A parameter named like a key of its block
#: must default to that key's schema default.
TARGETS = [
    (STFTConfig, "audio"),
    (NMFConfig, "nmf"),
    (nmf, "nmf"),
    (reduce_bases, "dictionary"),
    (MIMLConfig, "miml"),
    (MIMLNet, "miml"),
    (guided_nmf_separate, "separation"),
    (build_manifest, "split"),
    (train_probe, "probe"),
    (Probe, "probe"),
    (DemoSpec, "demo"),
    (DeepConfig, "deep"),
    (DeepAudio, "deep.audio"),
    (train_correspondence, "localization"),
]


@pytest.mark.parametrize("target, block", TARGETS, ids=lambda t: getattr(t, "__qualname__", str(t)))
def test_library_defaults_are_the_schemas(target, block):
    schema_block = DEFAULTS
    for part in block.split("."):
        schema_block = schema_block[part]
    shared = {k: v for k, v in _parameter_defaults(target).items() if k in schema_block}
    assert shared, f"{target.__qualname__} shares no parameter with the {block} block"
    wrong = {k: (v, schema_block[k]) for k, v in shared.items() if not _same(v, schema_block[k])}
    assert wrong == {}, f"{target.__qualname__}: (library default, schema default) {wrong}"

"""Config loading and validation: errors name the stage and the field."""
from pathlib import Path

import pytest

from rtface.config import config_from_dict, load_config, with_overrides
from rtface.errors import ConfigError
from rtface.stages.landmarks import LandmarkParams

CONFIGS = Path(__file__).resolve().parents[2] / "rtface" / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_packaged_configs_load(path):
    cfg = load_config(path)
    assert cfg.stages[0].kind == "landmarks"


def test_default_config_is_loopback_and_sample():
    cfg = load_config()
    assert cfg.publish.endpoint.startswith("tcp://127.0.0.1:")
    assert cfg.source.spec == "sample"
    assert isinstance(cfg.stages[0].params, LandmarkParams)


def test_unknown_stage_field_names_stage_and_field():
    with pytest.raises(ConfigError, match=r"stage 'landmarks'.*unknown field 'max_face'"):
        config_from_dict({"stages": [{"kind": "landmarks", "max_face": 2}]})


def test_wrong_type_names_field():
    with pytest.raises(ConfigError, match=r"stage 'landmarks'.*field 'max_faces'.*integer"):
        config_from_dict({"stages": [{"kind": "landmarks", "max_faces": "two"}]})


def test_unknown_section_and_kind():
    with pytest.raises(ConfigError, match="unknown section 'sources'"):
        config_from_dict({"sources": {}})
    with pytest.raises(ConfigError, match="unknown stage kind 'facez'"):
        config_from_dict({"stages": [{"kind": "facez"}]})
    with pytest.raises(ConfigError, match=r"\[publish\].*unknown field 'port'"):
        config_from_dict({"publish": {"port": 5}})


def test_ring_slots_power_of_two():
    with pytest.raises(ConfigError, match="ring_slots"):
        config_from_dict({"engine": {"ring_slots": 6}})


def test_input_must_be_produced_earlier():
    from rtface.graph.stage import Stage, register_stage

    @register_stage
    class NeedsAus(Stage):
        kind = "needs_aus_test"
        inputs = ("aus",)

    with pytest.raises(ConfigError, match=r"stage 'needs_aus_test': input 'aus'"):
        config_from_dict({"stages": [{"kind": "landmarks"}, {"kind": "needs_aus_test"}]})


def test_error_policy_validated():
    with pytest.raises(ConfigError, match="on_error"):
        config_from_dict({"stages": [{"kind": "landmarks", "on_error": "ignore"}]})


def test_missing_config_file_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[source\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(bad)


def test_overrides_validate():
    cfg = with_overrides(load_config(), source={"spec": "x.mp4"}, publish={"enabled": False})
    assert cfg.source.spec == "x.mp4" and not cfg.publish.enabled
    with pytest.raises(ConfigError):
        with_overrides(cfg, engine={"max_frames": "many"})

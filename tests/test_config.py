from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from seenet import SeeNet
from seenet.config import (
    DEFAULTS,
    apply_overrides,
    dump_config,
    load_config,
    merge_config,
    parse_override,
    resolve_config,
)

CONFIGS = Path(__file__).parents[1] / "examples" / "voc" / "configs"


def test_defaults_are_valid_and_untouched():
    before = yaml.safe_dump(DEFAULTS)
    cfg = resolve_config({"attention": {"train": {"lr": 0.5}}})
    assert cfg["attention"]["train"]["lr"] == 0.5
    assert yaml.safe_dump(DEFAULTS) == before


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("seed=3", "seed", 3),
        ("attention.train.lr=1e-3", "attention.train.lr", 1e-3),
        ("maps.flip=false", "maps.flip", False),
        ("data.saliency_dir=null", "data.saliency_dir", None),
        ("evaluate.scales=[0.5, 1.0]", "evaluate.scales", [0.5, 1.0]),
        ("work_dir=a=b", "work_dir", "a=b"),
    ],
)
def test_parse_override(text, key, value):
    assert parse_override(text) == (key, value)


def test_overrides_are_typed_by_the_defaults():
    cfg = load_config(overrides=[
        "attention.train.lr=1e-2",  # YAML 1.1 reads 1e-2 as a string: converted to float
        "attention.train.iterations=100",
        "evaluate.scales=[1, 2]",
        "attention.model.backbone=resnet18",  # model sections are open
    ])
    assert cfg["attention"]["train"]["lr"] == 0.01
    assert isinstance(cfg["attention"]["train"]["iterations"], int)
    assert cfg["evaluate"]["scales"] == [1.0, 2.0]
    assert cfg["attention"]["model"]["backbone"] == "resnet18"


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("seed: 5\nattention:\n  train:\n    lr: 1e-3\n    batch_size: 8\n")
    cfg = load_config(path, ["attention.train.batch_size=4"])
    assert cfg["seed"] == 5 and cfg["attention"]["train"]["lr"] == 1e-3
    assert cfg["attention"]["train"]["batch_size"] == 4
    dump_config(cfg, tmp_path / "out.yaml")
    assert load_config(tmp_path / "out.yaml") == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["attention.train.lrr=1"], r"attention\.train\.lrr.*did you mean 'attention\.train\.lr'"),
        (["attention.train.batch_size=0"], r"attention\.train\.batch_size"),
        (["attention.train.batch_size=abc"], r"attention\.train\.batch_size must be an integer"),
        (["segmentation.train.schedule=cosine"], r"segmentation\.train\.schedule"),
        (["proxy.conflict_threshold=2"], r"proxy\.conflict_threshold"),
        (["maps.labels=some"], r"maps\.labels"),
        (["attention.train.accumulate=3"], r"divisible"),
        (["attention.train.lr_steps=[20, 10]"], r"lr_steps"),
        (["attention.transforms.scale_range=[480, 256]"], r"scale_range"),
        (["evaluate.scales=[]"], r"evaluate\.scales"),
        (["data=3"], r"data must be a mapping"),
        (["seed"], r"key=value"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(overrides=overrides)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(bad)
    bad.write_text("data:\n  roott: x\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*data\.roott"):
        load_config(bad)


def test_yaml_is_read_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("seed: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ValueError, match="evil.yaml"):
        load_config(evil)


def test_apply_overrides_in_order():
    cfg = apply_overrides(DEFAULTS, ["seed=1", "seed=2"])
    assert cfg["seed"] == 2


# --- the shipped recipes hold the paper's values (SPEC section 1) ---------------------------

PAPER_ATTENTION = {
    "batch_size": 16,
    "lr": 1e-3,
    "lr_steps": [15000],
    "lr_gamma": 0.1,
    "schedule": "step",
    "weight_decay": 2e-4,
    "iterations": 25000,
    "momentum": 0.9,
}
PAPER_SEGMENTATION = {
    "batch_size": 10,
    "lr": 1e-3,
    "schedule": "poly",
    "poly_power": 0.9,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "iterations": 20000,
}
RECIPES = sorted(CONFIGS.glob("*.yaml"))


def test_the_recipes_exist():
    names = {p.name for p in RECIPES}
    assert {"seenet_vgg16.yaml", "acol_vgg16.yaml", "zero_vgg16.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_holds_the_paper_values(path):
    raw = yaml.safe_load(path.read_text())
    cfg = load_config(path)
    for key, value in PAPER_ATTENTION.items():
        assert raw["attention"]["train"][key] == value, f"attention.train.{key}"
    for key, value in PAPER_SEGMENTATION.items():
        assert raw["segmentation"]["train"][key] == value, f"segmentation.train.{key}"
    assert raw["attention"]["transforms"] == {
        "scale_range": [256, 480], "crop_size": 224, "flip": True
    }
    assert raw["segmentation"]["transforms"] == {
        "scale_range": [0.5, 1.5], "crop_size": 321, "flip": True, "ignore_index": 255
    }
    model = raw["attention"]["model"]
    assert model["name"] == "seenet_vgg16" and model["pretrained"] is True
    assert model["delta_high"] == 0.7 and model["delta_low"] == 0.05
    assert model["hidden_channels"] == 512 and model["num_convs"] == 3
    assert model["delta_bg"] is None  # (delta_high + delta_low) / 2, the model's default
    # the recipe states every option of SeeNet's method, each at the library's default (the
    # same defaults serve the recipe and the demo)
    params = inspect.signature(SeeNet).parameters
    stated = set(model) - {"name", "pretrained", "erase_mode", "acol_threshold"}
    assert stated <= set(params)
    options = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - {"backbone_kwargs"}
    for key in options | {"normalize", "delta_bg"}:
        assert key in model and model[key] == params[key].default, f"attention.model.{key}"
    assert raw["data"]["train_split"] == "train_aug" and raw["data"]["val_split"] == "val"
    assert raw["maps"]["input_size"] == 224 and raw["maps"]["flip"] is True
    assert raw["proxy"]["w"] == 1.0
    assert raw["proxy"]["saliency_threshold"] is None
    assert raw["proxy"]["conflict_threshold"] is None
    assert raw["segmentation"]["model"]["pretrained"] is True
    assert cfg["data"]["root"] is None  # the user points it at their data


def test_recipe_specific_values():
    def load(name):
        return yaml.safe_load((CONFIGS / name).read_text())

    table1 = {"seenet_vgg16.yaml": "seenet", "zero_vgg16.yaml": "zero", "acol_vgg16.yaml": "acol"}
    for name, mode in table1.items():
        raw = load(name)
        assert raw["attention"]["model"]["erase_mode"] == mode
        assert raw["segmentation"]["model"]["name"] == "deeplab_largefov_vgg16"
        assert raw["evaluate"]["scales"] == [1.0] and raw["evaluate"]["crf"] is False
    assert load("acol_vgg16.yaml")["attention"]["model"]["acol_threshold"] == 0.6
    assert len({load(n)["work_dir"] for n in table1}) == 3
    for name, seg in (("seenet_vgg16_msc_crf.yaml", "deeplab_largefov_vgg16"),
                      ("seenet_resnet101_msc_crf.yaml", "deeplab_largefov_resnet101")):
        raw = load(name)
        assert raw["evaluate"]["scales"] == [0.5, 0.75, 1.0, 1.25, 1.5]
        assert raw["evaluate"]["crf"] is True
        assert raw["segmentation"]["model"]["name"] == seg


def test_image_ids_survive_overrides():
    cfg = load_config(overrides=["maps.overlay_ids=2007_000032", "proxy.overlay_ids=a,b",
                                 "evaluate.overlay_ids=['2007_000129']"])
    assert cfg["maps"]["overlay_ids"] == ["2007_000032"]
    assert cfg["proxy"]["overlay_ids"] == ["a", "b"]
    assert cfg["evaluate"]["overlay_ids"] == ["2007_000129"]
    assert load_config(overrides=["attention.train.iterations=25_000"])["attention"]["train"][
        "iterations"
    ] == 25000


@pytest.mark.parametrize("section", ["attention", "segmentation"])
def test_model_pretrained_takes_a_file_path_or_a_flag(section):
    cfg = apply_overrides(DEFAULTS, [f"{section}.model.pretrained=/weights/vgg16.safetensors"])
    assert cfg[section]["model"]["pretrained"] == "/weights/vgg16.safetensors"
    cfg = apply_overrides(DEFAULTS, [f"{section}.model.pretrained=false"])
    assert cfg[section]["model"]["pretrained"] is False
    with pytest.raises(ValueError, match=f"{section}.model.pretrained"):
        merge_config(DEFAULTS, {section: {"model": {"pretrained": 3}}})

"""The network: reference size, paper geometry, every option, any input size."""

from __future__ import annotations

import pytest
import torch

from unetkit import UNet, UNetConfig, count_parameters, preset
from unetkit.errors import ConfigError
from unetkit.model import (
    labels_from_logits,
    labels_from_probabilities,
    probabilities_from_logits,
    valid_input_size,
    valid_output_size,
)

from model_checks import ModelChecks


class TestKerasReferenceShape(ModelChecks):
    config = preset("keras-reference", base_width=4)


class TestPaperValidPadding(ModelChecks):
    config = preset("paper-2015", base_width=4, depth=3)


class TestBatchNormAndDropout(ModelChecks):
    config = UNetConfig(depth=4, base_width=4, batch_norm=True, dropout=0.3)


class TestBilinearUpsampling(ModelChecks):
    config = UNetConfig(depth=3, base_width=4, upsampling="bilinear")


class TestBilinearValid(ModelChecks):
    config = UNetConfig(depth=3, base_width=4, upsampling="bilinear", padding="valid")


class TestSeveralClassesRGB(ModelChecks):
    config = UNetConfig(depth=3, base_width=4, num_classes=3, in_channels=3)


class TestShallow(ModelChecks):
    config = UNetConfig(depth=2, base_width=4)


class TestDeep(ModelChecks):
    config = UNetConfig(depth=6, base_width=4)


def test_default_is_the_reference_keras_unet_with_7759521_parameters():
    assert count_parameters(UNet()) == 7_759_521
    assert UNet().config == preset("keras-reference")


def test_paper_preset_maps_572_to_388():
    model = UNet(preset("paper-2015")).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 572, 572))
    assert out.shape == (1, 2, 388, 388)


def test_valid_size_helpers_are_inverse():
    for depth in (2, 3, 5):
        for wanted in (1, 17, 100, 388):
            side = valid_input_size(wanted, depth)
            assert valid_output_size(side, depth) >= wanted
            assert valid_output_size(side, depth) - wanted < 2 ** (depth - 1)
    assert (valid_input_size(388, 5) - 388) // 2 == 92  # the paper's context


def test_the_network_alone_on_a_side_off_the_multiple_answers_for_its_top_left_part():
    # exported .onnx/.pt files are the network without unetkit's padding; on a side that is not a multiple of
    # 2^(depth - 1) the pooled maps drop their last row, so the skips must be cut from the top left (a centre crop
    # shifted them by a pixel per level: 7 % of a HeLa frame's labels flipped at depth 5)
    torch.manual_seed(0)
    model = UNet(depth=4, base_width=4).eval()
    image = torch.randn(1, 1, 400, 400)
    with torch.no_grad():
        whole = model._forward_unpadded(image)
        odd = model._forward_unpadded(image[..., :397, :395])
    assert tuple(odd.shape[-2:]) == (392, 392)  # the largest multiples of 8 within 397 x 395
    torch.testing.assert_close(odd[..., :200, :200], whole[..., :200, :200])  # beyond reach of the lost rows


def test_valid_model_rejects_a_size_it_cannot_take_with_a_hint():
    model = UNet(base_width=2, depth=3, padding="valid")
    with pytest.raises(ValueError, match="valid_input_size"):
        model(torch.zeros(1, 1, 41, 41))


def test_invalid_options_are_rejected_with_a_message():
    with pytest.raises(ConfigError, match="depth must be at least 2"):
        UNet(depth=1)
    with pytest.raises(ConfigError, match="padding"):
        UNet(padding="full")
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("resnet")


def test_probabilities_and_labels_are_the_same_for_every_caller():
    logits = torch.tensor([[[[-1.0, 0.5]]]])
    assert labels_from_logits(logits).tolist() == [[[0, 1]]]
    multi = torch.tensor([[[[2.0]], [[1.0]], [[3.0]]]])
    probabilities = probabilities_from_logits(multi)
    assert torch.allclose(probabilities.sum(1), torch.ones(1, 1, 1))
    assert labels_from_probabilities(probabilities).item() == 2
    with pytest.raises(ValueError, match=r"\(N, K, H, W\).*\[None\]"):  # predict_tiled's (K, H, W), batch axis forgotten:
        labels_from_probabilities(probabilities[0])  # an argmax over rows before


def test_every_train_option_has_a_command_line_flag():
    import argparse
    import dataclasses

    from unetkit.cli import build_parser
    from unetkit.options import field_cli, flag_of
    from unetkit.training.config import TrainConfig

    train_parser = next(
        action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
    ).choices["train"]
    flags = {option for action in train_parser._actions for option in action.option_strings}
    positionals = {action.dest for action in train_parser._actions if not action.option_strings}
    for field in dataclasses.fields(TrainConfig):
        described = field_cli(field)
        assert described is not None and described["help"], f"{field.name} has no help text"
        if described["positional"]:
            assert field.name in positionals
        else:
            assert flag_of(field) in flags, f"{field.name} has no flag {flag_of(field)}"


def test_train_flags_parse_into_the_config_with_choices_from_the_types():
    from unetkit.cli import build_parser
    from unetkit.cli import _train_config

    args = build_parser().parse_args(["train", "d", "--out", "r", "--classes", "3", "--no-channels-last",
                                      "--max-time", "5m", "--augment", "strong", "--batch-norm"])
    config = _train_config(args)
    assert (config.data, config.num_classes, config.channels_last, config.max_time_s) == ("d", 3, False, 300.0)
    assert config.augment == "strong" and config.batch_norm is True and config.depth is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--out", "r", "--augment", "wild"])


def unetkit_imports() -> dict[str, set[str]]:
    """Each unetkit module's imports of other unetkit modules (from the source, not by running it)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "unetkit"
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rsplit(".", 1)[0]
                target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                imported.add(target)
                imported.update(f"{target}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        graph[module] = {name for name in imported if name.startswith("unetkit")}
    return graph


def test_training_imports_no_file_prediction_or_command_line_module():
    graph = unetkit_imports()
    forbidden = {"unetkit.predict", "unetkit.predict_large", "unetkit.evaluation", "unetkit.cli", "unetkit.report"}
    seen, stack = set(), [m for m in graph if m.startswith("unetkit.training")]
    while stack:  # every module training reaches, however indirectly (the package's __init__ aside)
        module = stack.pop()
        if module in seen or module == "unetkit":
            continue
        seen.add(module)
        stack.extend(graph.get(module, ()))
    assert seen & forbidden == set(), sorted(seen & forbidden)
    assert "unetkit.training.loop" in seen and "unetkit.scoring" in seen  # the walk does see imports

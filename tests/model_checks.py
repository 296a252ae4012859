"""One set of checks that every network configuration must pass (a mixin, as in
segmentation_models_pytorch's tests/models/base.py).

A test class names a configuration and inherits the checks::

    class TestBatchNorm(ModelChecks):
        config = UNetConfig(depth=3, base_width=4, batch_norm=True)
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from unetkit import UNet, UNetConfig, load_model, make_checkpoint, save_checkpoint
from unetkit.model import probabilities_from_logits


class ModelChecks:
    config: UNetConfig
    odd_size = (45, 67)  # neither side a multiple of any pooling factor

    def model(self) -> UNet:
        torch.manual_seed(0)  # tiny random nets can start with every ReLU dead; a fixed start is not
        return UNet(self.config)

    def input(self, batch: int = 2) -> torch.Tensor:
        """An input of valid size: odd sides for 'same' models, the rule's sizes for 'valid' ones."""
        rule = UNet(self.config).size_rule
        if self.config.padding == "same":
            height, width = self.odd_size
        else:
            height, width = rule.input_size_for(self.odd_size[0]), rule.input_size_for(self.odd_size[1])
        return torch.rand(batch, self.config.in_channels, height, width)

    def network_input(self) -> torch.Tensor:
        """An input the exported graph takes as it is (sides the size rule accepts)."""
        rule = UNet(self.config).size_rule
        side = rule.input_size_for(2 * rule.step)
        return torch.rand(1, self.config.in_channels, side, side)

    def test_forward_and_backward(self):
        model = self.model()
        x = self.input().requires_grad_(True)
        out = model(x)
        expected = model.size_rule.output_size(x.shape[-1]) if self.config.padding == "valid" else x.shape[-1]
        assert out.shape[:2] == (2, self.config.num_classes) and out.shape[-1] == expected
        out.square().mean().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        assert x.grad is not None and x.grad.abs().sum() > 0

    def test_save_and_load_round_trip(self, tmp_path):
        model = self.model().eval()
        save_checkpoint(tmp_path / "m.pt", make_checkpoint(model))
        loaded, _ = load_model(tmp_path / "m.pt")
        x = self.input(1)
        assert loaded.config == model.config
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))

    def test_onnx_parity(self, tmp_path):
        pytest.importorskip("onnxruntime")
        from unetkit.export import export_onnx
        from unetkit.inference.onnx_backend import OnnxRuntimePredictor

        model = self.model().eval()
        export_onnx(model, tmp_path / "m.onnx")
        assert not model.training  # exporting leaves the model as it was
        runtime = OnnxRuntimePredictor.from_file(tmp_path / "m.onnx")
        x = self.network_input()
        with torch.no_grad():
            expected = probabilities_from_logits(model(x))
        assert torch.allclose(runtime(x), expected, atol=1e-4)

    def test_torchscript_parity(self, tmp_path):
        from unetkit.export import export_torchscript

        model = self.model().eval()
        export_torchscript(model, tmp_path / "m.ts")
        scripted = torch.jit.load(str(tmp_path / "m.ts"))
        x = self.network_input()
        with torch.no_grad():
            assert torch.allclose(scripted(x), model(x), atol=1e-5)

    def test_compiles_as_one_graph(self):
        """torch.compile traces the whole forward without a graph break (fullgraph); the eager
        backend runs the traced graph, so the check costs no code generation."""
        model = self.model().eval()
        x = self.input(1)
        torch._dynamo.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
            with torch.no_grad():
                assert np.allclose(compiled(x).numpy(), model(x).numpy(), atol=1e-5)

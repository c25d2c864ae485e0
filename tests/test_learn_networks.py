"""Networks of sensorprint.learn: shapes and the constrained layer's invariants."""

from __future__ import annotations

import pytest
import torch

from sensorprint.learn.networks import ConstrainedConv2d, MISLNet, build_network, project_constrained_layers


def _check_constraint(layer: ConstrainedConv2d) -> None:
    weight = layer.weight.detach()
    centre = layer.kernel_size[0] // 2
    for out_index in range(weight.shape[0]):
        assert weight[out_index, out_index, centre, centre].item() == -1.0
        total = weight[out_index].sum().item() + 1.0  # all taps except the fixed centre
        assert total == pytest.approx(1.0, abs=1e-5)


def test_constrained_layer_holds_after_optimiser_steps():
    torch.manual_seed(0)
    network = MISLNet(3, patch_size=64, constrained=True)
    layer = network.constrained
    _check_constraint(layer)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5, momentum=0.9)
    before = layer.weight.detach().clone()
    for _ in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(network(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 0]))
        loss.backward()
        optimizer.step()
        project_constrained_layers(network)
        _check_constraint(layer)
    assert not torch.allclose(before, layer.weight)  # it did learn


def test_constrained_layer_is_a_prediction_error_filter():
    layer = ConstrainedConv2d(3, 3, 5)
    flat = torch.full((1, 3, 16, 16), 0.7)
    # A constant image is perfectly predicted: zero output away from the zero-padded border.
    assert layer(flat)[..., 2:-2, 2:-2].abs().max().item() < 1e-5


def test_mislnet_shapes():
    network = MISLNet(5, patch_size=128).eval()
    assert network.classifier[1].in_features == 2048  # the paper's FC 2048 → 1024
    assert network(torch.zeros(2, 3, 128, 128)).shape == (2, 5)
    assert MISLNet(4, patch_size=48).eval()(torch.zeros(1, 3, 48, 48)).shape == (1, 4)


def test_frame_network_shapes_and_errors():
    network = build_network("mobilenetv3_small", 3, constrained=True, width=0.5).eval()
    assert network(torch.zeros(1, 3, 64, 96)).shape == (1, 3)
    with pytest.raises(ValueError):
        build_network("resnet", 3)
    with pytest.raises(ValueError):
        build_network("mislnet", 1)

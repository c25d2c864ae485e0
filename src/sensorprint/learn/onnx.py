"""ONNX export and onnxruntime execution of a trained network, used where it is faster.

The network is exported once after training (fixed input size, dynamic batch); both
back-ends are then timed on the same batch on this machine, and the faster one is used.
The training record keeps both timings and the choice, so a result says how it was computed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def export_onnx(network: nn.Module, input_shape: tuple[int, int, int], path: Path) -> Path:
    """Write ``network`` (eval mode) to ``path`` as ONNX with input C×H×W and a dynamic batch axis.

    The legacy TorchScript exporter is tried first (it needs no extra packages and handles
    timm's MobileNetV3); the dynamo exporter is the fallback.
    """
    network = network.eval()
    example = torch.zeros((2, *input_shape), dtype=torch.float32)
    path = Path(path)
    try:
        torch.onnx.export(
            network,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    except Exception:  # noqa: BLE001 - any failure of the legacy exporter: try the other one
        torch.onnx.export(
            network,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
            dynamo=True,
        )
    return path


class OnnxRunner:
    """Runs an exported network with onnxruntime on the CPU; call it with a float32 N×C×H×W batch."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def torch_logits(network: nn.Module, batch: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Logits of ``network`` in eval mode for a float32 N×C×H×W batch."""
    network.eval()
    with torch.inference_mode():
        return network(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)).float().cpu().numpy()


def time_backends(
    network: nn.Module, runner: OnnxRunner, input_shape: tuple[int, int, int], *, batch_size: int = 32, repeats: int = 3
) -> dict[str, float]:
    """Seconds per unit of the torch and the onnxruntime back-end on the same random batch (best of ``repeats``)."""
    batch = np.random.default_rng(0).standard_normal((batch_size, *input_shape)).astype(np.float32) * 0.01
    timings: dict[str, float] = {}
    for name, run in (("torch", lambda: torch_logits(network, batch)), ("onnxruntime", lambda: runner(batch))):
        run()  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        timings[name] = best / batch_size
    return timings


def max_abs_difference(network: nn.Module, runner: OnnxRunner, input_shape: tuple[int, int, int]) -> float:
    """Largest absolute difference of the softmax outputs of torch and onnxruntime on a test batch."""
    batch = np.random.default_rng(1).standard_normal((4, *input_shape)).astype(np.float32) * 0.01
    a = torch.softmax(torch.from_numpy(torch_logits(network, batch)), dim=1)
    b = torch.softmax(torch.from_numpy(runner(batch)), dim=1)
    return float((a - b).abs().max())

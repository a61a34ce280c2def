"""PyTorch backend: run a training checkpoint (``.safetensors``) directly, for reference and debugging.

Slow compared with the exported model, but it runs exactly the network that was trained, so a difference
between its output and the ONNX/TensorRT one isolates an export or precision problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deblurrt.errors import DeblurrtError, MissingDependencyError
from deblurrt.runtime.backends.base import Backend, InputSpec, ModelInfo


class TorchBackend(Backend):
    """Load a checkpoint with ``deblurrt.train.checkpoint.load_model`` and run it under ``torch.no_grad``.

    Args:
        path: the ``.safetensors`` checkpoint (carries its own model config).
        device: ``"cpu"`` or ``"cuda"``.
        threads: torch intra-op threads (None: torch's default).
    """

    name = "torch"

    def __init__(self, path: str | Path, *, device: str = "cpu", threads: int | None = None):
        super().__init__(path)
        try:
            import torch

            from deblurrt.train.checkpoint import load_model
        except ImportError as error:
            raise MissingDependencyError("torch", "the PyTorch backend", "pip install 'deblurrt[train]'") from error
        if not self.path.is_file():
            raise DeblurrtError(f"checkpoint {self.path} does not exist. Fix: give a .safetensors file from training")
        if threads:
            torch.set_num_threads(int(threads))
        self.torch = torch
        self.device = device
        self.model = load_model(self.path, device=device)
        config = dict(getattr(self.model, "config", {}) or {})
        self.info = ModelInfo(name=str(config.get("name", type(self.model).__name__)),
                              pad_multiple=int(self.model.pad_multiple), input_name="blurry", output_name="sharp",
                              precision="fp32", config=config,
                              metadata={"deblurrt.model": str(config.get("name"))})
        self.input_spec = InputSpec(name="blurry", dtype=np.dtype(np.float32), shape=(None, 3, None, None))

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.model(x).float().cpu().numpy()

    def _close(self) -> None:
        self.model = None

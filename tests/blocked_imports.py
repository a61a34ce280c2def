"""Run Python code in a subprocess in which some top-level packages cannot be imported.

Used to prove that parts of deblurrt work on machines without torch, onnx, onnxruntime or tensorrt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

HEAVY = ("torch", "onnx", "onnxruntime", "tensorrt", "onnxsim", "safetensors")
REPO_ROOT = Path(__file__).resolve().parents[1]


def prelude(blocked: Iterable[str]) -> str:
    """Code that installs an import blocker for ``blocked`` and checks that it really blocks."""
    names = sorted(set(blocked))
    return textwrap.dedent(f"""
        import importlib.abc, sys
        BLOCKED = {names!r}
        class _Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked for this test: {{name}}")
                return None
        sys.meta_path.insert(0, _Block())
        for _name in BLOCKED:
            try:
                __import__(_name)
            except ImportError:
                pass
            else:
                raise SystemExit(f"the import block did not stop {{_name}}")
    """)


def run_without(code: str, blocked: Iterable[str] = HEAVY, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) with ``blocked`` unimportable; the repository is on ``PYTHONPATH``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", prelude(blocked) + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env)

"""Packaging contracts: the runtime imports without heavy libraries, the CLI teaches, stages map to one namespace."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from blocked_imports import prelude, run_without


def run_python(code: str) -> subprocess.CompletedProcess:
    return run_without(code)


def test_runtime_imports_without_torch_onnx_or_tensorrt():
    code = textwrap.dedent("""
        import pkgutil
        import deblurrt.runtime as runtime
        for module in pkgutil.walk_packages(runtime.__path__, "deblurrt.runtime."):
            __import__(module.name)
        assert not {"torch", "onnx", "onnxruntime", "tensorrt"} & set(sys.modules), sorted(sys.modules)
        print("ok")
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_block_really_blocks_torch():
    # The prelude itself exits when a blocked package still imports; here it must stop torch.
    result = subprocess.run([sys.executable, "-c", prelude(["torch"]) + "import torch"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "blocked for this test" in result.stderr


def test_cli_help_lists_commands_without_torch():
    result = run_python("from deblurrt.cli import main; raise SystemExit(main(['--help']))")
    assert result.returncode == 0, result.stderr
    assert "models" in result.stdout and "doctor" in result.stdout and "examples:" in result.stdout


def test_models_command_without_torch_lists_the_stored_table_and_measuring_says_how_to_fix():
    result = run_python("from deblurrt.cli import main; raise SystemExit(main(['models']))")
    assert result.returncode == 0 and "unet_nano_prior" in result.stdout, result.stderr
    result = run_python("from deblurrt.cli import main; raise SystemExit(main(['models', '--measure']))")
    assert result.returncode == 2
    assert "pip install 'deblurrt[train]'" in result.stderr


def test_stage_folders_install_under_the_deblurrt_namespace():
    import deblurrt.bench
    import deblurrt.export
    import deblurrt.runtime
    import deblurrt.train

    for module, folder in [(deblurrt.train, "train"), (deblurrt.export, "export"),
                           (deblurrt.runtime, "runtime"), (deblurrt.bench, "bench")]:
        assert module.__file__.replace("\\", "/").endswith(f"{folder}/__init__.py")


def test_no_command_prints_help_and_fails():
    result = subprocess.run([sys.executable, "-m", "deblurrt"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "usage: deblurrt" in result.stdout


@pytest.mark.parametrize("command", sorted(__import__("deblurrt.cli", fromlist=["COMMANDS"]).COMMANDS))
def test_every_command_has_help_that_teaches(command, capsys):
    from deblurrt.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: deblurrt {command}" in text
    assert "example" in text.lower(), f"'deblurrt {command} --help' shows no examples"


@pytest.mark.parametrize("argv, usage, hint", [
    (["run", "clip.mp4", "--treads", "1"], "usage: deblurrt run", "did you mean --threads?"),
    (["data", "synth", "photos", "out", "--cout", "3"], "usage: deblurrt data synth", "did you mean --count?"),
    (["run", "a.mp4", "b.mp4", "extra"], "usage: deblurrt run", "more positional arguments than 'deblurrt run'"),
])
def test_a_mistyped_argument_is_reported_by_its_command_with_the_closest_option(argv, usage, hint, capsys):
    from deblurrt.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    text = capsys.readouterr().err
    assert usage in text and "unrecognized arguments" in text and hint in text


def test_one_broken_command_module_does_not_break_the_others(monkeypatch, capsys):
    from deblurrt import cli

    monkeypatch.setitem(cli.COMMANDS, "broken", ("deblurrt.commands.does_not_exist", "a missing module"))
    assert cli.main(["models", "--json"]) == 0
    assert '"gmacs_720p"' in capsys.readouterr().out


def test_runtime_depends_on_neither_train_nor_export():
    """The design's dependency direction: runtime imports neither stage (the PyTorch backend, which loads
    training checkpoints, is the one exception)."""
    from pathlib import Path

    runtime = Path(__file__).resolve().parents[1] / "runtime"
    offenders = [str(path.relative_to(runtime)) for path in runtime.rglob("*.py")
                 if path.name != "torch.py" and any(f"deblurrt.{stage}" in line and "import" in line
                                                    for line in path.read_text().splitlines()
                                                    for stage in ("train", "export"))]
    assert not offenders


@pytest.mark.parametrize("target, expected", [("test", "pytest"), ("lint", "ruff check"),
                                              ("demo", "deblurrt demo"), ("bench", "bench/suites")])
def test_makefile_targets_the_readme_promises(target, expected):
    import shutil
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(["make", "-n", target], cwd=repo, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert f"make {target}" in (repo / "README.md").read_text()

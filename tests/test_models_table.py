"""``deblurrt models`` prints a stored table without importing torch, and the stored table is what the model
code measures: its fingerprint matches the code, and re-measured rows equal it."""

from __future__ import annotations

import json

import pytest
from blocked_imports import run_without

from deblurrt.commands.models import SHIPPED_TABLE, fingerprint, load_rows


def test_shipped_table_matches_the_model_code():
    document = json.loads(SHIPPED_TABLE.read_text())
    assert document["fingerprint"] == fingerprint(), (
        "the model code changed since deblurrt/zoo.json was made. Fix: python -m deblurrt.commands.models "
        "--write-table, and commit deblurrt/zoo.json")


def test_stored_rows_equal_a_fresh_measurement_of_the_small_models():
    pytest.importorskip("torch")
    from deblurrt.train.complexity import measure_cost

    rows = {row["name"]: row for row in load_rows()}
    for name in ("unet_tiny_prior", "unet_nano", "unet_nano_prior", "mimo_unet_nano_prior", "nafnet_nano_prior"):
        cost = measure_cost(name, 720, 1280)
        assert rows[name]["params"] == cost.params and rows[name]["gmacs_720p"] == round(cost.gmacs, 3), name


def test_models_lists_the_zoo_without_torch():
    result = run_without("""
        import sys
        from deblurrt.cli import main
        assert main(["models", "--tiny"]) == 0
        assert "torch" not in sys.modules
    """)
    assert result.returncode == 0, result.stderr
    assert "unet_nano_prior" in result.stdout and "unet_tiny" in result.stdout and "+1.36 GMACs" in result.stdout

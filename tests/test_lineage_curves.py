"""scripts/lineage_curves.py: runs laid end to end on one step axis, from the trainer's metrics.csv."""

from __future__ import annotations

import csv

import pytest
from scripts_loader import load_script

lineage = load_script("lineage_curves")


def _run(folder, planned_steps, rows):
    """A run folder as `deblurrt train` leaves it: config.yaml (run.steps) and metrics.csv with training rows
    and validation rows (columns grow as keys appear, as the trainer's MetricsLog writes them)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"run:\n  steps: {planned_steps}\n")
    columns = ["step", "loss"]
    for row in rows:
        columns += [key for key in row if key not in columns]
    with open(folder / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _lineage(tmp_path):
    first = _run(tmp_path / "r1", 100, [
        {"step": 50, "loss": -0.2},
        {"step": 100, "loss": -0.25},
        {"step": 100, "val_gain/warp_moderate": 0.5, "val_gain/kernel_severe": 0.25, "val_noharm/sharp": 40.0},
    ])
    # still going: 60 of its 200 steps logged, the last validation at 50
    second = _run(tmp_path / "r2", 200, [
        {"step": 50, "loss": -0.3},
        {"step": 50, "val_gain/warp_moderate": 0.75, "val_noharm/sharp": 41.5},
        {"step": 60, "loss": -0.31},
    ])
    return first, second


def test_runs_continue_where_the_previous_one_ended(tmp_path):
    first, second = _lineage(tmp_path)
    runs = lineage.read_lineage([first, second], ["A", "B"])
    assert [(run.label, run.start, run.length) for run in runs] == [("A", 0, 100), ("B", 100, 60)]
    assert runs[0].rows == [{"step": 100, "val_gain/warp_moderate": 0.5, "val_gain/kernel_severe": 0.25,
                             "val_noharm/sharp": 40.0}]
    assert lineage.set_names(runs, lineage.GAIN) == ["warp_moderate", "kernel_severe"]


def test_markdown_places_each_validation_on_the_lineage_axis(tmp_path):
    first, second = _lineage(tmp_path)
    table = lineage.markdown(lineage.read_lineage([first, second], []))
    lines = table.splitlines()
    assert lines[0] == "| lineage step | run | step | warp_moderate gain | kernel_severe gain | sharp PSNR |"
    assert lines[2] == "| 100 | r1 | 100 | +0.50 | +0.25 | 40.0 |"
    # the second run's step 50 is lineage step 150; it did not validate kernel_severe: an empty cell
    assert lines[3] == "| 150 | r2 | 50 | +0.75 |  | 41.5 |"


def test_command_writes_the_picture_and_the_table(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    first, second = _lineage(tmp_path)
    out, md = tmp_path / "curves.png", tmp_path / "curves.md"
    assert lineage.main([str(out), str(first), str(second), "--md", str(md)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 150 | r2 | 50 |" in md.read_text()
    assert "2 run(s), 160 steps in all" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["no metrics", "no validation", "labels", "suffix"])
def test_bad_input_is_refused_with_the_fix(tmp_path, capsys, case):
    first, _ = _lineage(tmp_path)
    argv = [str(tmp_path / "out.png"), str(first)]
    expected = {"no metrics": "holds no metrics.csv", "no validation": "has no validation rows",
                "labels": "names 2 run(s) but 1 run folder(s)", "suffix": "must end in .png"}[case]
    if case == "no metrics":
        argv[1] = str(tmp_path / "missing")
    elif case == "no validation":
        argv[1] = str(_run(tmp_path / "r0", 10, [{"step": 5, "loss": -0.1}]))
    elif case == "labels":
        argv += ["--labels", "a,b"]
    else:
        argv[0] = str(tmp_path / "out.jpg")
    assert lineage.main(argv) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()

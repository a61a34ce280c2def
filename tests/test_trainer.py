"""End-to-end training runs on tiny models and generated data: the stages, exact resume after a kill,
NaN handling, validation and best checkpoint, and DistributedDataParallel with two CPU processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deblurrt.train.checkpoint import load_model, read_checkpoint

REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, count: int = 3, size: int = 96) -> Path:
    """Small textured 'photos' (random shapes and stripes), written as PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = np.full((size, size + 16, 3), 40 * i + 30, np.uint8)
        for _ in range(12):
            x, y = rng.integers(0, size, 2)
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.circle(image, (int(x), int(y)), int(rng.integers(3, 15)), colour, -1)
        image[:, ::6] = 255 - image[:, ::6]
        cv2.imwrite(str(folder / f"photo{i}.png"), image)
    return folder


def make_paired(folder: Path, count: int = 2, size: int = 64) -> Path:
    """A paired validation folder: sharp images and box-blurred copies."""
    photos = make_photos(folder / "src", count, size)
    (folder / "blur").mkdir(parents=True)
    (folder / "sharp").mkdir(parents=True)
    for path in sorted(photos.glob("*.png")):
        image = cv2.imread(str(path))[:size, :size]
        cv2.imwrite(str(folder / "sharp" / path.name), image)
        cv2.imwrite(str(folder / "blur" / path.name), cv2.blur(image, (7, 1)))
    return folder


def train_cli(tmp_path: Path, *overrides: str, resume: bool = False, env: dict | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "deblurrt", "train", str(REPO / "configs" / "unet_nano_prior.yaml"),
            "model.name=unet_tiny_prior", f"data.root={tmp_path / 'photos'}", "data.crop=32",
            "data.batch_size=2", "data.workers=0", "data.val_root=", "optim.warmup_steps=2",
            "run.log_every=1", "run.threads=1", *overrides]
    if resume:
        args.append("--resume")
    result = subprocess.run(args + ["--no-progress"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def photos(tmp_path):
    return make_photos(tmp_path / "photos")


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)[1]


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, photos):
    common = ["run.steps=6", "run.ckpt_every=2", "run.val_every=100"]
    train_cli(tmp_path, *common, f"run.out_dir={tmp_path / 'straight'}")
    killed = train_cli(tmp_path, *common, f"run.out_dir={tmp_path / 'killed'}", "debug.kill_at_step=5",
                       check=False)
    assert killed.returncode != 0  # SIGKILL: no clean-up ran
    state = tmp_path / "killed" / "state.safetensors"
    assert state.is_file()
    train_cli(tmp_path, *common, f"run.out_dir={tmp_path / 'killed'}", resume=True)
    straight, resumed = weights(tmp_path / "straight" / "last.safetensors"), weights(
        tmp_path / "killed" / "last.safetensors")
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    with open(tmp_path / "killed" / "metrics.csv") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle) if row.get("loss")]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, photos):
    out = tmp_path / "nan"
    result = train_cli(tmp_path, "run.steps=6", "run.ckpt_every=2", f"run.out_dir={out}",
                       "debug.nan_at_step=3", check=False)
    assert result.returncode == 2
    assert "at step 4" in result.stderr and "untouched" in result.stderr
    assert read_checkpoint(out / "last.safetensors")[2]["deblurrt.step"] == "2"


def test_batches_do_not_depend_on_the_number_of_workers(tmp_path, photos):
    from deblurrt.config import load_config
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.loaders import build_train_batches

    config = load_config(TrainConfig, REPO / "configs" / "unet_nano_prior.yaml",
                         [f"data.root={photos}", "data.crop=32", "data.batch_size=2", "run.steps=3"])
    config.data.workers = 0
    serial = list(build_train_batches(config, rank=0, world_size=1, start_step=1))
    config.data.workers = 2
    parallel = list(build_train_batches(config, rank=0, world_size=1, start_step=1))
    assert len(serial) == len(parallel) == 2
    for (blur_a, sharp_a), (blur_b, sharp_b) in zip(serial, parallel, strict=True):
        assert torch.equal(blur_a, blur_b) and torch.equal(sharp_a, sharp_b)
    other_rank = list(build_train_batches(config, rank=1, world_size=2, start_step=1))
    assert not torch.equal(other_rank[0][0], serial[0][0])


def test_refuses_to_overwrite_a_run_and_resume_needs_a_state(tmp_path, photos):
    out = tmp_path / "run"
    train_cli(tmp_path, "run.steps=1", f"run.out_dir={out}")
    again = train_cli(tmp_path, "run.steps=1", f"run.out_dir={out}", check=False)
    assert again.returncode == 2 and "--resume" in again.stderr
    missing = train_cli(tmp_path, "run.steps=1", f"run.out_dir={tmp_path / 'none'}", resume=True, check=False)
    assert missing.returncode == 2 and "no " in missing.stderr


def test_two_stages_with_validation_best_checkpoint_and_curves(tmp_path, photos):
    val = make_paired(tmp_path / "val")
    stage1 = tmp_path / "stage1"
    train_cli(tmp_path, "run.stage=distill", "distill.teacher=tiny", "run.steps=3", f"run.out_dir={stage1}")
    stage2 = tmp_path / "stage2"
    train_cli(tmp_path, "run.steps=4", "run.val_every=2", f"data.val_root={val}", "prior.mode=frozen",
              f"prior.init={stage1 / 'last.safetensors'}", f"run.out_dir={stage2}")
    student1 = {k: v for k, v in weights(stage1 / "last.safetensors").items() if k.startswith("prior_encoder.")}
    final = weights(stage2 / "last.safetensors")
    for key, value in student1.items():
        assert torch.equal(value, final[key]), f"frozen prior changed: {key}"
    best = read_checkpoint(stage2 / "best.safetensors")[2]
    assert float(best["deblurrt.val_psnr"]) > 10
    with open(stage2 / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows if r.get("val_psnr")] == [2, 4]
    assert (stage2 / "curves.png").stat().st_size > 1000
    assert load_model(stage2 / "best.safetensors").has_prior


def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path, photos):
    out = tmp_path / "ddp"
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
            "-m", "deblurrt", "train", str(REPO / "configs" / "unet_nano_prior.yaml"),
            "model.name=unet_tiny_prior", f"data.root={photos}", "data.crop=32", "data.batch_size=2",
            "data.workers=0", "data.val_root=", "run.steps=3", "run.threads=1", f"run.out_dir={out}",
            "debug.dump_rank_weights=true", "--no-progress"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = weights(out / "rank0.safetensors"), weights(out / "rank1.safetensors")
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key
    from deblurrt.train.models import create_model

    torch.manual_seed(0)
    start = create_model("unet_tiny_prior").state_dict()
    assert any(not torch.equal(start[k], rank0[k]) for k in start)


class _FakeClock:
    """A clock the test advances: the budget's arithmetic without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_time_budget_fits_the_steps_to_the_measured_speed():
    from deblurrt.train.trainer import TimeBudget

    clock = _FakeClock()
    budget = TimeBudget(100.0, start_step=0, skip=5, measure=10, clock=clock)
    totals = {}
    for done in range(1, 400):
        clock.now += 0.5 if done <= 5 else 0.1  # slow start-up steps, then 0.1 s per step
        total = budget.new_total(done, upper=10_000)
        if total is not None:
            totals[done] = total
    first = min(totals)
    assert first == 15  # measured over steps 6..15, start-up left out
    # at step 15: 2.5 + 1.0 s spent, 96.5 s left at 0.1 s/step, 3 % kept back
    assert totals[first] == 15 + int(96.5 * 0.97 / 0.1)
    assert all((done - 5) % 10 == 0 for done in totals)
    assert max(totals) <= 5 + int(50 / 0.1)  # no new estimate after half the budget
    assert not budget.expired()
    clock.now = budget.deadline
    assert budget.expired()
    # never above the configured steps, never below the current step
    capped = TimeBudget(1e6, 0, skip=1, measure=1, clock=clock)
    assert capped.new_total(1, upper=7) is None  # the mark
    clock.now += 1.0
    assert capped.new_total(2, upper=7) == 7
    # a resumed run whose schedule was fitted before re-estimates nothing; its deadline still holds
    fixed = TimeBudget(10.0, 0, skip=1, measure=1, clock=clock, fixed=True)
    assert all(fixed.new_total(done, upper=10_000) is None for done in range(1, 50))


def test_time_budget_estimates_a_slow_run_too():
    # 2 s per step against a 100 s budget: 50 steps would pass the half before `skip` steps; the 5 % time
    # slice starts the measurement and the estimates instead
    from deblurrt.train.trainer import TimeBudget

    clock = _FakeClock()
    budget = TimeBudget(100.0, start_step=0, clock=clock)
    totals = {}
    for done in range(1, 26):
        clock.now += 2.0
        total = budget.new_total(done, upper=1_000_000)
        if total is not None:
            totals[done] = total
    assert totals and min(totals) <= 6
    assert all(abs(total - 48) <= 2 for total in totals.values())  # 100 s / 2 s, 3 % kept back


def test_time_budget_ends_the_run_inside_it_with_a_consistent_schedule(tmp_path, photos):
    out = tmp_path / "budget"
    run = train_cli(tmp_path, "run.steps=1000000", "run.time_budget_s=6", "run.ckpt_every=1000000",
                    "run.val_every=1000000", f"run.out_dir={out}")
    assert "time budget: run.steps set to" in run.stderr  # the speed was measured and the schedule fitted
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())
    steps = saved["run"]["steps"]
    assert 0 < steps < 1_000_000 and saved["run"]["time_budget_s"] == 0.0
    metadata = read_checkpoint(out / "last.safetensors")[2]
    last_step = int(metadata["deblurrt.step"])
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert int(rows[-1]["step"]) == last_step and last_step <= steps
    if last_step == steps:  # the schedule ran out: the learning rate reached its floor
        assert float(rows[-1]["lr"]) < 0.05 * float(rows[len(rows) // 4]["lr"])
    else:  # the deadline came first, and said so
        assert "the deadline ended the run" in run.stderr
    # resuming with the same command continues the fitted schedule, not run.steps=1000000
    again = train_cli(tmp_path, "run.steps=1000000", "run.time_budget_s=6", "run.ckpt_every=1000000",
                      "run.val_every=1000000", f"run.out_dir={out}", resume=True)
    assert yaml.safe_load((out / "config.yaml").read_text())["run"]["steps"] == steps
    assert int(read_checkpoint(out / "last.safetensors")[2]["deblurrt.step"]) <= steps
    assert "time budget: run.steps set to" not in again.stderr


def test_dihedral_variants_are_the_eight_symmetries():
    from deblurrt.train.loaders import dihedral

    image = torch.arange(12.0).reshape(1, 1, 3, 4)
    square = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(dihedral(image, 0), image)
    outputs = {tuple(dihedral(square, v).flatten().tolist()) for v in range(8)}
    assert len(outputs) == 8  # all distinct on an image without symmetry
    # a horizontal streak turns into a vertical one: blur direction turns with the image
    streak = torch.zeros(1, 1, 5, 5)
    streak[0, 0, 2, :] = 1
    assert torch.equal(dihedral(streak, 1)[0, 0, :, 2], torch.ones(5))
    assert dihedral(image, 2).shape == image.shape and dihedral(image, 1).shape == (1, 1, 4, 3)
    with pytest.raises(ValueError, match="0-7"):
        dihedral(image, 8)


@pytest.mark.parametrize("pool", [[], ["data.pool=4"]], ids=["back-to-back", "pool"])
def test_reused_batches_resume_exactly_and_load_fewer_batches(tmp_path, photos, pool):
    common = ["run.steps=7", "run.ckpt_every=2", "run.val_every=100", "data.reuse=3", *pool]
    train_cli(tmp_path, *common, f"run.out_dir={tmp_path / 'straight'}")
    killed = train_cli(tmp_path, *common, f"run.out_dir={tmp_path / 'killed'}", "debug.kill_at_step=5",
                       check=False)
    assert killed.returncode != 0
    train_cli(tmp_path, *common, f"run.out_dir={tmp_path / 'killed'}", resume=True)  # resumes mid-reuse (step 4)
    straight, resumed = weights(tmp_path / "straight" / "last.safetensors"), weights(
        tmp_path / "killed" / "last.safetensors")
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    fresh = train_cli(tmp_path, "run.steps=7", "run.ckpt_every=100", "run.val_every=100",
                      f"run.out_dir={tmp_path / 'fresh'}")
    assert fresh.returncode == 0
    different = weights(tmp_path / "fresh" / "last.safetensors")
    assert any(not torch.equal(value, different[key]) for key, value in straight.items())


def test_reuse_sees_each_loaded_batch_then_its_flips(tmp_path, photos):
    from deblurrt.config import load_config
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.loaders import build_train_batches, dihedral

    def batches(reuse: int, start: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        config = load_config(TrainConfig, [REPO / "configs" / "unet_nano_prior.yaml"],
                             [f"data.root={photos}", "data.crop=32", "data.batch_size=2", "data.workers=0",
                              f"data.reuse={reuse}", "run.steps=6"])
        return list(build_train_batches(config, 0, 1, start))

    plain, reused = batches(1), batches(3)
    assert len(reused) == 6
    # steps 0 and 3 load the first two batches of the plain run; the steps between show them turned/flipped
    assert torch.equal(reused[0][0], plain[0][0]) and torch.equal(reused[3][0], plain[1][0])
    for step in (1, 2):
        assert any(torch.equal(reused[step][0], dihedral(plain[0][0], v)) and
                   torch.equal(reused[step][1], dihedral(plain[0][1], v)) for v in range(1, 8))
    # a start in the middle of a reuse gives the same steps
    for a, b in zip(batches(3, start=4), reused[4:], strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def _batches(photos: Path, *overrides: str, start: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    from deblurrt.config import load_config
    from deblurrt.train.config import TrainConfig
    from deblurrt.train.loaders import build_train_batches

    config = load_config(TrainConfig, [REPO / "configs" / "unet_nano_prior.yaml"],
                         [f"data.root={photos}", "data.crop=32", "data.batch_size=2", "data.workers=0",
                          "run.steps=12", *overrides])
    return list(build_train_batches(config, 0, 1, start))


def test_pool_draws_each_step_from_the_recent_loaded_samples_and_resumes_exactly(photos):
    from deblurrt.train.loaders import dihedral

    plain = _batches(photos)  # reuse 1: loaded batch b is step b's batch
    pooled = _batches(photos, "data.reuse=2", "data.pool=4")
    assert len(pooled) == 12
    loaded = [(blur[i], sharp[i]) for blur, sharp in plain[:6] for i in range(2)]
    mixed_batches = 0
    for step, (blur, sharp) in enumerate(pooled):
        # a pool of 4 samples = the last 2 loaded batches; batch b joins at step 2b
        newest = step // 2
        window = loaded[max(0, newest - 1) * 2:(newest + 1) * 2]
        sources = []
        for item in range(2):
            matches = [index for index, (b, s) in enumerate(window) for v in range(8)
                       if torch.equal(blur[item], dihedral(b[None], v)[0])
                       and torch.equal(sharp[item], dihedral(s[None], v)[0])]
            assert matches, f"step {step} item {item}: not a flip / turn of a sample in the pool"
            sources.append(matches[0])
        assert sources[0] != sources[1], f"step {step}: one sample drawn twice"
        mixed_batches += sources[0] // 2 != sources[1] // 2
    assert mixed_batches > 0, "a pool draws across loaded batches, not one batch at a time"
    # a resume (mid-reuse, pool already full) draws exactly what the uninterrupted run drew
    for a, b in zip(_batches(photos, "data.reuse=2", "data.pool=4", start=7), pooled[7:], strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("overrides, message", [
    (["data.reuse=2", "data.pool=3"], "multiple of data.batch_size"),
    (["data.pool=4"], "needs data.reuse > 1"),
])
def test_pool_settings_that_cannot_work_are_errors(photos, overrides, message):
    from deblurrt.errors import DeblurrtError

    with pytest.raises(DeblurrtError, match=message):
        _batches(photos, *overrides)

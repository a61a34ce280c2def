"""The two-stage prior trainer behind ``deblurrt train``.

Stage 1 (``run.stage=distill``): the frozen teacher sees the sharp image, the student prior encoder the
blurry one; only the student and its distillation heads train. Stage 2 (``deblur``): the whole network
with SPEL, the student initialised from stage 1 (``prior.init``) and frozen or fine-tuned at a lower rate.
``joint`` trains both losses at once. Models without a prior train stage 2 with the same recipe.

Runs are resumable exactly: ``state.safetensors`` (weights, EMA, optimizer, RNG, step) is written atomically
every ``run.ckpt_every`` steps, and every batch is a pure function of (seed, step), so a killed run resumed
with ``--resume`` continues as if it had never stopped. A non-finite loss stops the run naming the step,
leaving the last good checkpoint untouched. Multi-GPU / multi-node: launch with ``torchrun``.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn

from deblurrt.config import to_dict
from deblurrt.errors import DeblurrtError
from deblurrt.train.checkpoint import atomic_write_bytes, read_checkpoint, read_checkpoint_config, save_model
from deblurrt.train.config import TrainConfig, check_values, format_value
from deblurrt.train.distill import DistillationHeads, DistillWeights, distillation_loss
from deblurrt.train.losses import deblur_loss
from deblurrt.train.models import create_model, get_spec
from deblurrt.train.state import load_training_state, save_training_state

STATE_FILE = "state.safetensors"


class TrainingDiverged(DeblurrtError):
    """The loss became NaN or infinite."""


@dataclass
class DistributedContext:
    """Rank, world size and device of this process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and logs."""
        return self.rank == 0


def setup_distributed(device_setting: str) -> DistributedContext:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPUs."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_setting == "auto":
        device_setting = "cuda" if torch.cuda.is_available() else "cpu"
    if device_setting == "cuda":
        if not torch.cuda.is_available():
            raise DeblurrtError("run.device=cuda but torch sees no CUDA device; use run.device=cpu or auto")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device(device_setting)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank, world_size, local_rank, device)


class TrainingModule(nn.Module):
    """Wraps the network, the teacher and the distillation heads so that one module (and one DDP wrapper)
    computes the loss of any stage: ``forward(blur, sharp) -> (loss, parts)``."""

    def __init__(self, model: nn.Module, stage: str, config: TrainConfig, teacher: nn.Module | None,
                 heads: DistillationHeads | None):
        super().__init__()
        self.model = model
        self.stage = stage
        self.config = config
        self.teacher = teacher
        self.heads = heads
        self.multiscale = bool(getattr(model, "multiscale_outputs", False))
        self.weights = DistillWeights(tuple(config.distill.level_weights), config.distill.cross_level_weight,
                                      config.distill.fused_weight)

    def forward(self, blur: torch.Tensor, sharp: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        parts: dict[str, float] = {}
        total = blur.new_zeros(())
        if self.stage in ("distill", "joint"):
            student = self.model.prior_encoder(blur)
            teacher_features = self.teacher(sharp)
            loss, distill_parts = distillation_loss(self.heads(student), teacher_features, self.weights)
            weight = 1.0 if self.stage == "distill" else self.config.distill.joint_weight
            total = total + weight * loss
            parts.update({f"distill/{k}": v for k, v in distill_parts.items()})
            parts["distill"] = float(loss.detach())
        if self.stage in ("deblur", "joint"):
            outputs = self.model(blur, all_scales=True) if self.multiscale else self.model(blur)
            # the loss in float32 even under bf16 autocast: small residual errors vanish in bf16's 8 bits
            outputs = [o.float() for o in outputs] if isinstance(outputs, (list, tuple)) else outputs.float()
            loss, deblur_parts = deblur_loss(outputs, sharp, self.config.loss.pixel,
                                             self.config.loss.frequency_weight,
                                             tuple(self.config.loss.scale_weights),
                                             psnr_cap_db=self.config.loss.psnr_cap_db)
            total = total + loss
            parts.update({f"deblur/{k}": v for k, v in deblur_parts.items()})
            parts["deblur"] = float(loss.detach())
        return total, parts


def cpu_has_fast_bf16() -> bool:
    """True where the CPU has bf16 matrix units (AMX) or AVX-512 bf16 instructions: there bf16 autocast trains
    2-3x faster; elsewhere it is slower than float32 (measured, see FACTS)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_cpu_setting(value: str) -> bool:
    """``on`` / ``off`` / ``auto`` (on where :func:`cpu_has_fast_bf16`) to a bool."""
    if value == "auto":
        return cpu_has_fast_bf16()
    return value == "on"


def lr_lambda(warmup_steps: int, total_steps: int, min_ratio: float):
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total_steps``."""
    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


class TimeBudget:
    """Fits a run's step count into a wall-time budget (``run.time_budget_s``).

    The learning-rate schedule needs its end in steps, but a user with a GPU for ten minutes knows seconds.
    Start-up is left out of the speed (data workers starting, their prefetched batches making the first
    steps look fast): the measurement starts after ``skip`` steps or 5 % of the budget, whichever comes
    first. From then on, after every ``measure`` steps or 5 % of the budget (again whichever comes first),
    until half the budget is spent, the speed so far gives a new total; a slow run thus gets its estimates as
    surely as a fast one. With ``fixed`` (a resumed run whose schedule was fitted before) nothing is
    re-estimated: only the deadline counts. The deadline is the trainer's hard stop.
    """

    def __init__(self, seconds: float, start_step: int, skip: int = 50, measure: int = 100,
                 clock=time.perf_counter, fixed: bool = False):
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + seconds
        self.seconds = seconds
        self.start_step = start_step
        self.skip = skip
        self.measure = measure
        self.fixed = fixed
        self.mark: tuple[int, float] | None = None  # (step, time) where the speed measurement starts
        self.last: tuple[int, float] | None = None  # the last estimate's (step, time)

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.clock() >= self.deadline

    def new_total(self, done: int, upper: int) -> int | None:
        """The step count that ends inside the budget, at the steps where it is re-estimated; else None.
        Never above ``upper`` (the configured run.steps) and never below ``done``."""
        if self.fixed:
            return None
        now = self.clock()
        slice_s = 0.05 * self.seconds
        if self.mark is None:
            steps = done - self.start_step
            if steps >= self.skip or (steps >= 2 and now - self.started >= slice_s):
                self.mark = self.last = (done, now)
            return None
        if now - self.started > self.seconds / 2:  # late changes would bend the schedule's tail
            return None
        if done - self.last[0] < self.measure and now - self.last[1] < slice_s:
            return None
        self.last = (done, now)
        seconds_per_step = (now - self.mark[1]) / (done - self.mark[0])
        # 3 % kept back for checkpoints and the last validation
        fit = int(max(0.0, self.deadline - now) * 0.97 / seconds_per_step)
        return max(done, min(upper, done + fit))


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warm-up, ``min(decay, (1 + step) / (10 + step))``: without it the average keeps
    ``decay ** step`` of the random initialisation (37 % after 1000 steps at 0.999), which spoils early
    validation and short runs."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model for parameters; buffers are copied."""
    ema_params, params = list(ema.parameters()), [p.detach() for p in model.parameters()]
    if len(ema_params) != len(params):
        raise ValueError(f"EMA copy has {len(ema_params)} parameters, the model {len(params)}")
    # one fused call: per-tensor updates cost a kernel launch each on a GPU, hundreds per step
    torch._foreach_lerp_(ema_params, params, 1 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


#: backbone options that add a module starting as the identity, and its weights' name prefix
IDENTITY_OPTIONS = {"global_context": "context.", "blur_descriptor": "descriptor.", "coarse_guide": "guide_intro."}
#: options that change what the weights compute but add none (the nesting of the coarse guide): inherited too
COMPUTE_OPTIONS = ("coarse_levels",)


def _without(args: dict, keys: set[str]) -> dict:
    return {k: v for k, v in args.items() if k not in keys}


def inherit_identity_options(args: dict, path: str) -> dict:
    """The identity-module options (:data:`IDENTITY_OPTIONS`) the checkpoint at ``path`` was trained with and
    ``args`` does not mention: continuing from weights that have a context module keeps it (dropping a trained
    module would change the output), so ``model.init=weights/unet_nano_prior.safetensors`` trains what ships.
    The same for :data:`COMPUTE_OPTIONS` (their values: weights trained nested two levels deep continue so).
    An option ``args`` sets explicitly is left as given (load_weights then says whether it fits)."""
    config, _ = read_checkpoint_config(path)
    theirs = config.get("args") or {}
    inherited = {k: True for k in IDENTITY_OPTIONS if theirs.get(k) and k not in args}
    return inherited | {k: theirs[k] for k in COMPUTE_OPTIONS if k in theirs and k not in args}


def load_weights(model: nn.Module, path: str) -> None:
    """Load every weight of a deblurrt checkpoint into ``model`` (same architecture), for continued training.

    A no-prior model may also start from its ``_prior`` twin's checkpoint: the twins share the backbone
    exactly, so the backbone weights are copied and the prior branch is left out. That gives a prior-vs-twin
    comparison from one starting point.

    A model may also add modules that start as the identity (:data:`IDENTITY_OPTIONS`, e.g.
    ``model.args={global_context: true}``) to the checkpoint's: every checkpoint weight is loaded and only the
    added module's weights keep their (identity) initialisation, so training starts from the checkpoint's
    output exactly. :data:`COMPUTE_OPTIONS` may differ freely: they add no weights (two nested coarse levels
    start from one level's weights)."""
    config, state, _ = read_checkpoint(path)
    # compute-only options set no weights: left out of every comparison below
    own_full = _without(model.config.get("args") or {}, set(COMPUTE_OPTIONS))
    their_full = _without(config.get("args") or {}, set(COMPUTE_OPTIONS))
    own_args, their_args = _without(own_full, {"prior"}), _without(their_full, {"prior"})
    added = {k for k in IDENTITY_OPTIONS if own_args.get(k) and not their_args.get(k)}
    if added and config.get("backbone") == model.config.get("backbone") and \
            _without(own_args, added) == _without(their_args, added) and \
            their_full.get("prior") == own_full.get("prior"):
        missing, unexpected = model.load_state_dict(state, strict=False)
        prefixes = tuple(IDENTITY_OPTIONS[k] for k in added)
        if unexpected or not all(key.startswith(prefixes) for key in missing):
            raise DeblurrtError(f"model.init={path}: expected only the added {sorted(added)} weights to be new, "
                                f"received missing {missing[:3]}, unexpected {unexpected[:3]}")
        return
    same_backbone = config.get("backbone") == model.config.get("backbone") and own_args == their_args
    if same_backbone and their_full == own_full:
        model.load_state_dict(state, strict=True)
        return
    if same_backbone and not getattr(model, "has_prior", False):
        model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()}, strict=True)
        return
    raise DeblurrtError(f"model.init={path} holds '{config.get('name')}' with other arguments than "
                        f"'{model.config['name']}'; continue from a checkpoint of the same model (or, for a "
                        "no-prior model, of its _prior twin)")


def load_prior_init(model: nn.Module, path: str) -> int:
    """Copy the ``prior_encoder.*`` weights of a stage-1 checkpoint into ``model``; returns how many tensors."""
    if not getattr(model, "has_prior", False):
        raise DeblurrtError(f"prior.init={path} but model '{model.config['name']}' has no prior; choose a *_prior "
                            "model or clear prior.init")
    _, state, _ = read_checkpoint(path)
    student = {k: v for k, v in state.items() if k.startswith("prior_encoder.")}
    if not student:
        raise DeblurrtError(f"prior.init={path}: the checkpoint has no prior_encoder.* weights")
    own = model.state_dict()
    mismatched = [k for k, v in student.items() if k not in own or own[k].shape != v.shape]
    if mismatched:
        raise DeblurrtError(f"prior.init={path}: student weights do not fit model '{model.config['name']}' "
                            f"({', '.join(mismatched[:5])}); distil with the same model name")
    model.load_state_dict(student, strict=False)
    return len(student)


class Trainer:
    """One training run; see the module docstring. Call :meth:`fit`."""

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True):
        self.config = config
        self.resume = resume
        self.progress = progress
        self.out_dir = Path(config.run.out_dir)
        #: the run.steps a time budget fitted (0: none); saved in the state, so --resume continues it
        self.fitted_steps = 0

    # --- setup -----------------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        self.ctx = setup_distributed(cfg.run.device)
        if cfg.run.threads > 0:
            torch.set_num_threads(cfg.run.threads)
        torch.manual_seed(cfg.run.seed)
        np.random.seed(cfg.run.seed)
        stage = cfg.run.stage
        spec = get_spec(cfg.model.name)
        # the same checks 'deblurrt train' runs when it reads the config, for runs started from Python
        check_values(cfg)
        if stage in ("distill", "joint") and not spec.prior:
            raise DeblurrtError(f"run.stage={stage} distils the prior, but '{cfg.model.name}' has none; use "
                                f"'{cfg.model.name}_prior' or run.stage=deblur")
        if cfg.model.init:
            # options the registered architecture already has (the nano's context) need no inheriting
            inherited = inherit_identity_options({**spec.args, **cfg.model.args}, cfg.model.init)
            if inherited:
                options = ", ".join(f"{k}: {format_value(v)}" for k, v in inherited.items())
                print(f"model.init={cfg.model.init} has {options}: training "
                      "continues with it (set model.args to say so explicitly)", flush=True)
                cfg.model.args = {**cfg.model.args, **inherited}
        self.model = create_model(cfg.model.name, **cfg.model.args).to(self.ctx.device)
        if cfg.model.init:
            load_weights(self.model, cfg.model.init)
        if cfg.prior.init and stage != "distill":
            load_prior_init(self.model, cfg.prior.init)
        teacher = heads = None
        if stage in ("distill", "joint"):
            from deblurrt.train.teacher import build_teacher

            teacher = build_teacher(cfg.distill.teacher).to(self.ctx.device)
            heads = DistillationHeads(self.model.prior_encoder.feature_channels,
                                      tuple(teacher.feature_channels)).to(self.ctx.device)
        self.heads = heads
        self.module = TrainingModule(self.model, stage, cfg, teacher, heads)
        self.param_groups = self._param_groups(stage)
        self.optimizer = torch.optim.AdamW(self.param_groups, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                           weight_decay=cfg.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.optim.warmup_steps, cfg.run.steps, cfg.optim.min_lr_ratio))
        self.ema = copy.deepcopy(self.model).eval() if cfg.optim.ema_decay > 0 else None
        if self.ema is not None:
            for parameter in self.ema.parameters():
                parameter.requires_grad_(False)
        self.ddp_module: nn.Module = self.module
        if self.ctx.world_size > 1:
            self.ddp_module = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.ctx.device.index] if self.ctx.device.type == "cuda" else None)
        if cfg.run.compile:
            self.ddp_module = torch.compile(self.ddp_module)
        self.use_amp = cfg.run.amp and self.ctx.device.type == "cuda"
        self.cpu_bf16 = self.ctx.device.type == "cpu" and resolve_cpu_setting(cfg.run.cpu_bf16)
        self.channels_last = self.ctx.device.type == "cpu" and resolve_cpu_setting(cfg.run.channels_last)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        if self.ctx.device.type == "cuda":
            # training crops have one size: let cuDNN pick its fastest convolutions once
            torch.backends.cudnn.benchmark = True

        from deblurrt.train.loaders import build_validation_set

        self.validation = build_validation_set(cfg) if self.ctx.is_main else None

    def _param_groups(self, stage: str) -> list[dict[str, Any]]:
        cfg = self.config
        model = self.model
        if stage == "distill":
            for parameter in model.parameters():
                parameter.requires_grad_(False)
            trainable = list(model.prior_encoder.parameters())
            for parameter in trainable:
                parameter.requires_grad_(True)
            return [{"params": trainable + list(self.heads.parameters()), "name": "student"}]
        prior_params = list(model.prior_encoder.parameters()) if getattr(model, "has_prior", False) else []
        prior_ids = {id(p) for p in prior_params}
        backbone = [p for p in model.parameters() if id(p) not in prior_ids]
        groups = [{"params": backbone, "name": "backbone"}]
        if prior_params:
            if stage == "deblur" and cfg.prior.mode == "frozen":
                for parameter in prior_params:
                    parameter.requires_grad_(False)
            else:
                groups.append({"params": prior_params, "name": "prior", "lr": cfg.optim.lr * cfg.prior.lr_scale})
        if stage == "joint":
            groups.append({"params": list(self.heads.parameters()), "name": "heads"})
        return groups

    # --- the loop --------------------------------------------------------------------------------------
    def fit(self) -> Path:
        """Train to ``run.steps``; returns the output folder. Raises TrainingDiverged on a non-finite loss."""
        self._build()
        cfg, ctx = self.config, self.ctx
        start_step = 0
        state_path = self.out_dir / STATE_FILE
        if self.resume:
            if not state_path.is_file():
                raise DeblurrtError(f"--resume: no {state_path}; start without --resume, or point run.out_dir at "
                                    "the run to continue")
            meta = load_training_state(state_path, model=self.model, ema=self.ema, optimizer=self.optimizer,
                                       modules=self._extra_modules())
            start_step = meta["step"]
            if "scheduler" in meta["extra"]:
                self.scheduler.load_state_dict(meta["extra"]["scheduler"])
            else:  # states written before the scheduler was saved: rebuild it from the step
                self.scheduler.last_epoch = start_step
                for group, base_lr, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs,
                                                  self.scheduler.lr_lambdas, strict=True):
                    group["lr"] = base_lr * factor(start_step)
            self.best_psnr = meta["extra"].get("best_psnr", -math.inf)
            self.fitted_steps = int(meta["extra"].get("fitted_steps", 0))
            if self.fitted_steps:
                # a time budget fitted this run's schedule: continue that schedule, whatever run.steps says
                if self.fitted_steps != cfg.run.steps:
                    print(f"resume: run.steps={self.fitted_steps}, the schedule the time budget fitted (not "
                          f"{cfg.run.steps})", file=sys.stderr, flush=True)
                self._set_schedule_end(self.fitted_steps)
        else:
            self.best_psnr = -math.inf
            if ctx.is_main and state_path.exists():
                raise DeblurrtError(f"{self.out_dir} already holds a run; continue it with --resume or choose "
                                    "another run.out_dir")
        if ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._write_config()
        self._barrier()

        from deblurrt.train.loaders import build_train_batches

        batches = build_train_batches(cfg, ctx.rank, ctx.world_size, start_step)
        log = MetricsLog(self.out_dir / "metrics.csv", keep_until=start_step) if ctx.is_main else None
        bar = None
        if ctx.is_main and self.progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.run.steps, initial=start_step, desc=f"{cfg.run.stage} {cfg.model.name}",
                       dynamic_ncols=True, file=sys.stderr)
        self.ddp_module.train()
        last_time = time.perf_counter()
        budget = TimeBudget(cfg.run.time_budget_s, start_step, fixed=bool(self.fitted_steps)) \
            if cfg.run.time_budget_s > 0 else None
        upper_steps = cfg.run.steps
        step = start_step
        while step < cfg.run.steps:
            if cfg.debug.kill_at_step and step == cfg.debug.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            blur, sharp = (t.to(ctx.device, non_blocking=True) for t in next(batches))
            if self.channels_last:
                blur = blur.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=ctx.device.type, enabled=self.use_amp or self.cpu_bf16,
                                dtype=torch.bfloat16 if self.cpu_bf16 else None):
                loss, parts = self.ddp_module(blur, sharp)
            if cfg.debug.nan_at_step and step == cfg.debug.nan_at_step:
                loss = loss * float("nan")
            if not torch.isfinite(loss.detach()):
                raise TrainingDiverged(
                    f"loss is {float(loss.detach())} at step {step + 1}; the last good checkpoint "
                    f"({state_path}) is untouched. Lower optim.lr or raise optim.warmup_steps and --resume")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(
                [p for g in self.param_groups for p in g["params"]], cfg.optim.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self.ema is not None:
                update_ema(self.ema, self.model, ema_decay_at(step, cfg.optim.ema_decay))
            done = step + 1
            deadline = budget is not None and self._fit_budget(budget, done, upper_steps, bar)
            final = done == cfg.run.steps or deadline
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if log is not None and (done % cfg.run.log_every == 0 or final):
                now = time.perf_counter()
                log.write({"step": done, "loss": float(loss.detach()), "lr": self.optimizer.param_groups[0]["lr"],
                           "grad_norm": float(grad_norm), "sec_per_step": (now - last_time) / cfg.run.log_every,
                           **parts})
                last_time = now
            if ctx.is_main and self.validation is not None and cfg.run.stage != "distill" and \
                    (done % cfg.run.val_every == 0 or final):
                self._validate(done, log, bar)
            if done % cfg.run.ckpt_every == 0 or final:
                self._checkpoint(done)
            step = done
            if deadline:
                self._say(f"time budget: the deadline ended the run at step {done} of the schedule's "
                          f"{cfg.run.steps} (learning rate {self.optimizer.param_groups[0]['lr']:.3g}); --resume "
                          "continues that schedule", bar)
                break
        if bar is not None:
            bar.close()
        if cfg.debug.dump_rank_weights:
            save_model(self.model, self.out_dir / f"rank{ctx.rank}.safetensors")
        if ctx.is_main and log is not None:
            log.close()
            plot_curves(self.out_dir / "metrics.csv", self.out_dir / "curves.png")
        self._barrier()
        if ctx.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
        return self.out_dir

    def _fit_budget(self, budget: TimeBudget, done: int, upper_steps: int, bar) -> bool:
        """Moves the run's end to fit the time budget (a new total from the measured speed); returns True
        once the deadline has passed (this step is then the last: it validates and checkpoints). The
        learning rate is not touched at the deadline: what was reached is what the logs show."""
        cfg = self.config
        total = budget.new_total(done, upper_steps)
        expired = budget.expired()
        if self.ctx.world_size > 1:  # every rank must change and stop at the same step: rank 0 decides
            decision = torch.tensor([total if total is not None else -1, int(expired)], device=self.ctx.device)
            dist.broadcast(decision, src=0)
            total = int(decision[0].item()) if int(decision[0].item()) >= 0 else None
            expired = bool(decision[1].item())
        if total is not None and total != cfg.run.steps:
            self.fitted_steps = total
            self._set_schedule_end(total, at_step=done)
            if bar is not None:
                bar.total = total
                bar.refresh()
            if self.ctx.is_main:
                self._write_config()
            self._say(f"time budget: run.steps set to {total} at step {done}", bar)
        return expired

    def _set_schedule_end(self, total: int, at_step: int | None = None) -> None:
        """Make ``total`` the run's length: run.steps and the cosine schedule's end (and, mid-run, the
        learning rate of step ``at_step`` on the new schedule)."""
        cfg = self.config
        cfg.run.steps = total
        schedule = lr_lambda(cfg.optim.warmup_steps, total, cfg.optim.min_lr_ratio)
        self.scheduler.lr_lambdas = [schedule] * len(self.optimizer.param_groups)
        if at_step is not None:
            for group, base_lr in zip(self.optimizer.param_groups, self.scheduler.base_lrs, strict=True):
                group["lr"] = base_lr * schedule(at_step)

    def _write_config(self) -> None:
        """The run's config.yaml, atomically. A run whose schedule a time budget fitted is saved with that
        run.steps and no budget, so that it reads as the run it is."""
        saved = to_dict(self.config)
        if self.fitted_steps:
            saved["run"]["time_budget_s"] = 0.0
        atomic_write_bytes(self.out_dir / "config.yaml", yaml.safe_dump(saved, sort_keys=False).encode())

    @staticmethod
    def _say(message: str, bar) -> None:
        if bar is not None:
            bar.write(message)
        else:
            print(message, file=sys.stderr, flush=True)

    def _extra_modules(self) -> dict[str, nn.Module]:
        return {"heads": self.heads} if self.heads is not None else {}

    def _barrier(self) -> None:
        if self.ctx.world_size > 1 and dist.is_initialized():
            dist.barrier()

    def _deployable(self) -> nn.Module:
        return self.ema if self.ema is not None else self.model

    def _checkpoint(self, step: int) -> None:
        if not self.ctx.is_main:
            return
        save_training_state(self.out_dir / STATE_FILE, step=step, model=self.model, ema=self.ema,
                            optimizer=self.optimizer,
                            extra={"best_psnr": self.best_psnr, "scheduler": self.scheduler.state_dict(),
                                   "fitted_steps": self.fitted_steps},
                            modules=self._extra_modules())
        save_model(self._deployable(), self.out_dir / "last.safetensors",
                   extra_metadata={"deblurrt.step": str(step), "deblurrt.stage": self.config.run.stage})

    def _validate(self, step: int, log: MetricsLog | None, bar) -> None:
        from deblurrt.metrics import MetricAccumulator

        model = self._deployable().eval()
        overall = MetricAccumulator()
        row: dict[str, float] = {"step": step}
        with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
            for set_name, pairs in self.validation.items():
                outputs, inputs = MetricAccumulator(), MetricAccumulator()
                no_harm = all(torch.equal(blur, sharp) for blur, sharp, _ in pairs)
                for blur, sharp, name in pairs:
                    output = model(blur.unsqueeze(0).to(self.ctx.device)).float().clamp(0, 1)[0].cpu().numpy()
                    outputs.update(output, sharp.numpy(), name=name)
                    inputs.update(blur.numpy(), sharp.numpy(), name=name)
                    if not no_harm:
                        overall.update(output, sharp.numpy(), name=f"{set_name}/{name}")
                if no_harm:
                    # sharp in, the same expected out: an unchanged image is inf dB, so cap at 100 to average
                    row[f"val_noharm/{set_name}"] = float(np.mean([min(r["psnr"], 100.0) for r in outputs.per_image]))
                elif len(self.validation) > 1:
                    row[f"val_psnr/{set_name}"] = outputs.mean_psnr
                    row[f"val_gain/{set_name}"] = outputs.mean_psnr - inputs.mean_psnr
        self.model.train()
        psnr, ssim = overall.mean_psnr, overall.mean_ssim
        if log is not None:
            log.write({**row, "val_psnr": psnr, "val_ssim": ssim})
        if bar is not None:
            per_set = "  ".join(f"{k.split('/')[1]} {v:+.2f}" for k, v in row.items() if k.startswith("val_gain/"))
            per_set += "".join(f"  {k.split('/')[1]} {v:.1f} dB" for k, v in row.items() if k.startswith("val_noharm/"))
            bar.write(f"step {step}: validation PSNR {psnr:.2f} dB, SSIM {ssim:.4f} on {overall.count} images"
                      + (f"; gain per set (dB): {per_set}" if per_set else ""))
        if psnr > self.best_psnr:
            self.best_psnr = psnr
            save_model(model, self.out_dir / "best.safetensors",
                       extra_metadata={"deblurrt.step": str(step), "deblurrt.val_psnr": f"{psnr:.4f}",
                                       "deblurrt.val_ssim": f"{ssim:.5f}"})


class MetricsLog:
    """CSV of training metrics, rewritten atomically on each write (one row per log interval: small).

    Columns grow as new keys appear. A resumed run keeps the rows up to its checkpoint step and drops the
    ones the killed run wrote after it, which the resumed run repeats.
    """

    def __init__(self, path: Path, keep_until: int = 0):
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if keep_until > 0 and path.exists():
            with open(path, newline="") as handle:
                self.rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= keep_until]

    def write(self, row: dict[str, Any]) -> None:
        """Add a row and rewrite the file."""
        self.rows.append(row)
        columns: list[str] = []
        for existing in self.rows:
            columns += [key for key in existing if key not in columns]
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)

    def close(self) -> None:
        """Nothing to flush: every write replaces the file."""


def plot_curves(csv_path: Path, png_path: Path) -> Path | None:
    """Loss (log scale) and validation PSNR against step, as a PNG; skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    losses = [(int(r["step"]), float(r["loss"])) for r in rows if r.get("loss")]
    psnrs = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r.get("val_psnr")]
    figure, axes = plt.subplots(1, 2 if psnrs else 1, figsize=(10 if psnrs else 5, 3.5), squeeze=False)
    if losses:
        axes[0][0].plot(*zip(*losses, strict=True))
        # a log axis suits positive losses (Charbonnier); the PSNR loss is negative (-PSNR/100): linear
        if all(value > 0 for _, value in losses):
            axes[0][0].set_yscale("log")
    axes[0][0].set(xlabel="step", ylabel="training loss", title="loss")
    if psnrs:
        axes[0][1].plot(*zip(*psnrs, strict=True), marker="o")
        axes[0][1].set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR")
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path

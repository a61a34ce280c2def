"""The training configuration: one typed dataclass tree, read from YAML with ``key=value`` overrides.

    deblurrt train configs/unet_nano_prior.yaml steps=2000 data.batch_size=4 optim.lr=3e-4

Sections: ``model`` (registry name + argument overrides), ``data``, ``optim``, ``loss``, ``distill``
(stage 1 and the joint mode), ``prior`` (how stage 2 treats the prior encoder), ``run`` (steps, output,
checkpoint/validation cadence, seed, device).

:func:`check_values` checks what the types cannot (ranges, cross-field rules, severity texts), so that a
mistake is one line when the config is read (also by ``--print-config``), not a traceback once training
has started.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class ModelSection:
    """Which network to train."""

    name: str = "unet_nano_prior"
    #: constructor overrides recorded in the checkpoint (e.g. {width: 24})
    args: dict[str, Any] = field(default_factory=dict)
    #: start from all weights of this checkpoint (a new schedule; unlike --resume, which continues one)
    init: str = ""


@dataclass
class DataSection:
    """Training and validation data."""

    #: synthetic: on-the-fly blur of sharp photos in ``root``; paired: ``root/blur`` + ``root/sharp``;
    #: gopro: GoPro_Large layout at ``root``; realblur: ``list_file`` relative to ``root``
    kind: Literal["synthetic", "paired", "gopro", "realblur"] = "synthetic"
    root: str = ""
    list_file: str = ""
    #: photos (file names) held out of synthetic training, e.g. the ones the validation set was made from
    exclude: list[str] = field(default_factory=list)
    #: a paired folder (``deblurrt data synth`` output) for validation; empty: no validation
    val_root: str = ""
    #: validate on at most this many images (0: all)
    val_limit: int = 0
    crop: int = 256
    #: synthetic blur strength: mild, moderate, severe, or mixed (each sample picks one of the three)
    severity: str = "mixed"
    #: synthetic streak lengths in ABSOLUTE pixels, ``LO-HI`` (e.g. 4-80); overrides ``severity`` when set
    blur_px: str = ""
    #: how streak lengths are drawn from that range: uniform in pixels, or log (each octave equally often)
    blur_dist: Literal["uniform", "log"] = "uniform"
    #: share of synthetic samples with only 0-3 px of motion (teaches the model to leave sharp frames alone)
    sharp_share: float = 0.0
    #: share of sub-frame-warp samples blurred in display (sRGB) values instead of linear light: linear blur
    #: brightens, and a model trained on it alone darkens whatever looks soft
    gamma_share: float = 0.0
    #: share of sub-frame-warp samples whose photo is partly out of focus in blurry image AND target (soft
    #: content must stay soft: without it, models sharpen bokeh as if it were motion)
    defocus_share: float = 0.0
    #: the defocus disk's radius range in pixels, ``LO-HI`` (e.g. 2-16); empty: the recipe's 1.5-6. Real
    #: shallow depth of field at 480-720 p reaches 10-20 px radii, which a 6 px maximum never shows the model
    defocus_px: str = ""
    #: share of synthetic samples made by the kernel recipe (deblurrt.kernels) instead of sub-frame warps
    kernel_share: float = 0.0
    #: where the sharp target sits in the exposure: centroid (the blur's centre of mass) or middle (GoPro)
    align: Literal["centroid", "middle"] = "centroid"
    batch_size: int = 8
    workers: int = 2
    #: each loaded batch trains this many steps, the later ones flipped / rotated by 90 degrees (blur and
    #: target alike): a GPU that waits for the CPU's blur recipe then takes that many more steps at the same
    #: data rate (1: every step a fresh batch)
    reuse: int = 1
    #: with ``reuse`` > 1: keep the last ``pool`` loaded samples and draw each step's batch from all of them
    #: at random (each sample in its own flip / turn), instead of training one batch ``reuse`` steps in a row.
    #: The same data rate, but a sample's uses are spread over ``pool * reuse / batch_size`` steps rather than
    #: taken back to back. 0: off. A multiple of ``batch_size``; memory: ~1.6 MB per 256 px sample.
    pool: int = 0


@dataclass
class OptimSection:
    """AdamW with linear warm-up then cosine decay, gradient clipping."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 200
    #: the cosine ends at lr * min_lr_ratio
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    #: exponential moving average of the weights (used for validation and the saved model); 0 disables
    ema_decay: float = 0.999


@dataclass
class LossSection:
    """Stage-2 deblurring loss: pixel loss + frequency_weight * FFT L1 (+ scales for MIMO-UNet)."""

    #: psnr: per-sample -PSNR/100 (dB), so every sample's error counts in proportion, as the validation's
    #: mean gain in dB does; charbonnier and l1 let the largest errors (longest streaks) dominate
    pixel: Literal["charbonnier", "l1", "psnr"] = "charbonnier"
    #: psnr only: a sample's PSNR counts up to this many dB (the loss floors its MSE at 10^(-cap/10)). The log
    #: weighs each sample's squared error by 1/MSE: at 60 a sample restored to 45 dB weighs 100x one blurred to
    #: 25 dB and a net trained from scratch stays near the identity; at 30 it learns to deconvolve (MODELS.md,
    #: session 6 probes)
    psnr_cap_db: float = 60.0
    frequency_weight: float = 0.1
    scale_weights: tuple[float, ...] = (1.0, 0.5, 0.25)


@dataclass
class DistillSection:
    """Stage-1 prior distillation (teacher on the sharp image, student on the blurry one)."""

    teacher: str = "efficientnet_lite0"
    level_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    cross_level_weight: float = 0.5
    fused_weight: float = 0.5
    #: weight of the distillation loss in the joint mode
    joint_weight: float = 0.1


@dataclass
class PriorSection:
    """How stage 2 treats the prior encoder."""

    #: a checkpoint from stage 1 whose prior_encoder.* weights initialise the student ('' = random)
    init: str = ""
    #: frozen: keep the distilled student fixed; finetune: train it at lr * lr_scale
    mode: Literal["frozen", "finetune"] = "finetune"
    lr_scale: float = 0.1


@dataclass
class DebugSection:
    """Fault injection for tests of resume and divergence handling (never set in real runs)."""

    kill_at_step: int = 0
    nan_at_step: int = 0
    #: write each rank's final weights (DDP test)
    dump_rank_weights: bool = False


@dataclass
class RunSection:
    """Length, output and cadence of a run."""

    #: distill: stage 1 (prior); deblur: stage 2 (backbone + SPEL); joint: both at once
    stage: Literal["distill", "deblur", "joint"] = "deblur"
    steps: int = 20000
    #: wall-time budget in seconds (0: off). The run measures its speed over its first steps, then lowers
    #: run.steps so that the learning-rate schedule ends inside the budget (written to config.yaml, so
    #: --resume continues that schedule); run.steps stays the upper bound
    time_budget_s: float = 0.0
    out_dir: str = "runs/unet_nano_prior"
    ckpt_every: int = 500
    val_every: int = 500
    log_every: int = 25
    seed: int = 0
    #: auto: cuda if available, else cpu
    device: str = "auto"
    #: mixed precision on CUDA (ignored on CPU)
    amp: bool = True
    compile: bool = False
    #: CPU threads per process (0: torch's default)
    threads: int = 0
    #: bf16 autocast on CPU (the loss stays float32): auto = on where the CPU has AMX / AVX-512 bf16
    cpu_bf16: Literal["auto", "on", "off"] = "auto"
    #: channels-last memory format on CPU (faster convolutions with oneDNN): auto = with cpu_bf16's rule
    channels_last: Literal["auto", "on", "off"] = "auto"


@dataclass
class TrainConfig:
    """Everything a training run needs; saved next to its checkpoints as ``config.yaml``."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    distill: DistillSection = field(default_factory=DistillSection)
    prior: PriorSection = field(default_factory=PriorSection)
    run: RunSection = field(default_factory=RunSection)
    debug: DebugSection = field(default_factory=DebugSection)


# --------------------------------------------------------------------------------------------- value checks

#: (key, rule, what is expected, an example value): each rule is checked on the value the types let through
#: (an int field holds an int, a float field a float, possibly nan or inf from YAML's .nan / .inf)
_RULES: tuple[tuple[str, Callable[[Any], bool], str, str], ...] = (
    ("data.crop", lambda v: v >= 16, "a crop side >= 16 pixels", "256"),
    ("data.batch_size", lambda v: v >= 1, "an integer >= 1 (samples per step)", "8"),
    ("data.workers", lambda v: v >= 0, "an integer >= 0 (data loader processes; 0 loads in this one)", "2"),
    ("data.reuse", lambda v: v >= 1, "an integer >= 1 (steps per loaded batch)", "1"),
    ("data.pool", lambda v: v >= 0, "an integer >= 0 (0: off)", "0"),
    ("data.val_limit", lambda v: v >= 0, "an integer >= 0 (0: every validation image)", "0"),
    ("data.sharp_share", lambda v: 0.0 <= v <= 1.0, "a share in [0, 1]", "0.1"),
    ("data.gamma_share", lambda v: 0.0 <= v <= 1.0, "a share in [0, 1]", "0.1"),
    ("data.defocus_share", lambda v: 0.0 <= v <= 1.0, "a share in [0, 1]", "0.1"),
    ("data.kernel_share", lambda v: 0.0 <= v <= 1.0, "a share in [0, 1]", "0.3"),
    ("optim.lr", lambda v: math.isfinite(v) and v > 0, "a learning rate > 0", "1e-3"),
    ("optim.weight_decay", lambda v: math.isfinite(v) and v >= 0, "a number >= 0", "1e-4"),
    ("optim.betas", lambda v: all(0.0 <= b < 1.0 for b in v), "two numbers in [0, 1)", "[0.9, 0.99]"),
    ("optim.warmup_steps", lambda v: v >= 0, "an integer >= 0 (0: no warm-up)", "200"),
    ("optim.min_lr_ratio", lambda v: 0.0 <= v <= 1.0, "a ratio in [0, 1]", "0.01"),
    # 0 would scale every gradient to zero (nothing trains); inf is torch's "no clipping"
    ("optim.grad_clip", lambda v: v > 0, "a gradient norm > 0 (.inf: no clipping)", "1.0"),
    # 1 is allowed: the warm-up rule min(decay, (1 + step) / (10 + step)) then averages all weights so far
    ("optim.ema_decay", lambda v: 0.0 <= v <= 1.0, "a decay in [0, 1] (0: no moving average)", "0.999"),
    ("loss.psnr_cap_db", lambda v: 10.0 <= v <= 100.0,
     "10-100 dB (the PSNR at which a sample stops counting more)", "30"),
    ("loss.frequency_weight", lambda v: math.isfinite(v) and v >= 0, "a weight >= 0", "0.1"),
    ("loss.scale_weights", lambda v: all(math.isfinite(w) and w >= 0 for w in v), "weights >= 0", "[1.0, 0.5, 0.25]"),
    ("distill.level_weights", lambda v: all(math.isfinite(w) and w >= 0 for w in v), "weights >= 0",
     "[1.0, 1.0, 1.0, 1.0]"),
    ("distill.cross_level_weight", lambda v: math.isfinite(v) and v >= 0, "a weight >= 0", "0.5"),
    ("distill.fused_weight", lambda v: math.isfinite(v) and v >= 0, "a weight >= 0", "0.5"),
    ("distill.joint_weight", lambda v: math.isfinite(v) and v >= 0, "a weight >= 0", "0.1"),
    ("prior.lr_scale", lambda v: math.isfinite(v) and v >= 0, "a factor >= 0", "0.1"),
    ("run.steps", lambda v: v >= 1, "an integer >= 1", "20000"),
    ("run.time_budget_s", lambda v: math.isfinite(v) and v >= 0, "seconds >= 0 (0: off)", "3600"),
    ("run.out_dir", lambda v: bool(v.strip()), "a folder for the run's files", "runs/my_run"),
    ("run.ckpt_every", lambda v: v >= 1, "an integer >= 1 (steps between checkpoints)", "500"),
    ("run.val_every", lambda v: v >= 1, "an integer >= 1 (steps between validations)", "500"),
    ("run.log_every", lambda v: v >= 1, "an integer >= 1 (steps between log lines)", "25"),
    # numpy's legacy seeding, which the trainer calls, takes 0 .. 2**32 - 1 only
    ("run.seed", lambda v: 0 <= v < 2 ** 32, "an integer in [0, 2**32)", "0"),
    ("run.threads", lambda v: v >= 0, "an integer >= 0 (0: torch's default)", "0"),
    ("debug.kill_at_step", lambda v: v >= 0, "a step >= 0 (0: never)", "0"),
    ("debug.nan_at_step", lambda v: v >= 0, "a step >= 0 (0: never)", "0"),
)


def _value(config: TrainConfig, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def format_value(value: Any) -> str:
    """A value as the user would write it in an override (lists in brackets, strings quoted)."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


#: the largest defocus radius ``data.defocus_px`` accepts (the disk kernel is 2 * radius + 1 pixels wide)
MAX_DEFOCUS_PX = 64.0


def parse_defocus_px(text: str) -> tuple[float, float]:
    """``data.defocus_px``'s ``LO-HI`` (or one number) as a radius range in pixels, checked: finite,
    ``0 < LO <= HI <= MAX_DEFOCUS_PX``. Raises :class:`~deblurrt.config.ConfigError` naming the fix."""
    from deblurrt.config import ConfigError
    from deblurrt.synthesis import range_values

    values = range_values(text)
    if len(values) != 2 or not all(math.isfinite(v) for v in values) or \
            not 0 < values[0] <= values[1] <= MAX_DEFOCUS_PX:
        raise ConfigError(f"data.defocus_px={text!r}: expected a disk radius range LO-HI in pixels with "
                          f"0 < LO <= HI <= {MAX_DEFOCUS_PX:g}, or empty for the recipe's default. "
                          "Fix: e.g. data.defocus_px=2-16")
    return values[0], values[1]


def check_values(config: TrainConfig) -> None:
    """Check the values the types let through: ranges (``data.batch_size=0``, ``optim.lr=-1``, nan), the
    pool's rules and the synthetic severity texts. Raises :class:`~deblurrt.config.ConfigError` naming the
    key, the value received, what is expected and an example; returns None when everything is usable.

    Needs neither torch nor the file system: the model's options, the teacher, the device and
    ``run.out_dir`` are checked by ``deblurrt train`` itself."""
    from deblurrt.config import ConfigError
    from deblurrt.errors import DeblurrtError
    from deblurrt.synthesis import SEVERITY_PRESETS, parse_severity

    for key, usable, expected, example in _RULES:
        value = _value(config, key)
        if not usable(value):
            raise ConfigError(f"{key}={format_value(value)}: expected {expected}. Fix: e.g. {key}={example}")
    data = config.data
    # the loader draws each step's batch from whole loaded batches: the pool holds a whole number of them
    if data.pool % data.batch_size:
        raise ConfigError(f"data.pool={data.pool}: expected 0 (off) or a multiple of data.batch_size="
                          f"{data.batch_size}. Fix: e.g. data.pool={64 * data.batch_size}")
    if data.pool and data.reuse == 1:
        raise ConfigError(f"data.pool={data.pool} needs data.reuse > 1 (the mean uses of a loaded sample). Fix: "
                          "e.g. data.reuse=4, or data.pool=0")
    # the same parser the loaders use, so a text accepted here is one they accept ("mixed" is their
    # MIXED_SEVERITY, named here without importing torch)
    if data.severity != "mixed":
        try:
            parse_severity(data.severity)
        except DeblurrtError as error:
            raise ConfigError(f"data.severity: {error}, or mixed (each sample picks one of "
                              f"{', '.join(SEVERITY_PRESETS)})") from None
    if data.defocus_px:
        parse_defocus_px(data.defocus_px)
    if data.blur_px:
        try:
            parse_severity(data.blur_px, absolute=True)
        except DeblurrtError as error:
            raise ConfigError(f"data.blur_px: {error} (or empty: data.severity decides)") from None

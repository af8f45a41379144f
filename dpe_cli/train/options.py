"""Every option of a training run, resolved and checked before anything loads (as StyleGAN3's
``train.py`` settles its config before the training loop starts), so that a wrong option costs
no model load or frame cache.

A new run fills what was not given from :func:`defaults`; a resumed run takes the settings saved
in ``OUT/options.json`` and refuses a change to one that defines the problem. A run saved before
an option existed ran with that option's default, so the saved file is read over the defaults:
a new option needs nothing here but its default.

``--stage`` and ``--objective`` overlap (both say what trains): they are resolved together here,
into :attr:`TrainOptions.trained_modules` and :attr:`TrainOptions.refinement`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dpe_cli.atomic import replacing
from dpe_cli.bounds import check, check_all
from dpe_cli.choices import OBJECTIVES, PRECISIONS
from dpe_cli.errors import InputError
from dpe_cli.model import DPEConfig
from dpe_cli.train.data import DEFAULT_MAX_FRAMES
from dpe_cli.train.losses import LossWeights
from dpe_cli.train.state import latest_checkpoint

STAGE_LR = {1: 0.002, 2: 0.0008}
STAGE_STEPS = {1: 100_000, 2: 50_000}  # paper: 100K joint iterations, then 50K refining
# Stage 2 refines the expression generator and the motion MLPs (the shared one and both
# heads); the encoder, the direction basis and the pose generator stay frozen.
STAGE_TRAINABLE = {
    1: ("encoder", "motion_mlp", "directions", "expression_head", "pose_head", "expression_generator", "pose_generator"),
    2: ("expression_generator", "motion_mlp", "expression_head", "pose_head"),
}
# What each objective runs of the model (DDP needs every trained weight used); cycle runs all.
OBJECTIVE_MODULES = {
    "reenactment": ("encoder", "motion_mlp", "directions", "pose_head", "pose_generator"),
    "expression": ("encoder", "motion_mlp", "directions", "expression_head", "expression_generator"),
    # The pose path is refitted to the motion path as it is (an expression refinement moves it).
    "pose": ("pose_head", "pose_generator"),
}
SINGLE_EDIT = ("expression", "pose")
OPTIONS_FILE = "options.json"
# Options that define the optimisation problem: fixed for the life of a run.
RUN_FIXED = (
    "size", "width", "style_dim", "motion_dim", "batch_size", "stage", "lr", "seed",
    "reconstruction_weight", "perceptual_weight", "self_weight", "expression_weight", "gan_weight",
    "max_frames", "cache_format", "pixel_pyramid", "objective", "pose_weight", "motion_weight",
)  # fmt: skip
MODEL_SHAPE = ("size", "width", "style_dim", "motion_dim")
# How a run executes: may change on resume; unless given again, a resumed run keeps its own.
RUN_ADJUSTABLE = {
    "save_every": 1000, "keep": 3, "log_every": 10, "sample_every": 500,
    "precision": "fp32", "channels_last": False, "device": "auto", "workers": None,
}  # fmt: skip
# Input files: a resumed run reads the saved ones unless given again.
RUN_FILES = ("data", "cache", "vgg_weights", "expression_weights", "pose_weights")


LOSS_WEIGHTS = ("reconstruction_weight", "perceptual_weight", "self_weight", "expression_weight", "pose_weight", "motion_weight", "gan_weight")


@dataclass
class TrainOptions:
    """Everything ``dpe train`` takes. ``None`` means "not given": the default for a new run, the
    saved value when resuming, or (model shape) the ``--init`` file's."""

    out: Path
    data: Path | None = None
    size: int | None = None
    width: float | None = None
    style_dim: int | None = None
    motion_dim: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    stage: int | None = None
    lr: float | None = None
    seed: int | None = None
    init: Path | None = None
    resume: bool = False
    save_every: int | None = None
    keep: int | None = None
    log_every: int | None = None
    sample_every: int | None = None
    precision: str | None = None
    channels_last: bool | None = None
    device: str | None = None
    workers: int | None = None
    vgg_weights: Path | None = None
    expression_weights: Path | None = None
    reconstruction_weight: float | None = None
    perceptual_weight: float | None = None
    self_weight: float | None = None
    expression_weight: float | None = None
    gan_weight: float | None = None
    pixel_pyramid: bool | None = None
    pose_weights: Path | None = None
    pose_weight: float | None = None
    motion_weight: float | None = None
    objective: str | None = None
    max_frames: int | None = None
    cache: Path | None = None
    cache_format: str | None = None

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(
            reconstruction=self.reconstruction_weight,
            perceptual=self.perceptual_weight,
            self_reconstruction=self.self_weight,
            expression=self.expression_weight,
            adversarial=self.gan_weight,
            pose=self.pose_weight,
            motion=self.motion_weight,
        )

    @property
    def model_config(self) -> DPEConfig:
        return DPEConfig(size=self.size, style_dim=self.style_dim, motion_dim=self.motion_dim, width=self.width)

    @property
    def trained_modules(self) -> tuple[str, ...]:
        """The generator's modules that learn: the stage's, of those the objective runs."""
        runs = OBJECTIVE_MODULES.get(self.objective, STAGE_TRAINABLE[1])
        return tuple(name for name in STAGE_TRAINABLE[self.stage] if name in runs)

    @property
    def refinement(self) -> str | None:
        """What refines a trained generator ("stage 2", "the pose objective"), if anything does."""
        if self.stage == 2:
            return "stage 2"
        return f"the {self.objective} objective" if self.objective in SINGLE_EDIT else None


def defaults(stage: int) -> dict:
    """A new run's value of every option that defines the problem or its length."""
    weights = LossWeights()
    return {
        "size": 256, "width": 1.0, "style_dim": 512, "motion_dim": 20, "batch_size": 32,
        "steps": STAGE_STEPS[stage], "lr": STAGE_LR[stage], "seed": 0, "max_frames": DEFAULT_MAX_FRAMES,
        "reconstruction_weight": weights.reconstruction, "perceptual_weight": weights.perceptual,
        "self_weight": weights.self_reconstruction, "expression_weight": weights.expression,
        "gan_weight": weights.adversarial, "cache_format": "jpg", "pixel_pyramid": False,
        "objective": "cycle", "pose_weight": weights.pose, "motion_weight": weights.motion,
    }  # fmt: skip


def resolve_options(request: TrainOptions) -> TrainOptions:
    """Fill what was not given. A resumed run takes its saved settings, and refuses a change to
    one that defines the problem (only how it runs, and how long, may change)."""
    out = request.out.expanduser()
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise InputError(f"`out` {out}: {blocker} is a file, not a folder", "give a folder for the run, e.g. `out` runs/first")
    return _checked(_resumed(request, out) if request.resume else _new(request, out))


def _resumed(request: TrainOptions, out: Path) -> TrainOptions:
    options_path = out / OPTIONS_FILE
    if latest_checkpoint(out) is None or not options_path.is_file():
        raise InputError(f"`resume`: {out} holds no checkpoint to resume", "check `out`, or start a new run without `resume`")
    written = json.loads(options_path.read_text())
    saved = {**defaults(written.get("stage", 1)), **written}  # older runs lack newer options: they ran with the default
    changed = [
        f"`{name}` {getattr(request, name)} (run: {saved.get(name)})"
        for name in RUN_FIXED
        if getattr(request, name) is not None and getattr(request, name) != saved.get(name)
    ]
    if changed:
        raise InputError(f"cannot change {', '.join(changed)} when resuming", "leave these options out, or start a new run")
    fixed = {name: saved.get(name) for name in RUN_FIXED}
    files = {name: getattr(request, name) or (Path(saved[name]) if saved.get(name) else None) for name in RUN_FILES}
    how = {k: getattr(request, k) if getattr(request, k) is not None else saved.get(k, v) for k, v in RUN_ADJUSTABLE.items()}
    steps = request.steps if request.steps is not None else saved["steps"]
    return replace(request, out=out, steps=steps, init=None, **fixed, **files, **how)


def _new(request: TrainOptions, out: Path) -> TrainOptions:
    if latest_checkpoint(out) is not None:
        raise InputError(f"{out} already holds a training run", "pass `resume` to continue it, or choose a new `out`")
    if request.data is None:
        raise InputError("`data` is required for a new run", "give the folder of face clips")
    stage = request.stage or 1
    if stage not in STAGE_LR:
        raise InputError(f"`stage` {stage} does not exist", "use 1 (everything) or 2 (expression refinement)")
    if request.objective not in (None, *OBJECTIVES):
        raise InputError(f"unknown objective {request.objective!r}", "use cycle (the paper's training), reenactment (LIA's, to start from), expression or pose (to refine one edit)")
    if stage == 2 and request.objective in ("reenactment", "pose"):
        raise InputError("stage 2 refines the expression generator", f"leave out `objective`, or use `stage` 1 for {request.objective}")
    if request.objective in SINGLE_EDIT and request.motion_weight:
        raise InputError(f"`motion_weight` does not apply to `objective` {request.objective}", "leave out `motion_weight`, or use the cycle or reenactment objective")
    if request.objective in SINGLE_EDIT and request.init is None:
        raise InputError(f"the {request.objective} objective refines a trained model", "pass `init` with a trained model, e.g. `init` runs/stage1/model.safetensors")
    if stage == 2 and request.init is None:
        raise InputError("stage 2 refines a trained model", "pass `init` with the stage-1 result, e.g. `init` runs/stage1/model.safetensors")
    # The model shape is settled later (settle_model_shape): an --init generator brings its own.
    unset = {k: v for k, v in {**defaults(stage), **RUN_ADJUSTABLE}.items() if k not in MODEL_SHAPE}
    filled = {k: getattr(request, k) if getattr(request, k) is not None else v for k, v in unset.items()}
    return replace(request, out=out, stage=stage, **filled)


def _checked(options: TrainOptions) -> TrainOptions:
    if options.precision not in PRECISIONS:
        raise InputError(f"unknown precision {options.precision!r}", "use fp32, bf16 or fp16")
    check("train_batch_size", options.batch_size, label="batch_size")
    check_all({
        "steps": options.steps, "save_every": options.save_every, "log_every": options.log_every,
        "sample_every": options.sample_every, "max_frames": options.max_frames, "lr": options.lr,
        **{name: getattr(options, name) for name in LOSS_WEIGHTS},
    })  # fmt: skip
    if options.motion_weight and options.expression_weights is None:
        raise InputError("`motion_weight` needs an expression network", "give `expression_weights` (DECA's deca_model.tar, EMOCA, or dpe's expression regressor)")
    if options.pose_weight and options.objective != "reenactment" and options.pose_weights is None:
        raise InputError("`pose_weight` needs a head-pose network", "give `pose_weights` (dpe's pose regressor, e.g. weights/regressors/synthetic-pose-64.safetensors)")
    return options


def settle_model_shape(options: TrainOptions, init: DPEConfig | None) -> TrainOptions:
    """Model shape: the ``--init`` generator's ``init`` config (refusing a conflicting option),
    else the options', else the defaults."""
    if init is not None:
        conflicts = [
            f"`{n}` {getattr(options, n)} (file: {getattr(init, n)})"
            for n in MODEL_SHAPE
            if getattr(options, n) is not None and getattr(options, n) != getattr(init, n)
        ]
        if conflicts:
            raise InputError(f"{options.init.name} is a different model: {', '.join(conflicts)}", "leave out the model-shape options when using `init`")
        return replace(options, **{n: getattr(init, n) for n in MODEL_SHAPE})
    shape = defaults(options.stage)
    return replace(options, **{n: getattr(options, n) if getattr(options, n) is not None else shape[n] for n in MODEL_SHAPE})


def save_options(options: TrainOptions) -> None:
    """``OUT/options.json``: what a resumed run reads back."""
    options.out.mkdir(parents=True, exist_ok=True)
    with replacing(options.out / OPTIONS_FILE) as tmp:
        tmp.write_text(json.dumps(options.to_json(), indent=2) + "\n")

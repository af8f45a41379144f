"""The training loop: one generator step then one discriminator step per iteration.

Runs the same on one CPU and on many GPUs: under ``torchrun`` (``WORLD_SIZE`` > 1) each process
takes an equal slice of the global batch, models are wrapped in DistributedDataParallel (NCCL
on GPUs, gloo on CPU), and only rank 0 writes logs, sample grids and checkpoints. SIGINT and
SIGTERM finish the current step, save, and stop (all ranks agree on the step first).

Optimisation (paper 4.1, without the reference's leftover lazy-regularisation scaling, since no
regulariser exists): Adam with betas (0, 0.99), eps 1e-8, lr 0.002 in stage 1 (everything
trains) and 0.0008 in stage 2 (expression generator and motion MLPs only).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from types import FrameType

import cv2
import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor, nn

from dpe_cli.atomic import replacing
from dpe_cli.checkpoint import _atomic_write, read_checkpoint, resolve_device
from dpe_cli.choices import OBJECTIVES
from dpe_cli.errors import DPEError, InputError
from dpe_cli.model import DPE, Discriminator, DPEConfig
from dpe_cli.train.data import (
    DEFAULT_MAX_FRAMES,
    FrameCache,
    PairDataset,
    StepBatchSampler,
    build_cache,
    collect_cache,
    find_clips,
    make_loader,
)
from dpe_cli.train.losses import (
    FactorLoss,
    GeneratorObjective,
    LossWeights,
    MotionTerm,
    ReenactmentObjective,
    SingleEditObjective,
    discriminator_loss,
)
from dpe_cli.train.state import (
    LATEST_MODEL,
    InitialWeights,
    capture_rng,
    latest_checkpoint,
    load_discriminator_file,
    load_initial_weights,
    load_training_state,
    restore_rng,
    save_checkpoint,
)

STAGE_LR = {1: 0.002, 2: 0.0008}
STAGE_STEPS = {1: 100_000, 2: 50_000}  # paper: 100K joint iterations, then 50K refining
BETAS = (0.0, 0.99)
# Stage 2 refines the expression generator and the motion MLPs (the shared one and both
# heads); the encoder, the direction basis and the pose generator stay frozen.
STAGE_TRAINABLE = {
    1: ("encoder", "motion_mlp", "directions", "expression_head", "pose_head", "expression_generator", "pose_generator"),
    2: ("expression_generator", "motion_mlp", "expression_head", "pose_head"),
}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PREVIEW_PAIRS = 4
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
METRICS_FILE = "metrics.jsonl"
# What each objective runs of the model (DDP needs every trained weight used).
OBJECTIVE_MODULES = {
    "reenactment": ("encoder", "motion_mlp", "directions", "pose_head", "pose_generator"),
    "expression": ("encoder", "motion_mlp", "directions", "expression_head", "expression_generator"),
    # The pose path is refitted to the motion path as it is (an expression refinement moves it).
    "pose": ("pose_head", "pose_generator"),
}
SINGLE_EDIT = ("expression", "pose")
# Options that older runs' options.json files lack (they ran with the default).
ADDED_LATER = ("pixel_pyramid", "objective", "pose_weight", "motion_weight")


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
    quiet: bool = False

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


def _defaults(stage: int) -> dict:
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
    options_path = out / OPTIONS_FILE
    if request.resume:
        if latest_checkpoint(out) is None or not options_path.is_file():
            raise InputError(f"--resume: {out} holds no checkpoint to resume", "check --out, or start a new run without --resume")
        # Runs saved before an option existed ran with its default.
        saved = {**{k: _defaults(1)[k] for k in ADDED_LATER}, **json.loads(options_path.read_text())}
        changed = [
            f"--{name.replace('_', '-')} {getattr(request, name)} (run: {saved.get(name)})"
            for name in RUN_FIXED
            if getattr(request, name) is not None and getattr(request, name) != saved.get(name)
        ]
        if changed:
            raise InputError(f"cannot change {', '.join(changed)} when resuming", "leave these options out, or start a new run")
        filled = {name: saved.get(name) for name in RUN_FIXED}
        paths = {name: getattr(request, name) or (Path(saved[name]) if saved.get(name) else None) for name in ("data", "cache", "vgg_weights", "expression_weights", "pose_weights")}
        how = {k: getattr(request, k) if getattr(request, k) is not None else saved.get(k, v) for k, v in RUN_ADJUSTABLE.items()}
        steps = request.steps if request.steps is not None else saved["steps"]
        return _checked(replace(request, out=out, steps=steps, init=None, **filled, **paths, **how))
    if latest_checkpoint(out) is not None:
        raise InputError(f"{out} already holds a training run", "pass --resume to continue it, or choose a new --out")
    if request.data is None:
        raise InputError("--data is required for a new run", "give the folder of face clips")
    stage = request.stage or 1
    if stage not in STAGE_LR:
        raise InputError(f"--stage {stage} does not exist", "use 1 (everything) or 2 (expression refinement)")
    if request.objective not in (None, *OBJECTIVES):
        raise InputError(f"unknown objective {request.objective!r}", "use cycle (the paper's training), reenactment (LIA's, to start from), expression or pose (to refine one edit)")
    if stage == 2 and request.objective in ("reenactment", "pose"):
        raise InputError("stage 2 refines the expression generator", f"leave out --objective, or use --stage 1 for {request.objective}")
    if request.objective in SINGLE_EDIT and request.motion_weight:
        raise InputError(f"--motion-weight does not apply to --objective {request.objective}", "leave out --motion-weight, or use the cycle or reenactment objective")
    if request.objective in SINGLE_EDIT and request.init is None:
        raise InputError(f"the {request.objective} objective refines a trained model", "pass --init with a trained model, e.g. --init runs/stage1/model.safetensors")
    if stage == 2 and request.init is None:
        raise InputError("stage 2 refines a trained model", "pass --init with the stage-1 result, e.g. --init runs/stage1/model.safetensors")
    # The model shape is settled later: an --init generator brings its own.
    defaults = {k: v for k, v in {**_defaults(stage), **RUN_ADJUSTABLE}.items() if k not in MODEL_SHAPE}
    filled = {k: getattr(request, k) if getattr(request, k) is not None else v for k, v in defaults.items()}
    return _checked(replace(request, out=out, stage=stage, **filled))


def _checked(options: TrainOptions) -> TrainOptions:
    if options.precision not in PRECISIONS:
        raise InputError(f"unknown precision {options.precision!r}", "use fp32, bf16 or fp16")
    for name in ("save_every", "log_every", "sample_every", "batch_size", "steps"):
        if getattr(options, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1", "e.g. --batch-size 8 --steps 1000 --save-every 500")
    return options


@dataclass
class Distributed:
    """This process's place in the job; a single process is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = torch.device("cpu")
    slow_group: object | None = None  # gloo group with a long timeout, for the cache build

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        resolved = resolve_device(device)
        if world == 1:
            return cls(device=resolved)
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if resolved.type == "cuda":
            resolved = torch.device("cuda", local_rank)
            torch.cuda.set_device(resolved)
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
        slow = dist.new_group(backend="gloo", timeout=timedelta(days=2))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        return cls(rank, world, local_rank, local_world, resolved, slow)

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (used to stop on the same step)."""
        if self.world == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        if self.world == 1:
            return values
        keys = list(values)  # the same order on every rank: built by the same code
        tensor = torch.tensor([values[k] for k in keys], device=self.device, dtype=torch.float64)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world for k, v in zip(keys, tensor.tolist())}

    def wait_for_all(self) -> None:
        if self.world > 1:
            dist.barrier(group=self.slow_group)

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


class TrainingInterrupted(DPEError):
    """SIGINT/SIGTERM: the run saved its state and stopped; ``--resume`` continues it."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} received: saved step {step} and stopped", "continue with --resume")


@dataclass(frozen=True)
class TrainResult:
    step: int
    model: Path
    checkpoint: Path


class StopSignals:
    """SIGINT/SIGTERM set a flag that the loop checks after each step. A second Ctrl-C falls
    back to Python's default and interrupts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _: FrameType | None) -> None:
        self.received = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self) -> StopSignals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class MetricsLog:
    """``OUT/metrics.jsonl`` (one JSON object per logged step) and TensorBoard when installed.

    On resume, rows past the resumed step (written after the checkpoint by the interrupted run)
    are dropped, so the log reads as one uninterrupted run.
    """

    def __init__(self, out: Path, start_step: int, say: Callable[[str], None]) -> None:
        self.path = out / METRICS_FILE
        if start_step and self.path.is_file():
            rows = [line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= start_step]
            _atomic_write(self.path, lambda tmp: tmp.write_text("".join(r + "\n" for r in rows)))
        elif not start_step:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("a")
        self.tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1 if start_step else None)
        except Exception as exc:  # noqa: BLE001 - not installed, or broken (protobuf clashes): optional
            reason = "not installed" if isinstance(exc, ImportError) else f"unusable: {type(exc).__name__}"
            say(f"note: tensorboard {reason}; metrics go to metrics.jsonl only (pip install tensorboard)")

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step":
                    self.tensorboard.add_scalar(key.replace("loss_", "loss/"), value, row["step"])

    def image(self, tag: str, grid: np.ndarray, step: int) -> None:
        if self.tensorboard is not None:
            self.tensorboard.add_image(tag, grid, step, dataformats="HWC")

    def close(self) -> None:
        self._file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _to_uint8(images: Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8, rounded."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def sample_grid(columns: list[Tensor], labels: tuple[str, ...]) -> np.ndarray:
    """One row per pair, one column per image kind, under a header naming the columns."""
    tiles = [_to_uint8(c) for c in columns]
    rows = np.concatenate([np.concatenate(list(t), axis=0) for t in tiles], axis=1)  # (N*H, K*W, 3)
    size = tiles[0].shape[2]
    header = np.full((max(14, size // 8), rows.shape[1], 3), 255, np.uint8)
    scale = max(0.3, size / 512)
    for k, label in enumerate(labels[: len(columns)]):
        cv2.putText(header, label, (k * size + 3, header.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, rows], axis=0)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _set_trainable(model: DPE, stage: int, objective: str) -> list[nn.Parameter]:
    model.requires_grad_(False)
    for name in STAGE_TRAINABLE[stage]:
        if name in OBJECTIVE_MODULES.get(objective, STAGE_TRAINABLE[1]):
            getattr(model, name).requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def _to_channels_last(net: nn.Module) -> None:
    """NHWC for the 4-d weights. ``Module.to(memory_format=...)`` cannot be used: it also
    converts 5-d tensors (the modulated convolutions' weights) and fails on them."""
    for tensor in list(net.parameters()) + list(net.buffers()):
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)


def _as_images(batch: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    x = batch.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class Trainer:
    """Holds the models, optimizers and loss networks of a run and performs steps."""

    def __init__(self, options: TrainOptions, env: Distributed, console: Console) -> None:
        self.options, self.env, self.console = options, env, console
        self.say = console.print if env.main and not options.quiet else (lambda *a, **k: None)
        self.warn = (lambda text: console.print(f"[bold yellow]warning:[/] {text}", highlight=False)) if env.main else (lambda text: None)
        self.device = env.device
        self.autocast_dtype = PRECISIONS[options.precision]
        self.start_step = 0

    # -- set-up ---------------------------------------------------------------------------------

    def build_models(self) -> None:
        o = self.options
        torch.manual_seed(o.seed)
        np.random.seed(o.seed)
        initial: InitialWeights | None = None
        if o.init is not None:
            lia_config = DPEConfig(**{n: getattr(o, n) for n in MODEL_SHAPE if getattr(o, n) is not None})
            initial = load_initial_weights(o.init, lia_config)
            if (o.stage == 2 or o.objective in SINGLE_EDIT) and not initial.full_generator:
                what = "stage 2" if o.stage == 2 else f"the {o.objective} objective"
                raise InputError(f"{what} needs a trained DPE generator, not LIA's vox.pt", f"run stage 1 first (--init vox.pt), then {what} with --init its model.safetensors")
        self.options = o = self._settle_config(initial)
        self.model = initial.model if initial is not None else DPE(o.model_config)
        if initial is None or not initial.full_generator:
            for generator in (self.model.expression_generator, self.model.pose_generator):
                generator.start_with_identity_warps()
        self.discriminator = Discriminator(o.model_config)
        if initial is not None and initial.discriminator is not None:
            self.discriminator.load_state_dict(initial.discriminator)
        elif initial is not None and initial.full_generator:
            self.warn(f"{o.init.name} has no discriminator beside it: the discriminator starts untrained")
        self.init_kind = initial.kind if initial is not None else None
        self.model.train()
        self.discriminator.train()
        trainable = _set_trainable(self.model, o.stage, o.objective)
        self.g_optimizer = torch.optim.Adam(trainable, lr=o.lr, betas=BETAS, eps=1e-8)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=o.lr, betas=BETAS, eps=1e-8)
        fp16 = o.precision == "fp16"
        self.g_scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.d_scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)

    def _settle_config(self, initial: InitialWeights | None) -> TrainOptions:
        """Model shape: the ``--init`` generator's (refusing a conflicting option), else the options'."""
        o = self.options
        names = MODEL_SHAPE
        if initial is not None and initial.full_generator:
            config = initial.model.config
            conflicts = [f"--{n.replace('_', '-')} {getattr(o, n)} (file: {getattr(config, n)})" for n in names if getattr(o, n) is not None and getattr(o, n) != getattr(config, n)]
            if conflicts:
                raise InputError(f"{o.init.name} is a different model: {', '.join(conflicts)}", "leave out the model-shape options when using --init")
            return replace(o, **{n: getattr(config, n) for n in names})
        defaults = _defaults(o.stage)
        return replace(o, **{n: getattr(o, n) if getattr(o, n) is not None else defaults[n] for n in names})

    def build_losses(self) -> None:
        from dpe_cli.train.expression import load_expression_encoder
        from dpe_cli.train.vgg import PerceptualPyramidLoss, load_vgg19

        o, weights = self.options, self.options.loss_weights
        perceptual = expression = None
        if o.vgg_weights is not None and (weights.perceptual or weights.self_reconstruction):
            perceptual = PerceptualPyramidLoss(load_vgg19(o.vgg_weights), o.size).to(self.device)
        elif o.pixel_pyramid and (weights.perceptual or weights.self_reconstruction):
            self.say("perceptual and self-reconstruction terms use the L1 image pyramid (--pixel-pyramid, no VGG19)")
            perceptual = PerceptualPyramidLoss.pixels(o.size).to(self.device)
        elif weights.perceptual or weights.self_reconstruction:
            self.warn("perceptual loss is OFF and self-reconstruction uses L1: no --vgg-weights given (torchvision's vgg19-dcbb9e9d.pth; or --pixel-pyramid)")
        if weights.motion and o.expression_weights is None:
            raise InputError("--motion-weight needs an expression network", "give --expression-weights (DECA's deca_model.tar, EMOCA, or dpe's expression regressor)")
        reader = load_expression_encoder(o.expression_weights) if o.expression_weights is not None and (weights.expression or weights.motion) else None
        motion = MotionTerm(reader, o.style_dim, o.motion_dim, o.size).to(self.device) if reader is not None and weights.motion else None
        if reader is not None and weights.expression:
            expression = FactorLoss(reader).to(self.device)
        elif weights.expression:
            self.warn("expression loss is OFF: no --expression-weights given (DECA's deca_model.tar, EMOCA, or dpe's expression regressor)")
        pose = None
        if weights.pose and o.objective == "reenactment":
            self.warn("--pose-weight is ignored with --objective reenactment (the head-pose term is part of the cyclic objective)")
        elif weights.pose:
            if o.pose_weights is None:
                raise InputError("--pose-weight needs a head-pose network", "give --pose-weights (dpe's pose regressor, e.g. weights/regressors/synthetic-pose-64.safetensors)")
            pose = FactorLoss(load_expression_encoder(o.pose_weights, "pose")).to(self.device)
        if o.channels_last:
            for net in (perceptual, expression, pose, motion):
                if net is not None:
                    _to_channels_last(net)
        if o.objective == "reenactment":
            self.objective = ReenactmentObjective(weights, perceptual, expression, motion)
        elif o.objective in SINGLE_EDIT:
            self.objective = SingleEditObjective(o.objective, weights, perceptual, expression, pose)
        else:
            self.objective = GeneratorObjective(weights, perceptual, expression, pose, motion)

    def resume(self) -> None:
        """Load the newest checkpoint: weights, optimizers, scalers, RNG and the step."""
        files = latest_checkpoint(self.options.out)
        assert files is not None  # checked by resolve_options
        saved, _ = read_checkpoint(files.generator)
        if saved.config != self.model.config:
            raise InputError(f"{files.generator} does not match the run's model", "the run folder was modified; start a new run")
        self.model.load_state_dict(saved.state_dict())
        self.discriminator.load_state_dict(load_discriminator_file(files.discriminator, self.model.config))
        state = load_training_state(files.state)
        self.g_optimizer.load_state_dict(state["generator_optimizer"])
        self.d_optimizer.load_state_dict(state["discriminator_optimizer"])
        self.g_scaler.load_state_dict(state["generator_scaler"])
        self.d_scaler.load_state_dict(state["discriminator_scaler"])
        restore_rng(state["rng"])
        self.start_step = int(state["step"])

    def place(self) -> None:
        """Move to the device, set the memory format and wrap for distribution."""
        for net in (self.model, self.discriminator):
            net.to(self.device)
            if self.options.channels_last:
                _to_channels_last(net)
        # Optimizer state loaded on the CPU follows its parameters.
        for optimizer in (self.g_optimizer, self.d_optimizer):
            for values in optimizer.state.values():
                for key, value in values.items():
                    if isinstance(value, Tensor) and key != "step":
                        values[key] = value.to(self.device)
        self.cycle: nn.Module = self.objective.network(self.model)
        self.critic: nn.Module = self.discriminator
        if self.env.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.cycle = DDP(self.cycle, device_ids=ids)
            self.critic = DDP(self.discriminator, device_ids=ids)

    # -- one iteration --------------------------------------------------------------------------

    def _autocast(self):  # noqa: ANN202 - a context manager
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def step(self, source: Tensor, driving: Tensor) -> dict[str, Tensor]:
        """One generator step, then one discriminator step; returns the losses (detached)."""
        adversarial = bool(self.options.gan_weight)
        # Generator: gradients flow through the discriminator (its weights stay out of it).
        self.discriminator.requires_grad_(False)
        with self._autocast():
            images = self.cycle(source, driving)
            total, terms = self.objective(images, source, driving, self.discriminator if adversarial else None)
        self.g_optimizer.zero_grad(set_to_none=True)
        self.g_scaler.scale(total).backward()
        self.g_scaler.step(self.g_optimizer)
        self.g_scaler.update()
        losses = {"loss_total": total.detach(), **{f"loss_{k}": v.detach() for k, v in terms.items()}}
        if adversarial:
            self.discriminator.requires_grad_(True)
            with self._autocast():
                d_loss = discriminator_loss(self.critic, source, driving, [images[k] for k in self.objective.fakes])
            self.d_optimizer.zero_grad(set_to_none=True)
            self.d_scaler.scale(d_loss).backward()
            self.d_scaler.step(self.d_optimizer)
            self.d_scaler.update()
            losses["loss_discriminator"] = d_loss.detach()
        return losses

    @torch.no_grad()
    def preview(self, source: Tensor, driving: Tensor) -> np.ndarray:
        with self._autocast():
            images = self.objective.network(self.model, preview=True)(source, driving)
        labels, keys = zip(*self.objective.shown)
        return sample_grid([source, driving, *(images[k] for k in keys)], ("S", "D", *labels))

    def training_state(self, step: int) -> dict:
        return {
            "step": step,
            "stage": self.options.stage,
            "generator_optimizer": self.g_optimizer.state_dict(),
            "discriminator_optimizer": self.d_optimizer.state_dict(),
            "generator_scaler": self.g_scaler.state_dict(),
            "discriminator_scaler": self.d_scaler.state_dict(),
            "rng": capture_rng(),
            "world_size": self.env.world,
        }

    def save(self, step: int) -> Path:
        o = self.options
        metadata = {"stage": str(o.stage), "trained_by": "dpe train", "loss_weights": json.dumps(o.loss_weights.to_dict())}
        files = save_checkpoint(o.out, step, self.model, self.discriminator, self.training_state(step), o.keep, metadata)
        return files.generator


def _auto_workers(env: Distributed) -> int:
    return max(1, min(8, (os.cpu_count() or 2) // env.local_world - 1))


def _prepare_data(options: TrainOptions, env: Distributed, console: Console, warn: Callable[[str], None]) -> PairDataset:
    """Find the clips and fill the frame cache (ranks split the work), then the dataset."""
    clips = find_clips(options.data)
    cache = FrameCache(options.cache or options.out / "cache", options.size, options.max_frames, options.cache_format)
    workers = options.workers if options.workers is not None else _auto_workers(env)
    show = env.main and not options.quiet
    with Progress(TextColumn("[bold]caching frames"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=not show) as bar:
        task = bar.add_task("cache", total=None)
        build_cache(clips, cache, workers, (env.rank, env.world), lambda done, total: bar.update(task, completed=done, total=total))
    env.wait_for_all()
    cached = collect_cache(clips, cache, warn)
    return PairDataset(cached, options.seed)


@contextmanager
def _distributed(device: str) -> Iterator[Distributed]:
    env = Distributed.from_env(device)
    try:
        yield env
    finally:
        env.close()


def train(request: TrainOptions, console: Console | None = None) -> TrainResult:
    """Run (or resume) training as ``request`` says; returns where the result is."""
    console = console or Console(stderr=True)
    options = resolve_options(request)
    with _distributed(options.device) as env:
        if env.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        trainer = Trainer(options, env, console)
        trainer.build_models()
        options = trainer.options
        trainer.build_losses()  # before the data: a bad weights file fails fast
        dataset = _prepare_data(options, env, console, trainer.warn)
        if options.resume:
            trainer.resume()
        elif env.main:
            options.out.mkdir(parents=True, exist_ok=True)
            _atomic_write(options.out / OPTIONS_FILE, lambda tmp: tmp.write_text(json.dumps(options.to_json(), indent=2) + "\n"))
        trainer.place()
        _summary(trainer, dataset, console)
        return _run(trainer, dataset)


def _summary(trainer: Trainer, dataset: PairDataset, console: Console) -> None:
    o, env = trainer.options, trainer.env
    g = sum(p.numel() for p in trainer.model.parameters())
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    d = sum(p.numel() for p in trainer.discriminator.parameters())
    say = trainer.say
    say(f"data: {len(dataset.clips)} clips, {dataset.identity_count} identities, {len(dataset)} frames at {o.size} px")
    init = f", from {o.init.name} ({trainer.init_kind})" if o.init is not None else ""
    say(f"model: width {o.width:g}, latent {o.style_dim}, motion {o.motion_dim}; generator {g:,} parameters ({trainable:,} trained), discriminator {d:,}{init}")
    per_rank = o.batch_size // env.world
    where = f"{env.world} processes x {per_rank}" if env.world > 1 else "1 process"
    say(f"run: {o.objective} objective, stage {o.stage}, steps {trainer.start_step} -> {o.steps}, batch {o.batch_size} ({where}), lr {o.lr:g}, {o.precision} on {env.device}")
    weights = o.loss_weights.to_dict()
    active = trainer.objective.active_terms()
    say("losses: " + ", ".join(f"{k} {v:g}" + ("" if k in active else " [yellow](off)[/]") for k, v in weights.items()))


def _format_losses(values: dict[str, float]) -> str:
    short = {"loss_total": "total", "loss_reconstruction": "rec", "loss_perceptual": "per", "loss_self_reconstruction": "self", "loss_expression": "exp", "loss_pose": "pose", "loss_motion": "mot", "loss_adversarial": "adv", "loss_discriminator": "D"}
    return "  ".join(f"{short.get(k, k)} {v:.4f}" for k, v in values.items() if k in short)


def _run(trainer: Trainer, dataset: PairDataset) -> TrainResult:
    o, env = trainer.options, trainer.env
    start = trainer.start_step
    sampler = StepBatchSampler(o.batch_size, start, o.steps, env.rank, env.world)
    workers = o.workers if o.workers is not None else _auto_workers(env)
    loader = make_loader(dataset, sampler, workers, pin_memory=env.device.type == "cuda")
    metrics = MetricsLog(o.out, start, trainer.say) if env.main else None
    preview = None
    if env.main:
        pairs = dataset.preview(PREVIEW_PAIRS)
        preview = tuple(_as_images(p, env.device, o.channels_last) for p in pairs)
    step, saved_at, checkpoint = start, -1, o.out / LATEST_MODEL
    show = env.main and not o.quiet
    columns = (TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[losses]}"), TimeRemainingColumn())
    clock, clock_step = time.perf_counter(), start
    try:
        with StopSignals() as signals, Progress(*columns, console=trainer.console, disable=not show) as bar:
            task = bar.add_task("train", total=o.steps, completed=start, losses="")
            for source, driving in loader:
                losses = trainer.step(_as_images(source, env.device, o.channels_last), _as_images(driving, env.device, o.channels_last))
                step += 1
                last = step == o.steps
                if step % o.log_every == 0 or last:
                    values = env.mean({k: float(v) for k, v in losses.items()})
                    now = time.perf_counter()
                    rate = (step - clock_step) * o.batch_size / max(now - clock, 1e-9)
                    clock, clock_step = now, step
                    if metrics is not None:
                        metrics.write({"step": step, **values, "lr": o.lr, "images_per_second": round(rate, 3)})
                    bar.update(task, losses=_format_losses(values))
                bar.update(task, completed=step)
                if preview is not None and (step % o.sample_every == 0 or last):
                    grid = trainer.preview(*preview)
                    _write_png(o.out / "samples" / f"step-{step:06d}.png", grid)
                    metrics.image("samples", grid, step)
                if step % o.save_every == 0 or last:
                    if env.main:
                        checkpoint = trainer.save(step)
                    saved_at = step
                stop = env.any(signals.received is not None)
                if stop and not last:
                    if saved_at != step and env.main:
                        checkpoint = trainer.save(step)
                    env.wait_for_all()
                    raise TrainingInterrupted(step, signals.received or signal.SIGTERM)
        env.wait_for_all()
    finally:
        if metrics is not None:
            metrics.close()
    return TrainResult(step, o.out / LATEST_MODEL, checkpoint)

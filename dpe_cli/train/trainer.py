"""The models, optimizers and objective of a run, and one training step.

Optimisation (paper 4.1, without the reference's leftover lazy-regularisation scaling, since no
regulariser exists): Adam with betas (0, 0.99), eps 1e-8, lr 0.002 in stage 1 (everything
trains) and 0.0008 in stage 2 (expression generator and motion MLPs only).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dpe_cli.checkpoint import read_checkpoint
from dpe_cli.errors import InputError
from dpe_cli.model import DPE, Discriminator, DPEConfig
from dpe_cli.progress import Reporter
from dpe_cli.train.distributed import Distributed
from dpe_cli.train.losses import discriminator_loss
from dpe_cli.train.objectives import build_objective
from dpe_cli.train.options import MODEL_SHAPE, TrainOptions, settle_model_shape
from dpe_cli.train.report import sample_grid
from dpe_cli.train.state import (
    InitialWeights,
    capture_rng,
    latest_checkpoint,
    load_discriminator_file,
    load_initial_weights,
    load_training_state,
    restore_rng,
    save_checkpoint,
)

BETAS = (0.0, 0.99)
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _to_channels_last(net: nn.Module) -> None:
    """NHWC for the 4-d weights. ``Module.to(memory_format=...)`` cannot be used: it also
    converts 5-d tensors (the modulated convolutions' weights) and fails on them."""
    for tensor in list(net.parameters()) + list(net.buffers()):
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)


class Trainer:
    """Holds the models, optimizers and objective of a run and performs steps.

    Set-up runs in order: :meth:`build_models` (which settles the model shape, so read
    :attr:`options` after it), :meth:`build_objective`, then :meth:`resume` for a resumed run,
    then :meth:`place`.
    """

    def __init__(self, options: TrainOptions, env: Distributed, reporter: Reporter) -> None:
        self.options, self.env = options, env
        self.reporter = reporter if env.main else Reporter()  # rank 0 alone reports
        self.device = env.device
        self.autocast_dtype = AUTOCAST[options.precision]
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
            if o.refinement is not None and not initial.full_generator:
                what = o.refinement
                raise InputError(f"{what} needs a trained DPE generator, not LIA's vox.pt", f"run stage 1 first (initialised from vox.pt), then {what} from its model.safetensors")
        full = initial is not None and initial.full_generator
        self.options = o = settle_model_shape(o, initial.model.config if full else None)
        self.model = initial.model if initial is not None else DPE(o.model_config)
        if not full:
            for generator in (self.model.expression_generator, self.model.pose_generator):
                generator.start_with_identity_warps()
        self.discriminator = Discriminator(o.model_config)
        if initial is not None and initial.discriminator is not None:
            self.discriminator.load_state_dict(initial.discriminator)
        elif full:
            self.reporter.warn(f"{o.init.name} has no discriminator beside it: the discriminator starts untrained")
        self.init_kind = initial.kind if initial is not None else None
        self.model.train()
        self.discriminator.train()
        self.model.requires_grad_(False)
        for name in o.trained_modules:
            getattr(self.model, name).requires_grad_(True)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.g_optimizer = torch.optim.Adam(trainable, lr=o.lr, betas=BETAS, eps=1e-8)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=o.lr, betas=BETAS, eps=1e-8)
        fp16 = o.precision == "fp16"
        self.g_scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.d_scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)

    def build_objective(self) -> None:
        self.objective = build_objective(self.options, self.device, self.reporter.say, self.reporter.warn)

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
        if self.options.channels_last:
            for net in self.objective.networks():
                _to_channels_last(net)
        # Optimizer state loaded on the CPU follows its parameters.
        for optimizer in (self.g_optimizer, self.d_optimizer):
            for values in optimizer.state.values():
                for key, value in values.items():
                    if isinstance(value, Tensor) and key != "step":
                        values[key] = value.to(self.device)
        self.forward_pass: nn.Module = self.objective.forward_pass(self.model)
        self.critic: nn.Module = self.discriminator
        if self.env.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_pass = DDP(self.forward_pass, device_ids=ids)
            self.critic = DDP(self.discriminator, device_ids=ids)

    # -- one iteration --------------------------------------------------------------------------

    def images(self, batch: Tensor) -> Tensor:
        """A uint8 batch from the loader as the model's input: on the device, in [-1, 1]."""
        x = batch.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        return x.contiguous(memory_format=torch.channels_last) if self.options.channels_last else x

    def _autocast(self) -> AbstractContextManager:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def step(self, source: Tensor, driving: Tensor) -> dict[str, Tensor]:
        """One generator step, then one discriminator step; returns the losses (detached)."""
        adversarial = bool(self.options.gan_weight)
        # Generator: gradients flow through the discriminator (its weights stay out of it).
        self.discriminator.requires_grad_(False)
        with self._autocast():
            images = self.forward_pass(source, driving)
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
        """The sample grid of these pairs: S, D and the objective's images."""
        with self._autocast():
            images = self.objective.forward_pass(self.model, preview=True)(source, driving)
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
        """A checkpoint of this step; returns the generator file."""
        o = self.options
        metadata = {"stage": str(o.stage), "trained_by": "dpe train", "loss_weights": json.dumps(o.loss_weights.to_dict())}
        files = save_checkpoint(o.out, step, self.model, self.discriminator, self.training_state(step), o.keep, metadata)
        return files.generator

"""Training objectives on a tiny model (64 px, 1/16 of the channels) and one real pair of
frames: losses fall, gradients reach only what each term should train, and --init reads the
official and LIA checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpe_cli.model import DPE, DPEConfig
from dpe_cli.train.expression import ExpressionRegressor
from dpe_cli.train.losses import FactorLoss, LossWeights, MotionTerm
from dpe_cli.train.objectives import CyclicObjective, CyclicPass, SingleEditObjective, SingleEditPass
from dpe_cli.train.state import load_initial_weights
from dpe_cli.train.vgg import PerceptualPyramidLoss, VGG19Features
from helpers import media, tensors_equal

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_model() -> DPE:
    torch.manual_seed(0)
    return DPE(DPEConfig(size=64, style_dim=32, motion_dim=4, width=0.0625))


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    from dpe_cli.video import FrameReader

    frames = []
    with FrameReader(media("dpe_source_crop.mp4"), size=(64, 64)) as reader:
        for i, frame in enumerate(reader):
            if i in (0, 40):
                frames.append(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 127.5 - 1)
            if len(frames) == 2:
                break
    return frames[0], frames[1]


def test_loss_falls_when_overfitting_one_pair():
    source, driving = _pair()
    model = _tiny_model()
    objective = CyclicObjective(LossWeights(adversarial=0), None, None)
    cycle = CyclicPass(model, objective.needs_self_reconstruction)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002, betas=(0.0, 0.99))
    losses = []
    for _ in range(40):
        total, _ = objective(cycle(source, driving), source, driving, None)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(total.item())
    assert np.mean(losses[-5:]) < 0.7 * losses[0]


def test_new_generators_start_with_identity_warps():
    """The flow heads give offset 0 and mask 1/2 at every level, so the encoder features pass
    unwarped; the RGB projections start at zero and only the biases reach the image."""
    model = _tiny_model()
    logits = []
    for generator in (model.expression_generator, model.pose_generator):
        generator.start_with_identity_warps()
        for level in generator.levels:
            level.to_flow.register_forward_hook(lambda _m, _i, out: logits.append(out[2]))
    source, driving = _pair()
    with torch.no_grad():
        image = model.edit(source, driving, "both")
    assert len(logits) == 2 * len(model.config.resolutions)
    assert all(torch.equal(x, torch.zeros_like(x)) for x in logits)
    assert torch.allclose(image, image[:, :, :1, :1].expand_as(image))


def test_losses_on_the_intermediate_pair_never_update_the_pose_generator():
    """Asymmetric back-propagation: with the cycle outputs held fixed, what remains (<S', D'>
    in L1, VGG and the expression loss on S') reaches the expression generator only."""
    source, driving = _pair()
    model = _tiny_model()
    perceptual = PerceptualPyramidLoss(VGG19Features(), 64)
    expression = FactorLoss(ExpressionRegressor(dims=8, width=8, input_size=64).eval().requires_grad_(False))
    objective = CyclicObjective(LossWeights(adversarial=0, self_reconstruction=0), perceptual, expression)
    images = CyclicPass(model, False)(source, driving)
    images = {**images, "s_cycle": images["s_cycle"].detach(), "d_cycle": images["d_cycle"].detach(), "d_pose": images["d_pose"].detach()}
    total, terms = objective(images, source, driving, None)
    assert set(terms) == {"reconstruction", "perceptual", "expression"}
    total.backward()
    assert all(p.grad is None for p in model.pose_generator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.expression_generator.parameters())


def test_pose_term_makes_the_pose_generator_take_the_source_pose():
    """The head-pose term (ours) is the one term on D' that reaches the pose generator: D' must
    take S's pose, while S' must keep it."""
    source, driving = _pair()
    model = _tiny_model()
    reader = FactorLoss(ExpressionRegressor(dims=3, width=8, input_size=64).eval().requires_grad_(False))
    objective = CyclicObjective(LossWeights(reconstruction=0, adversarial=0, self_reconstruction=0, expression=0, pose=1), None, None, reader)
    images = CyclicPass(model, False)(source, driving)
    total, terms = objective(images, source, driving, None)
    assert set(terms) == {"pose"} and objective.active_terms() == ["pose"]
    both = torch.cat([images["s_expression"], images["d_pose"]])
    assert torch.allclose(reader.per_sample(both, source), reader.per_sample(both, torch.cat([source, source])))
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.pose_generator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.expression_generator.parameters())


def test_motion_term_teaches_the_motion_vector_what_the_expression_network_reads():
    """The motion term (ours) reaches only the encoder and the motion path, uses a projection
    that a resumed run meets again, and can be met: fitting the motion path drives it down."""
    source, driving = _pair()
    model = _tiny_model()
    reader = ExpressionRegressor(dims=12, width=8, input_size=64).eval().requires_grad_(False)
    term = MotionTerm(reader, model.config.style_dim, model.config.motion_dim, 64)
    assert term.dims == min(12, model.config.motion_dim // 2)
    assert torch.equal(term.projection, MotionTerm(reader, model.config.style_dim, model.config.motion_dim, 64).projection)
    objective = CyclicObjective(LossWeights(reconstruction=0, perceptual=0, self_reconstruction=0, expression=0, adversarial=0, motion=1), None, None, None, term)
    assert objective.active_terms() == ["motion"]
    cycle = CyclicPass(model, False)
    total, terms = objective(cycle(source, driving), source, driving, None)
    assert set(terms) == {"motion"}
    total.backward()
    for name in ("expression_generator", "pose_generator", "expression_head", "pose_head"):
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in getattr(model, name).parameters()), name
    for name in ("encoder", "motion_mlp", "directions"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters()), name
    path = list(model.encoder.parameters()) + list(model.motion_mlp.parameters()) + list(model.directions.parameters())
    optimizer = torch.optim.Adam(path, lr=0.002)
    pair_s, pair_d = torch.cat([source, driving]), torch.cat([driving, source])
    first = None
    for _ in range(30):
        loss = term(model.motion(model.encode(pair_s).latent), model.motion(model.encode(pair_d).latent), pair_s, pair_d)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize("mode", ["expression", "pose"])
def test_single_edit_objective_reads_the_edit_and_the_self_reconstruction_from_one_pass(mode):
    """The one-edit refinements (ours): e(S, D) against D's expression and S's head pose, or
    p(S, D) against D's pose and S's expression; the edit of S by itself against S. One batched
    generator pass gives the same images as two."""
    source, driving = _pair()
    model = _tiny_model().eval()
    images = SingleEditPass(model, mode, True)(source, driving)
    apply = model.apply_expression if mode == "expression" else model.apply_pose
    enc_s = model.encode(source)
    motion_s, motion_d = model.motion(enc_s.latent), model.motion(model.encode(driving).latent)
    torch.testing.assert_close(images["edited"], apply(enc_s, motion_d), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(images["self_edited"], apply(enc_s, motion_s), atol=1e-3, rtol=1e-3)
    assert "self_edited" not in SingleEditPass(model, mode, False)(source, driving)
    expression = FactorLoss(ExpressionRegressor(dims=4, width=8, input_size=64).eval().requires_grad_(False))
    pose = FactorLoss(ExpressionRegressor(dims=3, width=8, input_size=64).eval().requires_grad_(False))
    weights = LossWeights(reconstruction=3, perceptual=5, self_reconstruction=1, expression=2, pose=4, adversarial=0)
    objective = SingleEditObjective(mode, weights, None, expression, pose)
    assert objective.active_terms() == ["self_reconstruction", "expression", "pose"]
    total, terms = objective(images, source, driving, None)
    expression_of, pose_of = (driving, source) if mode == "expression" else (source, driving)
    assert torch.allclose(terms["expression"], expression.per_sample(images["edited"], expression_of).mean())
    assert torch.allclose(terms["pose"], pose.per_sample(images["edited"], pose_of).mean())
    assert torch.allclose(terms["self_reconstruction"], F.l1_loss(images["self_edited"], source))
    assert torch.allclose(total, terms["self_reconstruction"] + 2 * terms["expression"] + 4 * terms["pose"])


def test_init_reads_the_official_checkpoint_and_lia(official_checkpoint, tmp_path):
    official = load_initial_weights(official_checkpoint, DPEConfig())
    assert official.kind == "official" and official.full_generator and official.discriminator is None
    state = torch.load(official_checkpoint, weights_only=True)["gen"]
    lia = {k: v for k, v in state.items() if k.startswith("enc.net_app.")}
    lia.update({k.replace("mlp.", "enc.fc.", 1): v for k, v in state.items() if k.startswith("mlp.")})
    lia["dec.direction.weight"] = state["dir.weight"]
    lia["dec.convs.0.conv.weight"] = torch.zeros(1)  # LIA's decoder: not used
    torch.save({"gen": lia}, tmp_path / "vox.pt")
    partial = load_initial_weights(tmp_path / "vox.pt", DPEConfig())
    assert partial.kind == "lia" and not partial.full_generator
    for name in ("encoder", "motion_mlp", "directions"):
        assert tensors_equal(getattr(partial.model, name).state_dict(), getattr(official.model, name).state_dict()), name
    assert not tensors_equal(partial.model.expression_generator.state_dict(), official.model.expression_generator.state_dict())

"""dpe train / prepare-data: data, losses, loss networks, checkpoints, resume, stage 2, torchrun.

Everything runs a tiny model (64 px, 1/16 of the channels) on CPU with one thread per process,
so the file takes about two minutes on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, media
from safetensors.torch import load_file

from dpe_cli.checkpoint import read_checkpoint
from dpe_cli.cli import main
from dpe_cli.errors import CheckpointError, InputError
from dpe_cli.model import DPE, DPEConfig
from dpe_cli.train.data import FrameCache, PairDataset, StepBatchSampler, build_cache, collect_cache, find_clips
from dpe_cli.train.expression import ExpressionRegressor, ResNetExpressionEncoder, load_expression_encoder, save_expression_regressor
from dpe_cli.train.losses import FactorLoss, LossWeights, MotionTerm
from dpe_cli.train.objectives import CyclicObjective, CyclicPass, SingleEditObjective, SingleEditPass
from dpe_cli.train.options import OPTIONS_FILE, STAGE_TRAINABLE, TrainOptions, resolve_options, settle_model_shape
from dpe_cli.train.state import checkpoint_files, latest_checkpoint, load_initial_weights, load_training_state
from dpe_cli.train.vgg import TORCHVISION_INDEX, PerceptualPyramidLoss, VGG19Features, load_vgg19

TINY = ["--size", "64", "--width", "0.0625", "--style-dim", "32", "--motion-dim", "4"]
QUICK = ["--batch-size", "2", "--workers", "0", "--device", "cpu", "--max-frames", "12", "--log-every", "1", "-q"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores shared with other tests: one thread per process is fastest and steadiest."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """VoxCeleb layout plus a flat broken file: two identities, three clips (two videos and a
    folder of frames), and a video that is random bytes."""
    root = tmp_path_factory.mktemp("data")
    (root / "id_a").mkdir()
    (root / "id_b" / "frames").mkdir(parents=True)
    shutil.copy(media("dpe_source_crop.mp4"), root / "id_a" / "talk.mp4")
    shutil.copy(media("dpe_driver_crop.mp4"), root / "id_b" / "talk.mov")
    for i in range(6):
        image = np.full((80, 80, 3), 40 * i, np.uint8)
        cv2.circle(image, (20 + 6 * i, 40), 12, (255, 200, 150), -1)
        cv2.imwrite(str(root / "id_b" / "frames" / f"{i}.png"), image)
    (root / "broken.mp4").write_bytes(os.urandom(4096))
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def dpe(*args: str) -> int:
    """Run the dpe command in this process; its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code or 0


def train_args(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--cache", str(cache), *TINY, *QUICK, *extra]


def tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- data -------------------------------------------------------------------------------------


def test_clips_layouts_cache_and_broken_file(data_dir, cache_dir):
    clips = find_clips(data_dir)
    assert [(c.path.relative_to(data_dir).as_posix(), c.identity) for c in clips] == [
        ("broken.mp4", "broken"), ("id_a/talk.mp4", "id_a"), ("id_b/frames", "id_b"), ("id_b/talk.mov", "id_b"),
    ]  # fmt: skip
    cache = FrameCache(cache_dir, size=64, max_frames=12)
    build_cache(clips, cache)
    warnings: list[str] = []
    cached = collect_cache(clips, cache, warnings.append)
    assert len(cached) == 3 and [c.frame_count for c in cached] == [12, 6, 12]
    assert len(warnings) == 1 and "broken.mp4" in warnings[0]
    dataset = PairDataset(cached, seed=3)
    assert dataset.identity_count == 2
    source, driving = dataset[5]
    assert source.shape == driving.shape == (3, 64, 64) and source.dtype == torch.uint8
    # A pure function of (seed, index): a fresh dataset gives the same pair.
    again = PairDataset(collect_cache(clips, cache, lambda _: None), seed=3)
    assert all(torch.equal(a, b) for a, b in zip(dataset[5], again[5]))


def test_step_batches_split_the_global_batch_across_ranks():
    single = list(StepBatchSampler(8, start=3, steps=5))
    ranks = [list(StepBatchSampler(8, start=3, steps=5, rank=r, world=4)) for r in range(4)]
    for step, batch in enumerate(single):
        assert sum((ranks[r][step] for r in range(4)), []) == batch
    assert single[0] == list(range(24, 32))
    with pytest.raises(InputError, match="does not split"):
        StepBatchSampler(6, 0, 1, world=4)


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no videos"):
        find_clips(tmp_path)


# -- loss networks and objectives ----------------------------------------------------------------


def test_vgg19_loads_the_torchvision_layout(tmp_path):
    torch.manual_seed(0)
    reference = VGG19Features()
    state = {}
    for k, index in enumerate(TORCHVISION_INDEX):
        state[f"features.{index}.weight"] = torch.randn_like(reference.convs[k].weight)
        state[f"features.{index}.bias"] = torch.randn_like(reference.convs[k].bias)
    state.update({"features.30.weight": torch.zeros(512, 512, 3, 3), "classifier.0.weight": torch.zeros(4096, 25088)})
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    vgg = load_vgg19(path)
    assert torch.equal(vgg.convs[-1].weight, state["features.28.weight"])
    assert [f.shape[1] for f in vgg(torch.zeros(1, 3, 32, 32))] == [64, 128, 256, 512, 512]
    del state["features.28.bias"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="features.28.bias"):
        load_vgg19(path)


def test_expression_encoders_load_from_files(tmp_path):
    torch.manual_seed(0)
    regressor = ExpressionRegressor(dims=12, width=8, input_size=64).eval()
    path = save_expression_regressor(regressor, tmp_path / "expression.safetensors")
    loaded = load_expression_encoder(path)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(loaded(image), regressor(image))
    # DECA's deca_model.tar layout: E_flame.{encoder,layers}.*, 236 outputs -> 50 exp + 3 jaw.
    deca = ResNetExpressionEncoder(236).eval()
    torch.save({"E_flame": deca.state_dict(), "E_detail": {"x": torch.zeros(1)}}, tmp_path / "deca_model.tar")
    loaded = load_expression_encoder(tmp_path / "deca_model.tar")
    with torch.no_grad():
        out, full = loaded(image), deca.layers(deca.encoder(torch.zeros(1, 3, 224, 224)))
    assert out.shape == (2, 53) and full.shape == (1, 236)
    with torch.no_grad():  # the head-pose reader of the same file: DECA's global rotation
        pose = load_expression_encoder(tmp_path / "deca_model.tar", reads="pose")(image)
        assert torch.allclose(pose, deca(image)[:, 200:203], atol=1e-5)
    assert pose.shape == (2, 3)
    torch.save({"E_expression": ResNetExpressionEncoder(50).state_dict()}, tmp_path / "emoca_expression.pt")
    with pytest.raises(CheckpointError, match="reads no head pose"):
        load_expression_encoder(tmp_path / "emoca_expression.pt", reads="pose")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no ResNet-50"):
        load_expression_encoder(tmp_path / "other.pt")


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


# -- options -----------------------------------------------------------------------------------


def test_stage_and_objective_resolve_together_before_anything_loads(tmp_path):
    """--stage and --objective both say what trains; options resolve them into one set of
    modules. A weight whose network was not given is refused here, before any file is read."""
    clips, init = tmp_path / "clips", tmp_path / "model.safetensors"  # never read by resolution

    def resolved(**given: object) -> TrainOptions:
        return resolve_options(TrainOptions(out=tmp_path / "run", data=clips, **given))

    new = resolved()
    assert (new.stage, new.objective, new.lr, new.steps, new.size) == (1, "cycle", 0.002, 100_000, None)
    assert new.trained_modules == STAGE_TRAINABLE[1] and new.refinement is None
    assert resolved(stage=2, init=init).trained_modules == STAGE_TRAINABLE[2]
    assert resolved(stage=2, init=init).lr == 0.0008 and resolved(stage=2, init=init).refinement == "stage 2"
    assert resolved(stage=2, objective="expression", init=init).trained_modules == ("expression_generator", "motion_mlp", "expression_head")
    pose = resolved(objective="pose", init=init)
    assert pose.trained_modules == ("pose_head", "pose_generator") and pose.refinement == "the pose objective"
    assert resolved(objective="reenactment", pose_weight=1).pose_weight == 1  # ignored there, with a warning
    with pytest.raises(InputError, match="needs a head-pose network"):
        resolved(pose_weight=1)
    with pytest.raises(InputError, match="needs an expression network"):
        resolved(motion_weight=1)


def test_runs_saved_before_an_option_existed_resume_with_its_default(tmp_path):
    """An options.json that lacks a later option reads as that option's default, so a resumed old
    run keeps the problem it was trained on (and a new option needs no entry of its own)."""
    out = tmp_path / "old"
    saved = settle_model_shape(resolve_options(TrainOptions(out=out, data=tmp_path / "clips")), None).to_json()
    for later in ("pixel_pyramid", "objective", "pose_weight", "motion_weight"):
        del saved[later]
    for path in checkpoint_files(out, 5).all_paths():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    (out / OPTIONS_FILE).write_text(json.dumps(saved))
    resumed = resolve_options(TrainOptions(out=out, resume=True, objective="cycle", steps=7))
    assert (resumed.pixel_pyramid, resumed.objective, resumed.pose_weight, resumed.motion_weight) == (False, "cycle", 0.0, 0.0)
    assert (resumed.size, resumed.steps, resumed.data) == (256, 7, tmp_path / "clips")
    with pytest.raises(InputError, match="cannot change --objective reenactment"):
        resolve_options(TrainOptions(out=out, resume=True, objective="reenactment"))


# -- the command: checkpoints, resume, stage 2, torchrun ----------------------------------------


def test_train_writes_a_checkpoint_that_loads(data_dir, cache_dir, tmp_path, capfd):
    out = tmp_path / "run"
    assert dpe(*train_args(data_dir, out, cache_dir, "--steps", "3", "--save-every", "2", "--sample-every", "2")) == 0
    assert "skipping" in capfd.readouterr().err  # the broken video, loudly
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss_total"]) for r in rows)
    assert {p.name for p in (out / "checkpoints").iterdir()} == {
        f"step-00000{n}{suffix}" for n in (2, 3) for suffix in (".safetensors", ".discriminator.safetensors", ".state.pt")
    }
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-000002.png", "step-000003.png"]
    assert load_training_state(out / "checkpoints" / "step-000003.state.pt")["step"] == 3
    model, info = read_checkpoint(out / "model.safetensors")  # what dpe edit-* --weights reads
    assert info.config == DPEConfig(size=64, style_dim=32, motion_dim=4, width=0.0625)
    assert info.metadata["step"] == "3"
    # A run from scratch starts every generator with identity warps and no RGB (three Adam
    # steps of lr 0.002 move a zero weight by at most 0.006; StyleGAN's start is N(0, 1)).
    for generator in (model.expression_generator, model.pose_generator):
        for level in generator.levels:
            assert level.to_flow.conv.weight.abs().max() < 0.01 and level.to_rgb.conv.weight.abs().max() < 0.01
    with torch.no_grad():
        assert model.edit(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(InputError, match="already holds a training run"):
        resolve_options(TrainOptions(out=out, data=data_dir))
    with pytest.raises(InputError, match="cannot change --size"):
        resolve_options(TrainOptions(out=out, resume=True, size=128))


def test_resume_after_sigint_matches_an_uninterrupted_run(data_dir, cache_dir, tmp_path):
    steps = ["--steps", "8", "--save-every", "100"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert dpe(*train_args(data_dir, whole, cache_dir, *steps)) == 0
    command = [sys.executable, "-m", "dpe_cli", *train_args(data_dir, parts, cache_dir, *steps)]
    proc = subprocess.Popen(command, env=ONE_THREAD, stderr=subprocess.PIPE, text=True)
    metrics = parts / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().strip()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    stopped = latest_checkpoint(parts)
    assert stopped is not None and 1 <= stopped.step < 8, err
    assert dpe("train", "--out", str(parts), "--resume", "-q") == 0
    for name in ("model.safetensors", "checkpoints/step-000008.discriminator.safetensors"):
        assert tensors_equal(load_file(whole / name), load_file(parts / name)), name
    rows = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (whole, parts)]
    assert [r["step"] for r in rows[1]] == list(range(1, 9))
    assert [r["loss_total"] for r in rows[0]] == [r["loss_total"] for r in rows[1]]


def test_stage_two_changes_only_the_expression_generator_and_motion_mlps(data_dir, cache_dir, tiny_weights, tmp_path):
    out = tmp_path / "stage2"
    args = ["train", "--data", str(data_dir), "--cache", str(cache_dir), *QUICK, "--stage", "2", "--init", str(tiny_weights)]
    assert dpe(*args, "--out", str(out), "--steps", "2") == 0
    before, after = load_file(tiny_weights), load_file(out / "model.safetensors")
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"expression_generator", "motion_mlp", "expression_head", "pose_head"}
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["lr"] == 0.0008
    assert dpe(*args, "--out", str(tmp_path / "other"), "--size", "128") == 2  # the file is 64 px
    with pytest.raises(InputError, match="stage 2 refines a trained model"):
        resolve_options(TrainOptions(out=tmp_path / "new", data=data_dir, stage=2))


def test_reenactment_objective_trains_the_motion_path_and_feeds_a_cyclic_run(data_dir, cache_dir, tmp_path):
    """LIA's objective (the start the paper assumes): only the encoder, the motion path and the
    pose generator learn; its model then starts a cyclic run as a full generator."""
    warm = tmp_path / "warm"
    assert dpe(*train_args(data_dir, warm, cache_dir, "--objective", "reenactment", "--pixel-pyramid", "--perceptual-weight", "1", "--steps", "2")) == 0
    rows = [json.loads(line) for line in (warm / "metrics.jsonl").read_text().splitlines()]
    terms = {k for k in rows[-1] if k.startswith("loss_")}
    assert terms == {"loss_total", "loss_reconstruction", "loss_perceptual", "loss_adversarial", "loss_discriminator"}
    assert json.loads((warm / "options.json").read_text())["objective"] == "reenactment"
    model, _ = read_checkpoint(warm / "model.safetensors")
    for level in model.expression_generator.levels:  # untouched: still the identity-warp start
        assert level.to_flow.conv.weight.abs().max() == 0
    assert any(level.to_flow.conv.weight.abs().max() > 0 for level in model.pose_generator.levels)
    cycle = tmp_path / "cycle"
    assert dpe("train", "--data", str(data_dir), "--out", str(cycle), "--cache", str(cache_dir), *QUICK, "--init", str(warm / "model.safetensors"), "--steps", "1") == 0
    before, after = load_file(warm / "model.safetensors"), load_file(cycle / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("expression_generator."))
    with pytest.raises(InputError, match="needs a head-pose network"):
        main_run = ["--init", str(warm / "model.safetensors"), "--steps", "1", "--pose-weight", "1", "--debug"]
        main(["train", "--data", str(data_dir), "--out", str(tmp_path / "posed"), "--cache", str(cache_dir), *QUICK, *main_run])
    with pytest.raises(InputError, match="unknown objective"):
        resolve_options(TrainOptions(out=tmp_path / "x", data=data_dir, objective="lia"))
    with pytest.raises(InputError, match="cannot change --objective"):
        resolve_options(TrainOptions(out=warm, resume=True, objective="cycle"))


def test_motion_weight_runs_in_both_objectives_and_needs_an_expression_network(data_dir, cache_dir, tmp_path):
    regressor = save_expression_regressor(ExpressionRegressor(dims=4, width=8, input_size=64).eval(), tmp_path / "expression.safetensors")
    for objective in ("reenactment", "cycle"):
        out = tmp_path / objective
        extra = ("--objective", objective, "--expression-weights", str(regressor), "--motion-weight", "2", "--steps", "1")
        assert dpe(*train_args(data_dir, out, cache_dir, *extra)) == 0
        row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        assert row["loss_motion"] > 0
        assert json.loads((out / "options.json").read_text())["motion_weight"] == 2
    with pytest.raises(InputError, match="cannot change --motion-weight"):
        resolve_options(TrainOptions(out=tmp_path / "cycle", resume=True, motion_weight=1))
    with pytest.raises(InputError, match="needs an expression network"):
        main(train_args(data_dir, tmp_path / "bare", cache_dir, "--motion-weight", "1", "--debug"))


def test_single_edit_objectives_train_their_own_path(data_dir, cache_dir, tmp_path):
    """``--objective expression`` trains what the expression edit uses (the shared encoder and
    motion path too); ``--objective pose`` then refits only the pose head and generator, so the
    expression edit stays exactly as it was. Both need a trained model."""
    start = tmp_path / "start"
    assert dpe(*train_args(data_dir, start, cache_dir, "--steps", "1")) == 0
    expression = save_expression_regressor(ExpressionRegressor(dims=4, width=8, input_size=64).eval(), tmp_path / "expression.safetensors")
    pose = save_expression_regressor(ExpressionRegressor(dims=3, width=8, input_size=64).eval(), tmp_path / "pose.safetensors")
    readers = ("--expression-weights", str(expression), "--pose-weights", str(pose), "--pose-weight", "3", "--pixel-pyramid", "--sample-every", "2")
    base = ["train", "--data", str(data_dir), "--cache", str(cache_dir), *QUICK, *readers]
    trained = {
        "expression": {"encoder", "motion_mlp", "directions", "expression_head", "expression_generator"},
        "pose": {"pose_head", "pose_generator"},
    }
    previous = start
    for mode, modules in trained.items():
        out = tmp_path / mode
        assert dpe(*base, "--out", str(out), "--objective", mode, "--init", str(previous / "model.safetensors"), "--steps", "2") == 0
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        terms = {k for k in rows[-1] if k.startswith("loss_")}
        assert terms == {"loss_total", "loss_self_reconstruction", "loss_expression", "loss_pose", "loss_adversarial", "loss_discriminator"}
        before, after = load_file(previous / "model.safetensors"), load_file(out / "model.safetensors")
        assert {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])} == modules, mode
        assert cv2.imread(str(out / "samples" / "step-000002.png")).shape[1] == 3 * 64  # S, D, the edit
        previous = out
    with pytest.raises(InputError, match="pose objective refines a trained model"):
        main([*base, "--out", str(tmp_path / "bare"), "--objective", "pose", "--debug"])
    with pytest.raises(InputError, match="does not apply to --objective expression"):
        main([*base, "--out", str(tmp_path / "moving"), "--objective", "expression", "--init", str(start / "model.safetensors"), "--motion-weight", "1", "--debug"])
    with pytest.raises(InputError, match="stage 2 refines the expression generator"):
        resolve_options(TrainOptions(out=tmp_path / "s2", data=data_dir, stage=2, objective="pose", init=start / "model.safetensors"))


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


def test_torchrun_two_processes_on_gloo(data_dir, cache_dir, tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "dpe_cli", *train_args(data_dir, out, cache_dir, "--steps", "2", "--batch-size", "4"),
    ]  # fmt: skip
    done = subprocess.run(command, env=ONE_THREAD, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # rank 0 alone writes
    assert load_training_state(out / "checkpoints" / "step-000002.state.pt")["world_size"] == 2
    read_checkpoint(out / "model.safetensors")


# -- prepare-data ----------------------------------------------------------------------------


def test_prepare_data_crops_faces_and_skips_broken_videos(tmp_path, capfd):
    from dpe_cli.video import probe

    raw = tmp_path / "raw"
    (raw / "speaker").mkdir(parents=True)
    shutil.copy(media("talk_full_590.mp4"), raw / "speaker" / "talk.mp4")
    (raw / "bad.mkv").write_bytes(os.urandom(2048))
    out = tmp_path / "crops"
    assert dpe("prepare-data", str(raw), str(out), "--size", "64", "--detect-every", "25") == 0
    assert "skipping" in capfd.readouterr().err
    info = probe(out / "speaker" / "talk.mp4")
    assert (info.width, info.height) == (64, 64) and info.frame_count == probe(raw / "speaker" / "talk.mp4").frame_count
    assert [c.identity for c in find_clips(out)] == ["speaker"]


def test_pixel_pyramid_sees_how_far_a_blob_moved():
    """Plain L1 saturates once a small feature no longer overlaps its target; the L1 image
    pyramid keeps growing with the distance, which is what lets a head or a mouth be moved."""
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")

    def blob(cx: float) -> torch.Tensor:
        return torch.exp(-((x - cx) ** 2 + (y - 32) ** 2) / (2 * 1.5**2)).expand(1, 3, 64, 64) * 2 - 1

    pyramid = PerceptualPyramidLoss.pixels(64)
    assert pyramid.steps == [1, 2, 4, 8]
    target = blob(20)
    plain = [float(F.l1_loss(blob(20 + d), target)) for d in (8, 16)]
    tiered = [float(pyramid.per_sample(blob(20 + d), target)) for d in (0, 8, 16)]
    assert plain[1] == pytest.approx(plain[0], rel=0.02)
    assert tiered[0] == 0 and tiered[2] > tiered[1] * 1.1


def test_prepare_data_fails_when_every_video_failed(tmp_path, capfd):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("a.mp4", "b.mkv"):
        (raw / name).write_bytes(os.urandom(2048))
    assert dpe("prepare-data", str(raw), str(tmp_path / "crops")) == 2
    err = capfd.readouterr().err.splitlines()
    assert sum("skipping" in line for line in err) == 2
    assert err[-1].startswith("error: nothing was prepared: all 2 videos under") and "done:" not in "".join(err)


def test_bf16_training_steps_stay_finite_and_save_float32(data_dir, cache_dir, tmp_path):
    """--precision bf16 (autocast on the CPU here) trains, and the saved model is float32."""
    out = tmp_path / "bf16"
    assert dpe(*train_args(data_dir, out, cache_dir, "--steps", "2", "--precision", "bf16")) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss_total"]) for r in rows)
    model, _ = read_checkpoint(out / "model.safetensors")
    assert all(p.dtype == torch.float32 for p in model.parameters())

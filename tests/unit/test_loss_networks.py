"""Training's loss networks: VGG19 and expression/pose encoders load from their files, and the
pixel pyramid sees how far a feature moved."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dpe_cli.errors import CheckpointError
from dpe_cli.train.expression import ExpressionRegressor, ResNetExpressionEncoder, load_expression_encoder, save_expression_regressor
from dpe_cli.train.vgg import TORCHVISION_INDEX, PerceptualPyramidLoss, VGG19Features, load_vgg19

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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

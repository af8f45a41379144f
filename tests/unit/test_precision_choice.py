"""``--precision auto``: bf16 only where the hardware computes it, float32 elsewhere, and the
run says which it used and why."""

from __future__ import annotations

import pytest
import torch

from dpe_cli import device as device_module
from dpe_cli import precision_check
from dpe_cli.device import choose_precision
from dpe_cli.errors import InputError

CPU = torch.device("cpu")


def _cpuinfo(tmp_path, monkeypatch, flags: str) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    monkeypatch.setattr(device_module, "CPUINFO", info)


def test_auto_is_float32_on_a_cpu_without_bf16(tmp_path, monkeypatch):
    _cpuinfo(tmp_path, monkeypatch, "fpu sse2 avx2 avx512f avx512bw")
    chosen, why = choose_precision("auto", CPU)
    assert chosen == "fp32" and "no AVX-512 BF16 or AMX" in why


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_auto_is_bf16_on_a_cpu_that_computes_it(tmp_path, monkeypatch, flag):
    _cpuinfo(tmp_path, monkeypatch, f"fpu avx512f {flag}")
    chosen, why = choose_precision("auto", CPU)
    assert chosen == "bf16" and flag in why


def test_auto_without_cpuinfo_is_float32(tmp_path, monkeypatch):
    monkeypatch.setattr(device_module, "CPUINFO", tmp_path / "missing")
    assert choose_precision("auto", CPU)[0] == "fp32"


def test_asked_precision_is_kept_and_cuda_follows_its_bf16_support(monkeypatch):
    assert choose_precision("fp32", CPU) == ("fp32", "asked for")
    assert choose_precision("bf16", CPU) == ("bf16", "asked for")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_precision("auto", torch.device("cuda"))[0] == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert choose_precision("auto", torch.device("cuda"))[0] == "fp32"


def test_engine_reports_the_chosen_precision(tiny_weights, tmp_path, monkeypatch):
    from dpe_cli.engine import Engine, run_device

    _cpuinfo(tmp_path, monkeypatch, "fpu avx2")
    engine = Engine.load(tiny_weights, "cpu")
    assert engine.precision == "fp32" and engine.precision_reason.startswith("auto:")
    _cpuinfo(tmp_path, monkeypatch, "fpu avx512_bf16")
    monkeypatch.setattr(precision_check, "agreement_db", lambda *a: 60.0)
    engine = Engine.load(tiny_weights, "cpu")
    assert engine.precision == "bf16" and engine.precision_reason.endswith("60 dB from fp32 on a check face")
    assert Engine.load(tiny_weights, "cpu", "fp32").precision_reason == "asked for"
    with pytest.raises(InputError, match="`precision` 'half'"):
        run_device("cpu", "half")


def test_request_defaults_to_auto(tmp_path):
    from dpe_cli.edit import EditRequest

    assert EditRequest(tmp_path / "a.mp4", tmp_path / "b.mp4", "o.mp4").precision == "auto"


def test_auto_keeps_float32_for_a_model_that_bf16_draws_differently(tiny_weights, tmp_path, monkeypatch):
    """bf16 hardware, but this model's check face lands under 45 dB from float32 in bf16 (as
    the parity fixture's random weights do): the run uses float32 and says why."""
    from dpe_cli.engine import Engine

    _cpuinfo(tmp_path, monkeypatch, "fpu avx512_bf16")
    monkeypatch.setattr(precision_check, "agreement_db", lambda *a: 38.04)
    engine = Engine.load(tiny_weights, "cpu")
    assert engine.precision == "fp32" and "38.0 dB from fp32 (under 45 dB)" in engine.precision_reason


def test_no_check_without_bf16_hardware_or_when_asked(tiny_weights, tmp_path, monkeypatch):
    from dpe_cli.engine import Engine

    def refuse(*_):
        raise AssertionError("the check ran")

    monkeypatch.setattr(precision_check, "agreement_db", refuse)
    _cpuinfo(tmp_path, monkeypatch, "fpu avx2")
    assert Engine.load(tiny_weights, "cpu").precision == "fp32"
    _cpuinfo(tmp_path, monkeypatch, "fpu avx512_bf16")
    assert Engine.load(tiny_weights, "cpu", "bf16").precision == "bf16"


def test_agreement_measures_the_models_own_pictures(tiny_weights):
    """The check draws real pictures: float32 agrees with itself exactly, bf16 lands at a finite
    PSNR that depends on the weights (scaling the weights up amplifies bf16's rounding)."""
    from dpe_cli import load_model

    model = load_model(tiny_weights).eval()
    assert precision_check.agreement_db(model, CPU, "fp32") == float("inf")
    first = precision_check.agreement_db(model, CPU, "bf16")
    assert 0 < first < float("inf") and precision_check.agreement_db(model, CPU, "bf16") == first
    with torch.no_grad():
        for conv in model.modules():
            if hasattr(conv, "demodulate") and not conv.demodulate:  # the flow heads: larger flows
                conv.weight.mul_(50)
    assert precision_check.agreement_db(model, CPU, "bf16") != first

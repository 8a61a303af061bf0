"""PhaseNet port: the original weights reproduce the reference outputs and the 154-record table of WEIGHTS.md."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from terralab.errors import DataNotAvailableError, FileFormatError
from terralab.seismic import evaluate, io
from terralab.seismic.phasenet import PhaseNet, default_weights_path, load_phasenet, normalize_windows

SHARED_WEIGHTS = "seismic/phasenet_weights/phasenet_190703_weights.npz"


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_phasenet()


def test_shipped_weights_are_the_original_file(shared_data):
    shipped = hashlib.sha256(default_weights_path().read_bytes()).hexdigest()
    original = hashlib.sha256((shared_data / SHARED_WEIGHTS).read_bytes()).hexdigest()
    assert shipped == original


def test_model_has_the_original_parameter_count(model):
    params = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert params + stats == 269_675  # WEIGHTS.md counts the batch-norm moving statistics too


def test_port_reproduces_reference_output(shared_data, model):
    ref = np.load(shared_data / "seismic/phasenet_weights/phasenet_reference_io.npz")
    with torch.inference_mode():
        prob = model(torch.from_numpy(ref["x"].astype(np.float32))).numpy()
    assert np.abs(prob - ref["prob"]).max() < 1e-4


def test_normalisation_matches_reference_inputs(shared_data):
    ref = np.load(shared_data / "seismic/phasenet_weights/phasenet_reference_io.npz")
    records = io.read_phasenet_npz(shared_data / "seismic/phasenet_ncedc/waveform_train.tar.gz", max_records=4)
    raw = np.stack([records.values[i, :, s : s + 3000] for i, s in enumerate(ref["window_start"])])
    x = normalize_windows(torch.from_numpy(raw)).numpy()
    assert list(records["record"].values) == list(ref["fname"])
    assert np.abs(x - ref["x"]).max() < 1e-4


def test_port_reproduces_154_record_table(shared_data, model):
    records = io.read_phasenet_npz(
        shared_data / "seismic/phasenet_ncedc/waveform_train.tar.gz",
        csv=shared_data / "seismic/phasenet_ncedc/waveform.csv",
    )
    assert records.sizes["record"] == 154
    metrics, _ = evaluate.phasenet_protocol(records, model, seed=0)
    at = metrics[metrics["tolerance_s"] == 0.1].set_index("phase")
    expected = {"P": (0.941, 0.935, 0.938, 0.002, 0.022), "S": (0.875, 0.818, 0.846, 0.002, 0.036)}
    for phase, (p, r, f1, mean, std) in expected.items():
        assert at.loc[phase, "f1"] == pytest.approx(f1, abs=0.005)
        assert at.loc[phase, "precision"] == pytest.approx(p, abs=0.005)
        assert at.loc[phase, "recall"] == pytest.approx(r, abs=0.005)
        assert at.loc[phase, "residual_mean_s"] == pytest.approx(mean, abs=0.002)
        assert at.loc[phase, "residual_std_s"] == pytest.approx(std, abs=0.002)


def test_any_input_length_gives_same_length_output(model):
    x = torch.randn(2, 3, 1234)
    with torch.inference_mode():
        y = model(normalize_windows(x))
    assert y.shape == (2, 3, 1234)
    assert torch.allclose(y.sum(dim=1), torch.ones(2, 1234), atol=1e-5)


def test_load_phasenet_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(DataNotAvailableError):
        load_phasenet(tmp_path / "nope.npz")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, kernel=np.zeros((7, 1, 3, 8)))
    with pytest.raises(FileFormatError, match="lack the array"):
        load_phasenet(foreign)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(FileFormatError):
        load_phasenet(garbage)


def test_checkpoint_round_trip(tmp_path, model):
    path = tmp_path / "m.pt"
    torch.save({"model_state": model.state_dict()}, path)
    again = load_phasenet(path)
    x = normalize_windows(torch.randn(1, 3, 3000))
    with torch.inference_mode():
        assert torch.allclose(again(x), model(x))
    assert isinstance(again, PhaseNet) and not again.training


def test_fast_inference_path_equals_training_path(model):
    """Eval mode folds batch norm into the convolutions; with frozen statistics both paths agree."""
    x = normalize_windows(torch.randn(2, 3, 3000))
    with torch.inference_mode():
        fast = model(x)
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.eval()
        slow = model(x)
        model.eval()
    assert torch.allclose(fast, slow, atol=1e-5)

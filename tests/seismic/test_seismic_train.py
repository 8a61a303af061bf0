"""Training: Gaussian labels, random window shifts, fine-tuning lowers the loss, checkpoints, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from terralab.errors import InvalidInputError
from terralab.seismic import io, train
from terralab.seismic.phasenet import load_phasenet


@pytest.fixture(scope="module")
def records():
    return io.read_sample(max_records=8)


def test_gaussian_labels_peak_at_picks_and_sum_to_one():
    y = train.gaussian_labels(3000, 1000.0, 1300.0, sigma_s=0.1)
    assert y.shape == (3, 3000)
    np.testing.assert_allclose(y.sum(axis=0), 1.0, atol=1e-6)
    assert np.argmax(y[1]) == 1000 and np.argmax(y[2]) == 1300
    assert y[1, 1010] == pytest.approx(np.exp(-0.5), rel=1e-5)  # σ = 0.1 s = 10 samples
    close = train.gaussian_labels(3000, 1000.0, 1005.0)
    assert (close >= 0).all() and np.allclose(close.sum(axis=0), 1.0, atol=1e-6)
    none = train.gaussian_labels(100, None, np.nan)
    assert (none[0] == 1).all()


def test_sample_windows_shift_picks_and_keep_them_inside(records):
    x, y = train.sample_windows(records, windows_per_record=4, seed=0)
    assert x.shape == (32, 3, 3000) and y.shape == (32, 3, 3000)
    p_pos = y[:, 1].argmax(axis=1)
    assert (p_pos >= 100).all() and (p_pos <= 2900).all()
    assert len(np.unique(p_pos)) > 10  # random shifts, not one fixed position
    x2, _ = train.sample_windows(records, windows_per_record=4, seed=0)
    np.testing.assert_array_equal(x, x2)
    with pytest.raises(InvalidInputError):
        train.sample_windows(records.isel(time=slice(0, 2000)))


def test_fine_tuning_lowers_loss_on_a_fixed_batch(records, tmp_path):
    torch.set_num_threads(2)
    x, y = train.sample_windows(records, windows_per_record=1, seed=123)
    model = load_phasenet()
    before = train.window_loss(model, x, y)
    model, history = train.train_phasenet(
        records,
        validation=records.isel(record=slice(0, 4)),
        model=model,
        epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        checkpoint_dir=tmp_path,
        num_threads=2,
        progress=False,
        seed=0,
    )
    after = train.window_loss(model, x, y)
    assert after < before
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_P_f1", "val_S_f1", "seconds"]
    assert (
        history["epoch"].tolist() == [1] and np.isfinite(history[["train_loss", "val_loss"]].to_numpy()).all()
    )
    assert 0 <= history["val_P_f1"].iloc[0] <= 1
    assert (tmp_path / "epoch_001.pt").exists() and (tmp_path / "last.pt").exists()
    reloaded = load_phasenet(tmp_path / "last.pt")
    assert train.window_loss(reloaded, x, y) == pytest.approx(after, rel=1e-5)


def test_training_from_scratch_and_resuming(records, tmp_path):
    torch.set_num_threads(2)
    _, h1 = train.train_phasenet(
        records.isel(record=slice(0, 4)),
        model="scratch",
        epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        freeze_batchnorm=False,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert np.isfinite(h1["train_loss"]).all()
    _, h2 = train.train_phasenet(
        records.isel(record=slice(0, 4)),
        model="scratch",
        epochs=1,
        batch_size=4,
        learning_rate=1e-3,
        freeze_batchnorm=False,
        resume=tmp_path / "last.pt",
        progress=False,
    )
    assert h2["epoch"].tolist() == [1, 2]
    with pytest.raises(InvalidInputError):
        train.train_phasenet(records, model="resnet", epochs=1, progress=False)


def test_resuming_gives_the_weights_of_one_uninterrupted_run(records, tmp_path):
    kw = {"model": "scratch", "batch_size": 2, "learning_rate": 1e-3, "freeze_batchnorm": False, "seed": 3}
    torch.set_num_threads(1)
    part = records.isel(record=slice(0, 4))
    whole, h_whole = train.train_phasenet(part, epochs=2, progress=False, **kw)
    train.train_phasenet(part, epochs=1, checkpoint_dir=tmp_path, progress=False, **kw)
    resumed, h_resumed = train.train_phasenet(
        part, epochs=1, resume=tmp_path / "last.pt", progress=False, **kw
    )
    assert h_resumed["epoch"].tolist() == [1, 2]
    assert h_resumed["train_loss"].tolist() == h_whole["train_loss"].tolist()
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)

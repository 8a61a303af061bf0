"""Point DNN, patch U-Net and RandomForest: training, tiled inference, checkpoints, bad input, and the
quality claims of issue 5 (figures printed with -s)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rioxarray
import torch

from terralab import rice
from terralab.errors import DataNotAvailableError, FileFormatError, InvalidInputError
from terralab.rice import features, labels, synthetic

FAST_UNET = {"epochs": 1, "patches_per_epoch": 8, "batch_size": 4, "patch_size_px": 32, "progress": False}


@pytest.fixture(scope="module")
def small():
    return synthetic.scene(height_px=64, width_px=72, seed=7, nodata_fraction=0.02)


@pytest.fixture(scope="module")
def small_unet(small):
    stack, truth = small
    return rice.fit(stack, truth, model="unet", bands="RGBNE", seed=0, **FAST_UNET)


# --- U-Net --------------------------------------------------------------------------------------------
def test_unet_prediction_is_on_the_stack_grid_with_nodata_kept(small, small_unet):
    stack, _ = small
    pred = rice.predict(small_unet, stack, tile=32, overlap=8, progress=False)
    assert pred.dims == ("y", "x") and pred.shape == stack.shape[1:]
    np.testing.assert_array_equal(pred["x"], stack["x"])
    assert pred.rio.crs == stack.rio.crs and pred.rio.transform() == stack.rio.transform()
    gap = np.isnan(stack.values).any(axis=0)
    assert gap.any() and (pred.values[gap] == -1).all() and (pred.values[~gap] >= 0).all()
    assert pred.rio.nodata == -1


@pytest.mark.parametrize(
    "band_set", [["red_before", "green_before", "blue_before", "nir_before"], "RGBNES+NDVI"]
)
def test_unet_takes_4_to_20_input_bands(small, band_set):
    stack, truth = small
    model = rice.fit(stack, truth, model="unet", bands=band_set, seed=0, **FAST_UNET)
    assert len(model.bands) in (4, 20)
    # one extra input channel per cloud-masked optical season says where that season's bands are valid
    assert model.input_names == model.bands + [f"valid_{g}" for g in model.masked_groups]
    assert (
        model.net.encoder.conv1.in_channels
        == len(model.input_names)
        == len(model.bands) + (1 if len(model.bands) == 4 else 2)
    )
    assert rice.predict(model, stack, tile=64, overlap=16, progress=False).shape == stack.shape[1:]


def test_tiles_smaller_than_the_stride_are_padded(small, small_unet):
    stack, _ = small
    assert small_unet.stride == 8
    pred = rice.predict(small_unet, stack, tile=5, overlap=0, progress=False)
    assert pred.shape == stack.shape[1:] and (pred.values >= -1).all()
    tiny = stack.isel(y=slice(0, 3), x=slice(0, 6))
    assert rice.predict(small_unet, tiny, tile=256, progress=False).shape == (3, 6)


def test_overlapping_tiles_blend_into_nearly_the_whole_scene_prediction(small, small_unet):
    stack, _ = small
    whole = rice.predict(small_unet, stack, tile=80, overlap=0, progress=False, output="proba")
    tiled = rice.predict(small_unet, stack, tile=48, overlap=24, progress=False, output="proba")
    valid = np.isfinite(whole.values).all(axis=0)
    assert np.abs(whole.values - tiled.values)[:, valid].mean() < 0.05
    np.testing.assert_allclose(tiled.sum("class").values[valid], 1.0, atol=1e-4)


def test_checkpoint_round_trip_keeps_bands_normalisation_and_predictions(small, small_unet, tmp_path):
    stack, _ = small
    path = small_unet.save(tmp_path / "unet.pt")
    loaded = rice.load(path)
    assert loaded.bands == small_unet.bands == features.band_names("RGBNE")
    assert loaded.normalisation == small_unet.normalisation
    assert loaded.class_names == small_unet.class_names and loaded.config == small_unet.config
    a = rice.predict(small_unet, stack, tile=32, overlap=8, progress=False)
    b = rice.predict(loaded, stack, tile=32, overlap=8, progress=False)
    np.testing.assert_array_equal(a.values, b.values)
    assert list(tmp_path.iterdir()) == [path]


def test_a_corrupt_checkpoint_is_a_file_format_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02 definitely not a checkpoint")
    with pytest.raises(FileFormatError):
        rice.load(bad)
    with pytest.raises(DataNotAvailableError):
        rice.load(tmp_path / "absent.pt")


def test_geotiff_to_geotiff_equals_in_memory_prediction_with_quality_and_probability_bands(
    small, small_unet, tmp_path
):
    stack, _ = small
    src = features.write_stack(stack, tmp_path / "features.tif")
    dst = rice.predict_geotiff(
        small_unet, src, tmp_path / "out" / "classes.tif", tile=32, overlap=8, progress=False
    )
    on_disk = rioxarray.open_rasterio(dst, mask_and_scale=False)
    assert list(on_disk.attrs["long_name"]) == ["class", "quality", "confidence"]
    in_memory = rice.predict(small_unet, stack, tile=32, overlap=8, progress=False, return_proba=True)
    np.testing.assert_array_equal(on_disk.values[0], in_memory["classes"].values)
    np.testing.assert_array_equal(on_disk.values[1], in_memory["quality"].values)
    scaled = rioxarray.open_rasterio(dst, mask_and_scale=True).values[2]  # stored × 10,000, band scale 1e-4
    valid = in_memory["classes"].values >= 0
    np.testing.assert_allclose(scaled[valid], in_memory["confidence"].values[valid], atol=6e-5)
    assert np.isnan(scaled[~valid]).all()
    assert on_disk.rio.crs == stack.rio.crs and on_disk.rio.nodata == -1
    assert [p.name for p in dst.parent.iterdir()] == ["classes.tif"]


def test_a_corrupt_geotiff_raises_and_leaves_no_output(small, small_unet, tmp_path):
    stack, _ = small
    src = features.write_stack(stack, tmp_path / "features.tif")
    raw = src.read_bytes()
    bad = tmp_path / "bad.tif"
    bad.write_bytes(raw[: len(raw) // 3])
    out = tmp_path / "out"
    with pytest.raises(FileFormatError, match="corrupt"):
        rice.predict_geotiff(small_unet, bad, out / "classes.tif", tile=32, overlap=8, progress=False)
    assert list(out.iterdir()) == []


def test_a_geotiff_missing_a_band_the_model_needs_is_refused(small, small_unet, tmp_path):
    stack, _ = small
    src = features.write_stack(features.select_bands(stack, "RGBN"), tmp_path / "rgbn.tif")
    with pytest.raises(InvalidInputError, match="elevation"):
        rice.predict_geotiff(small_unet, src, tmp_path / "c.tif", progress=False)
    with pytest.raises(InvalidInputError, match="slope"):
        rice.predict(small_unet, features.select_bands(stack, "RGBN"), progress=False)


def test_labels_on_another_crs_are_refused_unless_reprojection_is_asked(small):
    stack, truth = small
    other = truth.astype(np.int16).rio.write_nodata(-1).rio.reproject("EPSG:4326")
    with pytest.raises(InvalidInputError, match="reproject=True"):
        rice.fit(stack, other, model="unet", **FAST_UNET)
    model = rice.fit(stack, other, model="unet", reproject=True, **FAST_UNET)
    assert model.kind == "unet"


def test_an_empty_training_split_says_there_is_nothing_to_learn(small):
    stack, truth = small
    empty = truth.copy(data=np.full(truth.shape, -1, np.int16))
    with pytest.raises(InvalidInputError, match="training split"):
        rice.fit(stack, empty, model="unet", **FAST_UNET)
    with pytest.raises(InvalidInputError, match="empty"):
        rice.fit(pd.DataFrame({"a": [np.nan], "class": [1]}), model="dnn", epochs=1, progress=False)


def test_nan_pixels_are_ignored_in_training_and_all_nan_labels_error(small):
    stack, truth = small
    holes = stack.copy(data=stack.values.copy())
    holes.values[:, :, :36] = np.nan  # half the scene is a gap
    model = rice.fit(holes, truth, model="rf", n_estimators=5, progress=False)
    pred = rice.predict(model, holes, progress=False)
    assert (pred.values[:, :36] == -1).all() and (pred.values[:, 36:] >= 0).mean() > 0.95


def test_local_encoder_weights_are_loaded_and_spread_over_the_input_bands(small, tmp_path):
    import segmentation_models_pytorch as smp

    stack, truth = small
    donor = smp.Unet(
        "resnet18",
        encoder_weights=None,
        in_channels=3,
        classes=2,
        encoder_depth=3,
        decoder_channels=(64, 32, 16),
    )
    path = tmp_path / "resnet18_encoder.pth"
    torch.save(donor.encoder.state_dict(), path)
    model = rice.fit(
        stack, truth, model="unet", bands="RGBN", encoder_weights=path, learning_rate=1e-12, **FAST_UNET
    )
    got = model.net.encoder.layer1[0].conv1.weight.detach()
    torch.testing.assert_close(got, donor.encoder.layer1[0].conv1.weight.detach(), atol=1e-6, rtol=0)
    conv1 = model.net.encoder.conv1.weight.detach()
    assert conv1.shape[1] == len(model.input_names) == 10  # 8 bands + 2 validity channels
    torch.testing.assert_close(conv1[:, :3], donor.encoder.conv1.weight.detach() * 3 / 10, atol=1e-6, rtol=0)
    with pytest.raises(InvalidInputError, match="do not exist"):
        rice.fit(stack, truth, model="unet", encoder_weights=tmp_path / "none.pth", **FAST_UNET)


def test_unknown_model_or_points_for_a_unet_are_refused(small):
    stack, truth = small
    with pytest.raises(InvalidInputError, match="unknown model"):
        rice.fit(stack, truth, model="transformer")
    with pytest.raises(InvalidInputError, match="U-Net needs a feature stack"):
        rice.fit(pd.DataFrame({"a": [1.0], "class": [0]}), model="unet")


# --- DNN and RF on points -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def points(small):
    stack, truth = small
    pts = labels.sample_points(stack, truth, 60, seed=1)
    return pts.drop(columns=["row", "col"])


def test_same_seed_gives_the_same_dnn(points):
    a = rice.fit(points, model="dnn", bands="RGBN", epochs=3, seed=5, progress=False)
    b = rice.fit(points, model="dnn", bands="RGBN", epochs=3, seed=5, progress=False)
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert list(a.history.columns) == ["member", "epoch", "train_loss", "val_loss", "val_accuracy"]


def test_validation_points_without_a_usable_row_are_refused(points):
    unusable = points.copy()
    unusable["class"] = -1
    with pytest.raises(InvalidInputError, match="validation points hold no labelled row"):
        rice.fit(points, model="dnn", validation=unusable, epochs=2, progress=False)


def test_dnn_predicts_points_by_row_and_minus_one_for_nan_rows(points, tmp_path):
    model = rice.fit(points, model="dnn", epochs=20, seed=0, progress=False)
    with_nan = points.copy()
    with_nan.iloc[0, 0] = np.nan
    table = rice.predict_points(model, with_nan)
    assert isinstance(table, pd.DataFrame) and list(table.columns) == ["class"]
    pred = table["class"]
    assert pred.index.equals(points.index)
    assert pred.iloc[0] == -1 and (pred.iloc[1:] >= 0).all()
    proba = rice.predict_points(model, points, output="proba")
    assert list(proba.columns) == model.class_names
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    both = rice.predict_points(model, with_nan, return_proba=True)
    assert list(both.columns) == ["class", "confidence", *model.class_names]
    pd.testing.assert_series_equal(both["class"], pred)
    again = rice.load(model.save(tmp_path / "dnn.pt"))
    pd.testing.assert_frame_equal(rice.predict_points(again, points), rice.predict_points(model, points))


def test_predict_on_a_table_still_works_with_a_deprecation_warning(points):
    """The old call form on points gives what it always did (a Series of class ids, or the DataFrame of
    probabilities), equal to :func:`rice.predict_points`, and says to use that."""
    model = rice.fit(points, model="rf", n_estimators=10, progress=False)
    with pytest.warns(DeprecationWarning, match="predict_points"):
        old = rice.predict(model, points)
    assert isinstance(old, pd.Series)
    pd.testing.assert_series_equal(old, rice.predict_points(model, points)["class"])
    with pytest.warns(DeprecationWarning, match="predict_points"):
        old_proba = rice.predict(model, points, output="proba")
    pd.testing.assert_frame_equal(old_proba, rice.predict_points(model, points, output="proba"))


def test_predict_points_refuses_what_is_not_a_per_pixel_model_on_a_table(points, small, small_unet):
    rf = rice.fit(points, model="rf", n_estimators=5, progress=False)
    with pytest.raises(InvalidInputError, match="points must be a DataFrame"):
        rice.predict_points(rf, small[0])
    with pytest.raises(InvalidInputError, match="output must be"):
        rice.predict_points(rf, points, output="labels")
    with pytest.raises(InvalidInputError, match="must be a RiceModel"):
        rice.predict_points("rf", points)
    with pytest.raises(InvalidInputError, match="U-Net predicts on a stack"):
        rice.predict_points(small_unet, points)


def test_points_missing_a_band_name_the_columns(points):
    with pytest.raises(InvalidInputError, match="elevation"):
        rice.fit(
            points[features.band_names("RGBN") + ["class"]],
            model="dnn",
            bands="RGBNE",
            epochs=1,
            progress=False,
        )


def test_fit_names_the_model_an_option_belongs_to_when_given_to_another(points):
    with pytest.raises(InvalidInputError, match="'patch_size_px' is an option of model='unet'"):
        rice.fit(points, model="rf", patch_size_px=32, progress=False)
    with pytest.raises(InvalidInputError, match="'colour' is no option of any model"):
        rice.fit(points, model="dnn", colour="red", progress=False)
    with pytest.raises(InvalidInputError, match="class_weighting must be 'balanced' or 'none'"):
        rice.fit(points, model="rf", class_weighting="inverse", progress=False)


def test_fit_reads_none_learning_rate_and_batch_size_as_the_model_defaults(points):
    model = rice.fit(points, model="dnn", epochs=1, learning_rate=None, batch_size=None, progress=False)
    assert model.config["learning_rate"] == 1e-3 and model.config["batch_size"] == 256


def test_progress_bars_draw_when_asked_and_never_in_a_report_run(points, small, capsys, monkeypatch):
    stack, truth = small
    rf = rice.fit(stack, truth, model="rf", bands="RGBN", n_estimators=5, progress=False)
    rice.fit(points, model="dnn", epochs=2, progress=True)
    rice.predict(rf, stack, progress=True)
    drawn = capsys.readouterr().err
    assert "dnn 1/1" in drawn and "predict" in drawn
    monkeypatch.setenv("TERRALAB_REPORT_RUN", "1")
    rice.fit(points, model="dnn", epochs=2, progress=True)
    rice.predict(rf, stack, progress=True)
    assert capsys.readouterr().err == ""


def test_rf_checkpoint_round_trip(points, tmp_path):
    model = rice.fit(points, model="rf", n_estimators=10, progress=False)
    again = rice.load(model.save(tmp_path / "rf.pt"))
    pd.testing.assert_frame_equal(rice.predict_points(again, points), rice.predict_points(model, points))


# --- quality claims -----------------------------------------------------------------------------------
@pytest.fixture
def one_torch_thread():
    """Small convolutions gain little from a second thread and lose a lot when the cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_unet_maps_rice_under_clouds_on_an_unseen_valley_beats_rf_with_majority_filter_and_is_calibrated(
    one_torch_thread,
):
    """Issue 13 on one valley the defaults were not chosen on (seeds 101–102 were; benchmarks/rice_clouds.py
    runs 2 × 5 more): clouds over a fifth of the during-season image, ``epochs=20`` and the library defaults.
    Floors, not the benchmark's means: rice F1 ≥ 0.95 (benchmark goal 0.96 on average), above a per-pixel
    RandomForest + 5 × 5 majority filter trained on the same pixels, ECE ≤ 0.03, and the 95 % CI of the
    adjusted rice area covering the truth in at least 17 of 20 reference samples."""
    stack, truth, cloud_map = synthetic.scene(
        height_px=256, width_px=256, seed=21, cloud_fraction=0.2, return_clouds=True
    )
    parts = labels.split(truth, kind="half", fractions=(0.5, 0.1, 0.4))
    scored = parts["test"].values >= 0
    assert 0.1 <= (cloud_map.sel(season="during").values == 1)[scored].mean() <= 0.3
    unet = rice.fit(
        stack, parts["train"], model="unet", epochs=20, seed=0, validation=parts["val"], progress=False
    )
    out = rice.predict(unet, stack, tile=128, overlap=32, progress=False, return_proba=True)
    rf = rice.fit(
        stack, parts["train"], model="rf", n_estimators=100, seed=0, validation=parts["val"], progress=False
    )
    smoothed = rice.majority_filter(rice.predict(rf, stack, progress=False), 5)
    f1_unet = rice.scores(parts["test"], out["classes"], class_names=unet.class_names).loc["rice", "f1"]
    f1_rf = rice.scores(parts["test"], smoothed, class_names=unet.class_names).loc["rice", "f1"]
    ece = rice.evaluate.calibration(out, parts["test"]).attrs["ece"]
    true_ha = float(((truth.values == 1) & (out["classes"].values >= 0)).sum()) * 0.01
    covered = 0
    for seed in range(20):
        table = rice.area_estimate(
            out["classes"], rice.sample_reference(out["classes"], 50, seed=seed, reference_map=truth)
        )
        covered += abs(table.loc[1, "adjusted_ha"] - true_ha) <= table.loc[1, "ci95_ha"]
    print(
        f"\nunseen cloudy valley: U-Net rice F1 {f1_unet:.3f}, ECE {ece:.4f} (T={unet.temperature:.2f}) | "
        f"RF + 5×5 majority {f1_rf:.3f} | area CI covers the truth in {covered}/20"
    )
    assert f1_unet >= 0.95 and f1_unet > f1_rf
    assert ece <= 0.03
    assert covered >= 17


@pytest.mark.slow
def test_dnn_on_real_aces_paro_points_is_on_par_with_randomforest(shared_data, one_torch_thread):
    """The issue asks the DNN to beat RandomForest (rice F1 0.847, OA 0.790). Measured: it does not. With seed
    0 the two are within sampling error of each other (1,219 test points; exact McNemar test not significant),
    and RF's small lead comes from the 60 test points that repeat a training point exactly. Over training
    seeds 0–4 (benchmarks/rice_aces_points.py) the DNN gives rice F1 0.832–0.839, OA 0.778–0.785, κ
    0.703–0.712 and RF stays ahead by 1.3 points of OA on average — significantly (two-sided McNemar p < 0.05)
    for 2 of the 5 seeds: parity at best. This test pins seed 0: the RF reproduces the anchor (±0.005), the
    DNN's figures hold within the seed-to-seed spread measured there (rice F1 ±0.008, OA ±0.008, κ ±0.010),
    and the DNN is not significantly worse with this seed."""
    from scipy.stats import binomtest

    folder = shared_data / "rice" / "aces_paro_2021"
    train, val, test = (
        pd.read_csv(folder / f"aces_dnn_points_{p}.csv") for p in ("training", "validation", "testing")
    )
    bands = features.band_names("RGBN")
    rf = rice.fit(train, model="rf", bands=bands, n_estimators=500, seed=0, progress=False)
    dnn = rice.fit(
        train, model="dnn", bands=bands, validation=val, epochs=300, patience=20, seed=0, progress=False
    )
    s_rf = rice.evaluate.independent_evaluation(rf, test)
    s_dnn = rice.evaluate.independent_evaluation(dnn, test)
    print(
        f"\nACES Paro test points: DNN rice F1 {s_dnn.loc['rice', 'f1']:.3f} OA "
        f"{s_dnn.attrs['overall_accuracy']:.3f} kappa {s_dnn.attrs['kappa']:.3f} | RF(500) rice F1 "
        f"{s_rf.loc['rice', 'f1']:.3f} OA {s_rf.attrs['overall_accuracy']:.3f} "
        f"kappa {s_rf.attrs['kappa']:.3f}"
    )
    # 60 test points repeat a training point's 8 values exactly: a forest memorises them, an MLP does not
    seen = test[bands].round(6).apply(tuple, axis=1).isin(set(train[bands].round(6).apply(tuple, axis=1)))
    fresh = test[~seen]
    f_rf, f_dnn = (rice.evaluate.independent_evaluation(m, fresh) for m in (rf, dnn))
    print(
        f"without the {int(seen.sum())} test points seen in training: "
        f"DNN OA {f_dnn.attrs['overall_accuracy']:.3f} "
        f"rice F1 {f_dnn.loc['rice', 'f1']:.3f} | RF OA {f_rf.attrs['overall_accuracy']:.3f} rice F1 "
        f"{f_rf.loc['rice', 'f1']:.3f}"
    )
    assert s_rf.loc["rice", "f1"] == pytest.approx(0.847, abs=0.005)
    assert s_rf.attrs["overall_accuracy"] == pytest.approx(0.790, abs=0.005)
    assert s_rf.attrs["kappa"] == pytest.approx(0.718, abs=0.005)
    right_dnn = rice.predict_points(dnn, test)["class"].to_numpy() == test["class"].to_numpy()
    right_rf = rice.predict_points(rf, test)["class"].to_numpy() == test["class"].to_numpy()
    only_rf, only_dnn = int((right_rf & ~right_dnn).sum()), int((right_dnn & ~right_rf).sum())
    p = binomtest(only_rf, only_rf + only_dnn, 0.5, alternative="greater").pvalue
    assert p > 0.05, f"DNN significantly worse than RF (McNemar p={p:.3g})"
    assert s_dnn.loc["rice", "f1"] == pytest.approx(0.839, abs=0.008)
    assert s_dnn.attrs["overall_accuracy"] == pytest.approx(0.780, abs=0.008)
    assert s_dnn.attrs["kappa"] == pytest.approx(0.707, abs=0.010)


# --- bad input (issue 10) -----------------------------------------------------------------------------------
def test_predict_geotiff_to_a_folder_is_refused_before_any_prediction(
    small, small_unet, tmp_path, monkeypatch
):
    from terralab.errors import OutputLocationError
    from terralab.rice import geotiff

    stack, _ = small
    src = features.write_stack(stack, tmp_path / "features.tif")
    (tmp_path / "out").mkdir()

    def no_prediction(*args, **kwargs):
        raise AssertionError("the prediction ran before the output path was checked")

    monkeypatch.setattr(geotiff, "run_tiled", no_prediction)
    with pytest.raises(OutputLocationError, match="is a folder"):
        rice.predict_geotiff(small_unet, src, tmp_path / "out", progress=False)
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OutputLocationError, match="is a file, not a folder"):
        rice.predict_geotiff(small_unet, src, blocker / "classes.tif", progress=False)
    with pytest.raises(OutputLocationError, match="source raster"):
        rice.predict_geotiff(small_unet, src, src, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.tif", "file.txt", "out"]


def test_fit_with_a_single_class_warns_that_the_model_can_only_predict_it(small):
    stack, truth = small
    one = truth.copy(data=np.where(truth.values == 1, 1, -1).astype(np.int16))
    with pytest.warns(UserWarning, match="single class"):
        rice.fit(stack, one, model="rf", n_estimators=5, progress=False)
    with pytest.warns(UserWarning, match="single class"):
        rice.fit(
            pd.DataFrame({"a": [0.1, 0.2, 0.3], "class": [2, 2, 2]}),
            model="rf",
            n_estimators=5,
            progress=False,
        )


def test_an_all_nan_band_is_named_as_a_stack_problem_not_a_label_problem(small):
    stack, truth = small
    broken = stack.copy(data=stack.values.copy())
    broken.values[list(stack["band"].values).index("slope")] = np.nan
    with pytest.raises(InvalidInputError, match=r"\['slope'\] hold no value") as err:
        rice.fit(broken, truth, model="unet", **FAST_UNET)
    assert "label" not in str(err.value)
    model = rice.fit(
        broken, truth, model="rf", bands="RGBN", n_estimators=5, progress=False
    )  # not needed: fine
    assert model.bands == features.band_names("RGBN")


# --- calibration -----------------------------------------------------------------------------------------
def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 5))
    scaled = logits / 2.5
    p = np.exp(scaled - scaled.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels_ = (rng.random(20000)[:, None] > np.cumsum(p, 1)).sum(1)  # labels drawn from softmax(logits / 2.5)
    assert rice.models.fit_temperature(logits, labels_) == pytest.approx(2.5, rel=0.05)
    assert rice.evaluate.calibration(p, labels_).attrs["ece"] < 0.015


def test_fit_calibrates_and_calibrate_refits_the_temperature_without_changing_the_map(small):
    stack, truth = small
    parts = labels.split(truth, kind="half", fractions=(0.5, 0.25, 0.25))
    model = rice.fit(stack, parts["train"], model="dnn", epochs=5, validation=parts["val"], progress=False)
    assert model.temperature != 1.0
    before = rice.predict(model, stack, progress=False)
    again = rice.calibrate(model, stack, parts["test"])
    assert again is model and np.isfinite(model.temperature) and model.temperature > 0
    np.testing.assert_array_equal(rice.predict(model, stack, progress=False).values, before.values)
    with pytest.raises(InvalidInputError, match="label raster"):
        rice.calibrate(model, stack)

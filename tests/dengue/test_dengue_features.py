"""Radiomics matrices and features against values computed by hand; ViT embeddings (random init or local
weights)."""

import numpy as np
import pytest
import xarray as xr

from terralab.dengue import features as F
from terralab.dengue import radiomics as R
from terralab.dengue import synthetic as S
from terralab.errors import InvalidInputError

# 3 x 3 test image, grey levels 1..3
IMG = np.array([[1, 1, 2], [1, 2, 2], [3, 3, 3]])


def test_glcm_at_0_degrees_matches_the_hand_count():
    # horizontal neighbour pairs: (1,1) (1,2) | (1,2) (2,2) | (3,3) (3,3), each counted both ways
    expected = np.array([[2, 2, 0], [2, 2, 0], [0, 0, 4]])
    np.testing.assert_array_equal(R.glcm_matrices(IMG, 3)[:, :, 0], expected)


def test_glcm_features_match_the_hand_computation():
    P = np.array([[2, 2, 0], [2, 2, 0], [0, 0, 4]], dtype=float)
    f = R.glcm_features(P)
    # px = py = (1/3, 1/3, 1/3): mu_x = mu_y = 2; i + j - 4 is -2 on (1,1), -1 on (1,2),(2,1), 0 on (2,2), 2
    # on (3,3)
    assert f["JointAverage"] == pytest.approx(2.0)
    assert f["ClusterTendency"] == pytest.approx((4 * 2 + 1 * 4 + 4 * 4) / 12)  # 28/12
    assert f["ClusterShade"] == pytest.approx((-8 * 2 - 1 * 4 + 8 * 4) / 12)  # 1
    assert f["ClusterProminence"] == pytest.approx((16 * 2 + 1 * 4 + 16 * 4) / 12)  # 100/12
    assert f["Idm"] == pytest.approx((2 + 2 + 4) / 12 + (2 + 2) / 12 / 2)  # 10/12
    # Q = [[.5,.5,0],[.5,.5,0],[0,0,1]] has eigenvalues 1, 1, 0: MCC = sqrt(1)
    assert f["MCC"] == pytest.approx(1.0)


def test_mcc_of_a_correlated_two_level_matrix():
    # p = [[.4,.1],[.1,.4]]: Q = [[.68,.32],[.32,.68]], eigenvalues 1 and 0.36 -> MCC 0.6
    assert R.glcm_features(np.array([[4.0, 1.0], [1.0, 4.0]]))["MCC"] == pytest.approx(0.6)


def test_run_length_matrix_at_0_degrees_matches_the_hand_count():
    # rows: [1 1][2] | [1][2 2] | [3 3 3]
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[0, 0] = expected[1, 0] = expected[1, 1] = expected[2, 2] = 1
    np.testing.assert_array_equal(R.glrlm_matrix(IMG, 3, (0, 1)), expected)
    # columns: [1 1][3] | [1][2][3] | [2 2][3]
    R90 = R.glrlm_matrix(IMG, 3, (-1, 0))
    assert R90.sum() == 7 and R90[0, 1] == 1 and R90[2, 0] == 3


def test_run_counts_per_direction_and_run_percentage_match_the_hand_count():
    # 0°: 5 runs, 45° (anti-diagonals): 7, 90°: 7, 135° (diagonals): 9
    np.testing.assert_array_equal(R.run_counts(IMG), [5, 7, 7, 9])
    assert [R.glrlm_matrix(IMG, 3, d).sum() for d in R.DIRECTIONS] == [5, 7, 7, 9]
    feats = R.tile_radiomics(IMG.astype(float), 3, (0.5, 3.5))
    assert feats["RunPercentage"] == pytest.approx(28 / 36)
    assert R.glrlm_features(R.glrlm_matrix(IMG, 3), 9)["ShortRunEmphasis"] == pytest.approx(
        (1 + 1 / 4 + 1 + 1 / 4 + 1 / 9) / 5
    )


def test_size_zone_matrix_uses_8_connected_zones():
    Z = R.glszm_matrix(IMG, 3)
    assert Z[:, 2].tolist() == [1, 1, 1] and Z.sum() == 3  # three zones of 3 pixels
    f = R.glszm_features(Z, 9)
    assert f["ZonePercentage"] == pytest.approx(3 / 9) and f["SmallAreaEmphasis"] == pytest.approx(1 / 9)
    # a 2 x 2 checkerboard: diagonal neighbours join, so one zone of 2 per level
    Z2 = R.glszm_matrix(np.array([[1, 2], [2, 1]]), 2)
    assert Z2.tolist() == [[0, 1, 0, 0], [0, 1, 0, 0]]


def test_first_order_features_match_the_hand_computation():
    f = R.first_order_features(IMG)
    assert f["Skewness"] == pytest.approx(0.0) and f["MeanAbsoluteDeviation"] == pytest.approx(6 / 9)
    g = R.first_order_features(np.array([0.0, 0.0, 0.0, 4.0]))
    # mean 1, deviations -1,-1,-1,3: m2 = 3, m3 = 6 -> skewness 6 / 3^1.5
    assert g["Skewness"] == pytest.approx(6 / 3**1.5) and g["MeanAbsoluteDeviation"] == pytest.approx(1.5)


def test_discretize_uses_fixed_bins_and_clips():
    lv = R.discretize(np.array([-1.0, 0.0, 0.49, 0.5, 0.99, 1.0, 5.0]), 2, (0.0, 1.0))
    assert lv.tolist() == [1, 1, 1, 2, 2, 2, 2]
    with pytest.raises(InvalidInputError):
        R.discretize(np.zeros(3), 4, (1.0, 1.0))


def test_radiomics_features_give_the_nine_denguenet_features_per_tile():
    cube = S.synthetic_s2_cube(3, size_px=16, n_tiles=2, seed=0)["clear"]
    rad = R.radiomics_features(cube, n_tiles=2, n_levels=8)
    assert rad.dims == ("week", "tile", "radiomics_feature") and rad.shape == (3, 4, 9)
    assert list(rad["radiomics_feature"].values) == list(R.RADIOMICS_FEATURES)
    assert np.isfinite(rad).all()
    flat = cube.copy()
    flat.loc[{"band": "B12"}] = 0.2
    rf = R.radiomics_features(flat, n_tiles=2, value_range=(0.0, 1.0))
    assert np.allclose(rf.sel(radiomics_feature="MCC"), 1.0) and np.allclose(
        rf.sel(radiomics_feature="Idm"), 1.0
    )


def test_radiomics_on_real_b12(shared_data):
    from terralab.dengue.imagery import read_reference_scenes

    scenes = read_reference_scenes(
        shared_data / "dengue/sentinel2_samples/slovenia_eolearn/REFERENCE_SCENES.npy"
    )
    rad = R.radiomics_features(scenes, n_tiles=4)
    assert rad.shape == (5, 16, 9) and np.isfinite(rad).all()
    r = {k: rad.sel(radiomics_feature=k).to_numpy() for k in R.RADIOMICS_FEATURES}
    assert ((r["Idm"] > 0) & (r["Idm"] <= 1)).all() and ((r["MCC"] >= 0) & (r["MCC"] <= 1)).all()
    assert ((r["RunPercentage"] > 0) & (r["RunPercentage"] <= 1)).all()
    assert ((r["JointAverage"] >= 1) & (r["JointAverage"] <= 16)).all() and (r["ClusterTendency"] >= 0).all()
    # the fast run count equals the full run-length matrices on a real tile
    lv = R.discretize(scenes.sel(band="B12")[2, :25, :25].to_numpy(), 16, tuple(rad.attrs["value_range"]))
    np.testing.assert_array_equal(R.run_counts(lv), [R.glrlm_matrix(lv, 16, d).sum() for d in R.DIRECTIONS])


def test_vit_random_init_depends_only_on_the_seed():
    cube = S.synthetic_s2_cube(4, size_px=16, seed=0)["clear"]
    a = F.vit_embeddings(cube, model_name="vit_micro", image_size=32, seed=1)
    b = F.vit_embeddings(cube, model_name="vit_micro", image_size=32, seed=1)
    c = F.vit_embeddings(cube, model_name="vit_micro", image_size=32, seed=2)
    assert a.dims == ("week", "vit_feature") and a.shape == (4, 64)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.attrs["weights"] == "random initialisation (seed=1)"


def test_vit_loads_local_weights_for_a_timm_model(tmp_path):
    import torch

    cube = S.synthetic_s2_cube(2, size_px=16, seed=0)["clear"]
    model = F.build_vit("vit_tiny_patch16_224", seed=7)
    path = tmp_path / "vit_tiny.pth"
    torch.save(model.state_dict(), path)
    saved = F.vit_embeddings(cube, model=model)
    loaded = F.vit_embeddings(cube, model_name="vit_tiny_patch16_224", weights_path=path, seed=0)
    assert loaded.shape == (2, 192)
    np.testing.assert_allclose(loaded, saved, rtol=1e-5, atol=1e-5)
    assert loaded.attrs["weights"].startswith("local file")


def test_image_features_stack_vit_radiomics_and_tile_classes_per_location():
    cubes = S.synthetic_s2_cubes(12, [5001, 76001], size_px=16, n_tiles=2, seed=0)
    ds = F.image_features(
        cubes, train_end=cubes["week"].values[7], n_tiles=2, vit_model="vit_micro", image_size=32
    )
    assert isinstance(ds, xr.Dataset)
    assert ds["vit"].dims == ("location", "week", "vit_feature")
    assert ds["radiomics"].shape == (2, 12, 4, 9) and ds["tile_class"].shape == (2, 12, 2, 2)
    assert ds.attrs["vit_weights"].startswith("random")


def test_feature_pipeline_runs_on_real_sentinel2_scenes(shared_data):
    """The five real L1C scenes as five weeks of one city: tiles replaced, then ViT and radiomics features."""
    import pandas as pd

    from terralab.dengue.imagery import S2_BANDS, read_reference_scenes

    scenes = read_reference_scenes(
        shared_data / "dengue/sentinel2_samples/slovenia_eolearn/REFERENCE_SCENES.npy"
    )
    weeks = pd.date_range("2018-09-15", periods=5, freq="W-SAT", name="week")
    cube = scenes.sel(band=list(S2_BANDS)).rename(time="week").assign_coords(week=weeks)
    ds = F.image_features(cube.expand_dims(location=[5001]), n_tiles=4, vit_model="vit_micro", image_size=64)
    assert ds["vit"].shape == (1, 5, 64) and np.isfinite(ds["vit"]).all()
    assert ds["radiomics"].shape == (1, 5, 16, 9) and np.isfinite(ds["radiomics"]).all()
    assert (ds["tile_class"].sel(location=5001)[0] == 1).all()  # the hazy scene is replaced tile by tile

"""The last step of the detector: each vehicle's speed re-read by slant stacking the strain image
(:mod:`terralab.das.restack`)."""

import numpy as np
import pytest

from terralab import das
from terralab.das.restack import RESTACK_RANGE, stacked_speeds
from terralab.errors import InvalidInputError

T = np.arange(0.0, 40.0, 0.125)
XB = np.arange(0.0, 300.0, 5.0)
X_MID = 150.0


def vehicle(t_mid, speed_kmh, direction=1, amp=8.0, lobe_m=8.0, width_m=3.0):
    """Two opposite-signed strain lobes ``lobe_m`` either side of a vehicle's centre (time x channel)."""
    v = speed_kmh / 3.6
    arrive = t_mid + direction * (XB - X_MID) / v

    def lobe(dx):
        return np.exp(-0.5 * ((T[:, None] - arrive - dx / v) / (width_m / v)) ** 2)

    return amp * (lobe(-lobe_m) - lobe(lobe_m))


def rows(t_mid, speed_kmh, direction=1, x_lo=0.0, x_hi=295.0):
    return {
        "t_mid": [t_mid],
        "speed_kmh": [speed_kmh],
        "direction": [direction],
        "x_lo": [x_lo],
        "x_hi": [x_hi],
    }


VALID = np.ones(len(XB), dtype=bool)


@pytest.mark.parametrize("fitted", [42.0, 47.0, 56.0, 61.0])
@pytest.mark.parametrize("direction", [1, -1])
def test_a_mis_fitted_speed_is_re_read_from_the_stack(fitted, direction):
    rng = np.random.default_rng(0)
    z = vehicle(20.0, 50.0, direction) + rng.normal(0.0, 1.0, (len(T), len(XB)))
    speed = stacked_speeds(rows(20.0, fitted, direction), z, T, XB, VALID, X_MID, das.DetectParams())
    assert speed[0] == pytest.approx(50.0, abs=1.0)


def test_a_stronger_neighbour_of_another_speed_does_not_capture_the_vehicle():
    # a truck three times as strong, 20 % faster, 2 s behind: its own peak is higher, but the vehicle's is
    # the one its fitted speed climbs to
    z = vehicle(20.0, 50.0) + vehicle(22.0, 60.0, amp=24.0)
    speed = stacked_speeds(rows(20.0, 53.0), z, T, XB, VALID, X_MID, das.DetectParams())
    assert speed[0] == pytest.approx(50.0, abs=1.0)


def test_a_signature_far_outside_the_range_leaves_the_speed_near_the_fit():
    # the signature moves at 90 km/h, far beyond 25 % of the fit: nothing to climb to
    z = vehicle(20.0, 90.0)
    speed = stacked_speeds(rows(20.0, 50.0), z, T, XB, VALID, X_MID, das.DetectParams())
    assert 90.0 > 50.0 * RESTACK_RANGE and speed[0] == pytest.approx(50.0, abs=2.0)


def test_a_climb_that_ends_at_the_edge_of_the_range_keeps_the_fitted_speed():
    from terralab.das.restack import _climb

    # the climb goes to the nearest peak, not the highest; a power that rises to the range's edge has none
    assert _climb(np.array([0.0, 3.0, 1.0, 2.0, 1.5, 4.0, 9.0]), 3) == 3
    assert _climb(np.array([0.0, 3.0, 1.0, 0.5, 1.5, 4.0, 9.0]), 3) == 6
    z = vehicle(20.0, 80.0)
    speed = stacked_speeds(rows(20.0, 50.0), z, T, XB, VALID, X_MID, das.DetectParams())
    assert speed[0] == 50.0


def test_the_stacked_speed_stays_inside_the_site_speed_range():
    z = vehicle(20.0, 50.0)
    p = das.DetectParams(speed_max_kmh=48.0)
    assert stacked_speeds(rows(20.0, 46.0), z, T, XB, VALID, X_MID, p)[0] <= 48.0


def test_off_too_few_channels_and_no_tracks_leave_speeds_unchanged():
    z = vehicle(20.0, 50.0)
    p = das.DetectParams()
    off = das.DetectParams(restack_m=0.0)
    assert stacked_speeds(rows(20.0, 56.0), z, T, XB, VALID, X_MID, off)[0] == 56.0
    # three live bins along the track
    assert stacked_speeds(rows(20.0, 56.0, x_lo=140.0, x_hi=150.0), z, T, XB, VALID, X_MID, p)[0] == 56.0
    empty = {k: [] for k in rows(0.0, 1.0)}
    assert len(stacked_speeds(empty, z, T, XB, VALID, X_MID, p)) == 0


def test_restack_m_must_not_be_negative():
    with pytest.raises(InvalidInputError, match="restack_m"):
        das.DetectParams(restack_m=-1.0).validate()


@pytest.mark.parametrize("simulator", ["halfspace", "bump"])
def test_re_read_speeds_are_closer_to_the_truth_on_unseen_scenes(simulator):
    """Speed MAE of matched vehicles with and without the step, two test scenes per site (seeds 500-501)."""
    errors = {0.0: [], 20.0: []}
    for site in ("highway", "urban"):
        for seed in (500, 501):
            data, truth = das.synthetic.random_scene(simulator, site, seed)
            for restack_m in errors:
                det = das.detect_vehicles(data, site=site, classify=False, restack_m=restack_m)
                pairs = das.match(det, truth)
                true_kmh = truth.loc[pairs["truth_index"], "speed_kmh"].to_numpy()
                errors[restack_m] += list(np.abs(pairs["speed_err"].to_numpy()) * true_kmh)
    before, after = np.mean(errors[0.0]), np.mean(errors[20.0])
    print(f"{simulator}: speed MAE {before:.2f} -> {after:.2f} km/h")
    assert after < 0.85 * before


def test_a_speed_the_re_read_moves_by_more_than_5_percent_is_flagged_unsure():
    import pandas as pd

    from terralab.das.restack import UNSURE_CHANGE, reread_speeds

    z = vehicle(20.0, 50.0) + vehicle(32.0, 80.0)
    table = pd.DataFrame(
        {
            "t_mid": [20.0, 32.0],
            "speed_kmh": [56.0, 80.5],
            "direction": [1, 1],
            "x_lo": [0.0, 0.0],
            "x_hi": [295.0, 295.0],
            "flags": ["peeled", "near"],
        }
    )
    reread_speeds(table, z, T, XB, VALID, X_MID, das.DetectParams())
    assert table["speed_kmh"].tolist() == pytest.approx([50.0, 80.0], abs=1.0)
    assert 56.0 / 50.0 - 1 > UNSURE_CHANGE > 80.5 / 80.0 - 1
    # in the order of das.detect.FLAGS, the flags there before kept
    assert table["flags"].tolist() == ["peeled,speed_unsure", "near"]
    assert set(table["flags"][0].split(",")) <= set(das.detect.FLAGS)
    bare = table.drop(columns="flags").assign(speed_kmh=[56.0, 80.5])
    reread_speeds(bare, z, T, XB, VALID, X_MID, das.DetectParams())
    assert "flags" not in bare and bare["speed_kmh"][0] == pytest.approx(50.0, abs=1.0)

"""Detector settings: :class:`DetectParams`, per-site speed ranges, the settings chosen on development scenes.

Plain data (no numpy work), shared by :mod:`terralab.das.detect`, the streaming path and the evaluation
helpers.

Examples
--------
>>> from terralab.das.params import DetectParams, resolve_params
>>> resolve_params(None, {"site": "urban"}).speed_max_kmh
80.0
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import InvalidInputError

__all__ = [
    "CHOSEN",
    "FLAGS",
    "KMH",
    "LOBE_POLARITY",
    "PEEL_SITES",
    "RESPLIT_ROUNDS",
    "SITES",
    "SPEEDUP_SHARE",
    "TRAM_SITES",
    "VEHICLE_COLUMNS",
    "DetectParams",
    "has_flag",
    "resolve_params",
    "set_flag",
    "site_defaults",
]

KMH = 1.0 / 3.6
VEHICLE_COLUMNS = [
    "vehicle_id",
    "time",
    "speed_kmh",
    "direction",
    "vehicle_class",
    "score",
    "p_truck",
    "t_start",
    "t_end",
    "distance_start_m",
    "distance_end_m",
    "coverage",
    "snr",
    "speed_change",
    "flags",
]
#: Per-site speed ranges (km/h): a street record must not yield motorway speeds, a motorway not walking pace.
SITES = {
    "any": (8.0, 160.0),
    "highway": (30.0, 160.0),
    "bridge": (8.0, 160.0),
    "urban": (5.0, 80.0),
}
#: Sites where trams may run (``trams=True`` unless given).
TRAM_SITES = ("urban",)
#: Sites where the second pass (:mod:`terralab.das.peel`) is on unless ``peel_sigma`` is given, at this
#: ``peel_sigma``: a motorway's platoons drive at one speed in lanes, the case its single-pulse model fits.
#: Streets too since the detector of ``merge_speed_change``: its gain there held on fresh seeds (on an earlier
#: detector it had not: buses', trucks' and trams' axle groups became false tracks; see ``peel_sigma``).
PEEL_SITES = dict.fromkeys(("highway", "urban"), 3.5)
#: Smallest sign agreement (:func:`~terralab.das.tracks.track_polarity`) of each of two tracks for
#: ``lobe_merge`` to call them centre and lobe (and for ``pair_merge_m`` to call them two lobes of one sign);
#: a track below it has no consistent sign (``incoherent_speed_change``).
LOBE_POLARITY = 0.3
#: A track may need a vehicle to speed up by at most this share of ``max_accel_ms2`` (which bounds braking):
#: tyre friction limits braking to about 1 g, engine power limits speeding up to far less (0-100 km/h in 6 s
#: is 4.6 m/s^2, a sports car's; at highway speed air drag takes most of the power). The most a true track
#: needed on 20 development scenes per simulator and site was 4.7 m/s^2 (fit noise at 135 km/h; braking
#: 4.9); a line through the real bridge record's span blocks needed 9.55 (a 152 km/h "vehicle" at
#: ``pulse_m`` x 1.2). 0.6, i.e. 6 m/s^2 at the default: a physical bound with a margin, not tuned.
SPEEDUP_SHARE = 0.6
#: Largest number of extra tracks one DBSCAN cluster of Hough segments may give (``resplit_s``).
RESPLIT_ROUNDS = 3
#: Quality flags a vehicle may carry (comma-separated in the ``flags`` column).
FLAGS = {
    "merged": "two or more parallel tracks explained by one vehicle's length were merged into this one",
    "partial": "seen on less than 90 % of the section (entered, left or was hidden part of the way)",
    "speed_change": "speed changed by more than 10 % across the section (braking, accelerating)",
    "near": "another vehicle passed mid-section within 2 s (platoon, overtaking, opposite traffic)",
    "peeled": "found by the second pass (peel_sigma > 0) once stronger vehicles' responses were subtracted",
    "speed_unsure": "the speed re-read from the stacked strain image (restack_m) differs from the track's fit"
    " by more than 5 %: fit and stack disagree, the speed is less certain",
}


def has_flag(flags: Iterable[Any], *names: str) -> list[bool]:
    """Per entry of ``flags`` (comma-joined :data:`FLAGS` names): does it name any of ``names``?

    >>> has_flag(["near", "merged,partial", ""], "merged", "near")
    [True, True, False]
    """
    wanted = set(names)
    return [bool(wanted & set(str(f).split(","))) for f in flags]


def set_flag(flags: Iterable[Any], name: str, on: Iterable[bool]) -> list[str]:
    """Each entry of ``flags`` (comma-joined :data:`FLAGS` names) with ``name`` set exactly where ``on`` is
    true, the names in :data:`FLAGS` order.

    >>> set_flag(["near", "partial,merged", ""], "merged", [True, True, False])
    ['merged,near', 'merged,partial', '']
    """
    order = list(FLAGS)
    out = []
    for f, flag in zip(flags, on):
        names = {n for n in str(f).split(",") if n} - {name} | ({name} if flag else set())
        out.append(",".join(sorted(names, key=order.index)))
    return out


#: The detector settings chosen on each simulator's development scenes (seeds 100-107, highway and urban), by
#: ``python benchmarks/das_cross_simulator.py --choose``: the best site-averaged F1 over its 24-setting grid.
#: The packaged defaults of :class:`DetectParams` are the "halfspace" choice; the benchmark scores both
# choices : on unseen scenes of both simulators. The half-space choice was redone after the simulator audit
# (Odemark : equivalent depth, coupling 0.3-1.0): mean F1 0.738 for this setting vs 0.713 for the previous one
# (2 Hz at : 12 Hz). ``lobe_merge`` and ``speed_stack`` were then switched on, on the same development seeds,
# with the : grid setting fixed: mean F1 0.738 -> 0.742, duplicates 31 -> 24, speed MAE highway 2.11 -> 1.76
# km/h but : urban 1.32 -> 1.50 km/h (pooled 1.73 -> 1.63). The bump choice predates both options (off there).
#: ``pair_merge_m`` (25 m) and ``incoherent_speed_change`` (0.4) were added later with everything above fixed,
#: on the development seeds 100-107 of BOTH simulators and both sites (best F1 averaged over the four; grid:
#: pair distance 20/25/30/40 m x strength ratio 0.5/0.7, speed change 0.2/0.3/0.4 x sign agreement
#: 0.2/0.3/0.4, then which neighbour within 2/3/5 s makes a track a chain; the filter had to keep the real
#: bridge record's vehicle in all 32 of its +-20 % settings, which ruled out "any neighbour": a lone bridge
#: vehicle bends and has no consistent sign, its neighbour a straighter ghost): mean F1 0.843 -> 0.849
#: (half-space highway 0.876 -> 0.882, urban 0.608 -> 0.627; bump highway 0.972 and urban 0.917 unchanged),
#: duplicates 3 + 21 -> 1 + 16 on the half-space scenes, 0 on the bump ones. The bump choice keeps both off
#: (it predates them). ``crossing_ratio`` (1.5) was added last, everything above fixed, on the same
#: development seeds of both simulators (grid: ratio 1.0/1.2/1.5/2.0 x speed excess about 16/25/35 % x sign
#: agreement below 0.3/0.5/any; 1.2 scored 0.0003 higher mean F1 but lost a bump urban vehicle, so 1.5):
#: mean F1 0.8495 -> 0.8535 (half-space urban 0.627 -> 0.643, precision 0.635 -> 0.676 for recall 0.619 ->
#: 0.613; half-space highway and both bump sites unchanged). Off in the bump choice. Its mid-section pivot
#: (a sign-less faster line crossing a not much weaker track of its direction, or a sign-less one of the
#: other, where both pass mid-section) came from the real bridge record (one vehicle in 37 -> 42 of its 44
#: +-20 % settings), ``crossing_ratio`` unchanged: development F1 half-space urban 0.605 -> 0.606, the other
#: three unchanged; fresh unseen seeds 6000-6019 half-space urban 0.6260 -> 0.6269 (same-direction pivot),
#: then no row of 7000-7019 changed (the other direction). Pivoting on signed vehicles of the other direction
#: too dropped a real car meeting one at mid-section (unseen seed 1008). ``max_merge_s`` (2 s) came last,
#: everything above fixed, on the development seeds 100-107 + 200-211 of both simulators (1.2 / 1.5 / 2.0 s):
#: half-space urban F1 0.606 -> 0.621, bump urban 0.920 -> 0.930, highways unchanged; fresh unseen seeds
#: 11000-11019 (criteria set before the run): half-space urban 0.623 -> 0.655, bump urban 0.888 -> 0.909,
#: highways identical. Off in the bump choice. ``merge_speed_change`` (0.2; 0.1 before, fixed in the code)
#: after it, everything above fixed: on the half-space street development scenes 17 of 44 duplicate pairs
#: had fitted speeds more than 10 % apart when the merge compared them (5 of 43 pairs of two vehicles), so
#: the merge never saw them. Development seeds 100-107 + 200-211, both simulators, 0.15 / 0.2 / 0.3: mean F1
#: over 8 rows +0.0019 / +0.0020 / -0.0007; fresh seeds 29000-29019 (criteria set before the run): mean
#: +0.0022, half-space urban duplicates 29 -> 21 and 37 -> 28 (quiet), bump highway -0.0018 and -0.0019 (a
#: vehicle overtaking at another speed joined). The bump choice keeps 0.1.
CHOSEN = {
    "bump": {
        "image": "strain",
        "lowpass_hz": 2.0,
        "lf_rate_hz": 12.0,
        "threshold_sigma": 3.5,
        "max_vehicle_m": 12.0,
        "lobe_merge": False,
        "speed_stack": False,
        "pair_merge_m": 0.0,
        "incoherent_speed_change": 0.0,
        "crossing_ratio": 0.0,
        "max_merge_s": 0.0,
        "merge_speed_change": 0.1,
        "tram_group_m": 0.0,
        "heavy_pair_m": 0.0,
        "restack_m": 0.0,
        "recentre_m": 0.0,
        "recentre_car_m": 0.0,
        "recentre_near_m": 0.0,
        "quiet_clip": 0.0,
    },
    "halfspace": {
        "image": "strain",
        "lowpass_hz": 1.0,
        "lf_rate_hz": 8.0,
        "threshold_sigma": 3.5,
        "max_vehicle_m": 25.0,
        "lobe_merge": True,
        "speed_stack": True,
        "pair_merge_m": 25.0,
        "incoherent_speed_change": 0.4,
        "crossing_ratio": 1.5,
        "max_merge_s": 2.0,
    },
}


@dataclass(frozen=True)
class DetectParams:
    """Detector parameters, all in physical units. Defaults work for highway bridges and urban streets.

    Attributes
    ----------
    speed_min_kmh, speed_max_kmh : float
        Speed range searched (km/h).
    lowpass_hz : float
        Low-pass corner before decimation (Hz).
    lf_rate_hz : float
        Target rate of the decimated image (Hz).
    channel_bin_m : float
        Channels are averaged over about this length (m).
    smoothing_m : float
        Standard deviation of the velocity-tuned Gaussian along the track (m).
    pulse_m, long_pulse_m : float
        Lengths of the strain pulse a vehicle leaves on the fibre (m): a local bump (pavement, deck) and the
        longer response of a bridge span. Each speed band is matched to both; 0 disables the long one.
    ghost_ratio : float
        A ridge pixel is dropped where a band of another speed or direction is stronger by more than
        1/ghost_ratio (suppresses the ghosts strong vehicles leave in other bands).
    threshold_sigma : float
        Edge threshold in robust noise standard deviations of the smoothed image.
    clip_sigma : float
        Soft saturation of the noise-normalised image (in noise standard deviations; 0 disables).
    quiet_clip : float
        On a quiet record (more of the image beyond ``clip_sigma`` than
        :data:`~terralab.das.diagnose.BEYOND_CLIP_ADVICE`) the track search's clip is raised per channel to
        this fraction of its 99.9 % level (:func:`~terralab.das.restack.search_clipped`), so that a vehicle's
        slow opposite-signed tail is not flattened into a plateau whose edges read as tracks. Chosen on the
        development seeds 100-107 + 200-211 of both simulators and sites, each at its own noise and quiet
        (0.12 / 0.18 / 0.25; 0.18: quiet F1 mean +0.017, normal -0.0004). Off in the bump choice. 0 disables.
    band_ratio : float
        Ratio of the upper to lower speed of one speed band.
    speed_resolution : float
        Relative step of the Hough speeds (0.01 = 1 %).
    hough_votes, min_segment, max_gap : float
        Hough votes, shortest segment and longest gap as fractions of a full-section track.
    merge_eps_s : float
        DBSCAN radius: mean time offset (s) under which two segments belong to one vehicle.
    search_s : float
        Half-width (s) of the window in which the refinement follows the ridge.
    min_coverage : float
        Shortest accepted track as a fraction of the section length (in metres).
    min_fill : float
        Fraction of the channel bins along an accepted track on which its ridge must be seen.
    max_lf_step_s : float
        Coarsest time step of a speed band's image (s).
    noisy_factor : float
        A channel with more than this times the median channel RMS is masked as noisy.
    common_mode : bool
        Remove the median over channels at each time (laser phase / common-mode noise).
    max_vehicle_m : float
        Parallel tracks of one direction and speed closer than the time a vehicle this long takes to pass, and
        joined by signal, are merged into one vehicle (axle groups, bogies, vibration halo).
    max_merge_s : float
        Parallel tracks that pass more than this many seconds apart are never merged as one vehicle's parts
        (the joined merge of ``max_vehicle_m`` and ``lobe_merge``; the two-lobe pair of ``pair_merge_m`` keeps
        its distance): in slow traffic vehicles follow each other 1.2-3 s apart, less than the 3.5 s a 25 m
        signature takes to pass at 26 km/h, and the merge joined them (on the half-space street development
        scenes 27 of 142 joined merges took a second vehicle that was then lost, most at 18-25 m).
        2.0 s chosen on the development seeds 100-107 + 200-211 of both simulators among 1.2, 1.5 and 2.0 s
        (urban F1 half-space 0.606 -> 0.621, bump 0.920 -> 0.930, highways unchanged; 1.2 s found more
        vehicles but left 73 half-space street duplicates against 47 at 2.0 s and 32 without the cap),
        checked on seeds 3000-3019 and 5000-5019. 0 disables.
    merge_speed_change : float
        Tracks are compared as one vehicle's parts only where their fitted speeds differ by at most this log
        ratio (0.2: about 20 %). A weak or partly recorded track's fit is loose: on the half-space street
        development scenes 17 of 44 duplicate pairs had fitted speeds more than 10 % apart when they were
        compared (their re-read speeds agree), against 5 of 43 pairs of two vehicles; at 0.1 (the value
        before) the merge never saw them. Chosen on the development seeds 100-107 + 200-211 of both
        simulators among 0.1, 0.15, 0.2 and 0.3 (mean F1 over 8 rows +0.0019 / +0.0020 / -0.0007 against
        0.1; at 0.3 highway vehicles overtaking at other speeds were joined), checked on fresh seeds
        29000-29019 (mean F1 +0.0022; half-space street duplicates 29 -> 21, 37 -> 28 quiet; bump highway
        -0.002: an overtaking vehicle joined). On the README table's seeds 1000-1019 half-space streets lose
        (F1 -0.004, duplicates 31 -> 28 but 5 vehicles joined to a neighbour). The bump choice keeps 0.1.
    tram_group_m : float
        Where trams run (``trams``) and vehicles are classified: consecutive vehicles of one direction and
        speed (within 5 %) spanning at most this many metres of travel, each classified heavy and one a tram,
        with no other vehicle of their direction between them (but weaker tracks > 10 % off their speed, which
        join the tram), are one tram's bogies
        (:func:`~terralab.das.trams.merge_tram_groups`; 60 m: bogies up to 45 m apart plus the strain lobes
        7-11 m beyond them). Chosen on the development seeds 100-107 + 200-211 of both simulators (50 / 60 m;
        half-space urban F1 +0.022, bump urban unchanged), checked on seeds 3000-5019, confirmed on fresh
        unseen seeds 12000-12019; the 5 % and the weaker tracks between came later (fresh seeds 14000-14019:
        half-space urban +0.0035, bump urban unchanged). Other tracks at a tram's speed within this distance
        of it, none of its direction between, are its own (:func:`~terralab.das.trams.absorb_tram_halos`;
        fresh seeds 32000-32219: half-space urban F1 -0.001 / +0.006 / +0.005, bump urban 0). Off in the bump
        choice. 0 disables.
    heavy_pair_m : float
        Where vehicles are classified: two consecutive vehicles of one direction and speed (within 3 %), both
        classified truck (``p_truck`` at least :data:`~terralab.das.trams.HEAVY_P_TRUCK`), of comparable
        strength and between ``pair_merge_m`` and this many metres of travel apart, with no vehicle of their
        direction between them, are the two same-signed lobes ahead of and behind one long heavy vehicle (a
        16-20 m tractor-trailer plus the strain's spread beyond its axles): one truck at their midpoint
        (:func:`~terralab.das.trams.merge_heavy_pairs`). The classifier, not the strength relative to the
        record (which did not hold on unseen scenes), says that both are heavy. Chosen on the half-space
        development seeds (40 / 45 / 50 m, p_truck 0.5 / 0.75 / 0.9), checked on seeds 3000-5019, 10000-10019,
        13000-14019. Off in the bump choice. 0 disables.
    restack_m : float
        Last step: each vehicle's speed is re-read by slant stacking the noise-normalised strain image over
        the channels of its track, the stacked trace's power summed over this many metres of travel either
        side of its mid-section passage, climbing from the fitted speed to the nearest peak within 25 %
        (:mod:`terralab.das.restack`); time and fit are kept. Chosen (20 m; the 25 % and the climb to the
        nearest peak, not the highest, against neighbours of other speeds) on the development seeds
        100-107 + 200-211 of both simulators and on the real bridge record (the soft saturation at
        ``clip_sigma`` on seeds 15000-15019), confirmed on fresh unseen seeds 16000-16019 (speed MAE about
        halved on every row, F1 unchanged). Off in the bump choice. 0 disables.
    recentre_m : float
        After the re-read, each heavy vehicle ("truck" or "tram") that no merge placed and that passes alone
        (no "near" flag) is moved to the power centroid of its stacked trace within this many metres of
        travel either side of its track's mid-section passage (:func:`~terralab.das.restack.recentre_alone`):
        a long vehicle whose track follows one lobe or bogie of its signature, 15-20 m from its load centre,
        is placed at the signature's centre. Chosen on the half-space development seeds 100-107 + 200-211
        (20 / 25 / 30 m; cars, merged rows and then "near" rows left alone): half-space urban F1 0.651 ->
        0.667, the other rows unchanged. Without the "near" condition fresh seeds 20000-20019 lost two
        half-space highway cars in platoons (F1 -0.007); with it, fresh seeds 21000-21019 (criteria written
        first): half-space urban +0.004, the other rows unchanged; the table's seeds 1000-1019: +0.008.
        Cars have their own window (``recentre_car_m``). Off in the bump choice. 0 disables.
    recentre_car_m : float
        The same for each lone car, within this many metres but at most
        :data:`~terralab.das.restack.RECENTRE_CAR_S` (0.75 s) of its travel either side: a localisation step
        (where the scorer's 1.5 s window holds the detection either way, F1 moves little). 25 m, as for heavy
        vehicles, raised duplicates on every seed set; 12 m lowered the position error of the matched
        vehicles on every row of the development seeds 100-107 + 200-211 and of fresh seeds 25000-25019, the
        0.75 s cap (slow cars pulled 2 s into a neighbour's signature) on 26000-26019 and, criteria written
        first, 27000-27019 (README). Off in the bump choice. 0 disables.
    recentre_near_m : float
        The same for each car flagged "near" (another vehicle within 2 s) that no merge placed, within this
        many metres but at most :data:`~terralab.das.restack.RECENTRE_NEAR_S` (0.4 s) of travel, so that the
        neighbour pulls it less. Position error down on every row of the development seeds and, criteria
        written first, of fresh seeds 28000-28019 (README); F1 there -0.003 on two rows, inside their
        intervals. Off in the bump choice. 0 disables.
    lobe_merge : bool
        A parallel track of one speed within ``max_vehicle_m`` whose strain has the opposite sign of a
        stronger track's (:func:`~terralab.das.tracks.track_polarity`: the extension lobes around a load's
        compressed patch, or the reverse) is that vehicle's lobe and merges into it (at the stronger track's
        time).
    pair_merge_m : float
        Two parallel tracks of one speed closer than this (m), whose strain has the same sign
        (:func:`~terralab.das.tracks.track_polarity`) and whose strengths are within a factor 0.7, are the two
        lobes of one vehicle whose centre ridge was missed (a bus or truck at street speed: the low-passed
        image does not resolve its narrow centre, only the broad lobes ahead of and behind it): merged at
        their midpoint. 0 disables.
    incoherent_speed_change : float
        A track whose speed changes by more than this fraction across the section, whose strain has no
        consistent sign (sign agreement below :data:`LOBE_POLARITY`) and which passes within 2 s of a track of
        its direction that has a consistent sign is dropped (:func:`~terralab.das.chains.drop_incoherent`): a
        ridge chain hopping between the vehicles of a platoon or a stop-and-go queue, not one vehicle. 0
        disables.
    crossing_ratio : float
        A track whose strain has no consistent sign, that is more than 25 % faster than a same-direction
        track at least this many times stronger and whose t(x) crosses that track's within the section is a
        ghost chain stitched through the stronger vehicle's ridge, and is dropped; so is one that crosses a
        track not this many times weaker than itself where both pass mid-section (within that track's own
        ridge time; in the other direction only a track without a sign): a line pivoting on that vehicle's
        response (:func:`~terralab.das.chains.drop_crossing_chains`). 0 disables.
    max_accel_ms2 : float
        A track whose fitted t(x) needs a vehicle to brake harder than this (m/s^2, mean over its ridge
        points: :func:`~terralab.das.tracks.implied_accel`), to speed up harder than :data:`SPEEDUP_SHARE` of
        it (6 m/s^2 at the default), or to stop and turn back, is no vehicle: a chain of other ridges (the
        span-sized strain blocks of a bridge deck) is dropped. 10 m/s^2 is about 1 g, the tyre-road friction
        limit: a physical bound, not tuned. The most a true track needed on 20 development scenes per
        simulator and site (seeds 100-107, 200-211) was 4.9 m/s^2 braking, 4.7 speeding up; the real bridge
        record's chains need 9.5-30 (the 9.5 one speeding up). 0 disables.
    resplit_s : float
        The Hough segments of one direction are clustered by single linkage (``merge_eps_s``), which chains
        the vehicles of a platoon into one cluster through their segments. After a cluster's track is refined,
        the segments it leaves farther than this (s, at their midpoints) are clustered again and the largest
        group gives another track, up to :data:`RESPLIT_ROUNDS` times per cluster. 1.5 s is about the
        lobe-to-lobe spacing of one tractor-trailer at highway speed (1.1-1.8 s on the half-space scenes);
        chosen on the development seeds 100-107 + 200-211 of both simulators among 1.0 s (splits long
        vehicles: 30 duplicates on half-space highway scenes, 14 at 1.5 s) and 2.0 s (recall 0.79, 0.81 at
        1.5 s). 0 disables.
    split_eps_s : float
        A cluster whose segments no single track fits (the refined track bends too hard, is too short or too
        patchy: often two vehicles chained by single linkage) is clustered again with this smaller radius (s)
        and each part refined on its own; the parts are kept when at least two of them give tracks. Chosen on
        the same development seeds among 0.5 and 0.7 s. The two-track condition came from the real bridge
        record, where lone parts of the chains ``max_accel_ms2`` drops came back as 96-152 km/h vehicles in
        3 of 44 +-20 % settings; it changed no packaged figure on the unseen simulator scenes. 0 disables.
    peel_sigma, peel_rel, peel_gap_s, peel_gap_m : float
        Second pass on the residual of the band images (:mod:`terralab.das.peel`), **off by default** but **on
        with** ``site="highway"`` or ``site="urban"`` (:data:`PEEL_SITES`; ``peel_sigma`` 0 turns it off, 3.5
        on with the values chosen for the others). Each first-pass track's modelled response (the band chain's
        response to a ``pulse_m`` Gaussian pulse along the track, its complex amplitude fitted per channel,
        strongest track first) is subtracted from the complex images of the short-pulse bands of its direction
        and speed; ridges of the residual's modulus above ``peel_sigma`` band sigmas and above ``peel_rel``
        times the modulus subtracted there give new tracks, kept when their median offset from every
        first-pass track of their direction is at least ``peel_gap_s`` and ``peel_gap_m`` / speed, when they
        pass within 5 s of one at a platoon's speed (within 15 %) and when their strain has a consistent sign.
        Such a track ranks after every first-pass track in the dedupe, merge and chain rules (its strength is
        read on a residual), so it never displaces or absorbs one. It finds the car 2-3 s behind or ahead of a
        stronger vehicle of the same speed (platoons at 16-46 km/h), on that vehicle's envelope flank with no
        maximum of its own. Development seeds 100-107 + 200-211, F1 off -> on, packaged choice: bump highway
        0.976 -> 0.978, bump urban 0.920 -> 0.928, half-space highway 0.866 -> 0.872, half-space urban 0.605
        -> 0.606; bump choice 0.975 -> 0.975, 0.920 -> 0.929, 0.851 -> 0.854, 0.599 -> 0.594. Unseen seeds
        4000-4019 (``benchmarks/das_cross_simulator.py --first-seed 4000 --set peel_sigma=3.5``): mean F1 of
        the eight rows 0.826 -> 0.830, but the bump choice on half-space urban scenes 0.609 -> 0.601, beyond
        the 0.005 fall allowed beforehand, so it stayed off on streets then: its extra tracks there were the
        residuals of buses, trucks and trams, whose axle groups and lobes a single pulse does not model. Every
        highway row rose or held on both seed sets, so ``site="highway"`` turns it on; fresh unseen seeds
        8000-8019 (criteria set before the run: no highway row falls by more than 0.005, their mean does not
        fall), F1 off -> on: packaged choice bump 0.9814 -> 0.9814, half-space 0.8819 -> 0.8863; bump choice
        0.9850 -> 0.9867, 0.8598 -> 0.8643. Real bridge record: one vehicle in 45 of the 46 +-20 % settings,
        as without it (37 of 44 before the crossing rule's pivot, 42 of 44 before :data:`SPEEDUP_SHARE`). The
        values were chosen on the development seeds among peel_rel 0 / 0.3 / 0.5 / 0.8, gaps 1.0 / 1.5 / 2.0 /
        3.0 s and 0 / 15 / 20 / 25 / 40 m, residuals of every band or of the short-pulse ones. Streets
        (``site="urban"``) followed on the detector of ``merge_speed_change``: development seeds, packaged
        choice, urban rows, peel_sigma 3.0 / 3.5 / 4.0 / 4.5 / 5.0 against off: bump +0.0041 / +0.0073 /
        +0.0057 / +0.0039 / +0.0057, half-space +0.0007 / +0.0031 / +0.0015 / 0.0000 / 0.0000; fresh unseen
        seeds 30000-30019 (criteria set before the run: the two street rows' mean F1 rises, no street row of
        either choice falls by more than 0.003), F1 off -> on: packaged choice bump 0.8957 -> 0.9036,
        half-space 0.6534 -> 0.6535; bump choice 0.9231 -> 0.9268, 0.5692 -> 0.5721.
    speed_stack : bool
        Re-read each track's speed, time and curvature by slant-stacking its band's envelope near the fitted
        track (:mod:`terralab.das.tracks`), instead of trusting a fit through ridge points that hop between
        lobes.
    image : str
        ``"strain"``: detect on the quasi-static strain image only. ``"both"``: also detect on the
        band-limited energy image (:mod:`terralab.das.filters`) by slant stacking, and add the vehicles the
        strain image missed (the energy sees a signature whatever its sign or band; measured in
        ``benchmarks/das_cross_simulator.py``).
    energy_bands_hz, energy_lowpass_hz, energy_diff_max_hz : tuple, float, float
        Frequency bands of the energy image, the low-pass of the squared signal, and the highest band edge for
        which neighbouring channel bins are differenced before squaring (slow, vehicle-borne strain stays;
        ground waves and common-mode noise cancel).
    energy_compress : str
        ``"log"`` or ``"sqrt"`` compression of the energy relative to each channel's noise level.
    energy_noise_q : float
        Percentile of each channel's energy over time taken as its noise level (the record's quiet moments).
    energy_clip, energy_keep : float
        Along a slant-stack track the energy image is clipped at ``energy_clip`` noise units and only the
        lowest ``energy_keep`` fraction of channels is averaged (a track that merely crosses a strong vehicle
        gains nothing).
    energy_threshold : float
        Slant-stack peaks must exceed this many noise standard deviations of the stack.
    energy_exclusion_m, energy_overlap : float
        A weaker peak whose track lies inside a stronger vehicle's energy ridge on more than
        ``energy_overlap`` of the channels is that vehicle; ``energy_exclusion_m`` pads the ridge (in metres
        of travel).
    classify : bool
        Run the vehicle classifier (``vehicle_class`` is "unknown" otherwise).
    trams : bool
        The site has a tram line: ``vehicle_class`` may be "tram" (otherwise only "car" or "truck"; a
        tram-like vehicle is then a "truck"). ``site="urban"`` sets it.
    site : str
        Kind of site, one of :data:`SITES` ("any", "highway", "bridge", "urban"). Passing ``site=...`` to
        :func:`~terralab.das.detect.detect_vehicles` sets the site's plausible speed range unless
        ``speed_min_kmh`` / ``speed_max_kmh`` are given too: a street record then never yields motorway
        speeds. It also sets ``trams`` (:data:`TRAM_SITES`) and, on a highway or a street, the second pass
        (``peel_sigma`` 3.5, :data:`PEEL_SITES`) unless they are given (:func:`site_defaults`).
    seed : int
        Seed of the randomised Hough transform.
    """

    speed_min_kmh: float = 8.0
    speed_max_kmh: float = 160.0
    lowpass_hz: float = 1.0
    lf_rate_hz: float = 8.0
    channel_bin_m: float = 5.0
    smoothing_m: float = 10.0
    pulse_m: float = 6.0
    long_pulse_m: float = 24.0
    ghost_ratio: float = 0.9
    threshold_sigma: float = 3.5
    clip_sigma: float = 6.0
    quiet_clip: float = 0.18
    band_ratio: float = 2.0
    speed_resolution: float = 0.01
    hough_votes: float = 0.2
    min_segment: float = 0.2
    max_gap: float = 0.1
    merge_eps_s: float = 1.0
    search_s: float = 0.6
    min_coverage: float = 0.5
    min_fill: float = 0.65
    max_lf_step_s: float = 0.5
    noisy_factor: float = 5.0
    common_mode: bool = True
    classify: bool = True
    trams: bool = False
    max_vehicle_m: float = 25.0
    image: str = "strain"
    lobe_merge: bool = True
    speed_stack: bool = True
    pair_merge_m: float = 25.0
    max_merge_s: float = 2.0
    merge_speed_change: float = 0.2
    tram_group_m: float = 60.0
    heavy_pair_m: float = 45.0
    restack_m: float = 20.0
    recentre_m: float = 25.0
    recentre_car_m: float = 12.0
    recentre_near_m: float = 6.0
    incoherent_speed_change: float = 0.4
    crossing_ratio: float = 1.5
    max_accel_ms2: float = 10.0
    resplit_s: float = 1.5
    peel_sigma: float = 0.0
    peel_rel: float = 0.5
    peel_gap_s: float = 1.5
    peel_gap_m: float = 25.0
    split_eps_s: float = 0.5
    energy_bands_hz: tuple = ((0.3, 1.0), (0.7, 3.0))
    energy_lowpass_hz: float = 2.0
    energy_diff_max_hz: float = 5.0
    energy_compress: str = "log"
    energy_noise_q: float = 20.0
    energy_clip: float = 3.0
    energy_keep: float = 0.7
    energy_threshold: float = 8.0
    energy_exclusion_m: float = 12.0
    energy_overlap: float = 0.3
    site: str = "any"
    seed: int = 0

    def validate(self) -> DetectParams:
        if not (0 < self.speed_min_kmh < self.speed_max_kmh):
            raise InvalidInputError(
                f"need 0 < speed_min_kmh < speed_max_kmh, got {self.speed_min_kmh}, {self.speed_max_kmh}"
            )
        for name in (
            "lowpass_hz",
            "lf_rate_hz",
            "channel_bin_m",
            "smoothing_m",
            "pulse_m",
            "threshold_sigma",
            "merge_eps_s",
            "search_s",
            "max_lf_step_s",
        ):
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.band_ratio <= 1.05:
            raise InvalidInputError(f"band_ratio must exceed 1.05, got {self.band_ratio}")
        if not 0 < self.min_coverage <= 1:
            raise InvalidInputError(f"min_coverage must be in (0, 1], got {self.min_coverage}")
        if self.site not in SITES:
            raise InvalidInputError(f"unknown site {self.site!r}; choose one of {sorted(SITES)}")
        if self.image not in ("strain", "both"):
            raise InvalidInputError(f"image must be 'strain' or 'both', got {self.image!r}")
        if self.energy_compress not in ("log", "sqrt"):
            raise InvalidInputError(f"energy_compress must be 'log' or 'sqrt', got {self.energy_compress!r}")
        for name in (
            "max_vehicle_m",
            "max_merge_s",
            "merge_speed_change",
            "tram_group_m",
            "heavy_pair_m",
            "restack_m",
            "recentre_m",
            "recentre_car_m",
            "recentre_near_m",
            "pair_merge_m",
            "incoherent_speed_change",
            "crossing_ratio",
            "max_accel_ms2",
            "resplit_s",
            "split_eps_s",
            "quiet_clip",
        ):
            if not getattr(self, name) >= 0:
                raise InvalidInputError(f"{name} must be >= 0 (0 disables), got {getattr(self, name)}")
        return self

    @classmethod
    def for_site(cls, site: str, **overrides: Any) -> DetectParams:
        """Defaults for a kind of site (:func:`site_defaults`: speed range, trams, second pass), with keyword
        overrides: :func:`resolve_params` with ``site=site``."""
        return resolve_params(cls(), {"site": site, **overrides})


def site_defaults(site: str) -> dict[str, Any]:
    """The settings ``site=...`` implies (unless given): its plausible speed range (:data:`SITES`), trams
    (:data:`TRAM_SITES`) and the second pass (:data:`PEEL_SITES`); nothing for an unknown site."""
    if site not in SITES:
        return {}
    lo, hi = SITES[site]
    out = {"site": site, "speed_min_kmh": lo, "speed_max_kmh": hi, "trams": site in TRAM_SITES}
    if site in PEEL_SITES:
        out["peel_sigma"] = PEEL_SITES[site]
    return out


def resolve_params(params: DetectParams | None, kwargs: dict) -> DetectParams:
    """``params`` (or the defaults) with the keyword overrides ``kwargs``, checked.

    ``site=...`` sets that site's speed range, trams and second pass (:func:`site_defaults`) unless they are
    given too; unknown names raise :class:`~terralab.errors.InvalidInputError`.
    """
    base = params or DetectParams()
    unknown = set(kwargs) - set(asdict(base))
    if unknown:
        raise InvalidInputError(
            f"unknown detector parameter(s) {sorted(unknown)}; valid: {sorted(asdict(base))}"
        )
    if "site" in kwargs:
        kwargs = {**site_defaults(kwargs["site"]), **kwargs}
    return replace(base, **kwargs).validate()

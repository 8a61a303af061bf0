"""Stateful anti-aliased low-pass and decimation of DAS blocks, in float32, one pass for all directions.

The full-rate data are touched once: a second-order CIC stage (two boxcars, computed from block sums with
strided adds) brings ``fs`` down to about 100 Hz. Its nulls sit exactly on the frequencies that alias onto
DC, so whatever folds into the low band is attenuated by > 60 dB. That ~100 Hz "mid" product (dead and noisy
channels masked, channels binned to ``channel_bin_m``) feeds the classifier's vibration features and the modal
analysis. A Bessel low-pass (flat group delay) then brings it to ~8 Hz, and a leaky trapezoidal integrator
turns strain rate into strain (a first-order high-pass for strain or phase input), the "lf" product the
detector works on.

A third product sees every vehicle whatever the sign or band of its signature: the **band-limited energy
envelope**. Per channel bin, the ~100 Hz product is band-passed into a few frequency bands (the quasi-static
strain lobes of a vehicle at road speed, and the vibration it sets off), the common mode across the fibre is
removed, the result is squared, low-passed and decimated to the lf rate. Its time stamps are those of the lf
product; the extra delay of each band's chain is returned (``energy_delay_s``) for the detector to compensate.

Every stage carries its state between calls (leftover samples, pending CIC block, IIR ``zi``, decimation
phase), so feeding a record file by file gives the same samples as feeding it at once. Delays are compensated
in the time stamps: the CIC output is stamped at the centre of its window, the Bessel output is moved back by
its (flat) group delay, the integrator is trapezoidal. Published chains that low-pass causally without this
report vehicles about a second late.

Examples
--------
The named urban scene (625 Hz, 5 m channels) decimated to the ~100 Hz and ~8 Hz products, 5 m bins:

>>> from terralab.das import synthetic
>>> from terralab.das.filters import Decimator
>>> data, _ = synthetic.urban_street(duration_s=20, n_channels=20, seed=2)
>>> dec = Decimator(625.0, data["distance"].values)
>>> prod = dec.process(data.values, 0)
>>> round(dec.fs_mid, 2), round(dec.fs_lf, 2), prod.mid.shape, prod.lf.shape
(104.17, 8.01, (2082, 20), (161, 20))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["Decimator", "Products", "cic2_response"]


@dataclass
class Products:
    """One call's output: the ~100 Hz "mid" product and the ~8 Hz "lf" product, both (time, bin) float32."""

    mid: np.ndarray
    mid_time_ns: np.ndarray
    lf: np.ndarray
    lf_time_ns: np.ndarray
    masked_channels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    #: (time, bin, band) band-limited energy at the lf rate and lf time stamps (None without energy bands)
    energy: np.ndarray | None = None


def cic2_response(f_hz: ArrayLike, fs_hz: float, q: int) -> np.ndarray:
    """Amplitude response of the order-2 CIC stage (two length-q boxcars) at frequencies f_hz."""
    f = np.asarray(f_hz, dtype=float) / fs_hz
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.sin(np.pi * f * q) / (q * np.sin(np.pi * f))
    h = np.where(np.abs(f) < 1e-12, 1.0, h)
    return h * h


class Decimator:
    """Stateful low-pass + decimation of ``(time, channel)`` blocks into mid (~100 Hz) and lf (~8 Hz)
    products.

    Parameters
    ----------
    fs_hz : float
        Input sampling rate (Hz).
    distance_m : array
        Channel positions (m), increasing.
    lowpass_hz : float
        Corner of the Bessel low-pass ahead of the lf product (Hz).
    lf_rate_hz, mid_rate_hz : float
        Target rates of the lf and mid products; the actual rates are ``fs / integer``.
    channel_bin_m : float
        Channels are averaged in bins of about this length (only live channels count).
    measurand : str
        ``strain`` and ``phase`` are high-passed; ``strain_rate``, ``phase_rate`` and ``unknown`` (most
        interrogators record strain rate) are integrated by a leaky integrator.
    highpass_hz : float
        Corner of the leaky integrator / high-pass that removes drift from the lf product.
    noisy_factor : float
        A channel whose RMS exceeds ``noisy_factor`` times the median channel RMS is masked as noisy.
    energy_bands_hz : sequence of (float, float)
        Frequency bands (Hz) of the energy product (empty: none). Bands reaching beyond 0.45 times the mid
        rate are cut there; bands that start above it are dropped.
    energy_lowpass_hz : float
        Corner of the low-pass applied to the squared band signals before decimation (Hz).
    """

    def __init__(
        self,
        fs_hz: float,
        distance_m: ArrayLike,
        *,
        lowpass_hz: float = 1.0,
        lf_rate_hz: float = 8.0,
        mid_rate_hz: float = 100.0,
        channel_bin_m: float = 5.0,
        measurand: str = "strain_rate",
        highpass_hz: float = 0.05,
        noisy_factor: float = 5.0,
        energy_bands_hz: Sequence[tuple[float, float]] = (),
        energy_lowpass_hz: float = 2.0,
        energy_diff_max_hz: float = 5.0,
    ) -> None:
        x = np.asarray(distance_m, dtype=float)
        if fs_hz < 4 * lowpass_hz:
            raise InvalidInputError(
                f"sampling rate {fs_hz:g} Hz is too low for lowpass_hz={lowpass_hz:g}: need at least "
                f"{4 * lowpass_hz:g} Hz (or a lower lowpass_hz)"
            )
        self.fs = float(fs_hz)
        self.q1 = max(1, int(np.floor(self.fs / mid_rate_hz)))
        self.fs_mid = self.fs / self.q1
        self.q2 = max(1, int(np.floor(self.fs_mid / lf_rate_hz)))
        self.fs_lf = self.fs_mid / self.q2
        self.lowpass_hz = float(lowpass_hz)
        self.highpass_hz = float(highpass_hz)
        self.noisy_factor = float(noisy_factor)
        # most interrogators record strain rate; records that do not say are treated as such
        self.integrate = measurand not in ("strain", "phase")
        self.measurand = measurand
        self._set_bins(x, channel_bin_m)
        self._design_lowpass_and_integrator()
        self._design_energy_bands(energy_bands_hz, energy_lowpass_hz, energy_diff_max_hz)
        self.reset()

    def _set_bins(self, x: np.ndarray, channel_bin_m: float) -> None:
        """Channel bins of about ``channel_bin_m``: index of each channel's bin, bin starts and centres."""
        dx = float(np.median(np.abs(np.diff(x)))) if len(x) > 1 else 1.0
        self.nb = max(1, round(float(channel_bin_m / dx)))
        n_ch = len(x)
        self.bin_index = np.arange(n_ch) // self.nb
        self.n_bins = int(self.bin_index[-1]) + 1
        self.bin_starts = np.arange(0, n_ch, self.nb)
        self.bin_distance = np.array([x[self.bin_index == b].mean() for b in range(self.n_bins)])
        self.n_channels = n_ch

    def _design_lowpass_and_integrator(self) -> None:
        """The Bessel low-pass at the mid rate (and its group delay), and the integrator / high-pass at lf."""
        from scipy import signal

        # Bessel low-pass (flat group delay) at the mid rate, decimating by q2
        wn = min(self.lowpass_hz, 0.45 * self.fs_mid)
        self.sos_lp = signal.bessel(4, wn, btype="low", norm="mag", fs=self.fs_mid, output="sos").astype(
            np.float64
        )
        imp = np.zeros(int(20 * self.fs_mid / wn) + 8)
        imp[0] = 1.0
        h = signal.sosfilt(self.sos_lp, imp)
        self.lp_delay_s = float(np.sum(np.arange(len(h)) * h) / np.sum(h)) / self.fs_mid
        # leaky trapezoidal integrator (rate -> strain) or first-order high-pass (strain -> strain)
        rho = float(np.exp(-2 * np.pi * self.highpass_hz / self.fs_lf))
        if self.integrate:
            self.b_int = np.array([0.5, 0.5]) / self.fs_lf
        else:
            self.b_int = np.array([1.0, -1.0]) * (1 + rho) / 2
        self.a_int = np.array([1.0, -rho])

    def _design_energy_bands(
        self,
        energy_bands_hz: Sequence[tuple[float, float]],
        energy_lowpass_hz: float,
        energy_diff_max_hz: float,
    ) -> None:
        """Energy bands: Butterworth band-passes at the mid rate, a Bessel low-pass of the squared signal, and
        each band's delay relative to the strain chain."""
        from scipy import signal

        self.energy_bands_hz: list[tuple[float, float]] = []
        self.sos_bp: list[np.ndarray] = []
        self.energy_delay_s = np.zeros(0)
        self.energy_diff: list[bool] = []
        nyq_use = 0.45 * self.fs_mid
        delays = []
        if energy_bands_hz:
            e_lp = min(float(energy_lowpass_hz), 0.45 * self.fs_lf)
            self.sos_elp = signal.bessel(4, e_lp, btype="low", norm="mag", fs=self.fs_mid, output="sos")
            n_imp = int(40 * self.fs_mid / e_lp) + 8
            imp = np.zeros(n_imp)
            imp[0] = 1.0
            h = signal.sosfilt(self.sos_elp, imp)
            elp_delay = float(np.sum(np.arange(n_imp) * h) / np.sum(h)) / self.fs_mid
            for lo, hi in energy_bands_hz:
                lo, hi = float(lo), min(float(hi), nyq_use)
                if not 0 < lo < hi:
                    continue
                sos = signal.butter(2, [lo, hi], btype="band", fs=self.fs_mid, output="sos")
                n_bp = int(40 * self.fs_mid / lo) + 8
                imp = np.zeros(n_bp)
                imp[0] = 1.0
                hb = signal.sosfilt(sos, imp) ** 2  # the envelope is delayed by the centroid of |h|^2
                self.energy_bands_hz.append((lo, hi))
                self.sos_bp.append(sos)
                self.energy_diff.append(hi <= energy_diff_max_hz)
                delays.append(
                    float(np.sum(np.arange(n_bp) * hb) / np.sum(hb)) / self.fs_mid
                    + elp_delay
                    - self.lp_delay_s
                )
            self.energy_delay_s = np.asarray(delays)

    # ----------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all state (a gap in the data): the next block starts a new segment."""
        self._leftover: np.ndarray | None = None
        self._pending_a: np.ndarray | None = None  # CIC "A" sums of the last complete block
        self._pending_index = -1  # global block index of _pending_a
        self._n_blocks = 0  # complete CIC blocks seen
        self._t0_ns: int | None = None  # time of the first input sample of the segment
        self._n_in = 0
        self._zi_lp: np.ndarray | None = None
        self._zi_int: np.ndarray | None = None
        self._n_mid = 0
        self._mask: np.ndarray | None = None
        self._zi_bp: list | None = None
        self._zi_elp: list | None = None

    @property
    def expected_next_ns(self) -> int | None:
        """Time stamp the next input sample should have for a seamless join (None after reset)."""
        if self._t0_ns is None:
            return None
        return int(self._t0_ns + round(self._n_in * 1e9 / self.fs))

    def process(self, block: np.ndarray, t0_ns: int) -> Products:
        """Filter a ``(time, channel)`` block whose first sample is at ``t0_ns`` (int ns since epoch)."""
        if block.ndim != 2 or block.shape[1] != self.n_channels:
            raise InvalidInputError(f"expected a (time, {self.n_channels}) block, got shape {block.shape}")
        if self._t0_ns is None:
            self._t0_ns = int(t0_ns)
        block = block if block.dtype == np.float32 else block.astype(np.float32)
        # NaN and +-inf samples poison the CIC sums of their window, which are then zeroed (masked) below;
        # the arithmetic on them is expected, not worth a RuntimeWarning
        with np.errstate(invalid="ignore", over="ignore"):
            mid_raw = self._cic(block)  # (T_mid, channels), float32, non-finite -> 0
        start_mid = self._n_mid - len(mid_raw) if len(mid_raw) else self._n_mid
        mid_t = self._mid_times(start_mid, len(mid_raw))
        return self.process_mid(mid_raw, start_mid, mid_t)

    def process_mid(self, mid_raw: np.ndarray, start_mid: int, mid_t: np.ndarray) -> Products:
        """The stages after the CIC: mask and bin channels, low-pass to lf, energy bands."""
        mid, masked = self._bin(mid_raw)
        lf, lf_t = self._lowpass(mid, start_mid)
        energy = self._energy(mid, start_mid) if self.sos_bp else None
        return Products(
            mid=mid, mid_time_ns=mid_t, lf=lf, lf_time_ns=lf_t, masked_channels=masked, energy=energy
        )

    # ----------------------------------------------------------------------------------------------
    def _cic(self, block: np.ndarray) -> np.ndarray:
        q = self.q1
        self._n_in += len(block)
        if q == 1:
            out = np.array(block, dtype=np.float32, copy=True)
            self._n_mid += len(out)
            bad = ~np.isfinite(out)
            if bad.any():
                out[bad] = 0.0
            return out
        if self._leftover is not None and len(self._leftover):
            block = np.concatenate([self._leftover, block], axis=0)
        n_full = len(block) // q
        self._leftover = block[n_full * q :].copy()
        if n_full == 0:
            return np.zeros((0, self.n_channels), dtype=np.float32)
        body = block[: n_full * q]
        # y[m] = (A_m + B_{m+1}) / q^2 (A: sum (j+1) x_j, B: sum (q-1-j) x_j over block m), centred on
        # sample m q + q - 1; the last block's A waits for the next call. Taken a few blocks at a time so that
        # the accumulators stay in cache.
        out = np.empty((n_full - (self._pending_a is None), self.n_channels), dtype=np.float32)
        a_prev = self._pending_a
        step = max(16, 32768 // max(self.n_channels, 1))
        o = 0
        for m0 in range(0, n_full, step):
            a, b = _cic_sums(body[m0 * q : (m0 + step) * q], q)
            part = out[o : o + len(b) - (a_prev is None)]
            if a_prev is None:
                np.add(a[:-1], b[1:], out=part)
            else:
                np.add(a_prev, b[:1], out=part[:1])
                np.add(a[:-1], b[1:], out=part[1:])
            a_prev = a[-1]
            part *= np.float32(1.0 / (q * q))
            bad = ~np.isfinite(part)
            if bad.any():
                part[bad] = 0.0
            o += len(part)
        self._pending_a = a_prev.copy()
        self._n_mid += len(out)
        self._n_blocks += n_full
        return out

    def _mid_times(self, start: int, n: int) -> np.ndarray:
        # mid sample k is centred on input sample k*q1 + (q1 - 1) (order-2 CIC), or k when q1 == 1
        centre = (np.arange(start, start + n) * self.q1 + (self.q1 - 1 if self.q1 > 1 else 0)).astype(
            np.float64
        )
        return (self._t0_ns + np.round(centre * 1e9 / self.fs)).astype(np.int64)

    def _bin(self, mid_raw: np.ndarray):
        if len(mid_raw) == 0:
            return np.zeros((0, self.n_bins), dtype=np.float32), np.zeros(0, dtype=int)
        # standard deviation, not RMS: some records carry a large offset (normalised or phase data)
        mean = mid_raw.mean(axis=0, dtype=np.float64)
        rms = np.sqrt(
            np.maximum(
                np.einsum("tc,tc->c", mid_raw, mid_raw, dtype=np.float64) / len(mid_raw) - mean * mean, 0.0
            )
        )
        live = rms > 0
        if live.sum() == 0:
            raise InvalidInputError("every channel is dead (zero or NaN); nothing to detect")
        med = np.median(rms[live])
        live &= rms > 1e-3 * med
        live &= rms < self.noisy_factor * med
        self._mask = live
        w = live.astype(np.float32)
        counts = np.add.reduceat(w, self.bin_starts)
        # mean of the live channels of each bin, a few hundred rows at a time (the masked copy stays in cache)
        binned = np.empty((len(mid_raw), len(self.bin_starts)), dtype=np.float32)
        step = max(16, 262144 // self.n_channels)
        with np.errstate(invalid="ignore", divide="ignore"):
            for a in range(0, len(mid_raw), step):
                sums = np.add.reduceat(mid_raw[a : a + step] * w[None, :], self.bin_starts, axis=1)
                np.divide(sums, np.maximum(counts, 1)[None, :], out=binned[a : a + step])
        binned[:, counts <= 0] = 0.0
        return binned, np.flatnonzero(~live)

    def _lowpass(self, mid: np.ndarray, start_mid: int):
        from scipy import signal

        if len(mid) == 0:
            return np.zeros((0, self.n_bins), dtype=np.float32), np.zeros(0, dtype=np.int64)
        if self._zi_lp is None:
            zi = signal.sosfilt_zi(self.sos_lp)  # (sections, 2)
            self._zi_lp = (zi[:, :, None] * mid[0][None, None, :]).astype(np.float64)
        y, self._zi_lp = signal.sosfilt(self.sos_lp, mid, axis=0, zi=self._zi_lp)
        # keep mid samples whose global index is a multiple of q2
        first = (-start_mid) % self.q2
        keep_idx = np.arange(first, len(mid), self.q2)
        lf = y[keep_idx]
        if self._zi_int is None:
            self._zi_int = np.zeros((1, self.n_bins))
        lf, self._zi_int = signal.lfilter(self.b_int, self.a_int, lf, axis=0, zi=self._zi_int)
        global_k = start_mid + keep_idx
        centre = global_k * self.q1 + (self.q1 - 1 if self.q1 > 1 else 0)
        t = self._t0_ns + np.round(centre * 1e9 / self.fs - self.lp_delay_s * 1e9)
        return lf.astype(np.float32), t.astype(np.int64)

    def _energy(self, mid: np.ndarray, start_mid: int) -> np.ndarray:
        """(T_lf, bins, bands) float32: band-pass, common-mode removal, square, low-pass, keep every q2-th."""
        from scipy import signal

        n_b = len(self.sos_bp)
        first = (-start_mid) % self.q2
        keep_idx = np.arange(first, len(mid), self.q2)
        out = np.zeros((len(keep_idx), self.n_bins, n_b), dtype=np.float32)
        if len(mid) == 0:
            return out
        if self._zi_bp is None:
            self._zi_bp = [np.zeros((sos.shape[0], 2, self.n_bins)) for sos in self.sos_bp]
            self._zi_elp = [np.zeros((self.sos_elp.shape[0], 2, self.n_bins)) for _ in self.sos_bp]
        live = np.abs(mid).max(axis=0) > 0
        for k, sos in enumerate(self.sos_bp):
            y, self._zi_bp[k] = signal.sosfilt(sos, mid, axis=0, zi=self._zi_bp[k])
            y = y.astype(np.float32)
            if self.energy_diff[k] and self.n_bins >= 3:
                # the strain a vehicle presses into the ground travels at the vehicle's speed, so neighbouring
                # bins see it at different times; ground waves, common-mode noise and long-wavelength noise
                # arrive almost at once and cancel in the difference of neighbouring bins
                pair = (live[1:] & live[:-1]).astype(np.float32)
                d = (y[:, 1:] - y[:, :-1]) ** 2 * pair
                acc = np.zeros_like(y)
                acc[:, 1:] += d
                acc[:, :-1] += d
                cnt = np.zeros(self.n_bins, dtype=np.float32)
                cnt[1:] += pair
                cnt[:-1] += pair
                y = acc / np.maximum(cnt, 1.0)
            else:
                if live.sum() >= 5:
                    # common mode (laser phase noise, bursts felt along the whole fibre) is not a vehicle
                    y[:, live] -= np.median(y[:, live], axis=1, keepdims=True)
                y *= y
            e, self._zi_elp[k] = signal.sosfilt(self.sos_elp, y, axis=0, zi=self._zi_elp[k])
            out[:, :, k] = np.maximum(e[keep_idx], 0.0)
        return out


def _cic_sums(body: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block of ``q`` rows of ``body``: A = sum (j+1) x_j and B = sum (q-1-j) x_j (float32). Block sums
    S and ramp sums R = sum_j j x_j come from strided in-place adds (R is the sum of the suffix sums T_k), so
    the input is read once and the accumulators need no temporaries."""
    t_suf = body[q - 1 :: q].copy()
    r = t_suf.copy()
    for k in range(q - 2, 0, -1):
        t_suf += body[k::q]
        r += t_suf
    s = t_suf
    s += body[0::q]
    a = r + s
    b = s
    b *= np.float32(q - 1)
    b -= r
    return a, b

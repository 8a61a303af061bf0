"""The rice-mapping experiment the notebook runs: data from the catalog, honest splits, model vs baseline.

Two kinds of dataset:

* ``"rice_synthetic_scene"`` (default, offline): a synthetic valley with known truth; the label raster is
  split into train / val / test (``"half"``, ``"blocked"`` or ``"random"``) and a U-Net, DNN or RF is trained
  on the train part and scored on the test part;
* ``"rice_aces_paro_points"``: the real ACES Paro points (training / validation / testing, from the catalog's
  ``rice_aces_paro_points_*_tfrecord`` entries) with the 256×256 NICFI patch
  (``rice_aces_paro_image_tfrecord``) to draw a map on. There is no label raster, so the model is a per-pixel
  one (``"dnn"`` or ``"rf"``).

Example
-------
>>> from terralab import rice
>>> exp = rice.workflow.open_experiment("rice_synthetic_scene", scene_size_px=96)
>>> exp.kind, sorted(exp.splits)
('raster', ['test', 'train', 'val'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from ..errors import InvalidInputError
from .labels import ACES_CLASSES, split

if TYPE_CHECKING:
    from .checkpoint import RiceModel

__all__ = ["POINT_DATASETS", "SCENE_DATASETS", "Experiment", "open_experiment"]

SCENE_DATASETS = ("rice_synthetic_scene",)
POINT_DATASETS = ("rice_aces_paro_points",)


@dataclass
class Experiment:
    """Data of one experiment.

    Attributes
    ----------
    name
        Catalog dataset name.
    kind
        ``"raster"`` (label raster splits) or ``"points"`` (labelled point sets).
    stack
        The feature stack to map (synthetic scene, or the real NICFI patch).
    truth
        The true class map (synthetic only), else None.
    splits
        ``{"train", "val", "test"}`` → label rasters (raster) or DataFrames (points).
    class_names
        Class names by id.
    clouds
        Where the synthetic scene's clouds and shadows truly are (season, y, x): 0 clear, 1 cloud, 2 shadow.
    """

    name: str
    kind: str
    stack: xr.DataArray
    truth: xr.DataArray | None
    splits: dict
    class_names: list[str] = field(default_factory=lambda: list(ACES_CLASSES.values()))
    clouds: xr.DataArray | None = None

    def fit(
        self,
        model: str = "unet",
        *,
        bands: str | Sequence[str] | None = None,
        epochs: int = 30,
        seed: int = 0,
        progress: bool | None = None,
        **model_params: Any,
    ) -> RiceModel:
        """Train ``model`` on the train split, stopping early on the val split (:func:`terralab.rice.fit`)."""
        from .training import fit

        if self.kind == "points" and model == "unet":
            raise InvalidInputError(
                f"{self.name} has labelled points, no label raster: a U-Net cannot be trained on it. "
                "Use model='dnn' (or 'rf')"
            )
        # points are the data themselves; a raster experiment trains on the stack with the train labels
        data = (self.splits["train"],) if self.kind == "points" else (self.stack, self.splits["train"])
        return fit(
            *data,
            model=model,
            bands=bands,
            epochs=epochs,
            seed=seed,
            validation=self.splits["val"],
            progress=progress,
            **model_params,
        )

    def predict_map(
        self,
        model: RiceModel,
        *,
        tile_px: int = 256,
        overlap_px: int = 32,
        progress: bool | None = None,
        return_proba: bool = False,
    ) -> xr.DataArray | xr.Dataset:
        """Class map of the experiment's stack (−1 where nothing usable was observed), with its ``quality``
        coordinate; ``return_proba=True``: the Dataset of :func:`terralab.rice.predict` (classes, calibrated
        probabilities, confidence, quality)."""
        from .inference import predict

        return predict(
            model, self.stack, tile=tile_px, overlap=overlap_px, progress=progress, return_proba=return_proba
        )

    def validity(self) -> xr.DataArray:
        """Per-season validity of the stack's bands (:func:`terralab.rice.clouds.validity`)."""
        from .clouds import validity

        return validity(self.stack)

    def reliability(
        self,
        model: RiceModel,
        prediction: xr.Dataset | pd.DataFrame | None = None,
        *,
        tile_px: int = 256,
        n_bins: int = 15,
    ) -> dict[str, pd.DataFrame]:
        """Calibration on the test split, before (temperature 1) and after temperature scaling:
        ``{"uncalibrated": table, "calibrated (T=…)": table}``, each the reliability table of
        :func:`terralab.rice.evaluate.calibration` (ECE in ``attrs["ece"]``)."""
        from .evaluate import calibration

        test = self.splits["test"]
        if self.kind == "points":

            def probabilities(m):
                return _point_proba(m, test)

            truth, prediction = test["class"], None
        else:

            def probabilities(m):
                return self.predict_map(m, tile_px=tile_px, progress=False, return_proba=True)

            truth = test
        calibrated = prediction if prediction is not None else probabilities(model)
        raw = _with_temperature(model, 1.0, probabilities)
        return {
            "uncalibrated": calibration(raw, truth, n_bins=n_bins),
            f"calibrated (T={model.temperature:.2f})": calibration(calibrated, truth, n_bins=n_bins),
        }

    def area_table(
        self, class_map: xr.DataArray | xr.Dataset, *, n_per_class: int = 50, seed: int = 0
    ) -> pd.DataFrame:
        """Rice (and every class's) area in hectares from the map and a stratified reference sample of
        ``n_per_class`` points per mapped class, labelled with the true classes (synthetic scenes: the truth
        plays the part of the interpreter), with the true area beside it (``true_ha``)."""
        from .area import area_estimate, pixel_area_m2, sample_reference

        if self.truth is None:
            raise InvalidInputError(
                f"{self.name} has no reference class map to label a reference sample with: draw points with "
                "rice.sample_reference, label them, and call rice.area_estimate"
            )
        classes = class_map["classes"] if isinstance(class_map, xr.Dataset) else class_map
        points = sample_reference(classes, n_per_class, seed=seed, reference_map=self.truth)
        table = area_estimate(classes, points, class_names=self.class_names)
        mapped = classes.values >= 0
        cell_ha = pixel_area_m2(classes)[:, None] / 10_000.0
        table["true_ha"] = [float((((self.truth.values == c) & mapped) * cell_ha).sum()) for c in table.index]
        return table

    def score(self, model: RiceModel, class_map: xr.DataArray | None = None) -> pd.DataFrame:
        """Scores on the test split (a :func:`terralab.rice.evaluate.scores` table): every test pixel (raster)
        or every test point (points)."""
        from .evaluate import independent_evaluation, scores

        if self.kind == "points":
            return independent_evaluation(model, self.splits["test"])
        class_map = class_map if class_map is not None else self.predict_map(model, progress=False)
        return scores(self.splits["test"], class_map, class_names=self.class_names)

    def independent_points(self, n_per_class: int = 100, *, seed: int = 0) -> pd.DataFrame:
        """A separate point set for independent evaluation: stratified points of the test area (raster), or
        the testing points (points)."""
        from .labels import sample_points

        if self.kind == "points":
            return self.splits["test"]
        return sample_points(self.stack, self.splits["test"], n_per_class, seed=seed + 1)

    def independent_evaluation(
        self, model: RiceModel, class_map: xr.DataArray | None = None, *, n_per_class: int = 100
    ) -> pd.DataFrame:
        """Scores on :meth:`independent_points` (a :func:`terralab.rice.evaluate.scores` table; a class map is
        sampled at the points for raster data)."""
        from .evaluate import independent_evaluation

        points = self.independent_points(n_per_class)
        if self.kind == "points":
            return independent_evaluation(model, points)
        class_map = class_map if class_map is not None else self.predict_map(model, progress=False)
        return independent_evaluation(class_map, points, class_names=self.class_names)

    def band_set_table(
        self,
        models: Sequence[str] = ("unet", "dnn"),
        *,
        band_sets: Sequence[str] | None = None,
        epochs: int = 10,
        seed: int = 0,
        progress: bool | None = None,
        fit_kwargs: dict | None = None,
    ) -> pd.DataFrame:
        """Macro F1 on the test split of every model type × band set, laid out like the paper's table.

        ``fit_kwargs`` maps a model type to extra :func:`terralab.rice.fit` arguments (e.g.
        ``{"unet": {"patches_per_epoch": 64}}`` for a quicker table).

        Band sets default to RGBN/RGBNE/RGBNS/RGBNES for scenes; for the real points (8 bands only) to RGBN
        with and without the indices (the paper found NDVI/EVI/NDWI did not help).
        """
        from .evaluate import band_model_table

        if band_sets is None:
            band_sets = (
                ("RGBN", "RGBNE", "RGBNS", "RGBNES")
                if self.kind == "raster"
                else ("RGBN", "RGBN+NDVI", "RGBN+NDVI+EVI+NDWI")
            )
        models = [m for m in models if not (self.kind == "points" and m == "unet")]
        results = {}
        for model in models:
            for band_set in band_sets:
                m = self.fit(
                    model,
                    bands=band_set,
                    epochs=epochs,
                    seed=seed,
                    progress=progress,
                    **(fit_kwargs or {}).get(model, {}),
                )
                results[(model, band_set)] = self.score(m)
        return band_model_table(results)

    def summary(self) -> pd.DataFrame:
        """Labelled pixels or points per class and split."""
        counts = {}
        for name, part in self.splits.items():
            values = part["class"] if isinstance(part, pd.DataFrame) else pd.Series(part.values.ravel())
            counts[name] = values[values >= 0].value_counts().sort_index()
        table = pd.DataFrame(counts).fillna(0).astype(int)
        table.index = [self.class_names[i] for i in table.index]
        table.index.name = "class"
        return table


def _with_temperature(model, temperature: float, call):
    """``call(model)`` with the model's temperature set to ``temperature`` for the duration."""
    before = model.config.get("temperature", 1.0)
    model.config["temperature"] = float(temperature)
    try:
        return call(model)
    finally:
        model.config["temperature"] = before


def _point_proba(model, points: pd.DataFrame) -> pd.DataFrame:
    from .points import predict_points

    return predict_points(model, points, output="proba")


def open_experiment(
    dataset: str = "rice_synthetic_scene",
    *,
    split_kind: str = "half",
    seed: int = 0,
    scene_size_px: int = 256,
    block_size_px: int = 64,
    cloud_fraction: float | None = None,
) -> Experiment:
    """Load a dataset through the catalog and split it.

    Parameters
    ----------
    dataset
        ``"rice_synthetic_scene"`` or ``"rice_aces_paro_points"``.
    split_kind
        For rasters: ``"half"`` (train on the top half, validate and test on the bottom half), ``"blocked"``
        (``block_size_px`` squares, 70/20/10) or ``"random"`` (pixels, 70/20/10, as ACES did — optimistic).
        Points come with ACES's own random training / validation / testing sets.
    seed
        Scene and split seed.
    scene_size_px
        Side of the synthetic scene.
    block_size_px
        Block side for blocked splits.
    cloud_fraction
        Synthetic scenes: share of the scene under cloud in the during-season optical median (0–0.4; default:
        the generator's 4 %).
    """
    from .. import catalog

    if dataset in SCENE_DATASETS:
        extra = {} if cloud_fraction is None else {"cloud_fraction": float(cloud_fraction)}
        stack, truth, cloud_map = catalog.open(
            dataset, height_px=scene_size_px, width_px=scene_size_px, seed=seed, return_clouds=True, **extra
        )
        fractions = (0.5, 0.1, 0.4) if split_kind == "half" else (0.7, 0.2, 0.1)
        parts = split(truth, kind=split_kind, fractions=fractions, block_size_px=block_size_px, seed=seed)
        return Experiment(
            dataset,
            "raster",
            stack,
            truth,
            parts,
            list(truth.attrs.get("class_names", ACES_CLASSES.values())),
            clouds=cloud_map,
        )
    if dataset in POINT_DATASETS:
        names = list(ACES_CLASSES.values())
        # the TFRecord entries have public URLs (the CSVs beside them are derived copies, mirror only)
        parts = {
            key: catalog.open(f"{dataset}_{part}_tfrecord", class_names=names)
            for key, part in (("train", "training"), ("val", "validation"), ("test", "testing"))
        }
        stack = catalog.open("rice_aces_paro_image_tfrecord")
        return Experiment(dataset, "points", stack, None, parts)
    raise InvalidInputError(f"unknown rice dataset {dataset!r}: use one of {SCENE_DATASETS + POINT_DATASETS}")

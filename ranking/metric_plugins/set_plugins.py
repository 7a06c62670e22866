"""Set-level metric plugins: one value per set of images (e.g. per source model), on CLIP ViT-L/14 features.

The maths is in :mod:`ranking.metric_plugins.set_metrics`; these classes declare the metrics for the
registry and compute the features with :class:`~ranking.metric_plugins.clip_models.ClipImageFeatures`
(L2-normalised CLIP ViT-L/14 image embeddings at 224 px). Names carry the feature extractor: a
``fid_clip_l14`` is a Fréchet distance on CLIP features, not the Inception FID of the literature, and
``cmmd_clip_l14`` uses the 224 px ViT-L/14 where the CMMD paper used the 336 px one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import set_metrics
from .base import Dimension, Direction, SetMetric
from .clip_models import ClipImageFeatures, missing_torch_stack

__all__ = ["ClipDiversityMetric", "CmmdClipMetric", "FidClipMetric", "KidClipMetric"]


class _ClipSetMetric(SetMetric):
    feature_plugin = ClipImageFeatures.name
    weights = ClipImageFeatures.weights
    uses_device = True

    @classmethod
    def missing_requirements(cls) -> str:
        return missing_torch_stack()

    def make_extractor(self) -> ClipImageFeatures:
        return ClipImageFeatures(root=self.folder, device=self.device)

    def _check(self, features: Mapping[str, np.ndarray], reference) -> None:
        if not isinstance(features, Mapping) or not features:
            raise ValueError("features must be a non-empty mapping of set name -> (n, d) array")
        if self.needs_reference and reference is None:
            raise ValueError(f"reference features are required by set metric {self.name!r}")


class ClipDiversityMetric(_ClipSetMetric):
    name = "clip_diversity_l14"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.DIVERSITY
    description = (
        "Diversity of a set: mean pairwise cosine distance 1 − cos between the CLIP ViT-L/14 image embeddings "
        "of its images (1 − CLIP self-similarity). Higher means more varied; needs at least 2 images."
    )

    def score_features(self, features, reference=None) -> dict[str, float]:
        self._check(features, reference)
        return {key: set_metrics.diversity(f) for key, f in features.items()}


class FidClipMetric(_ClipSetMetric):
    name = "fid_clip_l14"
    version = "1"
    direction = Direction.LOWER
    dimension = Dimension.FIDELITY
    needs_reference = True
    description = (
        "Fréchet distance between Gaussian fits of a set's and the reference set's CLIP ViT-L/14 image "
        "embeddings (FID's formula on CLIP features, not Inception: not comparable with published FIDs). "
        "Lower means closer to the reference."
    )

    def score_features(self, features, reference=None) -> dict[str, float]:
        self._check(features, reference)
        return {key: set_metrics.fid_from_features(f, reference) for key, f in features.items()}


class KidClipMetric(_ClipSetMetric):
    name = "kid_clip_l14"
    version = "1"
    direction = Direction.LOWER
    dimension = Dimension.FIDELITY
    needs_reference = True
    description = (
        "KID on CLIP ViT-L/14 image embeddings: unbiased MMD² with the kernel (xᵀy/d + 1)³, mean over 100 random "
        "subsets of min(1000, set sizes) images (Bińkowski et al. 2018). Can be slightly negative; lower is better."
    )
    n_subsets = 100
    subset_size = 1000
    random_state = 0

    def score_features(self, features, reference=None) -> dict[str, float]:
        self._check(features, reference)
        return {
            key: set_metrics.kid(
                f, reference, n_subsets=self.n_subsets, subset_size=self.subset_size, random_state=self.random_state
            ).mean
            for key, f in features.items()
        }


class CmmdClipMetric(_ClipSetMetric):
    name = "cmmd_clip_l14"
    version = "1"
    direction = Direction.LOWER
    dimension = Dimension.FIDELITY
    needs_reference = True
    description = (
        "CMMD (Jayasumana et al. 2024): 1000 × MMD² with a Gaussian RBF kernel (σ = 10) between unit-norm CLIP "
        "ViT-L/14 (224 px) image embeddings of a set and of the reference set. Lower is better."
    )

    def score_features(self, features, reference=None) -> dict[str, float]:
        self._check(features, reference)
        return {key: set_metrics.cmmd(f, reference) for key, f in features.items()}

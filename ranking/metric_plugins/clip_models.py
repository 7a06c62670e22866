"""CLIP-based plugins: CLIPScore, the LAION aesthetic predictor v2, PickScore and CLIP image features.

All run a transformers ``CLIPModel`` loaded from local files (``local_files_only=True``: nothing is ever
downloaded). torch and transformers are imported only when a plugin is constructed, so listing plugins
stays cheap.

Image preprocessing is PrefLab's own PIL/numpy code reproducing the reference pipelines
(:func:`clip_preprocess`): convert to RGB; resize with PIL bicubic so that the shorter side is ``size``
(the longer side becomes ``int(size · long / short)``); centre-crop ``size × size``; scale to [0, 1];
normalise per channel with the CLIP mean (0.48145466, 0.4578275, 0.40821073) and standard deviation
(0.26862954, 0.26130258, 0.27577711). The crop offset is ``round((H − size) / 2)`` (Python rounding) in
the torchvision pipeline that OpenAI's ``clip`` and open_clip use (CLIPScore, aesthetic predictor, HPSv2),
and ``(H − size) // 2`` in the transformers ``CLIPImageProcessor`` that PickScore uses; each plugin uses
its reference's rule, so the two differ by at most one pixel of offset.

Prompts are tokenised with ``CLIPTokenizer`` (lower-cased byte-level BPE), truncated to the model's context
length (77) and padded to it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import numpy as np

from .base import (
    Dimension,
    Direction,
    ItemMetric,
    ProgressCallback,
    WeightsFile,
    _run_batches,
    as_pil_rgb,
)

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ClipImageFeatures",
    "ClipScoreL14Metric",
    "ClipScoreMetric",
    "LaionAestheticMetric",
    "PickScoreMetric",
    "build_aesthetic_head",
    "clip_preprocess",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_preprocess(images: Sequence, *, size: int = 224, crop: str = "round", offset: int = 0) -> np.ndarray:
    """CLIP image preprocessing (see the module docstring).

    Parameters
    ----------
    images : sequence of PIL images or arrays
    size : int
        Resize target of the shorter side and crop size, in pixels.
    crop : {"round", "floor"}
        Crop offset rule: torchvision's ``round((H − size)/2)`` or transformers' ``(H − size) // 2``.
    offset : int
        Index of ``images[0]`` in the caller's sequence (for error messages).

    Returns
    -------
    ndarray of float32, shape (n, 3, size, size)
    """
    from PIL import Image

    if crop not in ("round", "floor"):
        raise ValueError(f"crop must be 'round' or 'floor', got {crop!r}")
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    mean = np.array(CLIP_MEAN, dtype=np.float32)
    std = np.array(CLIP_STD, dtype=np.float32)
    for i, image in enumerate(images):
        pil = as_pil_rgb(image, name=f"images[{offset + i}]")
        w, h = pil.size
        if w <= h:
            new_w, new_h = size, int(size * h / w)
        else:
            new_w, new_h = int(size * w / h), size
        if (new_w, new_h) != (w, h):
            pil = pil.resize((new_w, new_h), resample=Image.Resampling.BICUBIC)
        if crop == "round":
            top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)
        else:
            top, left = (new_h - size) // 2, (new_w - size) // 2
        arr = np.asarray(pil, dtype=np.float32)[top:top + size, left:left + size] / 255.0
        out[i] = ((arr - mean) / std).transpose(2, 0, 1)
    return out


def missing_torch_stack() -> str:
    """Why a torch/transformers plugin cannot run here ('' when both packages are installed)."""
    absent = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if absent:
        return f"needs the Python package(s) {', '.join(absent)}, not installed"
    return ""


def _model_files(folder: str, note: str) -> tuple[WeightsFile, ...]:
    return (
        WeightsFile(f"{folder}/config.json", note=note),
        WeightsFile(f"{folder}/model.safetensors", alternatives=(f"{folder}/pytorch_model.bin",), note=note),
    )


def tokenizer_files(folder: str, note: str) -> tuple[WeightsFile, ...]:
    """The two BPE tokenizer files a CLIP text tower needs from ``folder``."""
    return (WeightsFile(f"{folder}/vocab.json", note=note), WeightsFile(f"{folder}/merges.txt", note=note))


class ClipBackbone:
    """A transformers ``CLIPModel`` (+ optional tokenizer) on a device, in eval mode, float32.

    Parameters
    ----------
    model_dir : path
        A transformers checkpoint folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``).
    tokenizer_dir : path, optional
        A folder with ``vocab.json`` and ``merges.txt``; needed only for text embeddings.
    device : str
        A resolved torch device.
    crop : {"round", "floor"}
        Crop rule of :func:`clip_preprocess`.
    model : transformers.CLIPModel, optional
        An already built model to use instead of loading ``model_dir`` (used by HPSv2).
    """

    def __init__(self, model_dir=None, tokenizer_dir=None, *, device: str = "cpu", crop: str = "round", model=None):
        import torch
        from transformers import CLIPModel, CLIPTokenizer

        self.torch = torch
        if model is None:
            model = CLIPModel.from_pretrained(str(model_dir), local_files_only=True)
        self.model = model.float().to(device).eval()
        self.device = device
        self.crop = crop
        self.image_size = int(self.model.config.vision_config.image_size)
        self.context_length = int(self.model.config.text_config.max_position_embeddings)
        self.tokenizer = None
        if tokenizer_dir is not None:
            self.tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)

    def image_embeddings(self, images: Sequence, *, offset: int = 0, normalise: bool = True):
        """Projected image embeddings, a float32 tensor ``(n, d)`` on the device (unit rows if ``normalise``)."""
        torch = self.torch
        pixels = torch.from_numpy(clip_preprocess(images, size=self.image_size, crop=self.crop, offset=offset))
        with torch.inference_mode():
            out = self.model.vision_model(pixel_values=pixels.to(self.device))
            emb = self.model.visual_projection(out.pooler_output)
        return torch.nn.functional.normalize(emb, dim=-1) if normalise else emb

    def text_embeddings(self, texts: Sequence[str], *, normalise: bool = True):
        """Projected text embeddings ``(n, d)``; prompts are truncated to the context length."""
        torch = self.torch
        if self.tokenizer is None:
            raise RuntimeError("this CLIP backbone was built without a tokenizer")
        tokens = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=self.context_length, return_tensors="pt"
        )
        with torch.inference_mode():
            out = self.model.text_model(
                input_ids=tokens["input_ids"].to(self.device), attention_mask=tokens["attention_mask"].to(self.device)
            )
            emb = self.model.text_projection(out.pooler_output)
        return torch.nn.functional.normalize(emb, dim=-1) if normalise else emb


# ----------------------------------------------------------------------------------------------------
# CLIP image features (for set metrics)
# ----------------------------------------------------------------------------------------------------

CLIP_L14_DIR = "clip-vit-large-patch14"
_CLIP_L14_NOTE = "transformers checkpoint openai/clip-vit-large-patch14"


class ClipImageFeatures:
    """L2-normalised CLIP ViT-L/14 image embeddings (768-d), the feature extractor of PrefLab's set metrics.

    Not a metric: it has no score. Its files are ``weights``; construct it with the root folder that holds
    ``clip-vit-large-patch14/``.
    """

    name = "clip_l14_image_features"
    weights = _model_files(CLIP_L14_DIR, _CLIP_L14_NOTE)
    default_batch_size = 16

    def __init__(self, *, root, device: str = "cpu"):
        from pathlib import Path

        self.backbone = ClipBackbone(Path(root) / CLIP_L14_DIR, device=device, crop="round")

    def embed(self, images: Sequence, *, batch_size: int | None = None,
              progress: ProgressCallback | None = None) -> np.ndarray:
        """Unit-norm image embeddings, float64 ``(n, 768)``; ``progress`` gets the fraction done."""
        images = list(images)
        size = self.default_batch_size if batch_size is None else batch_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        dim = int(self.backbone.model.config.projection_dim)

        def run(start, stop):
            return self.backbone.image_embeddings(images[start:stop], offset=start).double().cpu().numpy()

        out = _run_batches(len(images), size, progress, run)
        return out.reshape(len(images), dim)


class TorchItemMetric(ItemMetric):
    """An item metric computed by a torch model (CUDA when present); unavailable without torch/transformers."""

    uses_device = True
    default_batch_size = 16

    @classmethod
    def missing_requirements(cls) -> str:
        return missing_torch_stack()


# ----------------------------------------------------------------------------------------------------
# CLIPScore
# ----------------------------------------------------------------------------------------------------


class ClipScoreMetric(TorchItemMetric):
    """CLIPScore (Hessel et al., EMNLP 2021): ``w · max(cos(E_img, E_txt), 0)`` with ``w = 2.5``.

    As in the paper, the prompt is prefixed with ``"A photo depicts "`` and the backbone is CLIP ViT-B/32.
    (torchmetrics' ``CLIPScore`` instead uses ``w = 100``, no prefix and ViT-L/14 by default: its values are
    40× these on the same backbone and prompt.) Range [0, 2.5].
    """

    name = "clipscore"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.ALIGNMENT
    needs_prompts = True
    model_folder = "clip-vit-base-patch32"
    description = (
        "CLIPScore (Hessel et al. 2021) = 2.5 · max(cos(CLIP image, CLIP text), 0) with the paper's prompt prefix "
        "'A photo depicts ' on CLIP ViT-B/32. Range [0, 2.5]; torchmetrics reports 100 · max(cos, 0) instead."
    )
    weights = _model_files("clip-vit-base-patch32", "transformers checkpoint openai/clip-vit-base-patch32") + (
        tokenizer_files("clip-vit-base-patch32", "tokenizer files of openai/clip-vit-base-patch32")
    )
    #: Weight ``w`` of the paper.
    w = 2.5
    prefix = "A photo depicts "

    def __init__(self, *, weights_dir=None, plugin_dir=None, device: str = "auto"):
        super().__init__(weights_dir=weights_dir, plugin_dir=plugin_dir, device=device)
        folder = self.folder / self.model_folder
        self.backbone = ClipBackbone(folder, folder, device=self.device, crop="round")

    def score_batch(self, images: Sequence, prompts: Sequence[str] | None, *, offset: int = 0) -> np.ndarray:
        img = self.backbone.image_embeddings(images, offset=offset)
        txt = self.backbone.text_embeddings([self.prefix + p for p in prompts])
        cos = (img * txt).sum(dim=-1)
        return (self.w * cos.clamp(min=0)).double().cpu().numpy()


class ClipScoreL14Metric(ClipScoreMetric):
    """CLIPScore (w = 2.5, paper prefix) on CLIP ViT-L/14, the backbone torchmetrics uses by default."""

    name = "clipscore_l14"
    model_folder = CLIP_L14_DIR
    description = (
        "CLIPScore = 2.5 · max(cos(CLIP image, CLIP text), 0) with the prefix 'A photo depicts ', on CLIP "
        "ViT-L/14 (torchmetrics' default backbone; torchmetrics itself multiplies by 100 and adds no prefix)."
    )
    weights = _model_files(CLIP_L14_DIR, _CLIP_L14_NOTE) + tokenizer_files(
        CLIP_L14_DIR, "tokenizer files of openai/clip-vit-large-patch14"
    )


# ----------------------------------------------------------------------------------------------------
# LAION aesthetic predictor v2
# ----------------------------------------------------------------------------------------------------

AESTHETIC_FILE = "laion-aesthetic-v2/sac+logos+ava1-l14-linearMSE.pth"


def build_aesthetic_head(input_size: int = 768):
    """The aesthetic predictor v2 head as a torch module with the published state-dict layout.

    ``layers = Sequential(Linear(input_size = 768, 1024), Dropout(0.2), Linear(1024, 128), Dropout(0.2), Linear(128, 64),
    Dropout(0.1), Linear(64, 16), Linear(16, 1))`` — keys ``layers.{0,2,4,6,7}.{weight,bias}``. The dropouts
    are inactive in eval mode. ImageReward's head has the same layout (on the 768-d BLIP text features).
    """
    import torch

    nn = torch.nn

    class AestheticHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2), nn.Linear(128, 64),
                nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
            )

        def forward(self, x):
            return self.layers(x)

    return AestheticHead()


class LaionAestheticMetric(TorchItemMetric):
    """LAION aesthetic predictor v2: the MLP head on L2-normalised CLIP ViT-L/14 image embeddings."""

    name = "laion_aesthetic_v2"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.AESTHETICS
    description = (
        "LAION aesthetic predictor v2 (sac+logos+ava1-l14-linearMSE): an MLP head on L2-normalised CLIP "
        "ViT-L/14 image embeddings, trained to predict 1–10 aesthetic ratings. Higher is better."
    )
    weights = (
        *_model_files(CLIP_L14_DIR, _CLIP_L14_NOTE),
        WeightsFile(AESTHETIC_FILE, note="state dict published by LAION (improved-aesthetic-predictor)"),
    )

    def __init__(self, *, weights_dir=None, plugin_dir=None, device: str = "auto"):
        super().__init__(weights_dir=weights_dir, plugin_dir=plugin_dir, device=device)
        import torch

        self.backbone = ClipBackbone(self.folder / CLIP_L14_DIR, device=self.device, crop="round")
        dim = int(self.backbone.model.config.projection_dim)
        if dim != 768:
            raise ValueError(f"the aesthetic head needs 768-d CLIP ViT-L/14 embeddings, the checkpoint gives {dim}")
        state = torch.load(self.folder / AESTHETIC_FILE, map_location="cpu", weights_only=True)
        head = build_aesthetic_head()
        head.load_state_dict(state, strict=True)
        self.head = head.float().to(self.device).eval()

    def score_batch(self, images: Sequence, prompts=None, *, offset: int = 0) -> np.ndarray:
        import torch

        emb = self.backbone.image_embeddings(images, offset=offset)
        with torch.inference_mode():
            return self.head(emb)[:, 0].double().cpu().numpy()


# ----------------------------------------------------------------------------------------------------
# PickScore
# ----------------------------------------------------------------------------------------------------


class PickScoreMetric(TorchItemMetric):
    """PickScore v1 (Kirstain et al., NeurIPS 2023): ``exp(logit_scale) · cos(E_img, E_txt)`` of a CLIP-H/14
    fine-tuned on Pick-a-Pic, with the tokenizer of ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K`` and
    transformers' crop rule."""

    name = "pickscore_v1"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.OVERALL
    needs_prompts = True
    description = (
        "PickScore v1: exp(logit_scale) · cos(image, prompt) of the Pick-a-Pic fine-tuned CLIP ViT-H/14 "
        "(≈ 100 × cosine; typical values 18–23). Higher means more preferred for the prompt."
    )
    weights = _model_files("PickScore_v1", "transformers checkpoint yuvalkirstain/PickScore_v1") + tokenizer_files(
        "CLIP-ViT-H-14-laion2B-s32B-b79K", "tokenizer files of laion/CLIP-ViT-H-14-laion2B-s32B-b79K (the processor)"
    )

    def __init__(self, *, weights_dir=None, plugin_dir=None, device: str = "auto"):
        super().__init__(weights_dir=weights_dir, plugin_dir=plugin_dir, device=device)
        self.backbone = ClipBackbone(
            self.folder / "PickScore_v1", self.folder / "CLIP-ViT-H-14-laion2B-s32B-b79K", device=self.device,
            crop="floor",
        )

    def score_batch(self, images: Sequence, prompts: Sequence[str] | None, *, offset: int = 0) -> np.ndarray:
        img = self.backbone.image_embeddings(images, offset=offset)
        txt = self.backbone.text_embeddings(prompts)
        scale = self.backbone.model.logit_scale.detach().exp()
        return (scale * (img * txt).sum(dim=-1)).double().cpu().numpy()


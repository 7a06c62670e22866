"""ImageReward v1.0 (Xu et al., NeurIPS 2023) on transformers' BLIP modules, without the ImageReward package.

ImageReward is BLIP (ViT-L/16 image encoder at 224 px + the BERT-base "med" text encoder with
cross-attention to the image tokens) followed by an MLP head on the text encoder's first ([CLS]) output:
``Linear(768, 1024) → Dropout → Linear(1024, 128) → Dropout → Linear(128, 64) → Dropout → Linear(64, 16) →
Linear(16, 1)``, standardised as ``(r − 0.16717362830052426) / 1.0333394966054072``. Its checkpoint
``ImageReward.pt`` holds the parameters under ``blip.visual_encoder.*``, ``blip.text_encoder.*`` and
``mlp.layers.*``; ``med_config.json`` is the BERT configuration of the text encoder.

The ImageReward package needs the BLIP code base and torchvision; PrefLab instead loads the same parameters
into transformers' ``BlipVisionModel`` (a port of BLIP's ViT: class token + learned positions, pre-norm blocks
with a fused ``qkv`` projection, LayerNorm ε = 1e-6, a final LayerNorm over all tokens) and
``BlipTextModel`` (a port of med: BERT layers with ``crossattention``), by renaming keys
(:func:`imagereward_to_transformers`). The text encoder runs bidirectionally (``is_decoder=False``) with the
image tokens as ``encoder_hidden_states``, as ImageReward's ``score``.

Preprocessing: ImageReward's transform (CLIP resize/crop/normalisation, torchvision crop rounding). Prompts:
``bert-base-uncased`` WordPiece, ``[CLS] … [SEP]``, truncated and padded to 35 tokens with the padding masked.
Scores are roughly standard normal over ImageReward's training prompts; higher is better.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from .base import Dimension, Direction, WeightsFile, skip_random_init
from .clip_models import TorchItemMetric, build_aesthetic_head, clip_preprocess

__all__ = ["ImageRewardMetric", "build_blip_configs", "imagereward_to_transformers"]

IR_MEAN = 0.16717362830052426
IR_STD = 1.0333394966054072
MAX_TEXT_LENGTH = 35

_VIT_BLOCK = {
    "norm1": "layer_norm1",
    "norm2": "layer_norm2",
    "attn.qkv": "self_attn.qkv",
    "attn.proj": "self_attn.projection",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


def imagereward_to_transformers(state: dict) -> tuple[dict, dict, dict]:
    """Split an ImageReward state dict into (vision, text, head) dicts with transformers/PrefLab key names.

    Keys of other BLIP parts that scoring does not use (projections for contrastive training, a text decoder,
    momentum encoders), the text pooler and saved ``position_ids`` buffers are ignored.

    Raises
    ------
    ValueError
        On a vision key the mapping does not know.
    """
    vision, text, head = {}, {}, {}
    block = re.compile(r"^blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$")
    plain = {
        "cls_token": "embeddings.class_embedding",
        "pos_embed": "embeddings.position_embedding",
        "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
        "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
        "norm.weight": "post_layernorm.weight",
        "norm.bias": "post_layernorm.bias",
    }
    unknown = []
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("blip.visual_encoder."):
            rest = key.removeprefix("blip.visual_encoder.")
            if rest in plain:
                vision[plain[rest]] = value
            elif m := block.match(rest):
                vision[f"encoder.layers.{m.group(1)}.{_VIT_BLOCK[m.group(2)]}.{m.group(3)}"] = value
            else:
                unknown.append(key)
        elif key.startswith("blip.text_encoder."):
            rest = key.removeprefix("blip.text_encoder.")
            # med kept position_ids as a saved buffer; transformers rebuilds it, the pooler is unused
            if not rest.startswith("pooler.") and not rest.endswith("position_ids"):
                text[rest] = value
        elif key.startswith("mlp."):
            head[key.removeprefix("mlp.")] = value
    if unknown:
        raise ValueError(f"ImageReward vision keys with no transformers counterpart: {', '.join(unknown[:10])}")
    return vision, text, head


def build_blip_configs(vision_state: dict, med_config: dict, *, vision_head_width: int = 64):
    """transformers ``BlipVisionConfig`` (shapes read from the state dict; heads = width / 64, as BLIP's
    ViT-B and ViT-L) and ``BlipTextConfig`` (from ``med_config.json``, cross-attention width = vision width)."""
    from transformers import BlipTextConfig, BlipVisionConfig

    conv = vision_state["embeddings.patch_embedding.weight"]
    width, patch = int(conv.shape[0]), int(conv.shape[-1])
    n_pos = int(vision_state["embeddings.position_embedding"].shape[1])
    grid = round((n_pos - 1) ** 0.5)
    if grid * grid != n_pos - 1:
        raise ValueError(f"pos_embed has {n_pos} positions, not 1 + a square number of patches")
    depth = 1 + max(int(k.split(".")[2]) for k in vision_state if k.startswith("encoder.layers."))
    vision = BlipVisionConfig(
        hidden_size=width,
        intermediate_size=int(vision_state["encoder.layers.0.mlp.fc1.weight"].shape[0]),
        num_hidden_layers=depth,
        num_attention_heads=width // vision_head_width,
        image_size=grid * patch,
        patch_size=patch,
        hidden_act="gelu",
        layer_norm_eps=1e-6,
    )
    text = BlipTextConfig(
        vocab_size=int(med_config["vocab_size"]),
        hidden_size=int(med_config["hidden_size"]),
        encoder_hidden_size=width,
        intermediate_size=int(med_config["intermediate_size"]),
        num_hidden_layers=int(med_config["num_hidden_layers"]),
        num_attention_heads=int(med_config["num_attention_heads"]),
        max_position_embeddings=int(med_config["max_position_embeddings"]),
        hidden_act=med_config.get("hidden_act", "gelu"),
        layer_norm_eps=float(med_config.get("layer_norm_eps", 1e-12)),
        pad_token_id=int(med_config.get("pad_token_id", 0)),
        is_decoder=True,  # builds the cross-attention modules; scoring runs with is_decoder=False
    )
    return vision, text


def _load_strict(module, state: dict, what: str) -> None:
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"ImageReward {what} does not match: missing {missing[:5]}, unexpected {list(result.unexpected_keys)[:5]}"
        )


class ImageRewardMetric(TorchItemMetric):
    name = "imagereward_v1"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.OVERALL
    needs_prompts = True
    default_batch_size = 8
    description = (
        "ImageReward v1.0 (Xu et al. 2023): BLIP ViT-L image tokens cross-attended by the prompt's BERT encoder, "
        "an MLP on [CLS], standardised by the training mean/std. Higher is preferred; ≈ N(0, 1) on its prompts."
    )
    weights = (
        WeightsFile("ImageReward/ImageReward.pt", note="THUDM/ImageReward ImageReward.pt"),
        WeightsFile("ImageReward/med_config.json", note="THUDM/ImageReward med_config.json"),
        WeightsFile("bert-base-uncased/vocab.txt", note="vocab.txt of bert-base-uncased (BLIP's tokenizer)"),
    )

    def __init__(self, *, weights_dir=None, plugin_dir=None, device: str = "auto"):
        super().__init__(weights_dir=weights_dir, plugin_dir=plugin_dir, device=device)
        import torch
        from transformers import BertTokenizer, BlipTextModel, BlipVisionModel

        self.torch = torch
        state = torch.load(self.folder / "ImageReward/ImageReward.pt", map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        med = json.loads((self.folder / "ImageReward/med_config.json").read_text())
        vision_state, text_state, head_state = imagereward_to_transformers(state)
        if not vision_state or not text_state or not head_state:
            raise ValueError("ImageReward.pt lacks blip.visual_encoder.*, blip.text_encoder.* or mlp.* parameters")
        vision_cfg, text_cfg = build_blip_configs(vision_state, med)
        with skip_random_init():
            self.vision = BlipVisionModel(vision_cfg)
            self.text = BlipTextModel(text_cfg, add_pooling_layer=False)
        _load_strict(self.vision, vision_state, "vision encoder")
        _load_strict(self.text, text_state, "text encoder")
        if head_state["layers.0.weight"].shape[1] != text_cfg.hidden_size:
            raise ValueError("ImageReward head input size does not match the text encoder width")
        self.head = build_aesthetic_head(text_cfg.hidden_size)
        self.head.load_state_dict(head_state, strict=True)
        for module in (self.vision, self.text, self.head):
            module.float().to(self.device).eval()
        self.image_size = vision_cfg.image_size
        self.tokenizer = BertTokenizer.from_pretrained(str(self.folder / "bert-base-uncased"), local_files_only=True)

    def score_batch(self, images: Sequence, prompts: Sequence[str] | None, *, offset: int = 0) -> np.ndarray:
        torch = self.torch
        pixels = torch.from_numpy(clip_preprocess(images, size=self.image_size, crop="round", offset=offset))
        tokens = self.tokenizer(
            list(prompts), padding="max_length", truncation=True, max_length=MAX_TEXT_LENGTH, return_tensors="pt"
        )
        with torch.inference_mode():
            image_embeds = self.vision(pixel_values=pixels.to(self.device)).last_hidden_state
            image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            out = self.text(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device),
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=image_mask,
                is_decoder=False,
            )
            reward = self.head(out.last_hidden_state[:, 0, :])[:, 0]
        return ((reward - IR_MEAN) / IR_STD).double().cpu().numpy()

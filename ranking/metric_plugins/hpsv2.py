"""HPSv2 / HPSv2.1 (Wu et al. 2023, "Human Preference Score v2") without open_clip or torchvision.

HPSv2 is an open_clip ViT-H-14 fine-tuned on human preference pairs; its checkpoint
(``HPS_v2_compressed.pt`` / ``HPS_v2.1_compressed.pt``) is a dict whose ``"state_dict"`` holds the open_clip
parameter layout. open_clip imports torchvision, which does not import beside PrefLab's torch, so PrefLab
re-maps that state dict onto a transformers ``CLIPModel`` of the same architecture
(:func:`open_clip_to_transformers`) — the two implementations compute the same function:

* vision: patch conv (no bias) → ``[class] + patches`` + positional embedding → ``ln_pre`` → pre-norm
  residual blocks (``ln_1`` → multi-head attention with a fused ``in_proj`` (q, k, v stacked on dim 0) →
  ``ln_2`` → MLP ``c_fc`` → GELU → ``c_proj``) → ``ln_post`` on the class token → ``@ proj``;
* text: token + positional embedding → causal pre-norm blocks → ``ln_final`` → the state at the end-of-text
  token (the largest token id, hence open_clip's ``argmax``) → ``@ text_projection``;
* ViT-H-14 uses exact GELU (not QuickGELU) and LayerNorm ε = 1e-5; heads are width / 80 (vision) and
  width / 64 (text): 16 and 16.

The score is HPSv2's: the cosine of the L2-normalised image and text embeddings (``image_features @
text_features.T`` on the diagonal, no logit scale), typically 0.2–0.3. Preprocessing is open_clip's
validation transform (CLIP resize/crop/normalisation, torchvision crop rounding); the tokenizer is the CLIP
BPE of ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K`` (open_clip's own vocabulary file is the same BPE), padded to
77 tokens. The reference runs under fp16 autocast; PrefLab runs float32, so scores differ in about the third
decimal at most.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .base import Dimension, Direction, WeightsFile, skip_random_init
from .clip_models import ClipBackbone, TorchItemMetric, tokenizer_files

__all__ = ["Hpsv2Metric", "Hpsv21Metric", "build_clip_config", "load_open_clip_state_dict", "open_clip_to_transformers"]

TOKENIZER_DIR = "CLIP-ViT-H-14-laion2B-s32B-b79K"

_BLOCK_MAP = {
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}

_PLAIN_MAP = {
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "logit_scale": "logit_scale",
}

#: open_clip entries that carry no learned parameters of the scoring path.
_IGNORED = {"attn_mask", "visual.attn_mask", "logit_bias"}


def load_open_clip_state_dict(path) -> dict:
    """Read an open_clip checkpoint (a bare state dict or ``{"state_dict": ...}``; ``module.`` prefixes from
    DataParallel training are removed). Loaded with ``torch.load(weights_only=True)``: no code runs."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict or a dict with 'state_dict', got {type(ckpt).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _count_blocks(state: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.ln_1\.weight$")
    ids = [int(m.group(1)) for k in state if (m := pattern.match(k))]
    return max(ids) + 1 if ids else 0


def build_clip_config(state: dict, *, eos_token_id: int, bos_token_id: int, vision_head_width: int = 80,
                      text_head_width: int = 64, hidden_act: str = "gelu"):
    """A transformers ``CLIPConfig`` matching the shapes of an open_clip ViT state dict.

    Head counts are not stored in a state dict: they are ``width / head_width`` (80 and 64 for ViT-H-14).
    """
    from transformers import CLIPConfig

    conv = state["visual.conv1.weight"]
    v_width, patch = int(conv.shape[0]), int(conv.shape[-1])
    n_pos = int(state["visual.positional_embedding"].shape[0])
    grid = round((n_pos - 1) ** 0.5)
    if grid * grid != n_pos - 1:
        raise ValueError(f"visual.positional_embedding has {n_pos} rows, not 1 + a square number of patches")
    t_width = int(state["token_embedding.weight"].shape[1])
    embed_dim = int(state["visual.proj"].shape[1])
    for width, head_width, name in ((v_width, vision_head_width, "vision"), (t_width, text_head_width, "text")):
        if width % head_width:
            raise ValueError(f"{name} width {width} is not a multiple of the head width {head_width}")
    return CLIPConfig(
        vision_config=dict(
            hidden_size=v_width,
            intermediate_size=int(state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            num_hidden_layers=_count_blocks(state, "visual.transformer.resblocks."),
            num_attention_heads=v_width // vision_head_width,
            image_size=grid * patch,
            patch_size=patch,
            hidden_act=hidden_act,
            layer_norm_eps=1e-5,
            projection_dim=embed_dim,
        ),
        text_config=dict(
            vocab_size=int(state["token_embedding.weight"].shape[0]),
            hidden_size=t_width,
            intermediate_size=int(state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            num_hidden_layers=_count_blocks(state, "transformer.resblocks."),
            num_attention_heads=t_width // text_head_width,
            max_position_embeddings=int(state["positional_embedding"].shape[0]),
            hidden_act=hidden_act,
            layer_norm_eps=1e-5,
            projection_dim=embed_dim,
            eos_token_id=eos_token_id,
            bos_token_id=bos_token_id,
            pad_token_id=eos_token_id,
        ),
        projection_dim=embed_dim,
    )


def open_clip_to_transformers(state: dict) -> dict:
    """Rename (and split/transpose where needed) open_clip ViT keys to transformers ``CLIPModel`` keys.

    Raises
    ------
    ValueError
        On a key the mapping does not know (e.g. a different open_clip architecture).
    """
    out = {}
    unknown = []
    block = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")
    for key, value in state.items():
        if key in _IGNORED:
            continue
        if key in _PLAIN_MAP:
            out[_PLAIN_MAP[key]] = value
        elif key == "visual.proj":
            out["visual_projection.weight"] = value.T.contiguous()
        elif key == "text_projection":
            out["text_projection.weight"] = value.T.contiguous()
        elif m := block.match(key):
            tower = "vision_model" if m.group(1) else "text_model"
            base = f"{tower}.encoder.layers.{m.group(2)}."
            rest = m.group(3)
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = "weight" if rest.endswith("weight") else "bias"
                q, k, v = value.chunk(3, dim=0)
                out[base + f"self_attn.q_proj.{kind}"] = q.contiguous()
                out[base + f"self_attn.k_proj.{kind}"] = k.contiguous()
                out[base + f"self_attn.v_proj.{kind}"] = v.contiguous()
            elif rest in _BLOCK_MAP:
                out[base + _BLOCK_MAP[rest]] = value
            else:
                unknown.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"open_clip keys with no transformers counterpart: {', '.join(sorted(unknown)[:10])}")
    return out


def load_open_clip_as_transformers(path, tokenizer):
    """Build a transformers ``CLIPModel`` and load an open_clip ViT checkpoint into it (all weights must be
    used and every model parameter must be set)."""
    from transformers import CLIPModel

    state = load_open_clip_state_dict(path)
    config = build_clip_config(state, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    with skip_random_init():
        model = CLIPModel(config)
    mapped = open_clip_to_transformers(state)
    result = model.load_state_dict(mapped, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path}: checkpoint does not match the CLIP architecture: missing {missing[:5]}, "
            f"unexpected {list(result.unexpected_keys)[:5]}"
        )
    return model


class Hpsv2Metric(TorchItemMetric):
    name = "hpsv2"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.OVERALL
    needs_prompts = True
    checkpoint = "HPSv2/HPS_v2_compressed.pt"
    description = (
        "HPSv2 (Wu et al. 2023): cosine of image and prompt embeddings of an open_clip ViT-H-14 fine-tuned on "
        "human preferences, run as a transformers CLIPModel (float32). Typical values 0.2–0.3; higher is preferred."
    )
    weights = (
        WeightsFile(checkpoint, note="xswu/HPSv2 HPS_v2_compressed.pt (open_clip state dict)"),
        *tokenizer_files(TOKENIZER_DIR, "tokenizer files of laion/CLIP-ViT-H-14-laion2B-s32B-b79K"),
    )

    def __init__(self, *, weights_dir=None, plugin_dir=None, device: str = "auto"):
        super().__init__(weights_dir=weights_dir, plugin_dir=plugin_dir, device=device)
        from transformers import CLIPTokenizer

        tokenizer = CLIPTokenizer.from_pretrained(str(self.folder / TOKENIZER_DIR), local_files_only=True)
        model = load_open_clip_as_transformers(self.folder / self.checkpoint, tokenizer)
        self.backbone = ClipBackbone(model=model, device=self.device, crop="round")
        self.backbone.tokenizer = tokenizer

    def score_batch(self, images: Sequence, prompts: Sequence[str] | None, *, offset: int = 0) -> np.ndarray:
        img = self.backbone.image_embeddings(images, offset=offset)
        txt = self.backbone.text_embeddings(prompts)
        return (img * txt).sum(dim=-1).double().cpu().numpy()


class Hpsv21Metric(Hpsv2Metric):
    name = "hpsv2_1"
    checkpoint = "HPSv2/HPS_v2.1_compressed.pt"
    description = (
        "HPSv2.1: the same architecture and score as HPSv2 with the v2.1 weights (trained on more data)."
    )
    weights = (
        WeightsFile(checkpoint, note="xswu/HPSv2 HPS_v2.1_compressed.pt (open_clip state dict)"),
        *tokenizer_files(TOKENIZER_DIR, "tokenizer files of laion/CLIP-ViT-H-14-laion2B-s32B-b79K"),
    )

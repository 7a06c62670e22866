"""Tests of the model-based metric plugins on tiny randomly initialised models built here.

Nothing is downloaded: each test writes a checkpoint folder laid out like the real one (transformers
``save_pretrained`` folders, a CLIP BPE vocabulary, the aesthetic head's state dict, an open_clip-layout HPSv2
checkpoint, a BLIP-layout ImageReward checkpoint) and loads it through the plugin. The values of random
models mean nothing; the tests assert shapes, determinism, batching equivalence (one batch of 4 = four
batches of 1), prompt handling, agreement with the reference formula computed another way, and the listing
of absent weights.
"""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ranking.metric_plugins import WeightsMissingError, create_plugin, list_plugins  # noqa: E402
from ranking.metric_plugins import clip_models as cm  # noqa: E402
from ranking.metric_plugins import hpsv2 as hp  # noqa: E402
from ranking.metric_plugins import image_reward as ir  # noqa: E402
from ranking.metric_plugins import set_metrics as sm  # noqa: E402

PROMPTS = ["a red apple on a table", "a cat", "An astronaut riding a horse, oil painting", ""]


def _images():
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8),
        rng.integers(0, 256, size=(300, 200), dtype=np.uint8),  # grey, portrait
        rng.integers(0, 256, size=(224, 224, 4), dtype=np.uint8),  # RGBA
        rng.integers(0, 256, size=(100, 150, 3), dtype=np.uint8),  # smaller than the crop: upscaled
    ]


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_clip_tokenizer(folder: Path) -> int:
    """A character-level CLIP BPE vocabulary (no merges), special tokens last as in CLIP. Returns its size."""
    chars = _bytes_to_unicode()
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return len(vocab)


def tiny_clip_config(projection_dim: int, *, image_size=224, patch_size=32, hidden_act="quick_gelu"):
    return transformers.CLIPConfig(
        text_config=dict(vocab_size=514, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, hidden_act=hidden_act,
                         bos_token_id=512, eos_token_id=513, pad_token_id=513),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=patch_size, hidden_act=hidden_act),
        projection_dim=projection_dim,
    )


def write_clip_checkpoint(folder: Path, projection_dim: int, seed: int) -> None:
    torch.manual_seed(seed)
    model = transformers.CLIPModel(tiny_clip_config(projection_dim))
    with torch.no_grad():
        model.logit_scale.fill_(np.log(100.0))
    model.save_pretrained(folder)
    write_clip_tokenizer(folder)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A weights directory with tiny stand-ins for every CLIP-family checkpoint."""
    root = tmp_path_factory.mktemp("weights")
    write_clip_checkpoint(root / "clip-vit-base-patch32", projection_dim=16, seed=1)
    write_clip_checkpoint(root / "clip-vit-large-patch14", projection_dim=768, seed=2)
    write_clip_checkpoint(root / "PickScore_v1", projection_dim=24, seed=3)
    write_clip_tokenizer(root / "CLIP-ViT-H-14-laion2B-s32B-b79K")
    torch.manual_seed(4)
    head = cm.build_aesthetic_head()
    (root / "laion-aesthetic-v2").mkdir()
    torch.save(head.state_dict(), root / cm.AESTHETIC_FILE)
    return root


def _hf_cos(model_dir: Path, images, prompts, crop):
    """cos(image, text) through transformers' own CLIPModel.forward (logits / logit scale)."""
    model = transformers.CLIPModel.from_pretrained(model_dir).eval()
    tok = transformers.CLIPTokenizer.from_pretrained(model_dir)
    ids = tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    px = torch.from_numpy(cm.clip_preprocess(images, crop=crop))
    with torch.no_grad():
        out = model(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"], pixel_values=px)
        return (torch.diagonal(out.logits_per_image) / model.logit_scale.exp()).numpy(), model


def _check_batching_and_determinism(plugin, images, prompts=None):
    seen = []
    one = plugin.score(images, prompts, batch_size=4, progress=seen.append)
    single = plugin.score(images, prompts, batch_size=1)
    again = plugin.score(images, prompts, batch_size=4)
    assert one.shape == (len(images),) and one.dtype == np.float64
    assert np.all(np.isfinite(one))
    assert np.array_equal(one, again)  # deterministic
    assert np.allclose(one, single, rtol=1e-5, atol=1e-6)  # batch of 4 == 4 batches of 1
    assert seen == [1.0]
    return one


# ----------------------------------------------------------------------------------------------------
# preprocessing
# ----------------------------------------------------------------------------------------------------


def test_clip_preprocess_matches_transformers_image_processor():
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    processor = CLIPImageProcessorPil()
    for image in _images():
        from PIL import Image

        pil = Image.fromarray(image).convert("RGB")
        ref = processor(images=[pil], return_tensors="np")["pixel_values"]
        assert np.array_equal(cm.clip_preprocess([pil], crop="floor"), ref)


def test_clip_preprocess_crop_rules_differ_only_on_odd_margins():
    rng = np.random.default_rng(1)
    even = rng.integers(0, 256, size=(228, 224, 3), dtype=np.uint8)  # margin 4: offset 2 both ways
    odd = rng.integers(0, 256, size=(227, 224, 3), dtype=np.uint8)  # margin 3: round(1.5) = 2, 3 // 2 = 1
    assert np.array_equal(cm.clip_preprocess([even], crop="round"), cm.clip_preprocess([even], crop="floor"))
    r, f = cm.clip_preprocess([odd], crop="round"), cm.clip_preprocess([odd], crop="floor")
    assert np.array_equal(r[:, :, :-1], f[:, :, 1:])
    manual = (odd[2:226].astype(np.float32) / 255 - np.array(cm.CLIP_MEAN, np.float32)) / np.array(cm.CLIP_STD, np.float32)
    assert np.allclose(r[0], manual.transpose(2, 0, 1), atol=1e-6)
    with pytest.raises(ValueError, match="crop"):
        cm.clip_preprocess([odd], crop="ceil")


# ----------------------------------------------------------------------------------------------------
# CLIPScore, aesthetic, PickScore
# ----------------------------------------------------------------------------------------------------


def test_clipscore_runs_end_to_end_and_equals_the_paper_formula(weights):
    plugin = create_plugin("clipscore", weights_dir=weights, device="cpu")
    images = _images()
    scores = _check_batching_and_determinism(plugin, images, PROMPTS)
    cos, _ = _hf_cos(weights / "clip-vit-base-patch32", images, ["A photo depicts " + p for p in PROMPTS], "round")
    assert np.allclose(scores, 2.5 * np.maximum(cos, 0), atol=1e-5)
    assert np.all((scores >= 0) & (scores <= 2.5))
    with pytest.raises(ValueError, match="prompts are required"):
        plugin.score(images)


def test_clipscore_l14_uses_the_large_checkpoint(weights):
    plugin = create_plugin("clipscore_l14", weights_dir=weights, device="cpu")
    assert plugin.backbone.model.config.projection_dim == 768
    _check_batching_and_determinism(plugin, _images()[:2], PROMPTS[:2])


def test_aesthetic_predictor_is_the_head_on_normalised_embeddings(weights):
    plugin = create_plugin("laion_aesthetic_v2", weights_dir=weights, device="cpu")
    images = _images()
    scores = _check_batching_and_determinism(plugin, images)
    model = transformers.CLIPModel.from_pretrained(weights / "clip-vit-large-patch14").eval()
    head = cm.build_aesthetic_head()
    head.load_state_dict(torch.load(weights / cm.AESTHETIC_FILE, weights_only=True))
    head.eval()
    with torch.no_grad():
        px = torch.from_numpy(cm.clip_preprocess(images))
        emb = model.visual_projection(model.vision_model(pixel_values=px).pooler_output)
        expected = head(emb / emb.norm(dim=-1, keepdim=True))[:, 0].numpy()
    assert np.allclose(scores, expected, atol=1e-5)


def test_aesthetic_head_layout_is_the_published_one():
    keys = {k: tuple(v.shape) for k, v in cm.build_aesthetic_head().state_dict().items()}
    assert keys == {
        "layers.0.weight": (1024, 768), "layers.0.bias": (1024,),
        "layers.2.weight": (128, 1024), "layers.2.bias": (128,),
        "layers.4.weight": (64, 128), "layers.4.bias": (64,),
        "layers.6.weight": (16, 64), "layers.6.bias": (16,),
        "layers.7.weight": (1, 16), "layers.7.bias": (1,),
    }


def test_aesthetic_rejects_a_head_file_of_another_shape(weights, tmp_path):
    import shutil

    shutil.copytree(weights / "clip-vit-large-patch14", tmp_path / "clip-vit-large-patch14")
    (tmp_path / "laion-aesthetic-v2").mkdir()
    torch.save({"layers.0.weight": torch.zeros(3, 3)}, tmp_path / cm.AESTHETIC_FILE)
    with pytest.raises(RuntimeError, match="state_dict"):
        create_plugin("laion_aesthetic_v2", weights_dir=tmp_path, device="cpu")


def test_pickscore_is_logit_scale_times_cosine(weights):
    plugin = create_plugin("pickscore_v1", weights_dir=weights, device="cpu")
    images = _images()
    scores = _check_batching_and_determinism(plugin, images, PROMPTS)
    cos, model = _hf_cos(weights / "PickScore_v1", images, PROMPTS, "floor")
    assert np.allclose(scores, model.logit_scale.exp().item() * cos, atol=1e-4)
    assert np.all(np.abs(scores) <= 100 + 1e-4)


def test_long_prompts_are_truncated_to_the_context_length(weights):
    plugin = create_plugin("pickscore_v1", weights_dir=weights, device="cpu")
    image = _images()[:1]
    long = "word " * 200
    assert np.isfinite(plugin.score(image, [long])).all()
    # everything past token 77 is cut: changing the tail does not change the score
    assert plugin.score(image, [long + "cat"])[0] == plugin.score(image, [long + "dog"])[0]


# ----------------------------------------------------------------------------------------------------
# HPSv2: open_clip state dict → transformers
# ----------------------------------------------------------------------------------------------------

V_WIDTH, T_WIDTH, EMBED, PATCH, GRID, CTX, VOCAB = 160, 128, 24, 32, 7, 77, 514


def open_clip_state(seed: int) -> dict:
    """Random parameters in the open_clip ViT layout (vision width 160 = 2 heads of 80, text 128 = 2 × 64)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.05):
        return torch.randn(*shape, generator=g) * scale

    sd = {
        "visual.class_embedding": r(V_WIDTH),
        "visual.positional_embedding": r(GRID * GRID + 1, V_WIDTH),
        "visual.conv1.weight": r(V_WIDTH, 3, PATCH, PATCH),
        "visual.ln_pre.weight": 1 + r(V_WIDTH), "visual.ln_pre.bias": r(V_WIDTH),
        "visual.ln_post.weight": 1 + r(V_WIDTH), "visual.ln_post.bias": r(V_WIDTH),
        "visual.proj": r(V_WIDTH, EMBED),
        "token_embedding.weight": r(VOCAB, T_WIDTH),
        "positional_embedding": r(CTX, T_WIDTH),
        "ln_final.weight": 1 + r(T_WIDTH), "ln_final.bias": r(T_WIDTH),
        "text_projection": r(T_WIDTH, EMBED),
        "logit_scale": torch.tensor(4.6),
    }
    for prefix, width in (("visual.transformer", V_WIDTH), ("transformer", T_WIDTH)):
        for i in range(2):
            p = f"{prefix}.resblocks.{i}."
            sd |= {
                p + "ln_1.weight": 1 + r(width), p + "ln_1.bias": r(width),
                p + "attn.in_proj_weight": r(3 * width, width, scale=0.2), p + "attn.in_proj_bias": r(3 * width),
                p + "attn.out_proj.weight": r(width, width, scale=0.2), p + "attn.out_proj.bias": r(width),
                p + "ln_2.weight": 1 + r(width), p + "ln_2.bias": r(width),
                p + "mlp.c_fc.weight": r(4 * width, width, scale=0.2), p + "mlp.c_fc.bias": r(4 * width),
                p + "mlp.c_proj.weight": r(width, 4 * width, scale=0.2), p + "mlp.c_proj.bias": r(width),
            }
    return sd


def _open_clip_blocks(x, sd, prefix, heads, mask=None):
    """open_clip's residual attention blocks: nn.MultiheadAttention on (seq, batch, width), pre-norm, GELU."""
    F = torch.nn.functional
    width = x.shape[-1]
    x = x.transpose(0, 1)
    for i in range(2):
        p = f"{prefix}.resblocks.{i}."
        h = F.layer_norm(x, (width,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"])
        attn, _ = F.multi_head_attention_forward(
            h, h, h, width, heads, sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"], None, None, False,
            0.0, sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"], training=False, need_weights=False,
            attn_mask=mask,
        )
        x = x + attn
        h = F.layer_norm(x, (width,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"])
        x = x + F.linear(F.gelu(F.linear(h, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])),
                         sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
    return x.transpose(0, 1)


def open_clip_reference(sd, pixels, tokens):
    """The open_clip CLIP forward written out in torch functions (independent of transformers)."""
    F = torch.nn.functional
    with torch.no_grad():
        x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=PATCH).flatten(2).transpose(1, 2)
        cls = sd["visual.class_embedding"].expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + sd["visual.positional_embedding"]
        x = F.layer_norm(x, (V_WIDTH,), sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"])
        x = _open_clip_blocks(x, sd, "visual.transformer", V_WIDTH // 80)
        img = F.layer_norm(x[:, 0], (V_WIDTH,), sd["visual.ln_post.weight"], sd["visual.ln_post.bias"])
        img = img @ sd["visual.proj"]
        t = sd["token_embedding.weight"][tokens] + sd["positional_embedding"]
        causal = torch.full((CTX, CTX), float("-inf")).triu(1)
        t = _open_clip_blocks(t, sd, "transformer", T_WIDTH // 64, mask=causal)
        t = F.layer_norm(t, (T_WIDTH,), sd["ln_final.weight"], sd["ln_final.bias"])
        txt = t[torch.arange(t.shape[0]), tokens.argmax(dim=-1)] @ sd["text_projection"]
    return F.normalize(img, dim=-1), F.normalize(txt, dim=-1)


@pytest.fixture(scope="module")
def hps_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("hps")
    (root / "HPSv2").mkdir()
    sd = open_clip_state(11)
    # as saved by a DataParallel training run, wrapped in {"state_dict": ...}
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, root / "HPSv2/HPS_v2_compressed.pt")
    write_clip_tokenizer(root / hp.TOKENIZER_DIR)
    return root, sd


def test_hpsv2_mapping_reproduces_the_open_clip_forward(hps_weights):
    root, sd = hps_weights
    plugin = create_plugin("hpsv2", weights_dir=root, device="cpu")
    cfg = plugin.backbone.model.config
    assert (cfg.vision_config.num_attention_heads, cfg.text_config.num_attention_heads) == (2, 2)
    assert (cfg.vision_config.image_size, cfg.vision_config.hidden_act) == (224, "gelu")
    images = _images()
    scores = _check_batching_and_determinism(plugin, images, PROMPTS)
    tok = plugin.backbone.tokenizer(PROMPTS, padding="max_length", max_length=CTX, truncation=True,
                                    return_tensors="pt")["input_ids"]
    # open_clip pads with 0 after the end-of-text token; the pooled position is the argmax (end-of-text)
    eot = tok.argmax(dim=-1, keepdim=True)
    tok = torch.where(torch.arange(CTX)[None, :] > eot, torch.zeros_like(tok), tok)
    img, txt = open_clip_reference(sd, torch.from_numpy(cm.clip_preprocess(images)), tok)
    assert np.allclose(scores, (img * txt).sum(-1).numpy(), atol=1e-5)


def test_hpsv2_mapping_rejects_unknown_keys():
    sd = open_clip_state(1)
    sd["visual.transformer.resblocks.0.ls_1.gamma"] = torch.ones(V_WIDTH)
    with pytest.raises(ValueError, match="ls_1"):
        hp.open_clip_to_transformers(sd)


def test_hpsv2_1_is_listed_apart_and_unavailable_without_its_file(hps_weights):
    root, _ = hps_weights
    status = {s.name: s for s in list_plugins(weights_dir=root)}
    assert status["hpsv2"].available
    assert status["hpsv2_1"].missing == (str(root / "HPSv2/HPS_v2.1_compressed.pt"),)
    with pytest.raises(WeightsMissingError):
        create_plugin("hpsv2_1", weights_dir=root)


# ----------------------------------------------------------------------------------------------------
# ImageReward: BLIP state dict → transformers
# ----------------------------------------------------------------------------------------------------

BV_WIDTH, BT_WIDTH, B_PATCH, B_GRID = 128, 48, 32, 7
BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "apple", "on", "table", "cat", "an",
              "astronaut", "riding", "horse", ",", "oil", "painting", "the", "##s", *"bcdefghijklmnopqrstuvwxyz"]


def imagereward_state(seed: int) -> dict:
    """Random parameters in ImageReward.pt's layout: BLIP ViT (timm names), med BERT, MLP head, plus unused parts."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.05):
        return torch.randn(*shape, generator=g) * scale

    v = "blip.visual_encoder."
    sd = {
        v + "cls_token": r(1, 1, BV_WIDTH), v + "pos_embed": r(1, B_GRID * B_GRID + 1, BV_WIDTH),
        v + "patch_embed.proj.weight": r(BV_WIDTH, 3, B_PATCH, B_PATCH), v + "patch_embed.proj.bias": r(BV_WIDTH),
        v + "norm.weight": 1 + r(BV_WIDTH), v + "norm.bias": r(BV_WIDTH),
    }
    for i in range(2):
        p = f"{v}blocks.{i}."
        sd |= {
            p + "norm1.weight": 1 + r(BV_WIDTH), p + "norm1.bias": r(BV_WIDTH),
            p + "attn.qkv.weight": r(3 * BV_WIDTH, BV_WIDTH, scale=0.2), p + "attn.qkv.bias": r(3 * BV_WIDTH),
            p + "attn.proj.weight": r(BV_WIDTH, BV_WIDTH, scale=0.2), p + "attn.proj.bias": r(BV_WIDTH),
            p + "norm2.weight": 1 + r(BV_WIDTH), p + "norm2.bias": r(BV_WIDTH),
            p + "mlp.fc1.weight": r(4 * BV_WIDTH, BV_WIDTH, scale=0.2), p + "mlp.fc1.bias": r(4 * BV_WIDTH),
            p + "mlp.fc2.weight": r(BV_WIDTH, 4 * BV_WIDTH, scale=0.2), p + "mlp.fc2.bias": r(BV_WIDTH),
        }
    # the text encoder: take a randomly initialised transformers BLIP text model's parameter names (med's)
    torch.manual_seed(seed)
    text = transformers.BlipTextModel(ir.build_blip_configs(
        {"embeddings.patch_embedding.weight": torch.zeros(BV_WIDTH, 3, B_PATCH, B_PATCH),
         "embeddings.position_embedding": torch.zeros(1, B_GRID * B_GRID + 1, BV_WIDTH),
         "encoder.layers.0.mlp.fc1.weight": torch.zeros(4 * BV_WIDTH, BV_WIDTH)},
        MED_CONFIG,
    )[1], add_pooling_layer=False)
    sd |= {"blip.text_encoder." + k: v.clone() for k, v in text.state_dict().items() if not k.endswith("position_ids")}
    head = cm.build_aesthetic_head().state_dict()
    head["layers.0.weight"] = r(1024, BT_WIDTH)
    sd |= {"mlp." + k: v for k, v in head.items()}
    sd["blip.vision_proj.weight"] = r(8, BV_WIDTH)  # used in BLIP pre-training, not by the score: ignored
    sd["blip.text_encoder.embeddings.position_ids"] = torch.arange(64)[None, :]  # saved by older med code
    return sd


MED_CONFIG = {
    "architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": BT_WIDTH, "intermediate_size": 96,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 64, "model_type": "bert", "num_attention_heads": 2,
    "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": len(BERT_VOCAB) + 2,
    "encoder_width": BT_WIDTH, "add_cross_attention": True,
}


@pytest.fixture(scope="module")
def ir_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagereward")
    (root / "ImageReward").mkdir()
    (root / "bert-base-uncased").mkdir()
    sd = imagereward_state(21)
    torch.save(sd, root / "ImageReward/ImageReward.pt")
    (root / "ImageReward/med_config.json").write_text(json.dumps(MED_CONFIG))
    (root / "bert-base-uncased/vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n")
    return root, sd


def _blip_vit_reference(sd, pixels):
    """BLIP's ViT (timm layout) in torch functions: all tokens after the final norm."""
    F = torch.nn.functional
    v = "blip.visual_encoder."
    heads, hd = BV_WIDTH // 64, 64
    with torch.no_grad():
        x = F.conv2d(pixels, sd[v + "patch_embed.proj.weight"], sd[v + "patch_embed.proj.bias"], stride=B_PATCH)
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([sd[v + "cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + sd[v + "pos_embed"]
        b, n, _ = x.shape
        for i in range(2):
            p = f"{v}blocks.{i}."
            h = F.layer_norm(x, (BV_WIDTH,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
            qkv = F.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
            q, k, val = qkv.reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
            att = ((q @ k.transpose(-2, -1)) * hd**-0.5).softmax(-1)
            h = (att @ val).transpose(1, 2).reshape(b, n, BV_WIDTH)
            x = x + F.linear(h, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
            h = F.layer_norm(x, (BV_WIDTH,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
            x = x + F.linear(F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                             sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        return F.layer_norm(x, (BV_WIDTH,), sd[v + "norm.weight"], sd[v + "norm.bias"], eps=1e-6)


def test_imagereward_runs_end_to_end_with_the_blip_mapping(ir_weights):
    root, sd = ir_weights
    plugin = create_plugin("imagereward_v1", weights_dir=root, device="cpu")
    images = _images()
    scores = _check_batching_and_determinism(plugin, images, PROMPTS)
    pixels = torch.from_numpy(cm.clip_preprocess(images))
    with torch.no_grad():
        ours = plugin.vision(pixel_values=pixels).last_hidden_state
    assert torch.allclose(ours, _blip_vit_reference(sd, pixels), atol=1e-5)
    # the score: [CLS] of the prompt encoder cross-attending to all image tokens → MLP → standardised
    tok = plugin.tokenizer(PROMPTS, padding="max_length", truncation=True, max_length=35, return_tensors="pt")
    assert tok["input_ids"].shape == (4, 35) and (tok["input_ids"][:, 0] == 2).all()  # [CLS] first
    with torch.no_grad():
        cls = plugin.text(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                          encoder_hidden_states=ours, is_decoder=False).last_hidden_state[:, 0]
        expected = ((plugin.head(cls)[:, 0] - ir.IR_MEAN) / ir.IR_STD).numpy()
    assert np.allclose(scores, expected, atol=1e-5)
    # a different prompt changes the score of the same image (the text path is live)
    assert plugin.score(images[:1], ["a red apple"])[0] != plugin.score(images[:1], ["a cat"])[0]


def test_imagereward_rejects_a_checkpoint_without_its_parts(ir_weights, tmp_path):
    root, sd = ir_weights
    import shutil

    shutil.copytree(root, tmp_path / "w")
    torch.save({k: v for k, v in sd.items() if not k.startswith("mlp.")}, tmp_path / "w/ImageReward/ImageReward.pt")
    with pytest.raises(ValueError, match="lacks"):
        create_plugin("imagereward_v1", weights_dir=tmp_path / "w", device="cpu")
    bad = dict(sd)
    bad["blip.visual_encoder.blocks.0.gamma_1"] = torch.ones(BV_WIDTH)
    with pytest.raises(ValueError, match="gamma_1"):
        ir.imagereward_to_transformers(bad)


# ----------------------------------------------------------------------------------------------------
# set metrics on CLIP features
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def set_weights(tmp_path_factory):
    """A ViT-L/14 stand-in with 32-d embeddings (the set maths is the same; a 768-d sqrtm is slow)."""
    root = tmp_path_factory.mktemp("set_weights")
    write_clip_checkpoint(root / "clip-vit-large-patch14", projection_dim=32, seed=5)
    return root


def test_set_plugins_embed_each_set_and_apply_the_maths(set_weights):
    weights = set_weights
    rng = np.random.default_rng(7)
    sets = {
        "model_a": [rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8) for _ in range(5)],
        "model_b": [np.full((64, 64, 3), v, dtype=np.uint8) for v in (10, 60, 110, 160)],
    }
    reference = [rng.integers(0, 256, size=(80, 60, 3), dtype=np.uint8) for _ in range(6)]
    diversity = create_plugin("clip_diversity_l14", weights_dir=weights, device="cpu")
    seen = []
    div = diversity.score_sets(sets, batch_size=2, progress=seen.append)
    assert set(div) == {"model_a", "model_b"}
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3

    extractor = diversity.make_extractor()
    feats = {k: extractor.embed(v, batch_size=3) for k, v in sets.items()}
    ref_feats = extractor.embed(reference)
    assert feats["model_a"].shape == (5, 32)
    assert np.allclose(np.linalg.norm(feats["model_a"], axis=1), 1.0, atol=1e-6)
    for k in sets:
        assert div[k] == pytest.approx(sm.diversity(feats[k]), abs=1e-5)

    fid = create_plugin("fid_clip_l14", weights_dir=weights, device="cpu")
    with pytest.raises(ValueError, match="reference_images are required"):
        fid.score_sets(sets)
    out = fid.score_sets(sets, reference)
    assert out["model_a"] == pytest.approx(sm.fid_from_features(feats["model_a"], ref_feats), rel=1e-4, abs=1e-6)
    cmmd = create_plugin("cmmd_clip_l14", weights_dir=weights, device="cpu").score_features(feats, ref_feats)
    assert cmmd["model_b"] == pytest.approx(sm.cmmd(feats["model_b"], ref_feats))
    kid = create_plugin("kid_clip_l14", weights_dir=weights, device="cpu").score_features(feats, ref_feats)
    assert all(np.isfinite(v) for v in kid.values())
    with pytest.raises(ValueError, match="reference features are required"):
        create_plugin("kid_clip_l14", weights_dir=weights, device="cpu").score_features(feats)


def test_model_plugins_are_available_once_their_files_exist(weights):
    status = {s.name: s for s in list_plugins(weights_dir=weights)}
    for name in ("clipscore", "clipscore_l14", "laion_aesthetic_v2", "pickscore_v1", "clip_diversity_l14",
                 "fid_clip_l14", "kid_clip_l14", "cmmd_clip_l14"):
        assert status[name].available, (name, status[name].missing)
    assert not status["hpsv2"].available and not status["imagereward_v1"].available

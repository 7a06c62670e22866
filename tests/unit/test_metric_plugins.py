"""Tests of ranking.metric_plugins: the plugin interface, the registry and the weight-free metrics.

No database and no model weights. BRISQUE is checked against the ``brisque`` package's own computation
(live when OpenCV and the package's dependencies import, and against a stored value of it otherwise);
sharpness against OpenCV's ``cv2.Laplacian`` and scipy; colourfulness against hand computations.
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from ranking.metric_plugins import (
    Availability,
    Dimension,
    Direction,
    ItemMetric,
    Kind,
    PairMetric,
    WeightsFile,
    WeightsMissingError,
    as_rgb_array,
    create_plugin,
    get_plugin_class,
    list_plugins,
    plugin_names,
    register,
    resolve_device,
)
from ranking.metric_plugins import brisque as br
from ranking.metric_plugins import classical as cl
from ranking.metric_plugins import niqe as nq
from ranking.metric_plugins.registry import unregister

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "metrics"

#: BRISQUE of natural_like_128x160.png as computed by the brisque 0.2.0 package itself
#: (BRISQUE().calculate_brisque_features + cv2.resize + its libsvm model), recorded 2026-12-04.
BRISQUE_PACKAGE_VALUE = 26.02292410932293

needs_brisque_model = pytest.mark.skipif(
    br._package_model_dir() is None, reason="the BRISQUE model ships with the 'brisque' package, not installed"
)


def natural_image() -> np.ndarray:
    """A 128×160 RGB image with a 1/f amplitude spectrum, like natural photographs (stored fixture)."""
    return np.asarray(Image.open(DATA / "natural_like_128x160.png").convert("RGB"))


def pink_noise(h, w, seed) -> np.ndarray:
    """Grey 1/f noise scaled to mean 120, sd 45, uint8, shape (h, w, 3)."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    g = np.fft.irfft2((rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f, s=(h, w))
    g = (g - g.mean()) / g.std() * 45 + 120
    g = np.clip(np.rint(g), 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


# ----------------------------------------------------------------------------------------------------
# registry and declarations
# ----------------------------------------------------------------------------------------------------

BUILTINS = {
    # name: (kind, direction, dimension, needs_prompts)
    "colourfulness": ("item", "higher", "colour", False),
    "sharpness_laplacian_var": ("item", "higher", "technical", False),
    "resolution_mp": ("item", "higher", "technical", False),
    "aspect_ratio": ("item", "none", "technical", False),
    "brisque": ("item", "lower", "technical", False),
    "niqe": ("item", "lower", "technical", False),
    "clipscore": ("item", "higher", "alignment", True),
    "clipscore_l14": ("item", "higher", "alignment", True),
    "laion_aesthetic_v2": ("item", "higher", "aesthetics", False),
    "pickscore_v1": ("item", "higher", "overall", True),
    "hpsv2": ("item", "higher", "overall", True),
    "hpsv2_1": ("item", "higher", "overall", True),
    "imagereward_v1": ("item", "higher", "overall", True),
    "clip_diversity_l14": ("set", "higher", "diversity", False),
    "fid_clip_l14": ("set", "lower", "fidelity", False),
    "kid_clip_l14": ("set", "lower", "fidelity", False),
    "cmmd_clip_l14": ("set", "lower", "fidelity", False),
}


def test_registry_lists_every_builtin_with_its_declaration():
    assert plugin_names() == list(BUILTINS)
    for status in list_plugins(weights_dir="/nowhere"):
        kind, direction, dimension, prompts = BUILTINS[status.name]
        assert isinstance(status, Availability)
        assert (status.kind.value, status.direction.value, status.dimension.value) == (kind, direction, dimension)
        assert status.needs_prompts is prompts
        assert status.version and len(status.description) > 30
    assert plugin_names(kind="set") == ["clip_diversity_l14", "fid_clip_l14", "kid_clip_l14", "cmmd_clip_l14"]


def test_weight_free_plugins_are_available_without_any_weights_dir():
    status = {s.name: s for s in list_plugins()}
    for name in ("colourfulness", "sharpness_laplacian_var", "resolution_mp", "aspect_ratio"):
        assert status[name].available, status[name].reason
        assert status[name].expected == () and status[name].missing == ()


def test_unavailable_plugins_are_listed_with_the_full_paths_they_expect(tmp_path):
    status = {s.name: s for s in list_plugins(weights_dir=tmp_path)}
    aes = status["laion_aesthetic_v2"]
    assert not aes.available
    assert aes.expected == (
        str(tmp_path / "clip-vit-large-patch14/config.json"),
        str(tmp_path / "clip-vit-large-patch14/model.safetensors"),
        str(tmp_path / "laion-aesthetic-v2/sac+logos+ava1-l14-linearMSE.pth"),
    )
    assert aes.missing == aes.expected
    assert "3 of 3" in aes.reason
    assert status["hpsv2"].missing[0] == str(tmp_path / "HPSv2/HPS_v2_compressed.pt")
    assert status["imagereward_v1"].missing == (
        str(tmp_path / "ImageReward/ImageReward.pt"),
        str(tmp_path / "ImageReward/med_config.json"),
        str(tmp_path / "bert-base-uncased/vocab.txt"),
    )
    assert status["niqe"].missing == (str(tmp_path / "niqe/niqe_pris_params.npz"),)
    for s in status.values():
        if s.expected:
            assert all(p.startswith(str(tmp_path)) for p in s.expected)


def test_partly_present_weights_list_only_the_absent_files(tmp_path):
    (tmp_path / "clip-vit-large-patch14").mkdir()
    (tmp_path / "clip-vit-large-patch14/config.json").write_text("{}")
    # the alternative name of the checkpoint counts
    (tmp_path / "clip-vit-large-patch14/pytorch_model.bin").write_bytes(b"")
    status = {s.name: s for s in list_plugins(weights_dir=tmp_path)}
    assert status["laion_aesthetic_v2"].missing == (str(tmp_path / "laion-aesthetic-v2/sac+logos+ava1-l14-linearMSE.pth"),)
    assert status["fid_clip_l14"].available  # torch and transformers are installed here
    assert status["clipscore_l14"].missing == (
        str(tmp_path / "clip-vit-large-patch14/vocab.json"),
        str(tmp_path / "clip-vit-large-patch14/merges.txt"),
    )


def test_without_a_weights_dir_model_plugins_say_so():
    status = {s.name: s for s in list_plugins()}
    pick = status["pickscore_v1"]
    assert not pick.available and pick.weights_dir is None
    assert "PREFLAB_WEIGHTS_DIR" in pick.reason
    assert pick.missing == ("PickScore_v1/config.json", "PickScore_v1/model.safetensors",
                            "CLIP-ViT-H-14-laion2B-s32B-b79K/vocab.json", "CLIP-ViT-H-14-laion2B-s32B-b79K/merges.txt")


def test_plugin_specific_folder_overrides_the_weights_dir(tmp_path):
    own = tmp_path / "own"
    (own / "niqe").mkdir(parents=True)
    np.savez(own / "niqe/niqe_pris_params.npz", mu_pris_param=np.zeros(36), cov_pris_param=np.eye(36))
    status = {s.name: s for s in list_plugins(weights_dir=tmp_path / "shared", plugin_dirs={"niqe": own})}
    assert status["niqe"].available and status["niqe"].weights_dir == str(own)
    assert not status["clipscore"].available
    with pytest.raises(ValueError, match="unknown metric plugin 'nope'"):
        list_plugins(plugin_dirs={"nope": own})


def test_creating_a_plugin_with_absent_weights_raises_naming_every_path(tmp_path):
    with pytest.raises(WeightsMissingError) as info:
        create_plugin("laion_aesthetic_v2", weights_dir=tmp_path)
    assert str(tmp_path / "laion-aesthetic-v2/sac+logos+ava1-l14-linearMSE.pth") in str(info.value)
    assert len(info.value.missing) == 3
    with pytest.raises(ValueError, match="weights_dir"):
        create_plugin("clipscore")


def test_unknown_plugin_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: colourfulness, "):
        get_plugin_class("fid_inception")


def test_register_rejects_duplicates_and_malformed_declarations():
    class Dup(cl.ColourfulnessMetric):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register(Dup)

    class NoName(ItemMetric):
        version = "1"
        direction = Direction.HIGHER
        dimension = Dimension.OVERALL
        description = "x"

        def score_batch(self, images, prompts, *, offset=0):
            return np.zeros(len(images))

    with pytest.raises(TypeError, match="'name'"):
        register(NoName)
    NoName.name = "Bad Name"
    with pytest.raises(TypeError, match=r"\[a-z\]"):
        register(NoName)
    with pytest.raises(TypeError, match="MetricPlugin"):
        register(dict)


def test_weights_file_must_stay_inside_the_weights_folder():
    with pytest.raises(ValueError, match="relative path"):
        WeightsFile("../etc/passwd")
    with pytest.raises(ValueError, match="relative path"):
        WeightsFile("/abs/model.pt")


def test_resolve_device():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda:0")


def test_package_imports_neither_django_nor_torch():
    code = (
        "import sys\n"
        "import ranking.metric_plugins as m\n"
        "names = [s.name for s in m.list_plugins(weights_dir='/nowhere')]\n"
        "assert len(names) == 17, names\n"
        "p = m.create_plugin('colourfulness')\n"
        "assert p.score([[[0, 0, 0]]]).tolist() == [0.0]\n"
        "bad = [k for k in sys.modules if k.split('.')[0] in ('django', 'torch', 'transformers', 'cv2')]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------------------------------
# batching, progress, prompts, image coercion
# ----------------------------------------------------------------------------------------------------


class _Recorder(ItemMetric):
    name = "test_recorder"
    version = "1"
    direction = Direction.HIGHER
    dimension = Dimension.OVERALL
    description = "test plugin: the image mean, records batch sizes"
    needs_prompts = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.batches = []

    def score_batch(self, images, prompts, *, offset=0):
        self.batches.append((offset, len(images), list(prompts)))
        return np.array([as_rgb_array(im).mean() + len(p) for im, p in zip(images, prompts)])


def test_batching_progress_and_prompts():
    plugin = _Recorder()
    images = [np.full((4, 4, 3), v, dtype=np.uint8) for v in range(7)]
    prompts = [f"p{i}" * (i + 1) for i in range(7)]
    seen = []
    out = plugin.score(images, prompts, batch_size=3, progress=seen.append)
    assert out.tolist() == [v + 2 * (v + 1) for v in range(7)]
    assert [(o, n) for o, n, _ in plugin.batches] == [(0, 3), (3, 3), (6, 1)]
    assert plugin.batches[1][2] == prompts[3:6]
    assert seen == pytest.approx([3 / 7, 6 / 7, 1.0])
    assert plugin.score([], [], progress=seen.append).shape == (0,) and seen[-1] == 1.0


@pytest.mark.parametrize(
    ("prompts", "message"),
    [(None, "prompts are required"), (["a"], "one prompt per image"), ("ab", "not a single string"),
     (["a", 3], r"prompts\[1\] must be a string")],
)
def test_prompt_validation(prompts, message):
    with pytest.raises(ValueError, match=message):
        _Recorder().score([np.zeros((2, 2)), np.zeros((2, 2))], prompts)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        _Recorder().score([np.zeros((2, 2))], ["a"], batch_size=batch_size)


def test_pair_metric_checks_lengths_and_batches():
    class Diff(PairMetric):
        name = "test_pair_diff"
        version = "1"
        direction = Direction.NONE
        dimension = Dimension.TECHNICAL
        description = "test plugin: mean(a) − mean(b)"

        def score_pair_batch(self, a, b, prompts, *, offset=0):
            return np.array([as_rgb_array(x).mean() - as_rgb_array(y).mean() for x, y in zip(a, b)])

    plugin = Diff()
    assert plugin.kind is Kind.PAIR
    a = [np.full((2, 2), v) for v in (10, 20, 30)]
    b = [np.full((2, 2), 5)] * 3
    assert plugin.score_pairs(a, b, batch_size=2).tolist() == [5.0, 15.0, 25.0]
    with pytest.raises(ValueError, match="same length"):
        plugin.score_pairs(a, b[:2])


def test_as_rgb_array_accepts_pil_and_arrays_and_names_bad_input():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = as_rgb_array(grey)
    assert rgb.shape == (3, 4, 3) and np.array_equal(rgb[..., 2], grey)
    rgba = np.dstack([np.full((3, 4, 3), 7), np.zeros((3, 4))])
    assert np.all(as_rgb_array(rgba) == 7)
    pil = Image.fromarray(np.full((5, 6, 4), 9, dtype=np.uint8), mode="RGBA")
    assert as_rgb_array(pil).shape == (5, 6, 3)
    assert as_rgb_array(Image.new("L", (6, 5), 200)).max() == 200
    with pytest.raises(ValueError, match=r"images\[3\] must have shape"):
        as_rgb_array(np.zeros((2, 2, 2)), name="images[3]")
    with pytest.raises(ValueError, match=r"values must lie in \[0, 255\]"):
        as_rgb_array(np.full((2, 2), 256.0))
    with pytest.raises(ValueError, match="finite"):
        as_rgb_array(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="must not be empty"):
        as_rgb_array(np.zeros((0, 3, 3)))
    with pytest.raises(ValueError, match="PIL image or a numeric array"):
        as_rgb_array("cat.png")


def test_item_plugin_names_the_bad_image_by_its_index():
    plugin = create_plugin("colourfulness")
    with pytest.raises(ValueError, match=r"images\[4\]"):
        plugin.score([np.zeros((2, 2))] * 4 + [np.zeros((2, 2, 5))], batch_size=3)


# ----------------------------------------------------------------------------------------------------
# colourfulness
# ----------------------------------------------------------------------------------------------------


def test_colourfulness_of_grey_images_is_zero():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, size=(20, 30))
    assert cl.colourfulness(np.dstack([g, g, g])) == 0.0
    assert cl.colourfulness(Image.new("L", (8, 8), 77)) == 0.0


def test_colourfulness_of_a_uniform_colour_by_hand():
    # (R, G, B) = (200, 100, 50): rg = 100, yb = 150 − 50 = 100, no spread: M = 0.3·sqrt(100² + 100²)
    img = np.tile(np.array([200, 100, 50], dtype=np.uint8), (10, 10, 1))
    assert cl.colourfulness(img) == pytest.approx(0.3 * math.sqrt(20000), rel=1e-12)


def test_colourfulness_of_half_red_half_blue_by_hand():
    # red: rg = 255, yb = 127.5; blue: rg = 0, yb = −255 (equal halves)
    # μ_rg = 127.5, μ_yb = −63.75; σ_rg = 127.5, σ_yb = 191.25 (half the two-point spread)
    img = np.zeros((4, 6, 3), dtype=np.uint8)
    img[:, :3, 0] = 255
    img[:, 3:, 2] = 255
    sigma = math.sqrt(127.5**2 + 191.25**2)  # 229.854...
    mu = math.sqrt(127.5**2 + 63.75**2)  # 142.549...
    assert cl.colourfulness(img) == pytest.approx(sigma + 0.3 * mu, rel=1e-12)
    assert cl.colourfulness(img) == pytest.approx(272.619, abs=1e-3)


def test_colourfulness_plugin_orders_saturated_above_washed_out():
    img = natural_image().astype(float)
    grey = img.mean(axis=2, keepdims=True)
    washed = grey + 0.3 * (img - grey)
    scores = create_plugin("colourfulness").score([img, washed, np.repeat(grey, 3, axis=2)])
    assert scores[0] > scores[1] > scores[2] == 0.0
    # colourfulness is linear in the chroma: scaling the deviation from grey by 0.3 scales M by 0.3
    assert scores[1] == pytest.approx(0.3 * scores[0], rel=1e-9)


# ----------------------------------------------------------------------------------------------------
# sharpness
# ----------------------------------------------------------------------------------------------------


def test_laplacian_matches_scipy_with_the_same_kernel_and_borders():
    rng = np.random.default_rng(1)
    g = rng.random((17, 23)) * 255
    ref = ndimage.correlate(g, cl.LAPLACIAN_KERNEL, mode="mirror")  # mirror = reflect-101
    assert np.allclose(cl.laplacian(g), ref, atol=1e-10)
    # scipy's own laplace uses the same kernel; in the interior it agrees whatever its border mode
    assert np.allclose(cl.laplacian(g)[1:-1, 1:-1], ndimage.laplace(g)[1:-1, 1:-1], atol=1e-10)


def test_sharpness_matches_opencv_laplacian_variance():
    cv2 = pytest.importorskip("cv2")
    img = natural_image()
    grey = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    expected = cv2.Laplacian(grey, cv2.CV_64F).var()
    assert cl.laplacian_variance(img) == pytest.approx(expected, rel=1e-12)
    # and the grey conversion is OpenCV's RGB2GRAY (on float input, no rounding)
    cv_grey = cv2.cvtColor(img.astype(np.float32), cv2.COLOR_RGB2GRAY)
    assert np.allclose(cl.grey_bt601(img), cv_grey, atol=1e-3)


def test_sharpness_falls_with_blur_and_handles_thin_images():
    img = natural_image().astype(float)
    values = [cl.laplacian_variance(ndimage.gaussian_filter(img, (s, s, 0))) for s in (0.5, 1.0, 2.0)]
    assert cl.laplacian_variance(img) > values[0] > values[1] > values[2]
    assert cl.laplacian_variance(np.full((9, 9), 30)) == 0.0
    assert np.isfinite(cl.laplacian_variance(np.arange(10.0).reshape(1, 10)))


# ----------------------------------------------------------------------------------------------------
# resolution and aspect ratio
# ----------------------------------------------------------------------------------------------------


def test_resolution_and_aspect_ratio_of_pil_and_arrays():
    pil = Image.new("RGB", (640, 480))
    arr = np.zeros((480, 640, 3), dtype=np.uint8)
    assert create_plugin("resolution_mp").score([pil, arr]).tolist() == [0.3072, 0.3072]
    assert create_plugin("aspect_ratio").score([pil, arr, np.zeros((1024, 768))]).tolist() == pytest.approx(
        [4 / 3, 4 / 3, 0.75]
    )
    with pytest.raises(ValueError, match="empty"):
        cl.megapixels(np.zeros((0, 5)))


# ----------------------------------------------------------------------------------------------------
# BRISQUE
# ----------------------------------------------------------------------------------------------------


def test_half_size_bicubic_matches_opencv_resize():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    for shape in [(40, 50), (41, 53), (43, 81), (17, 16)]:
        g = rng.random(shape)
        ref = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
        ours = br.resize_half_bicubic(g)
        assert ours.shape == ref.shape
        assert np.allclose(ours, ref, atol=1e-12)


def test_half_size_bicubic_reproduces_linear_ramps_in_the_interior():
    g = np.add.outer(np.arange(20.0), 2 * np.arange(30.0))
    half = br.resize_half_bicubic(g)
    # output pixel (i, j) samples the source at (2i + 0.5, 2j + 0.5); cubic convolution is exact on ramps
    i, j = np.meshgrid(np.arange(10), np.arange(15), indexing="ij")
    expected = (2 * i + 0.5) + 2 * (2 * j + 0.5)
    assert np.allclose(half[1:-1, 1:-1], expected[1:-1, 1:-1], atol=1e-12)


@needs_brisque_model
def test_brisque_matches_the_recorded_package_value():
    assert br.brisque_score(natural_image()) == pytest.approx(BRISQUE_PACKAGE_VALUE, abs=1e-8)


def _package_brisque(img):
    """The brisque package's own score (its score() trips over numpy 2 scalar conversion, so the same steps
    are called one by one, with the features flattened to floats)."""
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    pytest.importorskip("libsvm")
    import cv2
    import skimage.color
    from brisque import BRISQUE
    from libsvm import svmutil

    obj = BRISQUE(url=False)
    grey = skimage.color.rgb2gray(img)
    f_full = obj.calculate_brisque_features(grey, kernel_size=7, sigma=7 / 6)
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    f_half = obj.calculate_brisque_features(half, kernel_size=7, sigma=7 / 6)
    feats = [float(np.asarray(f, dtype=float).item()) for f in np.concatenate((f_full, f_half))]
    x, _ = svmutil.gen_svm_nodearray([float(v) for v in obj.scale_features(feats)], isKernel=False)
    return svmutil.libsvm.svm_predict_probability(obj.model, x, (svmutil.c_double * 1)())


@needs_brisque_model
def test_brisque_matches_the_package_on_clean_noisy_and_odd_sized_images():
    pytest.importorskip("brisque")
    img = natural_image()
    rng = np.random.default_rng(3)
    noisy = np.clip(img + rng.normal(0, 15, img.shape), 0, 255).astype(np.uint8)
    odd = img[:101, :77]
    for im in (img, noisy, odd):
        assert br.brisque_score(im) == pytest.approx(_package_brisque(im), abs=1e-8)


@needs_brisque_model
def test_brisque_worsens_with_noise_and_blur():
    img = natural_image()
    rng = np.random.default_rng(0)
    plugin = create_plugin("brisque")
    noisy = [np.clip(img + rng.normal(0, s, img.shape), 0, 255) for s in (5, 10, 20, 40)]
    blurred = [ndimage.gaussian_filter(img.astype(float), (s, s, 0)) for s in (0.8, 1.5, 3.0)]
    s_noise = plugin.score([img, *noisy], batch_size=2)
    s_blur = plugin.score([img, *blurred])
    assert np.all(np.diff(s_noise) > 0), s_noise
    assert np.all(np.diff(s_blur) > 0), s_blur
    assert s_noise[0] == pytest.approx(BRISQUE_PACKAGE_VALUE, abs=1e-8)


@needs_brisque_model
def test_brisque_constant_image_is_nan_and_tiny_image_is_refused():
    plugin = create_plugin("brisque")
    out = plugin.score([np.full((32, 32, 3), 128, dtype=np.uint8), natural_image()])
    assert np.isnan(out[0]) and np.isfinite(out[1])
    with pytest.raises(ValueError, match=r"images\[0\].*at least 16"):
        plugin.score([np.zeros((10, 40, 3))])


def test_brisque_model_parsing_and_prediction_on_a_toy_svr(tmp_path):
    # two support vectors in 36-d, γ = 0.5: f(x) = 2·exp(−γ‖x − s1‖²) − 1·exp(−γ‖x − s2‖²) − ρ
    sv1 = " ".join(f"{i + 1}:0.5" for i in range(36))
    sv2 = "1:-0.25 36:1"
    (tmp_path / "svm.txt").write_text(
        "svm_type epsilon_svr\nkernel_type rbf\ngamma 0.5\nnr_class 2\ntotal_sv 2\nrho 0.75\nSV\n"
        f"2 {sv1} \n-1 {sv2} \n"
    )
    import pickle

    with open(tmp_path / "normalize.pickle", "wb") as fh:
        pickle.dump({"min_": [-1.0] * 36, "max_": [1.0] * 36}, fh)  # identity scaling
    model = br.load_brisque_model(str(tmp_path))
    x = np.linspace(-0.5, 0.5, 36)
    s1, s2 = np.full(36, 0.5), np.zeros(36)
    s2[0], s2[35] = -0.25, 1.0
    expected = 2 * math.exp(-0.5 * np.sum((x - s1) ** 2)) - math.exp(-0.5 * np.sum((x - s2) ** 2)) - 0.75
    assert model.predict(x)[0] == pytest.approx(expected, rel=1e-12)
    # a scaling file that tries to load a global is refused
    with open(tmp_path / "normalize.pickle", "wb") as fh:
        pickle.dump({"min_": np.zeros(36), "max_": np.ones(36)}, fh)
    br.load_brisque_model.cache_clear()
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        br.load_brisque_model(str(tmp_path))


# ----------------------------------------------------------------------------------------------------
# NIQE
# ----------------------------------------------------------------------------------------------------


def test_matlab_half_resize_keeps_constants_and_ramps():
    assert np.allclose(nq.imresize_half_matlab(np.full((9, 12), 3.5)), 3.5)
    g = np.add.outer(np.arange(1.0, 41.0), np.zeros(30))  # value = 1-based row index
    half = nq.imresize_half_matlab(g)
    assert half.shape == (20, 15)
    # MATLAB maps output row x (1-based) to input u = 2x − 0.5; the antialiased cubic is exact on ramps
    x = np.arange(1, 21)
    assert np.allclose(half[3:-3, 0], (2 * x - 0.5)[3:-3], atol=1e-12)
    assert nq.imresize_half_matlab(np.zeros((7, 5))).shape == (4, 3)  # ceil(n / 2)


@pytest.mark.parametrize(("shape", "sampler"), [(2.0, "normal"), (1.0, "laplace")])
def test_aggd_grid_fit_recovers_known_shapes(shape, sampler):
    rng = np.random.default_rng(4)
    x = getattr(rng, sampler)(0.0, 1.0, 200_000)
    alpha, bl, br_ = nq._aggd_grid(x)
    assert alpha == pytest.approx(shape, abs=0.05)
    # scale β = σ·sqrt(Γ(1/α)/Γ(3/α)) with σ the per-side RMS: √2 for N(0, 1), 1 for Laplace(0, 1)
    expected_beta = math.sqrt(2.0) if sampler == "normal" else 1.0
    assert bl == pytest.approx(expected_beta, rel=0.03) and br_ == pytest.approx(expected_beta, rel=0.03)


@pytest.fixture(scope="module")
def niqe_pink_model(tmp_path_factory):
    """A 'pristine' MVG fitted to block features of 1/f-noise images, saved in both accepted formats."""
    feats = np.vstack([nq.niqe_block_features(pink_noise(288, 288, seed)) for seed in range(6)])
    mu, cov = feats.mean(axis=0), np.cov(feats, rowvar=False)
    root = tmp_path_factory.mktemp("weights")
    (root / "niqe").mkdir()
    np.savez(root / "niqe/niqe_pris_params.npz", mu_pris_param=mu[None, :], cov_pris_param=cov)
    mat_root = tmp_path_factory.mktemp("weights_mat")
    (mat_root / "niqe").mkdir()
    from scipy.io import savemat

    savemat(mat_root / "niqe/modelparameters.mat", {"mu_prisparam": mu[None, :], "cov_prisparam": cov})
    return root, mat_root


def test_niqe_is_lowest_for_images_like_the_pristine_model(niqe_pink_model):
    root, mat_root = niqe_pink_model
    plugin = create_plugin("niqe", weights_dir=root)
    clean = pink_noise(200, 230, 99)
    rng = np.random.default_rng(5)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255)
    blurred = ndimage.gaussian_filter(clean.astype(float), (2, 2, 0))
    scores = plugin.score([clean, noisy, blurred], batch_size=2)
    assert scores[0] < scores[1] and scores[0] < scores[2]
    # the MATLAB .mat form of the same parameters gives the same scores
    assert np.allclose(create_plugin("niqe", weights_dir=mat_root).score([clean, noisy, blurred]), scores)


def test_niqe_rejects_small_images_and_bad_parameter_files(niqe_pink_model, tmp_path):
    plugin = create_plugin("niqe", weights_dir=niqe_pink_model[0])
    with pytest.raises(ValueError, match=r"images\[0\].*192×192"):
        plugin.score([np.zeros((191, 400, 3))])
    (tmp_path / "niqe").mkdir()
    np.savez(tmp_path / "niqe/niqe_pris_params.npz", mu_pris_param=np.zeros(18), cov_pris_param=np.eye(18))
    with pytest.raises(ValueError, match=r"shape \(36,\)"):
        create_plugin("niqe", weights_dir=tmp_path)


def test_temporary_plugins_can_be_unregistered():
    class Tmp(cl.ResolutionMetric):
        name = "test_tmp_plugin"

    register(Tmp)
    try:
        assert "test_tmp_plugin" in plugin_names()
    finally:
        unregister("test_tmp_plugin")
    assert "test_tmp_plugin" not in plugin_names()

"""ImageNet initialisation through the real loading path: random timm ViTs saved to disk."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

from avlabel.errors import AvlabelError
from avlabel.models import build_model, filter_state_dict, load_pretrained, model_config

VIT = {"patch_size": 8, "embed_dim": 64, "depth": 4, "num_heads": 2}  # the image twin of imd_tiny


def _vit(img_size: int = 32, seed: int = 0) -> VisionTransformer:
    torch.manual_seed(seed)
    vit = VisionTransformer(img_size=img_size, num_classes=7, **VIT).eval()
    with torch.no_grad():  # timm starts the class token near zero; make it matter
        vit.cls_token.normal_()
    return vit


def _image_features(vit: VisionTransformer, video: torch.Tensor) -> torch.Tensor:
    """The image model's class embedding on each frame of ``(B, C, T, H, W)``, averaged over frames."""
    frames = [vit.forward_head(vit.forward_features(video[:, :, t]), pre_logits=True) for t in range(video.shape[2])]
    return torch.stack(frames, dim=1).mean(dim=1)


@pytest.fixture(scope="module")
def vit_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vit") / "vit.safetensors"
    vit = _vit()
    save_file(vit.state_dict(), str(path))
    return vit, path


@pytest.fixture(scope="module")
def loaded(vit_file):
    _, path = vit_file
    model = build_model(model_config("imd_tiny")).eval()
    return model, load_pretrained(model, path)


@pytest.mark.parametrize("frames", [1, 3])
def test_untrained_rgb_stream_equals_the_image_model_per_frame(vit_file, loaded, frames):
    vit, _ = vit_file
    model, _ = loaded
    video = torch.randn(2, 3, frames, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.streams["rgb"](video), _image_features(vit, video))


def test_flow_patch_filter_is_the_channel_mean_of_the_rgb_filter(vit_file, loaded):
    vit, _ = vit_file
    model, _ = loaded
    rgb_filter = vit.patch_embed.proj.weight  # (D, 3, P, P)
    flow_filter = model.streams["flow"].patch_embed.proj.weight  # (D, 2, P, P)
    assert flow_filter.shape == (64, 2, 8, 8)
    for channel in range(2):
        torch.testing.assert_close(flow_filter[:, channel], rgb_filter.mean(dim=1))
    # Hence the flow stream sees flow (fx, fy) as the image model sees the grey image (fx + fy) / 3.
    flow = torch.randn(2, 2, 2, 32, 32)
    grey = (flow.sum(dim=1, keepdim=True) / 3).expand(-1, 3, -1, -1, -1)
    with torch.no_grad():
        torch.testing.assert_close(model.streams["flow"](flow), _image_features(vit, grey))


def test_temporal_attention_starts_from_the_spatial_weights(loaded):
    model, _ = loaded
    for stream in model.streams.values():
        for block in stream.blocks[-2:]:
            torch.testing.assert_close(block.attn_time.qkv.weight, block.attn.qkv.weight, rtol=0, atol=0)
            torch.testing.assert_close(block.attn_time.proj.bias, block.attn.proj.bias, rtol=0, atol=0)
            torch.testing.assert_close(block.norm_time.weight, block.norm1.weight, rtol=0, atol=0)
            assert (block.time_fc.weight == 0).all() and (block.time_fc.bias == 0).all()
        assert (stream.time_embed == 0).all()


def test_report_lists_intended_exclusions_and_the_ignored_classifier(loaded):
    model, report = loaded
    assert report.ignored == ("head.bias", "head.weight")
    not_loaded = set(report.not_loaded)
    assert {
        "streams.rgb.time_embed",
        "streams.flow.blocks.3.time_fc.weight",
        "visual_fusion.0.weight",
        "audio_bottleneck.fc1.weight",
        "fusion.relevance.score.bias",
        "head.mlp.fc2.weight",
    } <= not_loaded
    assert all(not key.startswith("streams.") or "time_" in key for key in not_loaded)
    assert set(report.loaded) | not_loaded == set(model.state_dict())
    assert "not loaded" in report.summary() and "head.weight" in report.summary()


def test_position_embedding_is_resampled_like_timm(tmp_path):
    """A checkpoint trained at 64x64 (8x8 patches) loads into a 32x32 (4x4) model."""
    big = _vit(img_size=64, seed=1)
    path = tmp_path / "vit64.pth"
    torch.save({"model": {f"module.{key}": value for key, value in big.state_dict().items()}}, path)
    model = build_model(model_config("imd_tiny", modalities=("rgb",))).eval()
    load_pretrained(model, path)
    reference = _vit(img_size=32, seed=2)
    reference.load_state_dict(checkpoint_filter_fn(big.state_dict(), reference))
    video = torch.randn(1, 3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.streams["rgb"](video), _image_features(reference, video))


def test_timm_name_reads_a_local_file_through_timm(tmp_path):
    torch.manual_seed(3)
    image_model = timm.create_model("vit_tiny_patch16_224", num_classes=0)
    path = tmp_path / "vit_tiny.safetensors"
    save_file(image_model.state_dict(), str(path))
    config = model_config("imd_tiny", modalities=("rgb",), embed_dim=192, depth=12, num_heads=3, patch_size=16)
    via_timm, direct = build_model(config).eval(), build_model(config).eval()
    load_pretrained(via_timm, path, timm_name="vit_tiny_patch16_224")
    load_pretrained(direct, path)
    for key, value in direct.streams.state_dict().items():
        torch.testing.assert_close(via_timm.streams.state_dict()[key], value, rtol=0, atol=0)


def test_own_checkpoints_pass_through_with_wrapper_prefixes_stripped(tmp_path):
    source = build_model(model_config("imd_tiny"))
    state = {f"_orig_mod.{key}": value for key, value in source.state_dict().items()}
    assert set(filter_state_dict(state, source)) == set(source.state_dict())
    path = tmp_path / "run.safetensors"
    save_file(state, str(path))
    target = build_model(model_config("imd_tiny"))
    report = load_pretrained(target, path)
    assert report.not_loaded == () and report.ignored == ()
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.safetensors", "checkpoint file not found"),
        (
            lambda tmp: (tmp / "bad.safetensors").write_bytes(b"not a checkpoint") and tmp / "bad.safetensors",
            "cannot read checkpoint",
        ),
        (lambda tmp: (tmp / "bad.pth").write_bytes(b"\x00garbage") and tmp / "bad.pth", "cannot read checkpoint"),
        (lambda tmp: tmp, "no checkpoint in folder"),
        (lambda tmp: (tmp / "w.npz").write_bytes(b"x") and tmp / "w.npz", "pass timm_name="),
    ],
)
def test_unusable_files_are_user_errors(tmp_path, make, message):
    model = build_model(model_config("imd_tiny", modalities=("rgb",)))
    with pytest.raises(AvlabelError, match=message):
        load_pretrained(model, make(tmp_path))


def test_checkpoints_of_another_architecture_are_refused(tmp_path):
    model = build_model(model_config("imd_tiny", modalities=("rgb",)))
    shallow = VisionTransformer(img_size=32, num_classes=0, **{**VIT, "depth": 2})
    save_file(shallow.state_dict(), str(tmp_path / "shallow.safetensors"))
    with pytest.raises(AvlabelError, match=r"lacks \d+ tensors the model needs \(streams\.rgb\.blocks\.2"):
        load_pretrained(model, tmp_path / "shallow.safetensors")
    wide = VisionTransformer(img_size=32, num_classes=0, **{**VIT, "embed_dim": 96, "num_heads": 3})
    save_file(wide.state_dict(), str(tmp_path / "wide.safetensors"))
    with pytest.raises(AvlabelError, match="has shape .* there but .* in the model"):
        load_pretrained(model, tmp_path / "wide.safetensors")
    layer_scaled = VisionTransformer(img_size=32, num_classes=0, init_values=1e-5, **VIT)
    save_file(layer_scaled.state_dict(), str(tmp_path / "ls.safetensors"))
    with pytest.raises(AvlabelError, match="has no place for .*ls1.gamma"):
        load_pretrained(model, tmp_path / "ls.safetensors")


def test_hub_ids_go_through_timm_and_failures_are_user_errors(monkeypatch):
    calls = []

    def offline(name, **kwargs):
        calls.append((name, kwargs))
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(timm, "create_model", offline)
    model = build_model(model_config("imd_tiny", modalities=("rgb",)))
    with pytest.raises(AvlabelError, match="from the Hugging Face hub .*pass its local path"):
        load_pretrained(model, "vit_base_patch16_224.augreg_in21k")
    assert calls == [
        ("vit_base_patch16_224.augreg_in21k", {"pretrained": True, "num_classes": 0, "pretrained_cfg_overlay": None})
    ]


def test_avt_streams_start_from_the_image_vit(vit_file):
    """Video streams as in IMD; the audio token stream takes the ViT's blocks, norm and class token (MBT)."""
    vit, path = vit_file
    model = build_model(model_config("avt_tiny", modalities=("rgb", "flow", "audio"))).eval()
    report = load_pretrained(model, path)
    video = torch.randn(2, 3, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.streams["rgb"](video), _image_features(vit, video))
    audio = model.streams["audio"]
    for key, value in vit.state_dict().items():
        if key.startswith(("blocks.", "norm.")) or key == "cls_token":
            torch.testing.assert_close(audio.state_dict()[key], value, rtol=0, atol=0, msg=key)
    not_loaded = set(report.not_loaded)
    assert {
        "streams.audio.proj.weight",
        "streams.audio.input_norm.weight",
        "streams.audio.pos_embed",
        "streams.audio.mask_token",
        "streams.rgb.mask_token",
        "bottleneck",
        "temperature",
        "contrastive.audio.1.weight",
        "matching_head.1.bias",
        "decoders.rgb.weight",
        "head.weight",
    } <= not_loaded
    assert not any(key.startswith("streams.audio.blocks.") for key in not_loaded)


def test_fine_tuning_starts_from_a_self_supervised_checkpoint(tmp_path):
    """Heads of losses the new run does not train are left out, missing heads and another classifier start anew."""
    torch.manual_seed(0)
    pretrained = build_model(model_config("avt_tiny"))  # every self-supervised head
    path = tmp_path / "ssl.safetensors"
    save_file({f"module.{key}": value for key, value in pretrained.state_dict().items()}, str(path))
    torch.manual_seed(1)
    fine_tune = build_model(model_config("avt_tiny", pretext_heads=("contrastive",), num_classes=7))
    report = load_pretrained(fine_tune, path)
    assert set(report.ignored) == {
        key
        for key in pretrained.state_dict()
        if key.startswith(("matching_head.", "decoders.", "head.")) or key.endswith("mask_token")
    }
    assert set(report.not_loaded) == {"head.weight", "head.bias"}  # 7 classes, not 10
    for key, value in fine_tune.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(value, pretrained.state_dict()[key]), key
    # The other way round: a checkpoint without heads gives a model with heads their initial values.
    save_file(fine_tune.state_dict(), str(tmp_path / "plain.safetensors"))
    with_heads = build_model(model_config("avt_tiny", num_classes=7))
    report = load_pretrained(with_heads, tmp_path / "plain.safetensors")
    assert {"matching_head.1.weight", "decoders.audio.weight", "streams.rgb.mask_token"} <= set(report.not_loaded)
    # A backbone of another architecture is still refused.
    with pytest.raises(AvlabelError, match="lacks .* tensors the model needs .*streams.flow"):
        load_pretrained(build_model(model_config("avt_tiny", modalities=("rgb", "flow", "audio"))), path)

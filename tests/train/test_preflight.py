"""Bad input is reported before training starts, naming the config key to change."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from avlabel.data.manifest import read_manifest, write_manifest
from avlabel.errors import AvlabelError
from avlabel.train.config import load_config
from avlabel.train.distributed import setup_distributed
from avlabel.train.preflight import plan_training

from .conftest import _oracle_savld, tiny_overrides


def _plan(bench, world_size=1, **settings):
    return plan_training(load_config(None, tiny_overrides(bench, **settings)), world_size)


def test_a_good_config_plans_the_batch_arithmetic(synth_bench):
    plan = _plan(synth_bench, world_size=2, optim__global_batch=32)
    assert (plan.accum_steps, plan.steps_per_epoch) == (2, 1)  # 48 clips: 24 per rank, 16 per step
    assert plan.model_config.num_classes == 4 and plan.model_config.audio_dim == plan.train_items.audio.dim
    assert plan.model_config.num_frames == 4 and plan.model_config.img_size == 32
    assert plan.config.data.manifest.startswith("/")  # resolved paths go into config.yaml


@pytest.mark.parametrize(
    ("settings", "world_size", "message"),
    [
        (
            {"optim__global_batch": 16},
            3,
            r"optim\.global_batch 16 is not a multiple of optim\.micro_batch 8 x 3 process\(es\) = 24",
        ),
        (
            {"optim__global_batch": 64, "optim__micro_batch": 16},
            1,
            r"optim\.global_batch: 64 is more than the 48 training clips",
        ),
        ({"data__val_split": "test"}, 1, r"data\.val_split: manifest .* has no rows in split 'test'"),
        (
            {"data__label_set": "ucf101"},
            1,
            r"manifest .* is invalid — label not in label set 'ucf101': 'playing drums'",
        ),
        (
            {"data__label_set": "kinetics400"},
            1,
            r"data\.label_set: the relevance targets .* computed for the label set 'synth_classes' \(4 classes\), not 'kinetics400'",
        ),
        ({"audio__k": 5}, 1, r"audio\.k: the relevance targets .* use k=10 .* asks for 5"),
        ({"audio__overlap": "dice"}, 1, r"audio\.overlap: .* use iou"),
        ({"audio__normalize": "none"}, 1, r"audio\.normalize: .* normalised with 'max', the config asks for 'none'"),
        ({"data__size": 36}, 1, r"data\.size: 36 is not a multiple of patch_size 8"),
        ({"model__name": "imd_huge"}, 1, r"model\.name: unknown model 'imd_huge'"),
        ({"model__num_classes": 10}, 1, r"model\.num_classes: set it through data\.label_set"),
        (
            {"model__overrides": "{num_classes: 10}"},
            1,
            r"model\.overrides\.num_classes: set it through data\.label_set",
        ),
        ({"model__depth": 0}, 1, r"model\.depth: 0 must be a positive integer"),
        ({"model__fusion": "attention"}, 1, r"model\.fusion: unknown fusion head 'attention'"),
    ],
)
def test_inconsistent_inputs_are_refused(synth_bench, settings, world_size, message):
    with pytest.raises(AvlabelError, match=message):
        _plan(synth_bench, world_size, **settings)


def test_audio_cache_for_other_items_or_another_labelling(synth_bench, tmp_path):
    manifest = read_manifest(synth_bench.manifest)
    records = list(manifest)
    # A clip the cache never saw.
    shutil.copy(records[0].path, tmp_path / "extra.mp4")
    extra = type(records[0])(video_id="extra_0001", path=tmp_path / "extra.mp4", label=records[0].label, split="train")
    write_manifest([*records, extra], tmp_path / "grown.csv")
    with pytest.raises(
        AvlabelError, match=r"no rows for 1 of 49 clips \(e\.g\. extra_0001\); it was built for other items"
    ):
        _plan(synth_bench, data__manifest=tmp_path / "grown.csv")
    # The same clips with two labels swapped: the targets were computed for the old labels.
    swapped = [type(r)(**{**vars(r), "label": records[-1].label}) if i == 0 else r for i, r in enumerate(records)]
    write_manifest(swapped, tmp_path / "relabelled.csv")
    with pytest.raises(
        AvlabelError, match=rf"give clip '{records[0].video_id}' the class 'playing drums', but the manifest says"
    ):
        _plan(synth_bench, data__manifest=tmp_path / "relabelled.csv")


def test_savld_other_than_the_one_the_targets_used(synth_bench, tmp_path):
    other = _oracle_savld(tmp_path / "other.json", synth_bench.labels, [])  # fillers only: another dictionary
    payload = other.read_text().replace('"backend": "oracle"', '"backend": "another"')
    other.write_text(payload)
    with pytest.raises(
        AvlabelError,
        match=r"audio\.savld: the relevance targets .* were computed from .*savld\.json, not from .*other\.json",
    ):
        _plan(synth_bench, audio__savld=other)


def test_flow_folder_missing_videos(synth_bench, tmp_path):
    (tmp_path / "flow").mkdir()
    with pytest.raises(AvlabelError, match=r"flow folder .* lacks flow for 48 of 48 videos"):
        _plan(synth_bench, data__flow_dir=tmp_path / "flow")


def test_unreadable_audio_listed_by_the_cache_trains_without_audio(synth_bench, tmp_path):
    import shutil

    from avlabel.audio.cache import SOURCES, AudioCache, AudioCacheWriter
    from avlabel.audio.targets import RelevanceTargets

    # Rewrite the cache without its first video, as `avlabel targets` leaves an unreadable one.
    source, targets = AudioCache(synth_bench.audio), RelevanceTargets.load(synth_bench.audio)
    lost = source.video_ids[0]
    kept = np.flatnonzero(np.array(source.video_ids) != lost)
    header = source.header
    with AudioCacheWriter(tmp_path, header["embedder"], source.dim, None, header["windows"]) as writer:
        for row in kept:
            writer.append(source.video_ids[row], source.embedding[row : row + 1], None, source.status[row : row + 1])
    RelevanceTargets(
        targets.audio_sets[kept],
        targets.class_sets,
        targets.row_class[kept],
        targets.num_labels,
        targets.overlap,
        targets.meta,
    ).save(tmp_path)
    shutil.copy(synth_bench.audio / SOURCES, tmp_path / SOURCES)  # which file each cached video came from
    with pytest.raises(AvlabelError, match=rf"no rows for 1 of 48 clips \(e\.g\. {lost}\)"):
        _plan(synth_bench, audio__cache=tmp_path)

    with open(tmp_path / "audio_bad_items.tsv", "w", newline="") as handle:
        csv.writer(handle, delimiter="\t").writerows([("video_id", "path", "reason"), (lost, "x.mp4", "corrupt")])
    items = _plan(synth_bench, audio__cache=tmp_path, imd__augment_p=0.0).train_items
    position = items.video_ids.index(lost)
    assert not items.audio.present[position].any() and items.audio.target[position, 0] == 0
    assert items[(0, position)]["audio_present"] is False and items[(0, position)]["audio"].abs().sum() == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_a_gpu():
    with pytest.raises(AvlabelError, match=r"runtime\.device is 'cuda' but no CUDA GPU is visible"):
        setup_distributed("cuda")
    assert setup_distributed("auto").device.type == "cpu"


def _timm_folder(folder, mean, std):
    """A checkpoint folder as timm's save_pretrained / the hub lay it out (the weights are not read here)."""
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    config = {"architecture": "vit_tiny_patch16_224", "pretrained_cfg": {"mean": mean, "std": std}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_rgb_statistics_come_from_the_pretrained_checkpoints_own_config(synth_bench, tmp_path):
    folder = _timm_folder(tmp_path / "vit", [0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    plan = _plan(synth_bench, model__pretrained=folder)
    assert (plan.model_config.rgb_mean, plan.model_config.rgb_std) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    # What the model will receive: a clip normalised with exactly those statistics.
    clips = plan.train_items.clips
    assert (clips.rgb_mean, clips.rgb_std) == (plan.model_config.rgb_mean, plan.model_config.rgb_std)
    # The file inside that folder says the same; a timm hub name is read from timm's registry.
    assert _plan(synth_bench, model__pretrained=folder / "model.safetensors").model_config.rgb_mean == (0.1, 0.2, 0.3)
    registry = _plan(synth_bench, model__pretrained="vit_base_patch16_224.augreg_in21k").model_config
    assert (registry.rgb_mean, registry.rgb_std) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def test_rgb_statistics_explicit_from_scratch_or_refused(synth_bench, tmp_path):
    explicit = _plan(synth_bench, model__rgb_mean="[0.485, 0.456, 0.406]", model__rgb_std="[0.229, 0.224, 0.225]")
    assert explicit.model_config.rgb_std == (0.229, 0.224, 0.225)
    assert _plan(synth_bench).model_config.rgb_mean == (0.5, 0.5, 0.5)  # from scratch: the named model's
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(b"")
    with pytest.raises(
        AvlabelError, match=r"model\.rgb_mean: .*bare\.safetensors has no config saying which RGB mean/std"
    ):
        _plan(synth_bench, model__pretrained=bare)
    with pytest.raises(AvlabelError, match=r"model\.rgb_std: must be given together with model\.rgb_mean"):
        _plan(synth_bench, model__rgb_mean="[0.5, 0.5, 0.5]")
    with pytest.raises(AvlabelError, match=r"model\.overrides\.rgb_mean: set it through model\.rgb_mean"):
        _plan(synth_bench, model__rgb_mean="[0.5, 0.5, 0.5]", model__overrides="{rgb_mean: [0.5, 0.5, 0.5]}")

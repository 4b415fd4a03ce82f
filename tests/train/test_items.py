"""Training items: intra-class cross-modality augmentation (section 3.6), seeding, resumable sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avlabel.errors import AvlabelError
from avlabel.train.config import load_config
from avlabel.train.items import IntraClassAudioSwap, collate_items
from avlabel.train.preflight import plan_training
from avlabel.train.sampler import ResumableDistributedSampler, shard_indices

from .conftest import AVT, tiny_overrides


def test_swap_takes_audio_of_another_clip_of_the_same_class_reproducibly():
    labels = np.repeat(np.arange(5), 20)  # 5 classes x 20 clips
    has_audio = np.ones(100, dtype=bool)
    has_audio[::7] = False  # silent clips never lend their (absent) audio
    swap = IntraClassAudioSwap(labels, has_audio, p=0.4, seed=3)
    donors = np.array([[swap.donor(i, epoch) for i in range(100)] for epoch in range(20)])  # (epochs, clips)

    swapped = donors != np.arange(100)
    assert 0.33 < swapped.mean() < 0.47  # p = 0.4 over 2000 draws
    assert (labels[donors] == labels).all()  # always the same class
    assert has_audio[donors[swapped]].all()
    assert len(np.unique(donors[:, 0][swapped[:, 0]])) > 3  # donors vary across epochs
    # A pure function of (seed, epoch, index): same answers again, in any order.
    again = IntraClassAudioSwap(labels, has_audio, p=0.4, seed=3)
    assert all(again.donor(i, epoch) == donors[epoch, i] for epoch in reversed(range(20)) for i in range(0, 100, 9))
    assert (
        np.array(
            [[IntraClassAudioSwap(labels, has_audio, 0.4, seed=4).donor(i, e) for i in range(100)] for e in range(20)]
        )
        != donors
    ).any()


def test_swap_edge_cases():
    labels = np.array([0, 1, 1])
    has_audio = np.array([True, True, False])
    always = IntraClassAudioSwap(labels, has_audio, p=1.0, seed=0)
    assert always.donor(0, 0) == 0  # no other clip of class 0
    assert always.donor(2, 0) == 1  # class 1's only donor with audio
    assert always.donor(1, 0) == 1  # its only same-class peer is silent
    never = IntraClassAudioSwap(np.zeros(10, int), np.ones(10, bool), p=0.0, seed=0)
    assert all(never.donor(i, e) == i for i in range(10) for e in range(5))


def test_items_are_a_function_of_their_key_and_carry_the_donor_audio(synth_bench, one_thread):
    config = load_config(None, tiny_overrides(synth_bench, imd__augment_p=1.0))
    plan = plan_training(config, world_size=1)
    items, audio = plan.train_items, plan.train_items.audio
    torch.manual_seed(123)
    before = torch.get_rng_state()

    first, again, later = items[(0, 5)], items[(0, 5)], items[(1, 5)]
    torch.testing.assert_close(first["rgb"], again["rgb"])
    torch.testing.assert_close(first["flow"], again["flow"])
    assert not torch.equal(first["rgb"], later["rgb"])  # another epoch: another crop / offset / flip
    assert torch.equal(torch.get_rng_state(), before)  # the loop's RNG stream is untouched

    # p = 1: the audio, presence and target all come from one donor of the same class.
    for index in range(0, len(items), 5):
        item = items[(2, index)]
        donor = item["audio_source"]
        assert donor != index and items.labels[donor] == items.labels[index]
        torch.testing.assert_close(item["audio"], torch.from_numpy(audio.embedding(donor, 0)))
        assert item["relevance"] == pytest.approx(float(audio.target[donor, 0]))
        assert item["audio_present"] == bool(audio.present[donor, 0])

    batch = collate_items([items[(0, i)] for i in range(4)])
    assert batch["rgb"].shape == (4, 3, 4, 32, 32) and batch["flow"].shape == (4, 2, 4, 32, 32)
    assert batch["audio"].shape == (4, audio.dim) and batch["relevance"].dtype == torch.float32
    assert batch["valid"].all() and batch["skipped"] == []


def test_token_models_get_the_tokens_of_the_same_audio_window(synth_bench):
    from avlabel.audio.cache import AudioCache

    # p = 1 swaps every clip's audio (refused with the contrastive and matching losses, off here).
    overrides = tiny_overrides(
        synth_bench,
        **AVT,
        audio__cache=synth_bench.audio_tokens,
        imd__augment_p=1.0,
        avt__contrastive_weight=0,
        avt__matching_weight=0,
    )
    plan = plan_training(load_config(None, overrides), world_size=1)
    items, audio = plan.train_items, plan.train_items.audio
    assert plan.model_config.reads_audio_tokens and audio.token_shape == (101, 128)
    cache = AudioCache(synth_bench.audio_tokens)
    for index in range(0, len(items), 7):
        item = items[(1, index)]
        donor = item["audio_source"]  # p = 1: tokens, like the embedding, come from the donor
        row = audio.rows[donor, 0]
        assert item["audio_tokens"].dtype == torch.float32 and item["audio_tokens"].shape == (101, 128)
        np.testing.assert_array_equal(item["audio_tokens"].numpy(), cache.tokens[row].astype(np.float32))
        length = int(cache.token_length[row])
        assert item["audio_token_valid"].tolist() == [True] * length + [False] * (101 - length)
        np.testing.assert_array_equal(item["audio_token_energy"].numpy(), cache.token_energy[row])
        assert item["audio_present"] == (length > 0)
    batch = collate_items([items[(0, i)] for i in range(4)])
    assert batch["audio_tokens"].shape == (4, 101, 128) and batch["audio_tokens"].dtype == torch.float32
    assert batch["audio_token_valid"].shape == (4, 101) and batch["audio_token_valid"].dtype == torch.bool
    assert batch["audio_token_energy"].shape == (4, 101) and batch["audio_token_energy"].dtype == torch.float32
    # The benchmark's clips last 1.6 s: 158 frames of audio, so 16 valid tokens.
    assert batch["audio_token_valid"][batch["audio_present"]].sum(dim=1).unique().tolist() == [16]
    # Validation items (first window) carry them too.
    assert plan.val_items[(0, 0)]["audio_tokens"].shape == (101, 128)


def test_embedding_models_never_read_tokens(synth_bench):
    plan = plan_training(load_config(None, tiny_overrides(synth_bench, audio__cache=synth_bench.audio_tokens)), 1)
    assert plan.model_config.audio_input == "embedding"
    item = plan.train_items[(0, 0)]
    assert "audio" in item and not {"audio_tokens", "audio_token_valid", "audio_token_energy"} & set(item)


def test_a_token_model_on_a_cache_without_tokens_is_refused_before_training(synth_bench):
    config = load_config(None, tiny_overrides(synth_bench, **AVT))
    with pytest.raises(AvlabelError) as error:
        plan_training(config, world_size=1)
    message = str(error.value)
    assert f"the audio cache {synth_bench.audio} holds no audio tokens" in message
    assert "model 'imd_tiny' reads audio tokens (AVT)" in message
    assert "avlabel targets --tokens ... -o NEW_DIR" in message and "\n" not in message


def test_targets_follow_the_benchmark_ground_truth(synth_bench):
    import csv

    config = load_config(None, tiny_overrides(synth_bench, imd__augment_p=0.0))
    items = plan_training(config, world_size=1).train_items
    with open(synth_bench.root / "audio_tags.csv", newline="") as handle:
        truth = {row["video_id"]: int(row["relevant"]) for row in csv.DictReader(handle)}
    relevant = np.array([truth[video_id] for video_id in items.video_ids])
    target = items.audio.target[:, 0]
    # Oracle SAVLD + true tags: relevant clips overlap their class's labels, the others do not.
    assert (target[relevant == 1] > 0.1).all() and (target[relevant == 0] == 0).all()


def test_unreadable_clip_becomes_a_zero_weight_placeholder(synth_bench, tmp_path):
    config = load_config(None, tiny_overrides(synth_bench))
    plan = plan_training(config, world_size=1, error_log=tmp_path / "bad.tsv")
    items = plan.train_items
    items.clips.records[3] = type(items.clips.records[3])(
        **{**vars(items.clips.records[3]), "path": tmp_path / "gone.mp4"}
    )
    item = items[(0, 3)]
    assert item["valid"] is False and item["rgb"].abs().sum() == 0 and item["label"] == items.labels[3]
    batch = collate_items([items[(0, 2)], item])
    assert batch["valid"].tolist() == [True, False] and batch["skipped"][0][1] == items.video_ids[3]
    assert items.video_ids[3] in (tmp_path / "bad.tsv").read_text()


def test_sampler_resumes_mid_epoch_and_shards_disjointly():
    full = list(ResumableDistributedSampler(50, num_replicas=1, rank=0, seed=7))
    sampler = ResumableDistributedSampler(50, num_replicas=1, rank=0, seed=7)
    sampler.set_position(epoch=0, start=20)
    assert list(sampler) == full[20:] and len(sampler) == 30
    sampler.set_position(epoch=1, start=0)
    assert [i for _, i in sampler] != [i for _, i in full] and {e for e, _ in sampler} == {1}

    shards = [list(ResumableDistributedSampler(50, num_replicas=3, rank=r, seed=7)) for r in range(3)]
    seen = [i for shard in shards for _, i in shard]
    assert len(seen) == len(set(seen)) == 48  # drop_last: 16 per rank, no duplicates
    assert sorted(i for r in range(3) for _, i in shard_indices(10, 3, r)) == list(range(10))


def test_a_cache_from_before_audio_tokens_serves_imd_and_refuses_token_models():
    from pathlib import Path

    from avlabel.audio.cache import AudioCache
    from avlabel.audio.targets import RelevanceTargets
    from avlabel.train.items import ClipAudio

    # Written by avlabel before audio tokens existed (tests/audio/fixtures/make_cache_v1.py).
    v1 = Path(__file__).parents[1] / "audio" / "fixtures" / "cache_v1"
    cache = AudioCache(v1)
    audio = ClipAudio(v1, ["v1", "v2", "v3"], cache, RelevanceTargets.load(v1), set())
    assert audio.token_shape is None and audio.present.tolist() == [[True, True], [False, False], [False, False]]
    assert audio.target.tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    np.testing.assert_array_equal(audio.embedding(0, 1), cache.embedding[1].astype(np.float32))
    with pytest.raises(AvlabelError, match=r"holds no audio tokens .* but model 'avt_tiny' reads audio tokens"):
        audio.require_tokens("avt_tiny")

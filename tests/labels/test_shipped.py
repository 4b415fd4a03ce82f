"""The shipped vocabularies are exact: counts, uniqueness, known indices and ordering traps."""

from __future__ import annotations

import pytest

from avlabel.labels import list_label_sets, load_label_set

EXPECTED_SIZES = {
    "audioset": 527,
    "esc50": 50,
    "hmdb51": 51,
    "kinetics400": 400,
    "kinetics600": 600,
    "kinetics700": 700,
    "ucf101": 101,
    "vggsound": 309,
}


def test_list_label_sets_reports_every_shipped_set_with_its_size():
    assert list_label_sets() == EXPECTED_SIZES


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZES))
def test_shipped_set_is_unique_and_clean(name):
    label_set = load_label_set(name)
    assert label_set.name == name
    assert len(label_set) == EXPECTED_SIZES[name]
    assert len(set(label_set.labels)) == len(label_set)
    assert all(label == label.strip() and label for label in label_set)


@pytest.mark.parametrize(
    ("index", "mid", "name"),
    [
        (0, "/m/09x0r", "Speech"),
        (1, "/m/05zppz", "Male speech, man speaking"),
        (137, "/m/04rlf", "Music"),
        (526, "/m/07hvw1", "Field recording"),
    ],
)
def test_audioset_rows_follow_class_labels_indices(index, mid, name):
    audioset = load_label_set("audioset")
    assert audioset.labels[index] == name
    assert audioset.ids[index] == mid


def test_audioset_mids_are_unique():
    audioset = load_label_set("audioset")
    assert len(set(audioset.ids)) == 527
    assert all(mid[:3] in ("/m/", "/t/", "/g/") for mid in audioset.ids)


def test_kinetics400_matches_known_indices():
    kinetics = load_label_set("kinetics400")
    assert kinetics.labels[0] == "abseiling"
    assert kinetics.labels[3] == "applauding"
    assert kinetics.labels[399] == "zumba"
    assert kinetics.labels == tuple(sorted(kinetics.labels))


def test_ucf101_uses_classind_order_which_ignores_case():
    ucf = load_label_set("ucf101")
    # classInd.txt is 1-based: 35 Hammering, 36 HammerThrow, 47 JumpingJack, 48 JumpRope.
    assert ucf.index("Hammering") == 34
    assert ucf.index("HammerThrow") == 35
    assert ucf.index("JumpingJack") == 46
    assert ucf.index("JumpRope") == 47
    assert ucf.labels[0] == "ApplyEyeMakeup"
    assert ucf.labels[100] == "YoYo"
    # A plain sorted() would swap both pairs above.
    assert list(ucf.labels) != sorted(ucf.labels)
    assert list(ucf.labels) == sorted(ucf.labels, key=str.lower)


def test_ucf101_spells_handstand_pushups_officially():
    ucf = load_label_set("ucf101")
    assert "HandstandPushups" in ucf.labels
    assert "HandStandPushups" not in ucf.labels
    assert ucf.labels[36] == "HandstandPushups"


def test_vggsound_is_sorted_and_keeps_names_with_commas_whole():
    vggsound = load_label_set("vggsound")
    assert vggsound.labels == tuple(sorted(vggsound.labels))
    assert "bird chirping, tweeting" in vggsound.labels
    assert "alligators, crocodiles hissing" in vggsound.labels
    assert "extending ladders" not in vggsound.labels
    assert vggsound.labels[0] == "air conditioning noise"
    assert sum("," in label for label in vggsound.labels) > 10


def test_hmdb51_and_esc50_known_indices():
    hmdb = load_label_set("hmdb51")
    assert hmdb.labels[0] == "brush_hair" and hmdb.labels[50] == "wave"
    esc = load_label_set("esc50")
    assert esc.labels[0] == "dog" and esc.labels[30] == "door_wood_knock" and esc.labels[49] == "hand_saw"


def test_kinetics700_keeps_parenthesised_qualifiers_and_case():
    k700 = load_label_set("kinetics700")
    assert "passing American football (in game)" in k700.labels
    assert "backflip (human)" in k700.labels
    assert k700.labels == tuple(sorted(k700.labels))


def test_kinetics600_follows_deepminds_label_map():
    k600 = load_label_set("kinetics600")
    assert k600.labels[0] == "abseiling" and k600.labels[599] == "zumba"
    assert k600.labels == tuple(sorted(k600.labels))
    # DeepMind's label_map_600.txt spells this one class in lower case (K400 and K700 do not).
    assert "passing american football (not in game)" in k600.labels
    assert "passing American football (in game)" in k600.labels


def test_kinetics_versions_spell_shared_classes_alike():
    # A class that Kinetics-400, -600 and -700 share is written with the same punctuation in
    # every list (K700's "massaging person-s head" once broke this), so annotation CSVs match.
    def key(label: str) -> str:
        return "".join(ch for ch in label.casefold() if ch.isalnum())

    versions = [load_label_set(name) for name in ("kinetics400", "kinetics600", "kinetics700")]
    spellings: dict[str, set[str]] = {}
    for version in versions:
        for label in version.labels:
            spellings.setdefault(key(label), set()).add(label.casefold())
    assert all(len(forms) == 1 for forms in spellings.values()), [f for f in spellings.values() if len(f) > 1]
    assert all("massaging person's head" in version.labels for version in versions)

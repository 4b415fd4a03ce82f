"""Label text normalisation: what the embedding model actually reads."""

from __future__ import annotations

import pytest

from avlabel.errors import AvlabelError
from avlabel.labels.text import apply_template, label_phrases, validate_template


@pytest.mark.parametrize(
    ("label", "phrases"),
    [
        ("ApplyEyeMakeup", ("apply eye makeup",)),
        ("YoYo", ("yo yo",)),
        ("HandstandPushups", ("handstand pushups",)),
        ("TVShow", ("tv show",)),
        ("Speech", ("speech",)),
        ("DJ", ("dj",)),
        ("brush_hair", ("brush hair",)),
        ("crackling_fire", ("crackling fire",)),
        ("Fill (with liquid)", ("fill with liquid",)),
        ("curling (sport)", ("curling sport",)),
        ("petting animal (not cat)", ("petting animal",)),
        ("throwing ball (not baseball or American football)", ("throwing ball",)),
        ("Bang (?)", ("bang",)),
        ("Chirp, tweet", ("chirp", "tweet")),
        ("Male speech, man speaking", ("male speech", "man speaking")),
        ("bee, wasp, etc. buzzing", ("bee", "wasp", "buzzing")),
        ("playing  drums ", ("playing drums",)),
        ("dog bow-wow", ("dog bow-wow",)),
        ("massaging person's head", ("massaging person's head",)),
    ],
)
def test_label_phrases(label, phrases):
    assert label_phrases(label) == phrases


def test_label_made_only_of_a_dropped_qualifier_keeps_its_words():
    assert label_phrases("(not applicable)") == ("not applicable",)


def test_templates_wrap_each_phrase():
    assert apply_template("chirp", "the sound of {}") == "the sound of chirp"
    assert apply_template("chirp", None) == "chirp"


@pytest.mark.parametrize("template", ["a video of", "{} and {}", "a {label}"])
def test_bad_templates_are_rejected(template):
    with pytest.raises(AvlabelError, match="exactly one '\\{\\}'"):
        validate_template(template, "--video-template")

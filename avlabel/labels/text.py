"""Turn a dataset's class name into the phrases an embedding model reads (SAVLD, section 3.1).

Class names are written for file systems and spreadsheets, not for language models, so each
label is rewritten before it is embedded:

* ``_`` becomes a space (HMDB ``brush_hair``, ESC-50 ``crackling_fire``).
* UCF-style CamelCase is split (``ApplyEyeMakeup`` -> ``apply eye makeup``, ``YoYo`` -> ``yo yo``);
  acronyms stay whole (``TVShow`` -> ``tv show``).
* Parenthesised qualifiers that add meaning are kept as plain words (``Fill (with liquid)`` ->
  ``fill with liquid``, ``curling (sport)`` -> ``curling sport``). Negative qualifiers
  (``petting animal (not cat)``) and uncertainty marks (``(?)``) are dropped: both sentence
  encoders and word-vector averages read "not cat" as evidence *for* cat.
* Comma-separated synonyms (AudioSet ``Chirp, tweet``, VGGSound ``playing marimba, xylophone``)
  become separate phrases; a label's embedding is the mean of its phrases' embeddings, so each
  synonym pulls equally instead of the encoder reading an enumeration as one sentence. ``etc.``
  carries no meaning and is removed.
* Everything is lower-cased and white space collapsed (the default MiniLM model is uncased;
  word-vector look-ups try the original case first, see `avlabel.embed.word_vectors`).

An optional prompt template (``"a video of {}"``) is applied to every phrase afterwards.
"""

from __future__ import annotations

import re

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_PARENTHESISED = re.compile(r"\(([^()]*)\)")
_NEGATION = re.compile(r"^\s*(not|no|excluding|except)\b", re.IGNORECASE)
_ETC = re.compile(r"\betc\.?", re.IGNORECASE)


def _split_camel_case(word: str) -> str:
    # Only words mixing cases are split: "Speech" or "DJ" stay as they are.
    if word.isupper() or word.islower() or not any(c.isupper() for c in word[1:]):
        return word
    return _CAMEL_BOUNDARY.sub(" ", word)


def _qualifier(match: re.Match[str]) -> str:
    inner = match.group(1).strip()
    if not inner or inner == "?" or _NEGATION.match(inner):
        return " "
    return f" {inner} "


def label_phrases(label: str) -> tuple[str, ...]:
    """The normalised phrases of one class name (one per comma-separated synonym).

    >>> label_phrases("ApplyEyeMakeup")
    ('apply eye makeup',)
    >>> label_phrases("Chirp, tweet")
    ('chirp', 'tweet')
    >>> label_phrases("petting animal (not cat)")
    ('petting animal',)
    """
    text = label.replace("_", " ")
    text = " ".join(_split_camel_case(word) for word in text.split())
    text = _PARENTHESISED.sub(_qualifier, text)
    text = _ETC.sub(" ", text)
    phrases = []
    for part in text.split(","):
        phrase = " ".join(part.lower().split())
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    if not phrases:
        # A label made only of a dropped qualifier: fall back to its plain lower-cased words.
        phrases.append(" ".join(re.sub(r"[(),?]", " ", label).lower().split()) or label)
    return tuple(phrases)


def apply_template(phrase: str, template: str | None) -> str:
    """Wrap a phrase in a prompt template such as ``"the sound of {}"`` (``None``: unchanged)."""
    return phrase if template is None else template.format(phrase)


def validate_template(template: str | None, option: str = "template") -> None:
    """Reject templates without exactly one ``{}`` slot before any model is loaded."""
    from avlabel.errors import AvlabelError

    if template is None:
        return
    if template.count("{}") != 1 or re.search(r"\{[^}]", template):
        raise AvlabelError(
            f"{option} '{template}' must contain exactly one '{{}}' where the label goes, e.g. 'a video of {{}}'"
        )

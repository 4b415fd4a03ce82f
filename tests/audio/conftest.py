"""Session-wide audio fixtures: real media files, the AudioSet label set and a tiny random AST."""

from __future__ import annotations

import pytest

from ._media import save_tiny_ast, write_media


@pytest.fixture(scope="session")
def audioset():
    from avlabel.labels import load_label_set

    return load_label_set("audioset")


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    return write_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def tiny_ast_dir(tmp_path_factory, audioset):
    return save_tiny_ast(tmp_path_factory.mktemp("tiny-ast"), audioset.labels)

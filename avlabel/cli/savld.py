"""``avlabel savld``: build the semantic audio-video label dictionary (paper section 3.1)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from avlabel.cli._application import Application, pass_app
from avlabel.cli._options import NamedChoice

_OUTPUT_SUFFIXES = (".json", ".txt", ".tsv")


@click.command(name="savld")
@click.option(
    "--video", default="kinetics400", show_default=True, help="Video label set: a shipped name or a label file."
)
@click.option("--audio", default="audioset", show_default=True, help="Audio label set: a shipped name or a label file.")
@click.option("-k", "--k", "k", default=10, show_default=True, type=int, help="Audio labels kept per video label.")
@click.option(
    "--metric",
    type=NamedChoice(["cosine", "euclidean", "manhattan"], "metric"),
    default="cosine",
    show_default=True,
    help="Distance between label embeddings.",
)
@click.option(
    "--backend",
    type=NamedChoice(["bert", "glove", "word2vec"], "backend"),
    default="bert",
    show_default=True,
    help="Text embedder.",
)
@click.option(
    "--model", default=None, metavar="DIR|HUB_ID", help="Sentence model for bert. [default: bundled all-MiniLM-L6-v2]"
)
@click.option(
    "--vectors",
    default=None,
    metavar="PATH|NAME",
    help="Word vectors for glove/word2vec: a word2vec .bin/.txt or GloVe .txt file, or NAME.npy with its words in "
    "NAME.vocab.txt (none of these can run code); with --trust-vectors also a gensim save or a gensim-data name. "
    "[default for glove: bundled GloVe 6B 50-d]",
)
@click.option(
    "--trust-vectors",
    is_flag=True,
    help="Allow --vectors that RUN CODE when loaded: gensim saves (.kv, .model, .wordvectors, .pkl) are pickles that "
    "execute whatever the file asks for, and a gensim-data NAME makes gensim download and import a Python module. "
    "Only for files and downloads you trust.",
)
@click.option(
    "--video-template", default=None, metavar="TEXT", help='Prompt around video labels, e.g. "a video of {}".'
)
@click.option(
    "--audio-template", default=None, metavar="TEXT", help='Prompt around audio labels, e.g. "the sound of {}".'
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Output file: .json (full, with scores and provenance) or .txt/.tsv (the paper's TAB-separated rows). "
    "[default: savld-VIDEO-AUDIO-BACKEND-kK-METRIC.json]",
)
@click.option("--no-cache", is_flag=True, help="Ignore and do not fill the on-disk embedding cache.")
@pass_app
def savld(
    app: Application,
    video: str,
    audio: str,
    k: int,
    metric: str,
    backend: str,
    model: str | None,
    vectors: str | None,
    trust_vectors: bool,
    video_template: str | None,
    audio_template: str | None,
    output: Path | None,
    no_cache: bool,
) -> None:
    """Map every video label to its K most similar audio labels and write the dictionary.

    Labels are normalised (CamelCase, underscores, qualifiers, synonyms), embedded with the
    chosen backend (embeddings are cached, so a rebuild is instant) and matched by exact
    k-nearest-neighbour search.
    """
    from avlabel._checks import check_output_file
    from avlabel._console import err_console
    from avlabel.errors import AvlabelError
    from avlabel.labels import load_label_set
    from avlabel.savld import build_savld, save_savld

    video_set, audio_set = load_label_set(video), load_label_set(audio)
    if output is None:
        output = Path(f"savld-{video_set.name}-{audio_set.name}-{backend}-k{k}-{metric}.json")
    if output.suffix.lower() not in _OUTPUT_SUFFIXES:
        raise AvlabelError(
            f"cannot tell the SAVLD format from '{output.name}'; end the file name in .json, .txt or .tsv"
        )
    check_output_file(output, "-o")
    # Checked only when asked for: resolving a device imports torch, which a warm-cache build never needs.
    device = app.resolve_device() if app.device else None
    started = time.perf_counter()
    with err_console().status(
        f"embedding {len(video_set)} {video_set.name} and {len(audio_set)} {audio_set.name} labels ({backend})"
    ):
        dictionary = build_savld(
            video_set,
            audio_set,
            k=k,
            metric=metric,
            backend=backend,
            model=model,
            vectors=vectors,
            trust_vectors=trust_vectors,
            device=device,
            video_template=video_template,
            audio_template=audio_template,
            use_cache=not no_cache,
        )
    save_savld(dictionary, output)
    _print_summary(dictionary, output, time.perf_counter() - started)


def _print_summary(dictionary, output: Path, seconds: float) -> None:
    from collections import Counter

    from rich.table import Table

    from avlabel._console import err_console, out_console

    provenance = dictionary.provenance
    unknown, unmatched = provenance.get("unknown_words", {}), provenance.get("audio_without_vector", [])
    if unknown:
        shown = "; ".join(f"{label}: {' '.join(words)}" for label, words in list(unknown.items())[:8])
        more = f" (+{len(unknown) - 8} more, listed in the JSON provenance)" if len(unknown) > 8 else ""
        err_console().print(
            f"[yellow]{len(unknown)} labels have words unknown to the vectors, skipped:[/] {shown}{more}"
        )
    if unmatched:
        err_console().print(
            f"[yellow]{len(unmatched)} audio labels have no known word and are never matched:[/] {', '.join(unmatched)}"
        )
    usage = Counter(dictionary.neighbours.ravel().tolist())
    table = Table(title=f"SAVLD {dictionary.video.name} → {dictionary.audio.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("written", str(output))
    table.add_row("backend / model", f"{provenance['backend']} / {provenance['model']}")
    table.add_row("metric, k", f"{dictionary.metric}, k={dictionary.k}")
    table.add_row("video labels", str(len(dictionary.video)))
    table.add_row("audio labels used", f"{len(usage)} of {len(dictionary.audio)}")
    table.add_row(
        "most shared audio labels",
        ", ".join(f"{dictionary.audio.labels[a]} ({n})" for a, n in usage.most_common(5)),
    )
    first = dictionary.video.labels[0]
    table.add_row(f"e.g. '{first}'", ", ".join(label for label, _ in dictionary.audio_labels(first)[:5]))
    table.add_row("time", f"{seconds:.2f} s")
    out_console().print(table)

"""Every command against bad input: exit status 2, one ``Error:`` line, no traceback, nothing written.

One table per command, its inputs gone through one by one: each path argument as a missing
file, a folder, a file, text that is not UTF-8, a damaged file, a file of another dataset; each
number out of range; each output as a path under a file, in a folder nobody may write, or a
folder where a file goes; pickles that would run code; a live writer holding the output. The
checks of every case:

* exit status 2 and no traceback;
* exactly one line of output, ``Error: <problem>; <fix>``, holding the expected fragment;
* nothing written: every file under the case's working folder and under the shared fixtures
  (runs, caches, flow folders, AST checkpoints) is unchanged, nothing new appeared, and no
  pickled payload ran (it would have created a file there).

The cases reuse the fixtures of the other CLI tests (the tiny synthetic benchmark and its run,
tiny random AST checkpoints) and are checked before any model loads, so the tables run fast.
"""

from __future__ import annotations

import contextlib
import csv
import os
import pickle
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from avlabel.cli import cli
from tests.audio._media import save_tiny_ast
from tests.evaluate._fixtures import make_run, shared_tiny_run, tiny_synth_args


class _Payload:
    """A pickle that creates ``marker`` when loaded (what a crafted checkpoint or vectors file would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Read-only inputs shared by the tables: the tiny benchmark and run, ASTs, a flow folder, other datasets."""
    import torch

    from avlabel.data.flow_extract import FlowConfig, run_flow
    from avlabel.data.manifest import read_manifest
    from avlabel.labels import load_label_set

    tiny = shared_tiny_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("bad-inputs")
    audioset = load_label_set("audioset").labels
    ast = save_tiny_ast(root / "ast", audioset)
    marker = root / "PAYLOAD_RAN"  # a pickle that ran would create this file: a leftover every case looks for
    evil_ast = root / "evil-ast"
    shutil.copytree(ast, evil_ast)
    (evil_ast / "model.safetensors").unlink()
    torch.save({"weights": _Payload(marker)}, evil_ast / "pytorch_model.bin")
    evil_run = root / "evil-run"
    shutil.copytree(tiny["run"], evil_run)
    torch.save({"state": _Payload(marker)}, evil_run / "checkpoints" / "best.state.pt")
    flow = root / "flow"
    run_flow(read_manifest(tiny["manifest"]), flow, FlowConfig(preset="ultrafast", short_side=32))
    # Another draw of the benchmark: the same video ids, other files.
    other = root / "other"
    result = CliRunner().invoke(cli, tiny_synth_args(other, seed=7))
    assert result.exit_code == 0, result.output
    # Half of a split: shard 0/2 of the tiny benchmark's cache finished, 1/2 never ran.
    half = root / "half-audio"
    result = CliRunner().invoke(cli, [*_targets_base(tiny, half), "--shard", "0/2"])
    assert result.exit_code == 0, result.output
    return {
        **tiny,
        "root": root,
        "half_audio": half,
        "ast": ast,
        "evil_ast": evil_ast,
        "evil_run": evil_run,
        "flow": flow,
        "other": other / "manifest.csv",
        "savld": tiny["data"] / "savld.json",
        "marker": marker,
    }


class Env:
    """A fresh working folder (the current directory) holding ready-made bad files, plus the shared inputs."""

    def __init__(self, work: Path, shared: dict) -> None:
        self.work, self.shared = work, shared
        self.locks: list[Path] = []  # lock files held while the command runs (a live writer)
        self.afile = work / "afile"
        self.afile.write_text("just a file\n")
        self.adir = work / "adir"
        self.adir.mkdir()
        self.latin = work / "latin1.csv"  # Latin-1, not UTF-8
        self.latin.write_bytes("video_id,path,label,split\nm\xfcsli,x.mp4,\xe9t\xe9,train\n".encode("latin-1"))
        self.garbage = work / "garbage.mp4"
        self.garbage.write_bytes(b"this is not a media file\n" * 64)
        self.broken_json = work / "broken.json"
        self.broken_json.write_text("{not json")
        self.missing = work / "missing.mp4"
        if os.geteuid() == 0:  # root may write anywhere but sysfs, which refuses new files even to root
            self.unwritable = Path("/sys/avlabel-out")
        else:
            readonly = work / "readonly"
            readonly.mkdir()
            readonly.chmod(0o555)
            self.unwritable = readonly / "out"
        self.under_file = self.afile / "out"

    def __getattr__(self, name: str):
        return self.shared[name]

    def file(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text, encoding="utf-8")
        return path

    def write_manifest(self, name: str, rows: list[tuple[str, str, str, str]]) -> Path:
        path = self.work / name
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("video_id", "path", "label", "split"), *rows])
        return path

    def test_rows(self) -> list[dict]:
        with open(self.shared["manifest"], newline="") as handle:
            return list(csv.DictReader(handle))

    def folder(self, name: str) -> Path:
        path = self.work / name
        path.mkdir()
        return path

    def holding(self, lock: Path) -> list:
        """Hold ``lock`` while the command runs (another writer is alive); no arguments to add."""
        self.locks.append(lock)
        return []


@pytest.fixture
def env(tmp_path, shared, monkeypatch):
    if os.geteuid() == 0 and not Path("/sys").is_dir():
        pytest.skip("needs a folder root cannot write in (sysfs)")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield Env(work, shared)
    for path in work.rglob("*"):  # let pytest clean up the read-only folder
        if path.is_dir():
            path.chmod(0o755)


def _snapshot(roots) -> dict[str, tuple[int, int] | None]:
    """Every path under ``roots``: files with their size and modification time, folders by name only
    (the write check creates and removes a probe file, which touches a folder's time but leaves nothing)."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else None
        for root in roots
        for path in Path(root).rglob("*")
    }


def refused(env: Env, args: list, message: str) -> None:
    """Run ``avlabel ARGS`` and check the four promises of the module docstring."""
    from avlabel._io import file_lock

    roots = [env.work, env.shared["root"], env.shared["run"].parent]
    before = _snapshot(roots)
    with contextlib.ExitStack() as stack:
        for lock in env.locks:
            stack.callback(file_lock(lock).close)
        result = CliRunner().invoke(cli, [str(arg) for arg in args])
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output and (result.exception is None or isinstance(result.exception, SystemExit)), output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    assert message in lines[0], output
    if os.environ.get("AVLABEL_SHOW_REFUSALS"):
        print(f"\n{' '.join(map(str, args))[:150]}\n    {lines[0]}")
    changed = sorted({path for path, stat in set(_snapshot(roots).items()) ^ set(before.items())})
    assert not changed, f"the refused command wrote or changed {changed}"
    assert not env.shared["marker"].exists(), "a pickled payload ran"


# ---- savld ------------------------------------------------------------------------------------
SAVLD = [
    (lambda e: ["-o", e.under_file / "s.json"], "is a file, so no folder can be made under it"),
    (lambda e: ["-o", e.unwritable / "s.json"], "cannot write in"),
    (lambda e: ["-o", e.adir], "is a directory"),
    (lambda e: ["-o", e.work / "s.csv"], "cannot tell the SAVLD format from 's.csv'"),
    (lambda e: ["--backend", "elmo"], "unknown backend 'elmo'; choose one of bert, glove, word2vec"),
    (lambda e: ["-k", "0"], "k must be between 1 and 527"),
    (lambda e: ["-k", "-3"], "k must be between 1 and 527"),
    (lambda e: ["-k", "100000"], "k must be between 1 and 527"),
    (lambda e: ["-k", "ten"], "'ten' is not a valid integer"),
    (lambda e: ["--metric", "cosinus"], "unknown metric 'cosinus'"),
    (lambda e: ["--video", "kinetics401"], "unknown label set 'kinetics401'"),
    (lambda e: ["--audio", "audioset2"], "unknown label set 'audioset2'"),
    (lambda e: ["--video", e.latin], "not UTF-8"),
    (lambda e: ["--video", e.adir], "is not a file"),
    (lambda e: ["--video", e.afile], "unsupported type"),
    (lambda e: ["--video", e.file("empty.txt", "")], "is empty; put one label per line"),
    (lambda e: ["--video-template", "a video of"], "must contain exactly one '{}'"),
    (lambda e: ["--audio-template", "{} and {}"], "must contain exactly one '{}'"),
    (lambda e: ["--backend", "glove", "--model", "bert-base-uncased"], "--model is for the bert backend"),
    (lambda e: ["--vectors", "x.bin"], "--vectors is for the glove and word2vec backends"),
    (lambda e: ["--trust-vectors"], "--trust-vectors is for the glove and word2vec backends"),
    (lambda e: ["--model", e.afile], "is a file; pass a model directory"),
    (lambda e: ["--model", "./no/such/model"], "does not exist"),
    (lambda e: ["--model", e.adir, "-o", e.work / "s.json"], "cannot load sentence model"),
    (lambda e: ["--backend", "word2vec"], "no bundled vectors"),
    (lambda e: ["--backend", "glove", "--vectors", e.adir], "is a directory"),
    (lambda e: ["--backend", "glove", "--vectors", e.work / "nope.bin"], "does not exist"),
    (lambda e: ["--backend", "glove", "--vectors", e.latin, "-o", e.work / "s.json"], "cannot read word vectors"),
    (lambda e: ["--backend", "glove", "--vectors", e.broken_json, "-o", e.work / "s.json"], "cannot read word vectors"),
    (
        lambda e: ["--backend", "word2vec", "--vectors", "word2vec-google-news-300"],
        "pass --trust-vectors to allow that",
    ),
    (lambda e: ["--backend", "glove", "--vectors", _pickle(e, "vectors.kv")], "a pickle that runs code"),
    (
        lambda e: ["--backend", "word2vec", "--vectors", _pickle(e, "model.model")],
        "pass --trust-vectors only if you trust",
    ),
    (lambda e: ["--backend", "glove", "--vectors", _pickle(e, "vectors.pkl")], "is a gensim save"),
    (lambda e: ["--backend", "glove", "--vectors", _npy(e, "lonely.npy")], "needs its words, one per row"),
    (lambda e: ["--no-such-option"], "No such option '--no-such-option'"),
]


def _pickle(env: Env, name: str) -> Path:
    path = env.work / name
    path.write_bytes(pickle.dumps(_Payload(env.shared["marker"])))
    return path


def _npy(env: Env, name: str) -> Path:
    import numpy as np

    np.save(env.work / name, np.zeros((2, 3), np.float32))
    return env.work / name


@pytest.mark.parametrize(("args", "message"), SAVLD)
def test_savld(env, args, message):
    refused(env, ["--device", "cpu", "savld", *args(env)], message)


# ---- data manifest ----------------------------------------------------------------------------
def _folders(env: Env) -> Path:
    for name in ("whistlin/a.mp4", "whistling/b.mp4"):
        (env.work / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (env.work / "data" / name).write_bytes(b"video")
    return env.work / "data"


DATA_MANIFEST = [
    (lambda e: ["--format", "youtube", "--root", e.adir, "-o", "m.csv"], "'youtube' is not one of"),
    (lambda e: ["--format", "folders", "--root", e.afile, "-o", "m.csv"], "is a file"),
    (lambda e: ["--format", "folders", "--root", e.work / "nowhere", "-o", "m.csv"], "is not a folder"),
    (lambda e: ["--format", "folders", "--root", e.adir, "-o", "m.csv"], "has no class folders"),
    (lambda e: ["--format", "folders", "--root", _folders(e), "-o", e.under_file / "m.csv"], "is a file, so no folder"),
    (lambda e: ["--format", "folders", "--root", _folders(e), "-o", e.unwritable / "m.csv"], "cannot write in"),
    (lambda e: ["--format", "folders", "--root", _folders(e), "-o", e.adir], "is a directory"),
    (
        lambda e: ["--format", "folders", "--root", _folders(e), "-o", "m.csv", "--label-set", "kinetics400"],
        "did you mean 'whistling'",
    ),
    (lambda e: ["--format", "folders", "--root", _folders(e), "-o", "m.csv", "--label-set", e.latin], "not UTF-8"),
    (
        lambda e: ["--format", "folders", "--root", _folders(e), "-o", "m.csv", "--label-set", "nope"],
        "unknown label set 'nope'",
    ),
    (lambda e: ["--format", "kinetics", "--root", e.adir, "-o", "m.csv"], "no Kinetics annotation CSV"),
    (lambda e: ["--format", "kinetics", "--root", e.adir, "-o", "m.csv", "--annotations", e.latin], "not UTF-8"),
    (lambda e: ["--format", "kinetics", "--root", e.adir, "-o", "m.csv", "--annotations", e.afile], "lacks column(s)"),
    (lambda e: ["--format", "kinetics", "--root", e.adir, "-o", "m.csv", "--annotations", e.missing], "does not exist"),
    (lambda e: ["--format", "ucf101", "--root", e.adir, "-o", "m.csv"], "classInd.txt"),
    (lambda e: ["--format", "hmdb51", "--root", e.adir, "-o", "m.csv"], "split"),
    (lambda e: ["--format", "ucf101", "--root", e.adir, "-o", "m.csv", "--split-index", "4"], "4 is not in the range"),
    (lambda e: ["--root", e.adir, "-o", "m.csv"], "Missing option '--format'"),
]


@pytest.mark.parametrize(("args", "message"), DATA_MANIFEST)
def test_data_manifest(env, args, message):
    refused(env, ["data", "manifest", *args(env)], message)


# ---- report -----------------------------------------------------------------------------------
def _run(env: Env, name: str, **damage) -> Path:
    run = make_run(env.work, name, evaluation={"top1": 0.5} if "evaluation" in damage else None)
    for file, content in damage.items():
        target = {
            "metrics": run / "metrics.jsonl",
            "config": run / "config.yaml",
            "evaluation": run / "eval" / "test-best" / "metrics.json",
        }[file]
        target.write_bytes(content)
    return run


REPORT = [
    (lambda e: [e.adir], "is not a run directory (no config.yaml)"),
    (lambda e: [e.work / "gone"], "is not a run directory"),
    (lambda e: [], "Missing argument 'RUN_DIRS...'"),
    (lambda e: [_run(e, "r"), "-o", e.under_file / "r.md"], "is a file, so no folder"),
    (lambda e: [_run(e, "r"), "-o", e.unwritable / "r.md"], "cannot write in"),
    (lambda e: [_run(e, "r"), "-o", e.adir], "is a directory"),
    (lambda e: [_run(e, "r"), "-o", e.work / "r.json"], "the rows go to a .json file beside the table"),
    (lambda e: [_run(e, "r"), "-o", e.folder("r.json").with_suffix(".md")], "is a folder; pass a file name inside it"),
    (
        lambda e: [_run(e, "r", metrics=b'{"kind": "val", "top1": 0.5}\n\xff\xfe\x00garbage\n')],
        "cannot read training log",
    ),
    (lambda e: [_run(e, "r", config="data: {manifest: m\xe9}\n".encode("latin-1"))], "not UTF-8"),
    (lambda e: [_run(e, "r", config=b"- a\n- b\n")], "must hold a mapping of sections"),
    (lambda e: [_run(e, "r", config=b"model: 3\n")], "section 'model' must be a mapping"),
    (lambda e: [_run(e, "r", config=b"model: [unclosed\n")], "is not valid YAML"),
    (lambda e: [_run(e, "r", evaluation=b"{not json")], "is not valid JSON"),
    (lambda e: [_run(e, "r", evaluation=b"\xff\xfe")], "not UTF-8"),
    (
        lambda e: [_run(e, "r", evaluation=b'{"top1": 0.5}'), "--split", "tset"],
        "--split tset --checkpoint best: no run has `avlabel eval` results for it (they have test-best)",
    ),
]


@pytest.mark.parametrize(("args", "message"), REPORT)
def test_report(env, args, message):
    refused(env, ["report", *args(env)], message)


# ---- compare, inspect, labels, models ---------------------------------------------------------
LOOKUPS = [
    (lambda e: ["compare", e.missing, e.savld], "does not exist"),
    (lambda e: ["compare", e.adir, e.savld], "is a directory"),
    (lambda e: ["compare", e.latin, e.savld], "not UTF-8"),
    (lambda e: ["compare", e.broken_json, e.savld], "rebuild it with 'avlabel savld'"),
    (lambda e: ["compare", e.savld, e.savld, "--top", "-1"], "-1 is not in the range x>=0"),
    (lambda e: ["inspect", "--savld", e.adir, "drums"], "is a directory"),
    (lambda e: ["inspect", "--savld", e.latin, "drums"], "not UTF-8"),
    (lambda e: ["inspect", "--savld", e.broken_json, "drums"], "rebuild it with 'avlabel savld'"),
    (lambda e: ["inspect", "--savld", e.missing, "drums"], "does not exist"),
    (lambda e: ["inspect", "zzzqqq"], "unknown label 'zzzqqq' in kinetics400"),
    (lambda e: ["inspect", "--audio", "Zzzqqq"], "unknown label 'Zzzqqq' in audioset"),
    (lambda e: ["labels", "kinetics401"], "unknown label set 'kinetics401'"),
    (lambda e: ["labels", e.latin], "not UTF-8"),
    (lambda e: ["labels", e.adir], "is not a file"),
    (lambda e: ["labels", e.file("labels.json", "{not json")], "labels.json"),
    (lambda e: ["labels", e.file("labels.csv", "index,mid\n0,/m/x\n")], "labels.csv"),
    (lambda e: ["models", "zzz*"], "no model config matches 'zzz*'"),
    (lambda e: ["models", "--no-such-option"], "No such option"),
    (lambda e: ["no-such-command"], "No such command 'no-such-command'"),
]


@pytest.mark.parametrize(("args", "message"), LOOKUPS)
def test_compare_inspect_labels_models(env, args, message):
    refused(env, args(env), message)


# ---- bench ------------------------------------------------------------------------------------
BENCH = [
    (lambda e: ["-m", "imd_huge"], "unknown model 'imd_huge'"),
    (lambda e: ["--batch", "0"], "--batch (0) and --steps (1) must be >= 1"),
    (lambda e: ["--steps", "0"], "must be >= 1"),
    (lambda e: ["--warmup", "-1"], "--warmup (-1) >= 0"),
    (lambda e: ["--frames", "0"], "model.num_frames: 0 must be a positive integer"),
    (lambda e: ["--size", "7"], "model.img_size: 7 is not a multiple of patch_size 8"),
    (lambda e: ["--device", "tpu9"], "unknown device 'tpu9'; use cpu, cuda or cuda:N"),
    (lambda e: ["-o", e.under_file / "b.json"], "is a file, so no folder"),
    (lambda e: ["-o", e.unwritable / "b.json"], "cannot write in"),
    (lambda e: ["-o", e.adir], "is a directory"),
]


@pytest.mark.parametrize(("args", "message"), BENCH)
def test_bench(env, args, message):
    base = [
        "bench",
        "-m",
        "imd_tiny",
        "--device",
        "cpu",
        "--batch",
        "1",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--frames",
        "2",
    ]
    refused(env, [*base, *args(env)], message)


# ---- flow -------------------------------------------------------------------------------------
FLOW = [
    (lambda e: ["--manifest", e.missing], "manifest not found"),
    (lambda e: ["--manifest", e.adir], "is a directory"),
    (lambda e: ["--manifest", e.latin], "not UTF-8 text (byte 0xfc at offset 27); save it as a UTF-8 CSV"),
    (lambda e: ["--manifest", e.file("head.csv", "video_id,path,label,split\n")], "has a header but no rows"),
    (lambda e: ["--manifest", e.file("cols.csv", "id,file\na,b\n")], "lacks column(s) video_id, path, label, split"),
    (
        lambda e: [
            "--manifest",
            e.write_manifest("dup.csv", [("a", "x.mp4", "l", "train"), ("a", "y.mp4", "l", "train")]),
        ],
        "duplicate video_id",
    ),
    (lambda e: ["--manifest", e.write_manifest("gone.csv", [("a", "gone/a.mp4", "l", "train")])], "is a file ("),
    (lambda e: ["--manifest", e.write_manifest("dirs.csv", [("a", "adir", "l", "train")])], "adir is a folder)"),
    (
        lambda e: ["--manifest", e.write_manifest("bad.csv", [("a", "garbage.mp4", "l", "train")])],
        "all 1 videos failed, e.g. a: cannot open",
    ),
    (lambda e: ["--out", e.under_file], "is a file, so no folder"),
    (lambda e: ["--out", e.unwritable], "cannot write in"),
    (lambda e: ["--out", e.afile], "is a file"),
    (lambda e: ["--out", e.adir.parent], "is not empty and is not an avlabel flow folder"),
    (lambda e: ["--workers", "-1"], "-1 is not in the range x>=0"),
    (lambda e: ["--short-side", "8"], "--short-side must be at least 16 pixels"),
    (lambda e: ["--method", "raft"], "'raft' is not one of"),
    (lambda e: ["--preset", "slow"], "'slow' is not one of"),
    (lambda e: ["--format", "png"], "'png' is not one of"),
    (lambda e: ["--warn-failed", "1.5"], "1.5 is not in the range 0.0<=x<=1.0"),
    (lambda e: ["--out", e.flow, "--format", "npz"], "holds flow computed with"),
    (lambda e: ["--out", e.flow, "--manifest", e.other], "clips are other files under the same video_id"),
    (
        lambda e: ["--out", e.flow, "--manifest", e.other, "--shard", "1/2"],
        "clips are other files under the same video_id",
    ),
    (lambda e: _busy_flow(e, "0-of-1.lock"), "another `avlabel flow` is writing"),
    (lambda e: _busy_flow(e, "0-of-1.workers.lock"), "worker processes of an earlier `avlabel flow`"),
    (lambda e: ["--shard", "3/3"], "--shard 3/3: shard indices are 0-based"),
    (lambda e: ["--shard", "x"], "--shard 'x' is not I/N"),
    (lambda e: ["--shard", "0/0"], "--shard 0/0: the shard count must be at least 1"),
    (lambda e: ["--shard", "-1/3"], "--shard '-1/3' is not I/N"),
    (lambda e: _busy_flow(e, "1-of-3.lock", "--shard", "0/2"), "is being written by shard 1/3 of another split"),
    (lambda e: _busy_flow(e, "2-of-3.workers.lock"), "is being written by shard 2/3 of another split"),
    (lambda e: _busy_flow(e, "0-of-1.lock", "--shard", "1/4"), "is being written by a run of the whole manifest"),
    (lambda e: _busy_flow(e, "1-of-4.lock", "--shard", "1/4"), "is computing shard 1/4 of"),
]


def _busy_flow(env: Env, lock: str, *args: str) -> list:
    """A copy of the shared flow folder that a live run holds (``lock`` under its staging folder)."""
    folder = env.work / "busy-flow"
    if not folder.exists():
        shutil.copytree(env.flow, folder)
    (folder / ".flow_shards" / lock).touch()
    return ["--out", folder, *args, *env.holding(folder / ".flow_shards" / lock)]


@pytest.mark.parametrize(("args", "message"), FLOW)
def test_flow(env, args, message):
    base = [
        "flow",
        "--manifest",
        env.manifest,
        "--out",
        env.work / "flow",
        "--workers",
        "1",
        "--preset",
        "ultrafast",
        "--short-side",
        "32",
    ]
    refused(env, _merge(base, args(env)), message)


def _merge(base: list, extra: list) -> list:
    """``base`` with the options of ``extra``: ``--x v`` replaces ``base``'s ``--x``, ``--x None`` drops it,
    ``--set`` accumulates, anything else (flags, positional arguments) is added."""
    merged = list(base)
    i = 0
    while i < len(extra):
        option = extra[i]
        has_value = i + 1 < len(extra) and (extra[i + 1] is None or not str(extra[i + 1]).startswith("--"))
        if has_value and option in merged and option != "--set":
            at = merged.index(option)
            merged[at : at + 2] = [] if extra[i + 1] is None else [option, extra[i + 1]]
        else:
            merged.extend(extra[i : i + 1 + has_value])
        i += 1 + has_value
    return merged


# ---- targets ----------------------------------------------------------------------------------
TARGETS = [
    (lambda e: ["--manifest", e.missing], "manifest not found"),
    (lambda e: ["--manifest", e.latin], "not UTF-8 text (byte 0xfc at offset 27); save it as a UTF-8 CSV"),
    (
        lambda e: [
            "--manifest",
            e.write_manifest("gone.csv", [("a", "gone/a.mp4", "whistling", "train")]),
            "--tags",
            e.file("a.csv", "video_id,audio_labels\na,Whistling\n"),
        ],
        "gone/a.mp4 does not exist",
    ),
    (
        lambda e: [
            "--manifest",
            e.write_manifest(
                "bad.csv", [(r["video_id"], str(e.garbage), r["label"], r["split"]) for r in e.test_rows()]
            ),
        ],
        "all 15 videos failed, e.g. playing_drums_0000: cannot open",
    ),
    (
        lambda e: ["--manifest", e.write_manifest("alien.csv", [("a", str(e.garbage), "juggling balls", "train")])],
        "manifest labels are not video labels of the SAVLD",
    ),
    (lambda e: ["--savld", e.missing], "SAVLD"),
    (lambda e: ["--savld", e.adir], "is a folder; pass the .json or .txt file"),
    (lambda e: ["--savld", e.latin], "not UTF-8"),
    (lambda e: ["--savld", e.broken_json], "rebuild it with 'avlabel savld'"),
    (lambda e: ["--tags", e.latin], "cannot read tags file"),
    (lambda e: ["--tags", e.missing], "tags file not found"),
    (lambda e: ["--tags", e.afile], "must have the columns video_id,audio_labels"),
    (lambda e: ["--tags", e.file("t.csv", "video_id,audio_labels\nplaying_drums_0000,Drumm\n")], "did you mean"),
    (
        lambda e: ["--tags", e.file("t.csv", "video_id,audio_labels\nplaying_drums_0000,Drum\n")],
        "manifest videos have no row in",
    ),
    (lambda e: ["--embedder", "logmel", "--tags", None], "predicts no audio labels; pass --tags FILE"),
    (lambda e: ["--embedder", "beats"], "'beats' is not one of"),
    (lambda e: ["--k", "0"], "0 is not in the range x>=1"),
    (lambda e: ["--k", "6"], "--k must be between 1 and 5"),
    (lambda e: ["--ya", "0"], "0 is not in the range x>=1"),
    (lambda e: ["--ya", "-1"], "-1 is not in the range x>=1"),
    (lambda e: ["--ya", "600"], "--ya must be between 1 and 527"),
    (lambda e: ["--windows", "0"], "0 is not in the range x>=1"),
    (lambda e: ["--batch-size", "0"], "0 is not in the range x>=1"),
    (lambda e: ["--workers", "-1"], "-1 is not in the range x>=0"),
    (lambda e: ["--overlap", "jaccard"], "'jaccard' is not one of"),
    (lambda e: ["--warn-failed", "-0.1"], "-0.1 is not in the range 0.0<=x<=1.0"),
    (lambda e: ["-o", e.under_file], "is a file, so no folder"),
    (lambda e: ["-o", e.unwritable], "cannot write in"),
    (lambda e: ["-o", e.afile], "is a file, not a folder"),
    (lambda e: ["--embedder", "ast", "--tags", None, "--ast", e.evil_ast], "refused to load AST checkpoint"),
    (lambda e: ["--embedder", "ast", "--tags", None, "--ast", e.adir], "has no config.json"),
    (
        lambda e: ["--embedder", "ast", "--tags", None, "--ast", e.work / "no" / "ast"],
        "AST checkpoint directory not found",
    ),
    (lambda e: ["-o", e.audio, "--manifest", e.other], "clips are other files under the same video_id"),
    (lambda e: ["-o", e.audio, "--windows", "3"], "was built with a different windows"),
    (lambda e: ["-o", e.audio, "--tokens"], "holds no audio tokens, so --tokens cannot add to it"),
    (
        lambda e: ["-o", e.audio, *e.holding(e.audio / ".audio_cache.lock")],
        "another process is writing the audio cache",
    ),
    (lambda e: ["--shard", "3/3"], "--shard 3/3: shard indices are 0-based"),
    (lambda e: ["--shard", "x"], "--shard 'x' is not I/N"),
    (lambda e: ["--shard", "0/0"], "--shard 0/0: the shard count must be at least 1"),
    (lambda e: ["-o", e.half_audio, "--merge"], "shards 1/2 of"),
    (lambda e: ["-o", e.half_audio, "--merge", "--windows", "1"], "ran with windows 2 (here 1)"),
    (lambda e: ["-o", e.half_audio, "--merge", "--k", "3"], "ran with k 5 (here 3)"),
    (lambda e: ["-o", e.half_audio, "--shard", "1/2", "--overlap", "dice"], "ran with overlap 'iou' (here 'dice')"),
    (lambda e: ["-o", e.half_audio, "--merge", "--shard", "1/2"], "--merge joins the shards of a split"),
    (
        lambda e: ["-o", e.half_audio, "--shard", "1/2", "--manifest", e.other],
        "the cache of shard 0/2 in",  # ... was built from <the tiny benchmark>: clips are other files
    ),
    (lambda e: ["-o", e.work / "empty", "--merge"], "no audio cache in"),
]


def _targets_base(shared: dict, output: Path) -> list:
    return [
        "targets",
        "--manifest",
        shared["manifest"],
        "--savld",
        shared["data"] / "savld.json",
        "--tags",
        shared["tags"],
        "--embedder",
        "logmel",
        "--k",
        "5",
        "--windows",
        "2",
        "--workers",
        "0",
        "-o",
        output,
    ]


@pytest.mark.parametrize(("args", "message"), TARGETS)
def test_targets(env, args, message):
    refused(env, _merge(_targets_base(env.shared, env.work / "audio"), args(env)), message)


# ---- tag --------------------------------------------------------------------------------------
TAG = [
    (lambda e: [e.missing, "--ast", e.evil_ast], "media file not found"),  # the file is checked before AST loads
    (lambda e: [e.adir, "--ast", e.evil_ast], "is a folder, not a file"),
    (lambda e: [e.garbage, "--ast", e.evil_ast], "cannot open"),
    (lambda e: [e.afile, "--ast", e.evil_ast], "cannot open"),
    (lambda e: [e.file("empty.mp4", ""), "--ast", e.evil_ast], "media file is empty"),
    (lambda e: [_video(e), "--ast", e.evil_ast, "--start", "2", "--end", "1"], "--end 1.0 is not after --start 2.0"),
    (lambda e: [_video(e), "--ast", e.evil_ast, "--start", "-1"], "-1.0 is not in the range x>=0"),
    (lambda e: [_video(e), "--ast", e.evil_ast, "--end", "0"], "0.0 is not in the range x>0"),
    (lambda e: [_video(e), "--ast", e.evil_ast, "--top", "0"], "0 is not in the range x>=1"),
    (lambda e: [_video(e), "--ast", e.evil_ast], "refused to load AST checkpoint"),
    (lambda e: [_video(e), "--ast", e.adir], "has no config.json"),
    (lambda e: [_video(e), "--ast", e.afile], "AST checkpoint directory not found"),
    (
        lambda e: [_video(e), "--ast", e.file("config.json", '{"model_type": "bert"}').parent],
        "not an Audio Spectrogram Transformer",
    ),
]


def _video(env: Env) -> Path:
    return next((env.shared["data"] / "videos" / "whistling").glob("*.mp4"))


@pytest.mark.parametrize(("args", "message"), TAG)
def test_tag(env, args, message):
    refused(env, ["tag", *args(env)], message)


# ---- predict ----------------------------------------------------------------------------------
PREDICT = [
    (lambda e: [e.missing], "video not found"),
    (lambda e: [e.adir], "is a directory"),
    (lambda e: [e.garbage], "cannot open"),
    (lambda e: [_video(e), "--top", "0"], "0 is not in the range x>=1"),
    (lambda e: [_video(e), "--top", "-1"], "-1 is not in the range x>=1"),
    (lambda e: [_video(e), "--views", "2x4"], "spatial crops must be 1"),
    (lambda e: [_video(e), "--views", "many"], "CROPSxCLIPS"),
    (lambda e: [_video(e), "--run", e.adir], "has no checkpoints yet"),
    (lambda e: [_video(e), "--run", e.work / "gone"], "is neither a run directory nor a checkpoint file"),
    (lambda e: [_video(e), "--run", e.afile], "is not an avlabel checkpoint"),
    (lambda e: [_video(e), "--checkpoint", "newest"], "checkpoint 'newest' not found"),
    (lambda e: [_video(e), "--audio", e.adir], "no audio cache in"),
    (lambda e: [_video(e), "--flow", e.adir], "lacks flow"),
]


@pytest.mark.parametrize(("args", "message"), PREDICT)
def test_predict(env, args, message):
    refused(env, _merge(["predict", "--run", env.run], args(env)), message)


# ---- eval -------------------------------------------------------------------------------------
EVAL = [
    (lambda e: ["--run", e.work / "gone"], "is neither a run directory nor a checkpoint file"),
    (lambda e: ["--run", e.adir], "has no checkpoints yet"),
    (lambda e: ["--checkpoint", "newest"], "checkpoint 'newest' not found"),
    (lambda e: ["--manifest", e.missing], "manifest not found"),
    (lambda e: ["--manifest", e.latin], "not UTF-8 text (byte 0xfc at offset 27); save it as a UTF-8 CSV"),
    (
        lambda e: ["--manifest", e.write_manifest("alien.csv", [("a", str(e.garbage), "juggling balls", "test")])],
        "the model does not know",
    ),
    (lambda e: ["--manifest", e.other], "clips are other files under the same video_id"),
    (lambda e: ["--split", "holdout"], "no rows in split 'holdout'"),
    (lambda e: ["--views", "2x4"], "spatial crops must be 1"),
    (lambda e: ["--views", "3x0"], "CROPSxCLIPS"),
    (lambda e: ["--batch-size", "0"], "0 is not in the range x>=1"),
    (lambda e: ["--workers", "-1"], "-1 is not in the range x>=0"),
    (lambda e: ["--target-threshold", "1.5"], "1.5 is not in the range 0.0<=x<=1.0"),
    (lambda e: ["-o", e.under_file], "is a file, so no folder"),
    (lambda e: ["-o", e.unwritable], "cannot write in"),
    (lambda e: ["-o", e.afile], "is a file"),
    (lambda e: ["--audio", e.adir], "no audio cache in"),
    (lambda e: ["--flow", e.adir], "lacks flow for 3 of 3 videos"),
    (lambda e: ["--flow", e.flow, "--manifest", _renamed(e)], "1 of 3 clips are other files under the same video_id"),
    (lambda e: ["--tags", e.latin], "cannot read tags file"),
]


def _renamed(env: Env) -> Path:
    """The benchmark's test clips under their ids, one of them another file: the flow folder's ids, other bytes."""
    rows = [row for row in env.test_rows() if row["split"] == "test"]
    rows[0]["path"] = str(next((env.shared["data"] / "videos" / "whistling").glob("*.mp4")))
    return env.write_manifest(
        "renamed.csv",
        [
            (
                r["video_id"],
                str(env.shared["data"] / r["path"]) if not r["path"].startswith("/") else r["path"],
                r["label"],
                r["split"],
            )
            for r in rows
        ],
    )


@pytest.mark.parametrize(("args", "message"), EVAL)
def test_eval(env, args, message):
    base = [
        "eval",
        "--run",
        env.run,
        "--manifest",
        env.manifest,
        "--views",
        "1x1",
        "--workers",
        "0",
        "-o",
        env.work / "eval",
    ]
    refused(env, _merge(base, args(env)), message)


# ---- train ------------------------------------------------------------------------------------
_AVT = ["--set", "model.fusion=bottleneck", "--set", "model.fusion_layer=2"]  # the run's imd_tiny as an AVT
TRAIN = [
    (lambda e: ["--config", e.missing], "config file"),
    (lambda e: ["--config", e.adir], "is a folder; pass the path of a YAML file"),
    (lambda e: ["--config", e.latin], "not UTF-8"),
    (lambda e: ["--config", e.file("c.yaml", "- a\n")], "must hold a mapping of sections"),
    (lambda e: ["--config", e.file("c.yaml", "data: [\n")], "is not valid YAML"),
    (lambda e: ["--set", "optim.lrr=1"], "did you mean 'optim.lr'"),
    (lambda e: ["--set", "optim.lr"], "expected KEY=VALUE"),
    (lambda e: ["--set", "optim.lr=-1"], "optim.lr: must be > 0"),
    (lambda e: ["--set", "data.workers=-1"], "data.workers: must be >= 0"),
    (lambda e: ["--set", "runtime.device=tpu9"], "runtime.device: must be auto, cpu, cuda or cuda:N"),
    (lambda e: ["--set", "model.name=imd_huge"], "model.name: unknown model 'imd_huge'"),
    (lambda e: ["--set", "optim.global_batch=1024"], "lower optim.global_batch"),
    (lambda e: ["--set", f"data.manifest={e.missing}"], "data.manifest: manifest not found"),
    (lambda e: ["--set", f"data.manifest={e.other}"], "clips are other files under the same video_id"),
    (lambda e: ["--set", f"data.flow_dir={e.adir}"], "lacks flow for"),
    (lambda e: ["--set", f"audio.cache={e.adir}"], "no audio cache in"),
    (lambda e: ["--set", "audio.k=3"], "audio.k:"),
    (lambda e: ["--set", "avt.contrastive_weight=0.5"], "avt.contrastive_weight: needs an AVT model"),
    (lambda e: ["--set", "model.pretext_heads=[matching]"], "model.pretext_heads: set it through avt.*_weight"),
    (
        lambda e: [*_AVT, "--set", "avt.contrastive_weight=0.1", "--set", "imd.augment_p=0.5"],
        "imd.augment_p: must be 0 with avt.contrastive_weight > 0",
    ),
    (
        lambda e: [*_AVT, "--set", "model.modalities=[rgb]", "--set", "avt.matching_weight=1"],
        "avt.matching_weight: needs streams (and layers) this model does not have",
    ),
    (
        lambda e: ["--set", "model.fusion=bottleneck", "--set", "model.fusion_layer=9"],
        "model.fusion_layer: 9 must lie in",
    ),
    (lambda e: [*_AVT, "--set", "avt.segment_mask_ratio=1"], "avt.segment_mask_ratio: must be in (0, 1)"),
    (lambda e: ["--out", e.under_file], "is a file, so no folder"),
    (lambda e: ["--out", e.unwritable], "cannot write in"),
    (lambda e: ["--out", e.afile], "is a file, not a folder"),
    (lambda e: ["--resume"], "nothing to resume"),
    (lambda e: ["--resume", e.evil_run / "checkpoints" / "best.safetensors"], "refused to load training state"),
    (lambda e: ["--resume", e.work / "gone" / "checkpoints" / "last.safetensors"], "checkpoint"),
]


@pytest.mark.parametrize(("args", "message"), TRAIN)
def test_train(env, args, message):
    base = [
        "train",
        "--config",
        env.run / "config.yaml",
        "--out",
        env.work / "run",
        "--set",
        "optim.global_batch=8",
        "--set",
        "optim.micro_batch=4",
    ]
    refused(env, _merge(base, args(env)), message)


# ---- the global --device option, for every command that runs a model --------------------------
DEVICE = [
    lambda e: ["tag", _video(e), "--ast", e.ast],
    lambda e: ["predict", _video(e), "--run", e.run],
    lambda e: ["eval", "--run", e.run, "--manifest", e.manifest, "-o", e.work / "eval"],
    lambda e: [
        "targets",
        "--manifest",
        e.manifest,
        "--savld",
        e.savld,
        "--tags",
        e.tags,
        "--embedder",
        "logmel",
        "--k",
        "5",
        "-o",
        e.work / "audio",
    ],
    lambda e: ["savld", "-o", e.work / "s.json", "--no-cache"],
]


@pytest.mark.parametrize("args", DEVICE)
def test_unknown_device(env, args):
    refused(env, ["--device", "tpu9", *args(env)], "unknown device 'tpu9'; use cpu, cuda or cuda:N")


def test_the_tables_cover_every_command():
    """Each command has a table here, except synth (its options are checked in tests/cli/test_synth.py)."""
    from avlabel.cli import _COMMANDS

    tables = {
        "savld",
        "data",
        "report",
        "compare",
        "inspect",
        "labels",
        "models",
        "bench",
        "flow",
        "targets",
        "tag",
        "predict",
        "eval",
        "train",
    }
    assert set(_COMMANDS) - tables == {"synth"}

"""FLOPs of AVT's bottleneck fusion against full cross-modal attention and late fusion.

Run from the repository root::

    python benchmarks/bench_fusion_flops.py                       # avt_b: RGB + audio, and RGB + flow + audio
    python benchmarks/bench_fusion_flops.py --model avt_tiny --json out.json

Counts one view's forward on the meta device (`avlabel.models.fusion_flops`, the counting of
``avlabel models``: 2 FLOPs per multiply-add, attention through the math SDPA kernel, AST not
counted) for every fusion layer and number of bottleneck tokens, and prints one markdown table
per set of streams: GFLOPs per view and, in brackets, the cost over late fusion.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def table(rows: list[dict], bottlenecks: tuple[int, ...], fusion_layers: tuple[int, ...]) -> str:
    """Rows by fusion layer; columns: bottleneck with each K, then full attention."""
    cells = {(row["fusion"], row["n_bottleneck"], row["fusion_layer"]): row for row in rows}
    late = next(row for row in rows if row["fusion"] == "late")
    header = ["fusion layer", *(f"bottleneck, K = {k}" for k in bottlenecks), "full attention"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cell(row: dict) -> str:
        return f"{row['gflops']:.1f} (+{row['extra_gflops']:.1f}, +{100 * row['extra_gflops'] / late['gflops']:.1f}%)"

    for layer in fusion_layers:
        values = [cell(cells[("bottleneck", k, layer)]) for k in bottlenecks]
        values.append(cell(cells[("full_attention", None, layer)]))
        lines.append("| " + " | ".join([str(layer), *values]) + " |")
    lines.append(
        f"| {late['fusion_layer']} (late fusion) | " + " | ".join([f"{late['gflops']:.1f}"] * len(header[1:])) + " |"
    )
    return "\n".join(lines)


def main() -> None:
    from avlabel.models import fusion_flops, model_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="avt_b", help="an AVT config of `avlabel models`")
    parser.add_argument("--bottlenecks", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--fusion-layers", type=int, nargs="+", default=[0, 4, 8, 10])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    bottlenecks, layers = tuple(args.bottlenecks), tuple(args.fusion_layers)
    results = {}
    for modalities in (("rgb", "audio"), ("rgb", "flow", "audio")):
        config = model_config(args.model, modalities=modalities)
        rows = fusion_flops(config, bottlenecks, layers)
        results["+".join(modalities)] = rows
        print(
            f"\n{args.model}, {'+'.join(modalities)}: {config.num_frames}x{config.img_size}², D = {config.embed_dim}, "
            f"{config.depth} layers, {config.audio_tokens} audio tokens; GFLOPs per view (over late fusion)\n"
        )
        print(table(rows, bottlenecks, layers))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

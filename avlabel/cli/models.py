"""``avlabel models``: every model config with its parameters and forward GFLOPs per view."""

from __future__ import annotations

import json

import click


@click.command(name="models")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of a table.")
@click.option("--no-ast", is_flag=True, help="Skip counting the frozen AST (its figures are the same for every model).")
def models(pattern: str, as_json: bool, no_ast: bool) -> None:
    """List model configs matching PATTERN (shell-style, e.g. 'imd_*') with their size and cost.

    Parameters are split into the visual streams, the audio bottleneck and the fusion head +
    classifier; the frozen AST (run once per clip, or read from the audio cache) is counted
    separately. GFLOPs are for one view (one clip, one crop) as counted by
    torch.utils.flop_counter (2 FLOPs per multiply-add); GMACs is the convention of most papers.
    """
    from avlabel.errors import AvlabelError
    from avlabel.models import list_models, model_complexity, model_config

    names = list_models(pattern)
    if not names:
        raise AvlabelError(f"no model config matches {pattern!r}; available: {', '.join(list_models())}")
    rows = []
    for name in names:
        config = model_config(name)
        rows.append({
            "name": name,
            "modalities": list(config.modalities),
            "fusion": config.fusion if config.is_audio_visual else None,
            "frames": config.num_frames,
            "img_size": config.img_size,
            "embed_dim": config.embed_dim,
            "depth": config.depth,
            "space_time_blocks": config.space_time_blocks,
            **model_complexity(config, with_ast=not no_ast),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from avlabel.cli._console import out_console

    out_console().print(_table(rows))


def _table(rows: list[dict]):
    from rich.table import Table

    table = Table(
        title="avlabel models: parameters (M) and forward cost of one view",
        caption="GFLOPs: 2 per multiply-add (torch.utils.flop_counter); GMACs: the convention of most papers. "
        "AB: audio bottleneck. AST: frozen, run once per clip or read from the audio cache.",
    )
    headers = ("model", "inputs", "fusion", "T×size", "D×L/ST", "visual", "AB", "fusion\n+head",
               "visual\nGFLOPs", "AB+fusion\nGFLOPs", "total\nGMACs", "AST", "AST\nGFLOPs")
    for index, header in enumerate(headers):
        # Numbers are never cut; when the terminal is narrow the text columns fold instead.
        table.add_column(header, justify="left" if index < 5 else "right", no_wrap=index >= 5,
                         overflow="fold")
    for row in rows:
        params, gflops = row["params"], row["gflops"]
        table.add_row(
            row["name"],
            "+".join(row["modalities"]),
            row["fusion"] or "–",
            f"{row['frames']}×{row['img_size']}²",
            f"{row['embed_dim']}×{row['depth']}/{row['space_time_blocks']}",
            f"{params['visual'] / 1e6:.1f}",
            f"{params['audio_bottleneck'] / 1e6:.2f}",
            f"{params['fusion'] / 1e6:.2f}",
            f"{gflops['visual']:.1f}",
            f"{gflops['audio_bottleneck'] + gflops['fusion']:.3f}",
            f"{gflops['total'] / 2:.1f}",
            f"{params['ast'] / 1e6:.1f}" if "ast" in params else "–",
            f"{gflops['ast']:.1f}" if "ast" in gflops else "–",
        )
    return table

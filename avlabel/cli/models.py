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

    Parameters are split into the visual streams, the audio path (IMD's audio bottleneck or AVT's
    audio token stream) and the fusion + heads; the frozen AST (run once per clip, or read from
    the audio cache) is counted separately. GFLOPs are for one view (one clip, one crop) as counted by
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
        rows.append(
            {
                "name": name,
                "modalities": list(config.modalities),
                "fusion": _fusion(config),
                "frames": config.num_frames,
                "img_size": config.img_size,
                "embed_dim": config.embed_dim,
                "depth": config.depth,
                "space_time_blocks": config.space_time_blocks,
                **model_complexity(config, with_ast=not no_ast),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.measure import Measurement

    from avlabel._console import out_console

    console, table = out_console(), _table(rows)
    # Never squeeze the table below its natural width (pipes report 80 columns): a long line
    # wraps in a narrow terminal, but a cut model name or number would mislead.
    natural = Measurement.get(console, console.options.update(max_width=1000), table).maximum
    if natural > console.width:
        console = Console(width=natural, force_terminal=console.is_terminal, no_color=console.no_color)
    console.print(table)


def _table(rows: list[dict]):
    from rich.table import Table

    table = Table(
        title="avlabel models: parameters (M) and forward cost of one view",
        caption="GFLOPs: 2 per multiply-add (torch.utils.flop_counter). Total GMACs: the model without AST, in "
        "multiply-adds as most papers count. audio: IMD's audio bottleneck or AVT's audio token stream. "
        "bottleneck K@l: K bottleneck tokens from layer l on. AST: frozen, run once per clip or read from the "
        "audio cache.",
    )
    headers = (
        "model",
        "inputs",
        "fusion",
        "T×size",
        "D×L/ST",
        "visual",
        "audio",
        "fusion\n+heads",
        "visual\nGFLOPs",
        "audio+fusion\nGFLOPs",
        "total\nGMACs",
        "AST",
        "AST\nGFLOPs",
    )
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index < 5 else "right", no_wrap=True)
    for row in rows:
        params, gflops = row["params"], row["gflops"]
        table.add_row(
            row["name"],
            "+".join(row["modalities"]),
            row["fusion"] or "–",
            f"{row['frames']}×{row['img_size']}²",
            f"{row['embed_dim']}×{row['depth']}/{row['space_time_blocks']}",
            _number(params["visual"] / 1e6, 1),
            _number(params["audio"] / 1e6, 2),
            _number(params["fusion"] / 1e6, 2),
            _number(gflops["visual"], 1),
            _number(gflops["audio"] + gflops["fusion"], 3),
            _number(gflops["total"] / 2, 1),
            _number(params.get("ast", 0) / 1e6, 1),
            _number(gflops.get("ast", 0), 1),
        )
    return table


def _fusion(config) -> str | None:
    """How the modalities meet: the IMD-family head, or the AVT token fusion with its layout."""
    if config.is_token_fusion:
        if config.fusion_layer == config.depth:
            return "late"
        where = f"@{config.fusion_layer}"
        return f"bottleneck {config.n_bottleneck}{where}" if config.fusion == "bottleneck" else f"full attention{where}"
    return config.fusion if config.is_audio_visual else None


def _number(value: float, decimals: int) -> str:
    """``decimals`` places; "–" for a part the model does not have."""
    return f"{value:.{decimals}f}" if value else "–"

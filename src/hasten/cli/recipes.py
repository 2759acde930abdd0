"""``hasten recipes``: the packaged recipes, with their workload, measured result and machine."""

from __future__ import annotations

import click

from hasten.cli.common import echo_json, print_table
from hasten.recipes.recipe import list_recipes, load_recipe


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the recipes as JSON.")
def recipes(name: str | None, as_json: bool) -> None:
    """List the packaged recipes (or show one NAME or FILE in full). Train one with
    'hasten train WORKLOAD --recipe NAME'; sweep it with 'hasten curve WORKLOAD -r @NAME'."""
    chosen = [load_recipe(name)] if name else list_recipes()
    if as_json:
        echo_json([r.to_dict() for r in chosen])
        return
    if name:
        r = chosen[0].to_dict()
        for key in ("name", "version", "workload", "summary", "duration", "precision"):
            click.echo(f"{key}: {r[key]}")
        click.echo("settings: " + (", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "baseline's"))
        click.echo("methods: " + (", ".join(r["methods"]) or "none"))
        click.echo("components: " + (", ".join(r["components"]) or "none"))
        for key, value in r["measured"].items():
            click.echo(f"measured {key}: {value}")
        return
    rows = [
        (r.name, r.version, r.workload, r.measured.get("result", "-"), r.measured.get("machine", "-")) for r in chosen
    ]
    print_table(("recipe", "version", "workload", "measured result", "machine"), rows)


COMMANDS = [recipes]

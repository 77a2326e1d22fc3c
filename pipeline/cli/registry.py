"""``finetune registry``: versions, runs, promotion and rollback."""

from __future__ import annotations

import time

import click

from components.common.errors import ConfigError
from pipeline.cli.base import URI, RegistryURI, main, print_json


@main.group("registry")
def registry_group() -> None:
    """Inspect the registry, promote a version, roll production back."""


def _registry(registry: str, model_name: str):
    from components.registry.schemes import open_registry

    return open_registry(registry, model_name)


def _registry_options(func):
    func = click.option("--model-name", required=True)(func)
    return click.option("--registry", "registry_uri", required=True, type=RegistryURI())(func)


@registry_group.command("list")
@_registry_options
@click.option("--json", "as_json", is_flag=True)
def registry_list(registry_uri, model_name, as_json) -> None:
    """The versions of a model, production marked."""
    reg = _registry(registry_uri, model_name)
    versions, production = reg.list_versions(), reg.current()
    if not versions and not reg.runs():
        others = reg.model_names()
        raise ConfigError(f"--model-name {model_name}: no such model in {registry_uri}; " + (
            f"models there: {', '.join(others)}" if others else "it holds no model yet"))
    if as_json:
        print_json({"production": production, "versions": versions})
        return
    for record in versions:
        mark = " <- production" if record["version"] == production else ""
        acc = record.get("metrics", {}).get("accuracy")
        click.echo(f"v{record['version']}  run={record['run_id']}  accuracy={acc}{mark}")


@registry_group.command("runs")
@_registry_options
@click.option("--json", "as_json", is_flag=True)
def registry_runs(registry_uri, model_name, as_json) -> None:
    """The run log: one line per pipeline run (status, decision, versions), oldest first."""
    runs = _registry(registry_uri, model_name).runs()
    if as_json:
        print_json({"runs": runs})
        return
    for run in runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(run["time"]))
        versions = f"production v{run['production_version']}" \
            if run["production_version"] is not None else "no production"
        promoted = f" -> v{run['promoted_version']}" if run["promoted_version"] else ""
        click.echo(f"{when}Z  {run['run_id']}  {run['status']:<9}  {run['decision'] or '-':<9}  "
                   f"{versions}{promoted}  data {str(run['data_fingerprint'] or '-')[:12]}"
                   + (f"  error: {run['failed_step'] + ': ' if run['failed_step'] else ''}"
                      f"{run['error']}" if run["error"] else ""))


@registry_group.command("show")
@_registry_options
@click.argument("ref", default="production")
@click.option("--json", "as_json", is_flag=True)
def registry_show(registry_uri, model_name, ref, as_json) -> None:
    """Show a version number or an alias (default production)."""
    reg = _registry(registry_uri, model_name)
    record = reg.resolve(ref)
    print_json(record if as_json else {k: record[k] for k in ("version", "uri", "run_id")})


@registry_group.command("promote")
@_registry_options
@click.option("--saved-model", default="", type=URI(), help="Register this SavedModel first.")
@click.option("--run-id", default="", help="Idempotency key of the registration.")
@click.option("--version", type=int, default=None, help="Promote an existing version.")
def registry_promote(registry_uri, model_name, saved_model, run_id, version) -> None:
    reg = _registry(registry_uri, model_name)
    if saved_model:
        version = reg.register(saved_model, run_id or saved_model)["version"]
    if version is None:
        raise click.UsageError("give --saved-model (and --run-id) or --version")
    print_json(reg.promote(version, run_id))


@registry_group.command("rollback")
@_registry_options
def registry_rollback(registry_uri, model_name) -> None:
    """Point production back at its previous version (recorded in the history)."""
    print_json(_registry(registry_uri, model_name).rollback())

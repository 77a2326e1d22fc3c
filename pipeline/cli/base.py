"""The ``finetune`` command group: its one-line errors and the option types every
command shares."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys

import click

from components.common.errors import BAD_INPUT, RunFailed

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Group(click.Group):
    """Turns the project's errors into one line: exit code 2 for bad input (ConfigError,
    missing inputs, a read-only output), 1 for a run that could not finish (a lost
    service, a full disk). ``--verbose`` shows the traceback instead."""

    def invoke(self, ctx):
        from components.registry.checks import RegistryError

        try:
            return super().invoke(ctx)
        except (*BAD_INPUT, RegistryError) as err:
            self._fail(ctx, err, f"error: {err}", 2)
        except RunFailed as err:
            self._fail(ctx, err, f"error: {err}", 1)
        except OSError as err:
            if err.errno not in _OS_FAILURES:
                raise
            what, fix, code = _OS_FAILURES[err.errno]
            where = f"{err.filename}: " if err.filename else ""
            self._fail(ctx, err, f"error: {where}{what}; {fix}", code)

    @staticmethod
    def _fail(ctx, err: Exception, line: str, code: int) -> None:
        if ctx.params.get("verbose"):
            raise err
        click.echo(line, err=True)
        sys.exit(code)


_OS_FAILURES = {
    errno.ENOSPC: ("no space left on the device", "free space or write to a larger disk, "
                   "then re-run (the unfinished artifact is cleared)", 1),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota, then re-run", 1),
    errno.EROFS: ("read-only file system", "choose a writable --output or work folder", 2),
}


class RegistryURI(click.ParamType):
    """A registry URI: MLflow's, the Kubeflow Model Registry's, Vertex AI's or a storage
    URI (``components/registry/schemes.py`` lists the forms); a local path made
    absolute."""

    name = "registry"

    def convert(self, value, param, ctx):
        from components.common import storage
        from components.registry.schemes import check_registry_uri

        check_registry_uri(value, "--registry")
        return value if "://" in value else storage.absolute(value)


class URI(click.ParamType):
    """A local path (made absolute) or a URI of a scheme storage serves; any other scheme
    is refused."""

    name = "uri"

    def convert(self, value, param, ctx):
        from components.common import storage

        storage.check_uri(value, param.opts[0] if param.opts else param.human_readable_name)
        return storage.absolute(value)


class Weights(URI):
    """imagenet, none, or a weights file's path or URI."""

    name = "weights"

    def convert(self, value, param, ctx):
        return value if value in ("imagenet", "none") else super().convert(value, param, ctx)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True,
              help="Debug logging, and a traceback instead of a one-line error.")
@click.version_option(package_name="resnet-finetune", prog_name="finetune")
def main(verbose: bool) -> None:
    """Fine-tune ResNet50 image classifiers on Kubeflow Pipelines."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apache_beam", "absl", "urllib3", "google", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:  # a failed bundle's tracebacks; the error itself ends the command
        logging.getLogger("apache_beam.runners").setLevel(logging.CRITICAL)


def print_json(data: dict) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


PIPELINE_OPTION = click.option(
    "--pipeline", "pipeline_name", type=click.Choice(["main", "ablation"]), default="main",
    show_default=True, help="main: train, gate, promote; ablation: the BN x clipping grid.")

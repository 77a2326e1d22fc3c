"""Kubeflow wrapper of the data-preparation step."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Markdown, Output

from components.container_image import IMAGE


@dsl.component(base_image=IMAGE)
def prepare_data(
    data_fingerprint: str,
    config: str,
    examples: Output[Dataset],
    data_report: Output[Markdown],
    augmentation_preview: Output[HTML],
) -> NamedTuple("Outputs", [("fingerprint", str), ("num_classes", int)]):
    """Validate, de-duplicate, split and shard images into TFRecords with ``config`` (the
    run's resolved PrepareConfig, JSON).

    ``data_fingerprint`` is the listing's hash from the fingerprint step: it is only
    here so that KFP's cache key changes whenever the data does.

    With Beam's ``--temp_location`` in the config's ``beam_args`` the Beam workers may run
    on other machines, which cannot write this pod's copy of ``examples``: the step writes
    to the artifact's URI itself. KFP's launcher uploads only the local files there are and
    deletes nothing, and the next steps download the URI's whole prefix.
    """
    import dataclasses
    import logging
    from collections import namedtuple

    from components.common.beam_work import temp_location
    from components.common.publish import publish
    from components.lineage.resolve import step_config
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import published, run

    logging.basicConfig(level=logging.INFO)
    cfg = step_config(PrepareConfig, config, output=examples.path)
    if temp_location(cfg.beam_args):
        cfg = dataclasses.replace(cfg, output=examples.uri)
    stats = run(cfg)
    if data_fingerprint and data_fingerprint != stats["fingerprint"]:
        logging.warning("source changed since it was fingerprinted (%s != %s)",
                        data_fingerprint[:12], stats["fingerprint"][:12])
    publish(published(stats, cfg.output), examples, data_report=data_report,
            augmentation_preview=augmentation_preview)
    outputs = namedtuple("Outputs", ["fingerprint", "num_classes"])
    return outputs(stats["fingerprint"], len(stats["labels"]))


@dsl.component(base_image=IMAGE)
def fingerprint_data(source: str) -> str:
    """Hash of the source listing (paths, sizes, checksums): never cached, it keys the
    data step's cache so a changed bucket is never served a stale split."""
    from components.prepare_data.listing import fingerprint, list_source

    return fingerprint(list_source(source))

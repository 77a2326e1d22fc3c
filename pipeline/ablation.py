"""The ablation DAG: one data step, then a ParallelFor over the (BN policy, clip mode,
seed) grid, each cell trained (its own GPU on a cluster), exported and scored on the same
test split, then one report. Nothing is promoted and no registry is touched."""

from kfp import dsl

from components.ablation.component import ablation_report
from components.ablation.config import AblationGrid
from components.evaluate.component import evaluate
from components.export.component import export_model
from components.lineage.component import resolve_settings
from components.prepare_data.component import fingerprint_data, prepare_data
from components.train.component import train
from pipeline.parameters import with_descriptions
from pipeline.platform import configure_step, configure_train
from pipeline.profiles import BUILTINS, Profile

ABLATION_NAME = "resnet50-ablation"
DEFAULT_GRID = AblationGrid().cells()


def build_ablation_pipeline(platform: Profile = BUILTINS["kubeflow"], local: bool = False):
    def ablation_pipeline(
        source: str,
        grid: list = DEFAULT_GRID,
        image_size: int = 224,
        train_fraction: float = 0.8,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_state: str = "",
        epochs: int = 10,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        weights: str = "imagenet",
        train_extra_json: str = "{}",
    ):
        settings = {"source": source, "image_size": image_size,
                    "train_fraction": train_fraction, "val_fraction": val_fraction,
                    "test_fraction": test_fraction, "split_state": split_state, "epochs": epochs,
                    "batch_size": batch_size, "learning_rate": learning_rate, "weights": weights,
                    "train_extra_json": train_extra_json, "min_accuracy": -1.0}
        resolved = resolve_settings(**settings).set_display_name("Resolve settings")
        configure_step(resolved, platform, cache=False)
        listing = fingerprint_data(source=source).set_display_name("Fingerprint data")
        configure_step(listing, platform, cache=False)
        data = prepare_data(data_fingerprint=listing.output, config=resolved.outputs["prepare"],
                            ).set_display_name("Prepare data")
        configure_step(data, platform, cache=True)
        with dsl.ParallelFor(grid, name="grid",
                             parallelism=platform.ablation_parallelism) as cell:
            # Each cell's settings are resolved in the cell: kfp.local 2.17 hands a loop
            # body the loop item in place of any other step's output parameter.
            cell_settings = resolve_settings(
                **settings, bn_policy=cell.bn_policy, clip=cell.clip,
                clip_threshold=cell.clip_threshold, seed=cell.seed,
            ).set_display_name("Resolve the cell's settings")
            configure_step(cell_settings, platform, cache=True)
            trained = train(examples=data.outputs["examples"],
                            config=cell_settings.outputs["train"],
                            worker_pods=platform.worker_pods(local),
                            ).set_display_name("Train one cell")
            configure_train(trained, platform)
            exported = export_model(examples=data.outputs["examples"],
                                    trained_model=trained.outputs["trained_model"])
            exported.set_display_name("Export")
            configure_step(exported, platform, cache=True)
            evaluated = evaluate(examples=data.outputs["examples"],
                                 saved_model=exported.outputs["saved_model"],
                                 config=cell_settings.outputs["gate"],
                                 ).set_display_name("Score on the test split")
            configure_step(evaluated, platform, cache=True)
        reported = ablation_report(
            trained_models=dsl.Collected(trained.outputs["trained_model"]),
            evaluations=dsl.Collected(evaluated.outputs["evaluation"]),
        ).set_display_name("Ablation report")
        configure_step(reported, platform, cache=False)

    summary = ("Which BN policy and which gradient clipping on this data: a grid of "
               "fine-tunes, one report with significance.")
    return dsl.pipeline(name=ABLATION_NAME)(with_descriptions(ablation_pipeline, summary))

"""Training settings, validated before any data is read."""

from __future__ import annotations

from dataclasses import dataclass, replace

from components.common import storage
from components.common.errors import ConfigError
from components.common.settings import (
    build,
    check_choices,
    flatten,
    group,
    setting,
)
from components.registry.checks import NAME

BN_POLICIES = ("frozen", "bn_only", "full")
CLIP_MODES = ("none", "value", "norm", "global_norm", "agc", "autoclip")
# What -1 (the default) means for --clip-threshold: autoclip's is a percentile of the run's
# pre-clip global norms (AutoClip, Seetharaman et al. 2020), AGC's a ratio to the weight
# norm (NFNets: 0.01 to 0.16), the others a norm or a value.
CLIP_THRESHOLDS = {"none": 0.0, "value": 0.5, "norm": 1.0, "global_norm": 1.0, "agc": 0.01,
                   "autoclip": 95.0}
OPTIMIZERS = ("adamw", "sgd")
# What -1 (the default) means for --weight-decay: AdamW's usual 0.01 (Loshchilov & Hutter),
# SGD's classic ResNet 1e-4 (He et al. 2016); Keras multiplies both by the learning rate.
WEIGHT_DECAYS = {"adamw": 0.01, "sgd": 1e-4}
AUTO_FINE_TUNE_BLOCKS = 3  # the conv5 stage: ResNet50's top three residual blocks
SCHEDULES = ("cosine", "plateau")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
RESNET50_BLOCKS = 16
AUTO_REESTIMATE_BATCHES = 50
NOT_TRAINING_SETTINGS = ("examples", "output", "backup_dir", "run_id", "steps_per_execution")


@dataclass(frozen=True)
class Phase:
    """One ``fit`` of a run: what trains, for how long, from what learning rate."""

    bn_policy: str
    unfrozen_blocks: int
    epochs: int
    learning_rate: float


@dataclass(frozen=True)
class ModelConfig:
    """The network: input size, starting weights and the head's dropout."""

    image_size: int = setting(224, "Model input side in pixels (>= 32).")
    weights: str = setting("imagenet", "imagenet, none, or a .weights.h5 path (local, "
                                       f"{storage.forms('')}).")
    dropout: float = setting(0.2, "Dropout before the classification head, in [0, 1).")

    def validate(self) -> None:
        if self.image_size < 32:
            raise ConfigError(f"--image-size {self.image_size}: ResNet50 needs at least 32 px")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout {self.dropout}: use 0 <= dropout < 1")
        if not self.weights:
            raise ConfigError("--weights is empty: use imagenet, none, or a weights file path")
        if self.weights not in ("imagenet", "none"):
            storage.check_uri(self.weights, "--weights")


@dataclass(frozen=True)
class OptimizerConfig:
    """How long and how fast: epochs, batches, the optimizer and its schedule."""

    epochs: int = setting(10, "Training epochs, the head warm-up included.")
    batch_size: int = setting(32, "Global batch size (split across replicas).")
    steps_per_epoch: int = setting(0, "Training steps per epoch; 0: one pass over the data.")
    learning_rate: float = setting(1e-3, "Peak learning rate.")
    optimizer: str = setting("adamw", "Optimizer: adamw (Adam, decoupled weight decay) or sgd "
                                      "(Nesterov momentum, decoupled weight decay).", OPTIMIZERS)
    weight_decay: float = setting(-1.0, "Decoupled weight decay, times the learning rate, on "
                                        "kernels only (not BN scale/shift, not biases); -1: "
                                        "0.01 for adamw, 1e-4 for sgd; 0: none.")
    momentum: float = setting(0.9, "SGD momentum.")
    schedule: str = setting("cosine", "Learning-rate schedule after the warm-up.", SCHEDULES)
    warmup_epochs: float = setting(1.0, "Linear learning-rate warm-up, in epochs.")
    early_stopping_patience: int = setting(5, "Epochs without validation improvement before "
                                              "stopping.")

    def validate(self) -> None:
        check_choices(self)
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"--epochs {self.epochs} / --batch-size {self.batch_size}: use >= 1")
        if self.learning_rate <= 0:
            raise ConfigError(f"--learning-rate {self.learning_rate}: must be > 0")
        if self.weight_decay != -1 and not 0 <= self.weight_decay < 1:
            raise ConfigError(f"--weight-decay {self.weight_decay}: use -1 (the optimizer's "
                              "default), 0 (none) or 0 < decay < 1")

    def decay(self) -> float:
        """The weight decay used: the given one, or the optimizer's default for -1."""
        return WEIGHT_DECAYS[self.optimizer] if self.weight_decay == -1 else self.weight_decay


@dataclass(frozen=True)
class LossConfig:
    """The training loss: label smoothing and class weighting."""

    label_smoothing: float = setting(0.1, "Label smoothing of the cross-entropy, in [0, 1).")
    class_weights: bool = setting(False, "Weight the loss by inverse class frequency (early "
                                         "stopping and the gate judge plain accuracy).")

    def validate(self) -> None:
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing {self.label_smoothing}: use 0 <= smoothing < 1")


@dataclass(frozen=True)
class BatchNormConfig:
    """The BatchNormalization policy: what trains when, and how BN statistics move."""

    bn_policy: str = setting("frozen", "BatchNormalization policy while fine-tuning.",
                             BN_POLICIES)
    fine_tune_blocks: int = setting(-1, "Residual blocks (from the top) the frozen policy "
                                        "unfreezes after the head warm-up, 0 to 16; -1: 3 (the "
                                        "conv5 stage) for frozen, 0 for the others.")
    head_epochs: int = setting(2, "Epochs (of --epochs) that train the head alone before the "
                                  "BN policy; 0: no warm-up.")
    fine_tune_learning_rate_factor: float = setting(
        -1.0, "Learning rate after the head warm-up, as a factor; -1: 0.1 when convolutions "
              "train, 1 for bn_only.")
    bn_momentum: float = setting(0.0, "BN moving-average momentum; 0 keeps Keras' 0.99.")
    bn_reestimate_batches: int = setting(
        -1, "Batches to re-estimate BN statistics on after training; -1: automatic (the "
            "batch-statistics policies, up to 50), 0: never.")
    sync_bn: bool = setting(False, "Synchronise batch statistics across replicas (full only).")

    def validate(self) -> None:
        check_choices(self)
        if not -1 <= self.fine_tune_blocks <= RESNET50_BLOCKS:
            raise ConfigError(f"--fine-tune-blocks {self.fine_tune_blocks}: ResNet50 has "
                              f"{RESNET50_BLOCKS} residual blocks; use 0 to {RESNET50_BLOCKS}, "
                              "or -1 (automatic)")
        if self.fine_tune_blocks > 0 and self.bn_policy != "frozen":
            raise ConfigError(
                f"--fine-tune-blocks {self.fine_tune_blocks} with --bn-policy "
                f"{self.bn_policy}: unfreezing top blocks is the second phase of the 'frozen' "
                "policy; use --bn-policy frozen, or --fine-tune-blocks 0"
            )
        if self.head_epochs < 0:
            raise ConfigError(f"--head-epochs {self.head_epochs}: use 0 (no warm-up) or more")
        factor = self.fine_tune_learning_rate_factor
        if factor != -1 and not 0 < factor <= 1:
            raise ConfigError(f"--fine-tune-learning-rate-factor {factor}: use -1 (automatic) "
                              "or 0 < factor <= 1")
        if self.bn_reestimate_batches < -1:
            raise ConfigError(f"--bn-reestimate-batches {self.bn_reestimate_batches}: use -1 "
                              "(automatic), 0 (never) or a number of batches")
        if self.bn_reestimate_batches > 0 and self.bn_policy == "frozen":
            raise ConfigError("--bn-reestimate-batches re-estimates statistics of trained BN "
                              "layers; with --bn-policy frozen they never change: set it to 0")
        if self.bn_momentum and not 0 < self.bn_momentum < 1:
            raise ConfigError(f"--bn-momentum {self.bn_momentum}: use 0 (keep 0.99) or 0 < m < 1")
        if self.sync_bn and self.bn_policy != "full":
            raise ConfigError("--sync-bn synchronises batch statistics across replicas: "
                              "only meaningful with --bn-policy full")

    def blocks(self) -> int:
        """The top residual blocks that train after the warm-up (frozen policy only)."""
        if self.fine_tune_blocks != -1:
            return self.fine_tune_blocks
        return AUTO_FINE_TUNE_BLOCKS if self.bn_policy == "frozen" else 0

    @property
    def fine_tunes_backbone(self) -> bool:
        return self.bn_policy != "frozen" or self.blocks() > 0

    def policy_name(self) -> str:
        return (f"frozen BN, top {self.blocks()} blocks" if self.bn_policy == "frozen"
                else self.bn_policy)

    def learning_rate_factor(self) -> float:
        """bn_only fits only BN's scale and shift, which a tenth of the rate barely moves
        (benchmarks/head_warmup: 0.48 vs 0.75 accuracy); convolutions get a tenth."""
        if self.fine_tune_learning_rate_factor != -1:
            return self.fine_tune_learning_rate_factor
        return 1.0 if self.bn_policy == "bn_only" else 0.1

    def reestimate_batches(self, steps_per_epoch: int) -> int:
        """Batches to re-estimate BN moving statistics on after training. With momentum
        0.99 about 20% of the ImageNet statistics survive 160 steps while gamma and beta
        were fitted to batch statistics: the batch-statistics policies re-estimate."""
        if self.bn_reestimate_batches >= 0:
            return self.bn_reestimate_batches
        return 0 if self.bn_policy == "frozen" else min(AUTO_REESTIMATE_BATCHES,
                                                        steps_per_epoch)


@dataclass(frozen=True)
class ClippingConfig:
    """Gradient clipping: the mode and its threshold."""

    clip: str = setting("autoclip", "Gradient clipping mode; autoclip: the global norm at a "
                                    "percentile of this phase's norms so far.", CLIP_MODES)
    clip_threshold: float = setting(
        -1.0, "Clipping threshold; -1: the mode's own (autoclip: the 95th percentile; "
              "global_norm, norm: 1.0; value: 0.5; agc: the ratio 0.01).")
    agc_eps: float = setting(1e-3, "AGC's floor on the weight norm.")

    def validate(self) -> None:
        check_choices(self)
        threshold = self.clip_threshold
        if self.clip != "none" and threshold != -1 and threshold <= 0:
            raise ConfigError(f"--clip-threshold {threshold}: must be > 0 for --clip "
                              f"{self.clip}, or -1 for the mode's own (or use --clip none)")
        if self.clip == "autoclip" and threshold > 100:
            raise ConfigError(f"--clip-threshold {threshold}: autoclip's threshold is a "
                              "percentile of the norms so far; use 0 < percentile <= 100")

    def threshold(self) -> float:
        """The threshold used: the given one, or the mode's own for -1."""
        return CLIP_THRESHOLDS[self.clip] if self.clip_threshold == -1 else self.clip_threshold


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how it runs: numerics, compilation, seed, backups and run identity."""

    precision: str = setting("auto", "Numeric precision; auto: mixed on a GPU.", PRECISIONS)
    xla: str = setting("auto", "XLA compilation; auto: on a GPU.", ("auto", "on", "off"))
    seed: int = setting(0, "Random seed of weights, shuffling and augmentation.")
    deterministic: bool = setting(True, "Deterministic ops: the same data, settings, seed and "
                                        "code give the same weights (slower on a GPU).")
    steps_per_execution: int = setting(-1, "Training steps per compiled call (fewer host "
                                           "round trips); -1: 8 on a GPU, 1 on a CPU.")
    shuffle_buffer_mb: int = setting(256, "Memory of the training shuffle buffer, in MiB of "
                                          "stored examples.")
    backup_dir: str = setting("", "Stable URI for resumable backups (this run's in "
                                  "BACKUP_DIR/RUN_ID); empty: none.")
    run_id: str = setting("", "Run identity for backups; empty: a fresh id (only a retry of "
                              "the same run resumes its backup).")
    workers: int = setting(1, "Training processes sharing each global batch "
                              "(MultiWorkerMirroredStrategy); above 1 without TF_CONFIG, "
                              "that many on this machine.")

    def validate(self) -> None:
        check_choices(self)
        if self.steps_per_execution == 0 or self.steps_per_execution < -1:
            raise ConfigError(f"--steps-per-execution {self.steps_per_execution}: use -1 (8 on "
                              "a GPU, 1 on a CPU) or >= 1")
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: use 1 (this process) or more")
        if self.shuffle_buffer_mb < 1:
            raise ConfigError(f"--shuffle-buffer-mb {self.shuffle_buffer_mb}: use >= 1")
        if self.backup_dir:
            storage.check_uri(self.backup_dir, "--backup-dir")
        if self.run_id and not NAME.match(self.run_id):
            raise ConfigError(f"--run-id {self.run_id!r}: use letters, digits, '.', '_' and "
                              "'-', starting with a letter or digit")


@dataclass(frozen=True)
class TrainConfig:
    """The training step's settings, one group per concern; ``of`` builds it from the flat
    names the CLI and the pipeline use (every setting's name is unique across groups)."""

    examples: str = setting(help="The examples artifact of the data step.")
    output: str = setting(help="Folder for the trained_model artifact.")
    model: ModelConfig = group(ModelConfig, "The network.")
    optimizer: OptimizerConfig = group(OptimizerConfig, "Epochs, batches and optimizer.")
    loss: LossConfig = group(LossConfig, "The loss.")
    batch_norm: BatchNormConfig = group(BatchNormConfig, "The BN policy.")
    clipping: ClippingConfig = group(ClippingConfig, "Gradient clipping.")
    runtime: RuntimeConfig = group(RuntimeConfig, "Runtime.")

    @classmethod
    def of(cls, **values) -> TrainConfig:
        return build(cls, values)

    def validate(self) -> TrainConfig:
        storage.check_uri(self.examples, "--examples")
        storage.check_uri(self.output, "--output")
        for concern in (self.model, self.optimizer, self.loss, self.batch_norm, self.clipping,
                        self.runtime):
            concern.validate()
        bn, epochs = self.batch_norm, self.optimizer.epochs
        if self.optimizer.batch_size % self.runtime.workers:
            raise ConfigError(f"--batch-size {self.optimizer.batch_size} with --workers "
                              f"{self.runtime.workers}: the global batch is split evenly "
                              "among the workers; use a multiple of --workers")
        if self.loss.class_weights and self.runtime.workers > 1:
            raise ConfigError(f"--class-weights with --workers {self.runtime.workers}: Keras "
                              "weights classes by mapping the input dataset, which a dataset "
                              "split among workers does not allow; train in one process, or "
                              "leave class weights off")
        if bn.fine_tunes_backbone and bn.head_epochs >= epochs:
            raise ConfigError(
                f"--head-epochs {bn.head_epochs} with --epochs {epochs} leaves no epoch "
                f"to fine-tune the backbone ({bn.policy_name()}): use --head-epochs below "
                "--epochs, or 0 to skip the head warm-up")
        return self

    def phases(self) -> tuple[Phase, ...]:
        """The head alone for ``head_epochs`` at the learning rate (a random head's large
        gradients would wreck pretrained features), on the BN normalization the policy
        will use, then the BN policy for the rest at the rate times
        ``fine_tune_learning_rate_factor``. One phase when nothing but the head
        trains, or without a warm-up."""
        bn, epochs, rate = self.batch_norm, self.optimizer.epochs, self.optimizer.learning_rate
        if not bn.fine_tunes_backbone:
            return (Phase("frozen", 0, epochs, rate),)
        if not bn.head_epochs:
            return (Phase(bn.bn_policy, bn.blocks(), epochs, rate),)
        head = "frozen" if bn.bn_policy == "frozen" else "batch_stats_head"
        return (Phase(head, 0, bn.head_epochs, rate),
                Phase(bn.bn_policy, bn.blocks(), epochs - bn.head_epochs,
                      rate * bn.learning_rate_factor()))

    def resolved(self) -> TrainConfig:
        """This config with each -1 that means "the choice's own" replaced by its value."""
        opt, bn, clip = self.optimizer, self.batch_norm, self.clipping
        return replace(self, optimizer=replace(opt, weight_decay=opt.decay()),
                       batch_norm=replace(bn, fine_tune_blocks=bn.blocks()),
                       clipping=replace(clip, clip_threshold=clip.threshold()))

    def training_settings(self) -> dict:
        """What decides the trained model: every setting but paths and run identity,
        resolved (-1 and the value it stands for are one training)."""
        return {k: v for k, v in flatten(self.resolved()).items()
                if k not in NOT_TRAINING_SETTINGS}

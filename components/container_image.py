"""The one container image every component runs in (override with FINETUNE_IMAGE)."""

import os

DEFAULT_IMAGE = "ghcr.io/resnet-finetune/resnet-finetune:0.1.0"
IMAGE = os.environ.get("FINETUNE_IMAGE", DEFAULT_IMAGE)

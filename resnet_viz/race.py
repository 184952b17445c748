"""A short training race between a deep plain net, its residual twin and a shallower plain net.

He et al. 2015 (Fig. 1, Fig. 6) show the degradation problem: a deeper plain network trains to
a *higher* training loss than a shallower one, although it could copy the shallower one and set
its extra layers to the identity. The residual twin of the deep net does not degrade. This race
shows the start of that on a generated task (`shapes_data`) in under a minute on a CPU.

The library yields one `RaceStep` per step, so a caller can show progress and stop between
steps by no longer asking for the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from resnet_viz.config import ResNetConfig
from resnet_viz.model import build_model
from resnet_viz.presets import get_preset
from resnet_viz.shapes_data import make_shapes

logger = logging.getLogger(__name__)

MAX_STEPS = 2000


@dataclass(frozen=True)
class RaceSettings:
    """What the race trains and how; the defaults were chosen by measurement (see README).

    Measured on a 2-core machine (one thread, 40 steps, training loss averaged over the last
    five steps; ln 3 = 1.099 is chance): at these defaults, with seeds 0, 1 and 2, plain-56
    ended at 1.10 to 1.12 (it had not left chance), ResNet-56 at 0.68, 0.18 and 0.78, and
    plain-20 at 0.65, 0.84 and 0.77. Each race took 38 to 43 s. At lr 0.05 seed 2 turned it
    round (plain-56 0.93, ResNet-56 1.11), and with zero_init_residual ResNet-56 stayed at
    chance for all 40 steps at lr 0.1 and 0.02: its branches start silent and the pooled stem
    features alone cannot tell the textures apart.

    Attributes:
        deep: Depth of the deep plain net and its residual twin (a CIFAR net, 6n + 2).
        shallow: Depth of the shallower plain net.
        steps: SGD steps per net.
        batch: Images per step.
        lr: Learning rate of SGD with momentum 0.9 (no weight decay: this is about training
            loss, not generalisation).
        train_images: Size of the generated training set the batches are drawn from.
        widths: Stage widths of all three nets. Half the paper's (16, 32, 64) costs a quarter
            of the compute, which is what keeps the race under a minute on a laptop CPU.
        num_classes: Classes of the generated task (the first of `shapes_data.CLASSES`).
        zero_init_residual: Start the residual net's blocks as identities (its last BatchNorm
            of each branch at zero). Off by default: the paper's nets do not, and in this short
            race it keeps the residual net at chance (measured above).
        seed: Seeds the data, the initialisation of every net, and the batch order.
    """

    deep: int = 56
    shallow: int = 20
    steps: int = 40
    batch: int = 32
    lr: float = 0.02
    train_images: int = 2048
    num_classes: int = 3
    zero_init_residual: bool = False
    widths: tuple[int, int, int] = (8, 16, 32)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("deep", "shallow"):
            depth = getattr(self, name)
            if depth not in (20, 32, 44, 56, 110):
                raise ValueError(
                    f"{name} depth must be one of the paper's CIFAR depths 20, 32, 44, 56, 110; "
                    f"got {depth}"
                )
        if not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {self.steps}")
        if not 2 <= self.batch <= 256:
            raise ValueError(f"batch must be between 2 and 256, got {self.batch}")
        if not 0 < self.lr <= 1:
            raise ValueError(f"lr must be in (0, 1], got {self.lr}")

    def entrants(self) -> dict[str, ResNetConfig]:
        """The nets by display name: deep plain, deep residual, shallow plain."""
        narrow = {
            "widths": self.widths,
            "stem_width": self.widths[0],
            "num_classes": self.num_classes,
        }
        return {
            f"plain-{self.deep}": get_preset(f"plain{self.deep}").replace(**narrow),
            f"ResNet-{self.deep}": get_preset(f"resnet{self.deep}").replace(
                zero_init_residual=self.zero_init_residual, **narrow
            ),
            f"plain-{self.shallow}": get_preset(f"plain{self.shallow}").replace(**narrow),
        }


@dataclass
class RaceStep:
    """The training loss of every net at one step (before that step's update)."""

    step: int
    losses: dict[str, float]
    seconds: float = 0.0


@dataclass
class TrainingRace:
    """The nets of one race, their optimisers, and the data; `run` trains them side by side.

    The models are the race's own, so a caller may look at them afterwards (Fig. 7 does).
    """

    settings: RaceSettings = field(default_factory=RaceSettings)
    models: dict[str, nn.Module] = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.images, self.labels = make_shapes(
            s.train_images, seed=s.seed, num_classes=s.num_classes
        )
        # Every net starts from the same seed and sees the same batches in the same order.
        self.models = {
            name: build_model(config, seed=s.seed).train() for name, config in s.entrants().items()
        }
        self._optimisers = {
            name: torch.optim.SGD(model.parameters(), lr=s.lr, momentum=0.9)
            for name, model in self.models.items()
        }
        self._order = torch.randperm(
            s.train_images, generator=torch.Generator().manual_seed(s.seed)
        )
        self.steps_done = 0

    def _batch(self, step: int) -> tuple[Tensor, Tensor]:
        size = self.settings.batch
        start = (step * size) % (len(self._order) - size + 1)
        index = self._order[start : start + size]
        return self.images[index], self.labels[index]

    def run(self) -> Iterator[RaceStep]:
        """Train until `settings.steps` steps are done, yielding after each one.

        Stopping is stopping to iterate; calling `run` again continues where it stopped.
        """
        while self.steps_done < self.settings.steps:
            started = time.perf_counter()
            x, y = self._batch(self.steps_done)
            losses = {}
            for name, model in self.models.items():
                optimiser = self._optimisers[name]
                loss = F.cross_entropy(model(x), y)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses[name] = loss.item()
            self.steps_done += 1
            yield RaceStep(self.steps_done, losses, time.perf_counter() - started)
        logger.info("training race finished after %d steps", self.steps_done)

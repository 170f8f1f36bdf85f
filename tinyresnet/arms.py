"""The study's arms: a net and the config values that set it apart (`net1_no_dropout` is Net 1 with
block dropout 0). The experiments train them; a search compares its nets against them (`--reference`).
No TensorFlow here."""

import dataclasses
from typing import Tuple

# Which data an arm trains on: the dataset key of a `Scale`.
TINY, CIFAR = "tiny_imagenet", "cifar10"


@dataclasses.dataclass(frozen=True)
class Arm:
    net: str
    data: str = TINY
    values: Tuple[Tuple[str, object], ...] = ()  # config overrides besides the net

    def config_values(self):
        return {"net": self.net, **dict(self.values)}


ARMS = {
    "net1": Arm("net1"),
    "net1_plain": Arm("net1", values=(("variant", "plain"),)),
    "net2": Arm("net2"),
    "net3": Arm("net3"),
    "net4": Arm("net4"),
    "net5": Arm("net5"),
    "net6": Arm("net6"),
    "net1_no_dropout": Arm("net1", values=(("block_dropout", 0.0),)),
    "net1_no_augment": Arm("net1", values=(("augment", False),)),
    "net1_neither": Arm("net1", values=(("block_dropout", 0.0), ("augment", False))),
    "cifar7": Arm("cifar7", CIFAR),
    "cifar7_plain": Arm("cifar7", CIFAR, (("variant", "plain"),)),
    "cifar9": Arm("cifar9", CIFAR),
    "cifar9_plain": Arm("cifar9", CIFAR, (("variant", "plain"),)),
    # The ConvNet as Table 1 builds Net 6 from Net 1: no shortcuts and no dropout inside the blocks.
    "cifar7_plain_no_dropout": Arm("cifar7", CIFAR, (("variant", "plain"), ("block_dropout", 0.0))),
    "cifar9_plain_no_dropout": Arm("cifar9", CIFAR, (("variant", "plain"), ("block_dropout", 0.0))),
}

"""`SpecHyperModel`: KerasTuner hyperparameters that spell a net in the paper's notation."""

import keras_tuner

from tinyresnet.tuning import space as space_lib
from tinyresnet.tuning.space import Range


def _declare(hp, name, dim, kind):
    if isinstance(dim, Range):
        if kind == "int":
            # No step: every integer (linear), or a log-uniform draw (log); KerasTuner reads a step as a
            # multiplier under log sampling.
            return hp.Int(name, int(dim.min), int(dim.max), step=dim.step, sampling=dim.sampling)
        return hp.Float(name, float(dim.min), float(dim.max), step=dim.step, sampling=dim.sampling)
    if len(dim) == 1:
        return hp.Fixed(name, dim[0])
    return hp.Choice(name, dim, ordered=kind != "choice")


class SpecHyperModel(keras_tuner.HyperModel):
    """Declares the space of a `Search`; `build(hp)` returns the trial's net in notation.

    The net is trained by the tuner through `train_and_evaluate`, as
    `tinyresnet-train` trains it, so `build` makes no Keras model. The
    blocks of stage i are declared inside `hp.conditional_scope("stages", ...)`
    of the stage counts that use it: a stage that is not there has no active
    hyperparameter and does not show in the trial's values.

    Args:
        search: a `Search` (from `load_search`).
        num_classes: classes of the data (the FC's units).
    """

    def __init__(self, search, num_classes):
        super().__init__(name="tinyresnet_spec")
        self.search = search
        self.num_classes = num_classes

    def values(self, hp):
        """Declares every hyperparameter (once) and returns the active values of this trial."""
        dims = self.search.space.dims
        values = {}
        for key, (kind, _) in space_lib.KEYS.items():
            if key in dims and key != "blocks":
                values[key] = _declare(hp, key, dims[key], kind)
        stages = dims["stages"]
        most = int(stages.max) if isinstance(stages, Range) else max(stages)
        counts = list(range(int(stages.min), int(stages.max) + 1)) if isinstance(stages, Range) else list(stages)
        for i in range(most):
            using = [n for n in counts if n > i]
            if len(using) == len(counts):  # every net has this stage
                values[f"blocks_{i}"] = _declare(hp, f"blocks_{i}", dims["blocks"], "int")
                continue
            with hp.conditional_scope("stages", using):
                block = _declare(hp, f"blocks_{i}", dims["blocks"], "int")
            if i < values["stages"]:
                values[f"blocks_{i}"] = block
        return values

    def build(self, hp):
        return space_lib.notation(self.values(hp), self.num_classes)

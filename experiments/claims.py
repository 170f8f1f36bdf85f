"""The study's claims as experiments: their arms, the settings they run at, and their verdicts.

An arm is a named set of config values (`net1_plain` is Net 1 without its
shortcuts). A claim lists the arms it compares and a verdict function that
reads the arms' results. Arms are shared between claims: Net 6 trained for
claim 1 is the Net 6 of claim 5, trained once.

No TensorFlow here: this module is read by `--help` and by the summaries.
"""

import dataclasses
import os
from typing import Callable, Dict, NamedTuple, Tuple

from experiments import paper
from tinyresnet.arms import ARMS, CIFAR, TINY, Arm  # noqa: F401  (the study's arms live in the package)
from tinyresnet.stats import Compare, arm_summary, compare

@dataclasses.dataclass(frozen=True)
class Scale:
    """Per dataset: the config values every arm on it gets (data, width, epochs, ...)."""

    name: str
    data_names: Dict[str, str]  # per dataset: what it is, with its split in parentheses
    datasets: Dict[str, Dict[str, object]]
    # Where a claim's results of this scale go, inside the claim's folder: "" for the first committed
    # scale (cpu), the scale's name for the others, so that no scale ever writes over another's.
    results_folder: str = ""
    claims: Tuple[str, ...] = ()  # the claims run at this scale; () for every claim
    arms: Tuple[str, ...] = ()  # the arms trained at this scale by default; () for every arm its claims need

    def has(self, claim):
        """Whether `claim` is run at this scale."""
        return not self.claims or claim.name in self.claims

    def label(self, dataset):
        """A few words for a table cell: data, width, epochs."""
        values = self.datasets[dataset]
        return f"{self.data_names[dataset].split(' (')[0]}, width {values['width']:g}, {values['epochs']} epochs"

    def describe(self, dataset):
        """The full setting, for the summaries: data and split, width, epochs, precision, optimizer."""
        values = self.datasets[dataset]
        return (f"{self.data_names[dataset]}, width {values['width']:g}, {values['epochs']} epochs, "
                f"{values.get('precision', 'auto')}, batch 64, SGD-Nesterov lr 0.05, cosine decay")


def shared_data_dir():
    """`$TINYRESNET_SHARED_DATA`, else `../shared/data` beside the project."""
    default = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
    return os.path.normpath(os.environ.get("TINYRESNET_SHARED_DATA") or default)


# The width ladder of the cpu scale: the claims on how the residual nets compare with their ConvNet
# twins and how they overfit, with the same data, epochs and precision, at wider nets.
LADDER = {"cpu_w025": 0.25, "cpu_w05": 0.5}
LADDER_CLAIMS = ("resnet_vs_convnet", "overfitting_gap", "dropout_augmentation")
# The data axis: the same settings as the width-0.25 rung, on five times the data (100 classes).
DATA_RUNGS = {"cpu_c100": "tiny-imagenet-200-sub100.zip"}
DATA_RUNG_ARMS = ("net1", "net1_plain", "net6", "net1_no_dropout")
SCALES = ("cpu", *LADDER, *DATA_RUNGS, "paper")


def scale(name, data_dir=None):
    """The `Scale` called `name`: "cpu", a rung of the width ladder ("cpu_w025", "cpu_w05"), the data rung
    ("cpu_c100"), or "paper"."""
    if name in DATA_RUNGS:
        rung = scale("cpu_w025", data_dir)
        archive = os.path.join(data_dir or shared_data_dir(), DATA_RUNGS[name])
        return Scale(name, {TINY: "100-class Tiny ImageNet (50,000 train / 5,000 val)"},
                     {TINY: {**rung.datasets[TINY], "data": archive}}, results_folder=name, claims=LADDER_CLAIMS,
                     arms=DATA_RUNG_ARMS)
    if name in LADDER:
        cpu = scale("cpu", data_dir)
        tiny = {**cpu.datasets[TINY], "width": LADDER[name]}
        return Scale(name, {TINY: cpu.data_names[TINY]}, {TINY: tiny}, results_folder=name, claims=LADDER_CLAIMS)
    if name == "cpu":
        # float32 even where bfloat16 is faster: these runs are resumed on whichever CPU the next
        # session gets, and a run keeps one precision (the committed ones are float32).
        data_dir = data_dir or shared_data_dir()
        tiny = dict(dataset="tiny_imagenet", data=os.path.join(data_dir, "tiny-imagenet-200-sub20.zip"),
                    width=0.125, epochs=10, precision="float32", file_cache=True)
        cifar = dict(dataset="cifar10", data=os.path.join(data_dir, "cifar10-train-jpeg.zip"),
                     validation_fraction=0.1, width=0.25, epochs=8, precision="float32", file_cache=True)
        return Scale("cpu", {TINY: "20-class Tiny ImageNet (10,000 train / 1,000 val)",
                             CIFAR: "CIFAR-10 (45,000 train / 5,000 held out)"},
                     {TINY: tiny, CIFAR: cifar})
    if name == "paper":
        # The paper does not print its epochs or optimizer: 30 epochs of our default schedule.
        tiny = dict(dataset="tiny_imagenet", data="", width=1.0, epochs=30)
        cifar = dict(dataset="cifar10", data="", width=1.0, epochs=30)
        return Scale("paper", {TINY: "200-class Tiny ImageNet (downloaded, md5-checked)",
                               CIFAR: "CIFAR-10 (TFDS, its test split as validation)"},
                     {TINY: tiny, CIFAR: cifar}, results_folder="paper")
    raise ValueError(f"unknown scale {name!r}: expected one of {', '.join(SCALES)}")


class Verdict(NamedTuple):
    verdict: str  # supported, not supported, inconclusive or pending
    why: str  # the comparisons behind it
    ours: str  # our figures, mean ± half-range over seeds


@dataclasses.dataclass(frozen=True)
class Claim:
    name: str
    statement: str  # what the paper says
    paper_figure: str  # where, and its numbers
    arms: Tuple[str, ...]
    verdict: Callable[[Dict[str, list]], Verdict]  # results by arm -> verdict

    @property
    def datasets(self):
        """The datasets its arms train on, in arm order, each once."""
        return tuple(dict.fromkeys(ARMS[arm].data for arm in self.arms))


def _verdict_net1_vs_twins(results):
    vs_plain = compare(results, "net1", "net1_plain", "val_top1")
    vs_net6 = compare(results, "net1", "net6", "val_top1")
    train_plain = compare(results, "net1", "net1_plain", "train_top1")
    train_net6 = compare(results, "net1", "net6", "train_top1")
    ours = (f"val top-1 Net 1 {vs_plain.a}, plain twin {vs_plain.b}, Net 6 {vs_net6.b}; "
            f"train top-1 Net 1 {train_plain.a}, plain twin {train_plain.b}, Net 6 {train_net6.b}")
    return Verdict(*_both_higher(vs_plain, vs_net6, "Net 1", ("its plain twin", "Net 6")), ours)


def _both_higher(first: Compare, second: Compare, name, others):
    """Supported if `name` is above both others beyond the spread; each comparison is spelled out."""
    def said(other, c):
        where = {"higher": "above", "lower": "below"}.get(c.direction, c.direction)
        return f"{name} vs {other}: {c.diff} ({where})"
    why = f"{said(others[0], first)}; {said(others[1], second)}"
    verdicts = (first.direction, second.direction)
    if verdicts == ("higher", "higher"):
        return "supported", why
    if "lower" in verdicts:
        return "not supported", why
    return "inconclusive", why


def _verdict_gap(results):
    vs_plain = compare(results, "net1", "net1_plain", "gap")
    vs_net6 = compare(results, "net1", "net6", "gap")
    ours = f"train-val gap Net 1 {vs_plain.a}, plain twin {vs_plain.b}, Net 6 {vs_net6.b} (points)"
    return Verdict(*_both_higher(vs_plain, vs_net6, "Net 1's gap", ("the plain twin's", "Net 6's")), ours)


def _verdict_dropout_augment(results):
    both = compare(results, "net1_neither", "net1", "gap")
    ours = (f"gap with neither {both.a}, dropout only {compare(results, 'net1_no_augment', 'net1', 'gap').a}, "
            f"augmentation only {compare(results, 'net1_no_dropout', 'net1', 'gap').a}, both {both.b}")
    if both.direction == "higher":
        return Verdict("supported", f"dropout + augmentation cut the gap by {both.diff}, beyond the seeds' spread",
                       ours)
    if both.direction == "lower":
        return Verdict("not supported", "the gap is larger with dropout + augmentation", ours)
    return Verdict("inconclusive", "the gap difference is within the seeds' spread", ours)


def _cifar_reading(results, suffix):
    """Claim 4 against the ConvNets `cifar7{suffix}` and `cifar9{suffix}`: (verdict, why)."""
    # (what the paper says, our comparison, the direction that says it): "about equal" is "within spread".
    parts = [("7 layers: ResNet worse", compare(results, "cifar7", f"cifar7{suffix}", "val_top1"), "lower"),
             ("9 layers: about equal", compare(results, "cifar9", f"cifar9{suffix}", "val_top1"), "within spread"),
             ("9 layers: ResNet converges faster", compare(results, "cifar9", f"cifar9{suffix}", "early_val_top1"),
              "higher")]
    states = [("yes" if c.direction == expected else c.direction if c.direction in ("within spread", "pending")
               else "contradicted") for _, c, expected in parts]
    why = "; ".join(f"{name}: {state} (ResNet {c.diff})" for (name, c, _), state in zip(parts, states))
    if all(state == "yes" for state in states):
        return "supported", why
    if "contradicted" in states:
        return "not supported", why
    return "inconclusive", why


def _verdict_cifar(results):
    def three(layers, key):
        def arm(suffix):
            return arm_summary(results, f"cifar{layers}{suffix}", key)
        return f"ResNet {arm('')}, plain twin {arm('_plain')}, ConvNet without block dropout {arm('_plain_no_dropout')}"
    ours = (f"val top-1 7 layers: {three(7, 'val_top1')}; 9 layers: {three(9, 'val_top1')}; 9-layer val top-1 "
            f"after the first quarter of epochs: {three(9, 'early_val_top1')}")
    # The paper does not say whether its ConvNet keeps the block dropout: the claim is read against both.
    (twin, twin_why), (bare, bare_why) = _cifar_reading(results, "_plain"), _cifar_reading(results, "_plain_no_dropout")
    why = f"against the plain twin, {twin}: {twin_why}. Against the ConvNet without block dropout, {bare}: {bare_why}"
    if twin == bare:
        return Verdict(twin, why, ours)
    return Verdict("inconclusive", f"the verdict depends on the ConvNet's block dropout; {why}", ours)


def _verdict_table1(results):
    nets = [f"net{i}" for i in range(1, 7)]
    ranked = sorted(nets, key=lambda n: -paper.PAPER_RESULTS[n]["val_top1"])
    agree = disagree = open_ = pending = 0
    for i, a in enumerate(ranked):
        for b in ranked[i + 1:]:
            # In whole points, as printed: 0.49 - 0.46 is 0.0299... in floating point.
            if round(100 * (paper.PAPER_RESULTS[a]["val_top1"] - paper.PAPER_RESULTS[b]["val_top1"])) < 3:
                continue  # the paper itself barely separates them
            direction = compare(results, a, b, "val_top1").direction
            agree += direction == "higher"
            disagree += direction == "lower"
            open_ += direction == "within spread"
            pending += direction == "pending"
    ours = "val top-1: " + ", ".join(f"{n} {arm_summary(results, n, 'val_top1')}" for n in nets)
    why = (f"of the pairs the paper separates by >= 3 points, {agree} keep the paper's order, "
           f"{disagree} reverse it, {open_} are within the seeds' spread")
    if pending:
        return Verdict("pending", f"{pending} of the pairs lack 2 seeds on a side; {why}", ours)
    if disagree == 0 and agree > open_:
        return Verdict("supported", why, ours)
    if disagree and disagree >= agree:
        return Verdict("not supported", why, ours)
    return Verdict("inconclusive", why, ours)  # nothing reversed, or too little decided


CLAIMS = {c.name: c for c in (
    Claim("resnet_vs_convnet", "Net 1 (ResNet) beats its plain ConvNet twin (Net 6) on Tiny ImageNet, by "
          "about 13 points on validation and more on train", "Figs 8, 9: val 49% vs 36%, train 72% vs 43%",
          ("net1", "net1_plain", "net6"), _verdict_net1_vs_twins),
    Claim("overfitting_gap", "ResNets overfit more: a train-validation gap of about 23 points against 7 for "
          "the ConvNet", "Fig 8: gap 23 vs 7 points", ("net1", "net1_plain", "net6"), _verdict_gap),
    Claim("dropout_augmentation", "Dropout in the basic block plus the stochastic augmentation cut Net 1's "
          "overfitting from about 30 to 23 points", "Sec. 5: gap 30 -> 23 points",
          ("net1_neither", "net1_no_augment", "net1_no_dropout", "net1"), _verdict_dropout_augment),
    Claim("cifar_depth", "On CIFAR-10 a 7-layer ResNet does worse than its ConvNet; at 9 layers they are "
          "about equal, the ResNet converging faster", "Figs 6, 7 (curves only)",
          ("cifar7", "cifar7_plain", "cifar9", "cifar9_plain", "cifar7_plain_no_dropout", "cifar9_plain_no_dropout"),
          _verdict_cifar),
    Claim("table1", "Table 1: the six nets' accuracies and their ranking (Net 1 best)",
          "Table 1: val 49, 46, 46, 36, 42, 36%", tuple(f"net{i}" for i in range(1, 7)), _verdict_table1),
)}

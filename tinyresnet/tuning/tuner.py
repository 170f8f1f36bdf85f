"""`SpecTuner`: KerasTuner's search loop, oracles and chief/worker protocol, with trials that train
exactly as `tinyresnet-train` trains.

- Each trial's net is written in the paper's notation; its run directory is
  the KerasTuner trial folder (`PROJECT/trial_NN/`), so `tinyresnet-report`
  and `tinyresnet-export` work on it, and a killed trial resumes from its
  backup when the same tuner id asks for it again.
- Trials train in a process apart from the tuner's (`trial_pool`:
  TensorFlow keeps ~20 MiB of every traced step of a process), which Python
  replaces after `trials_per_process` trials; it reads the decoded data from
  the file cache the search wrote. `in_process=True` trains them all in
  this process instead, sharing the decoded data. A trial whose process is
  killed (the OOM killer, say) is retried once by KerasTuner
  (`max_retries_per_trial`), from its last finished epoch.
- A net over the parameter/FLOP budget is resampled inside the oracle, never
  trained: it is not a failed trial (KerasTuner stops after 3 consecutive
  failures).
- Hyperband: a trial's `tuner/epochs` becomes its run's `epochs`, and the
  run trains from scratch with the learning-rate schedule (warm-up, cosine)
  laid out over those epochs. Continuing a lower bracket's weights would
  restart a cosine schedule that had already decayed to ~0, so we do not;
  it costs the epochs of the lower bracket again.
"""

import contextlib
import dataclasses
from concurrent import futures
import io
import os
import sys
import time
import traceback

import keras
import keras_tuner
import numpy
from keras_tuner.engine import trial as trial_module
# Private KerasTuner names, each for a reason said where it is used; setup.cfg pins keras-tuner to the tested
# minor version for them:
# - kt_config.DEBUG: the only switch for its traceback per failed trial;
# - protos, conditions.Parent.to_proto: a stray print in 1.4.8, patched;
# - the oracle's _compute_values_hash, _random_values, _tried_so_far: the hooks where every oracle draws a
#   point and counts it as tried (over-budget nets), documented for subclasses in its source only;
# - _get_oracle_fname, _get_trial_dir, _save_trial, _retry_queue: atomic saves and what a restarted chief
#   hands out again;
# - _check_consecutive_failures: where it ends a search before saving the last trial; _retry: a stray print;
# - _seed_state, _random_state: seed 0 read as no seed;
# - distribute: the chief's server (`_serve`), which KerasTuner polls every 20 s;
# - Hyperband's _get_num_brackets, _get_size, _get_epochs: its plan, which it keeps to itself.
from keras_tuner.src import config as kt_config
from keras_tuner.src import protos
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import conditions

from tinyresnet import config as config_lib
from tinyresnet import runs, saving
from tinyresnet import spec as spec_lib
from tinyresnet import train
from tinyresnet.tuning import trial_pool
from tinyresnet.tuning.trial import train_trial
from tinyresnet.tuning import space as space_lib
from tinyresnet.tuning.hypermodel import SpecHyperModel

def _parent_to_proto(self):
    """KerasTuner 1.4.8's `conditions.Parent.to_proto` without its stray `print(self.values[0])`.

    The chief sends every trial as a proto, so a distributed search printed a bare value (`2`) per
    conditional hyperparameter of every trial it handed out or was asked about.
    """
    proto = protos.get_proto()
    first = self.values[0]
    kind = ("string_value" if isinstance(first, str) else "boolean_value" if isinstance(first, bool)
            else "int_value" if isinstance(first, int) else "float_value")
    return proto.Condition(parent=proto.Condition.Parent(
        name=self.name, values=[proto.Value(**{kind: value}) for value in self.values]))


conditions.Parent.to_proto = _parent_to_proto

# Private: KerasTuner prints the traceback of every failed trial while DEBUG is on, its default, and has no
# public switch; `on_trial_end` prints a traceback only where it says more than our one line.
kt_config.DEBUG = False


class TrialProcessKilled(RuntimeError):
    """A trial's process was killed from outside: not FailedTrialError, so KerasTuner retries the trial."""


_OUR_ERRORS = tuple(f"{error.__module__}.{error.__name__}: " for error in
                    (keras_tuner.errors.FailedTrialError, TrialProcessKilled))

OBJECTIVE = keras_tuner.Objective("val_top1", direction="max")
_ORACLES = {"random": keras_tuner.oracles.RandomSearchOracle,
            "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
            "hyperband": keras_tuner.oracles.HyperbandOracle}
# Resampling an over-budget net this many times in a row means the space is (nearly) all over budget.
MAX_RESAMPLES = 1000


def make_oracle(search, input_shape, num_classes, max_trials=None, max_hours=None, started=None):
    """The oracle of `search.oracle`, resampling nets over budget and stopping `max_hours` after `started`.

    `started` is the wall-clock time (`time.time()`) the project began, so a resumed search, or a restarted
    chief, has what is left of the allowance, not a fresh one; None is now.
    """
    base = _ORACLES[search.oracle]

    class BudgetedOracle(base):
        def _compute_values_hash(self, values):
            # Trials are unique by the network they build: widths are rounded to multiples of 8, so
            # different hyperparameters (growth 1.5 or 2.0 from a base of 8) may build the same net.
            return space_lib.net_key({k: v for k, v in values.items() if not k.startswith("tuner/")}, num_classes)

        def reload(self):
            # KerasTuner sends every trial that was ongoing when the oracle was saved back for retry, to
            # whichever worker asks next. After a chief restart that hands a trial a live worker is still
            # training to a second worker, and, since the chief saves before it drops an ended trial from
            # the ongoing ones, a finished trial is run again. So: a finished trial stays finished, and an
            # unfinished one stays with its tuner id (a restarted worker with that id gets it back).
            saved = runs.read_json(self._get_oracle_fname(), {}).get("ongoing_trials", {})
            super().reload()
            for tuner_id, trial_id in saved.items():
                if trial_id in self._retry_queue:
                    self._retry_queue.remove(trial_id)
                trial = self.trials.get(trial_id)
                if trial is None:
                    continue
                if trial.status in (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED):
                    if trial_id not in self.end_order:
                        self.end_order.append(trial_id)
                else:
                    self.ongoing_trials[tuner_id] = trial

        def save(self):
            # KerasTuner writes oracle.json in place: a chief killed during the write left a file no
            # restart could read (and a worker reading it mid-write saw it empty).
            runs.write_json(self._get_oracle_fname(), self.get_state())

        def _retry(self, trial):
            # KerasTuner prints "Trial N failed 1 times. 1 retries left." where the tuner's own line says
            # why (its process was killed) and what happens next.
            with contextlib.redirect_stdout(io.StringIO()):
                return super()._retry(trial)

        def _check_consecutive_failures(self):
            # KerasTuner raises here, at the 3rd failure in a row, before it saves the trial that just
            # ended: its trial.json would say RUNNING for ever.
            self._save_trial(self.trials[self.end_order[-1]])
            super()._check_consecutive_failures()

        def _save_trial(self, trial):
            runs.write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state())

        def _random_values(self):
            # Every oracle samples new points here (Hyperband for each bracket's first round): a net
            # over the budget is marked as tried and another one drawn, so it is never handed out.
            for _ in range(MAX_RESAMPLES):
                values = super()._random_values()
                if values is None or space_lib.over_budget(search, values, input_shape, num_classes) is None:
                    return values
                self._tried_so_far.add(self._compute_values_hash(values))
                self.resampled = getattr(self, "resampled", 0) + 1
            return None

        def populate_space(self, trial_id):
            if max_hours and time.time() - started > max_hours * 3600:
                return {"status": trial_module.TrialStatus.STOPPED, "values": None}
            if search.oracle != "bayesian":
                # Random points come from _random_values; Hyperband's others are promotions of trials
                # that trained. Hyperband must be asked once per trial id: it files the id in a bracket.
                return super().populate_space(trial_id)
            for _ in range(5):  # a model-based proposal may be over the budget: ask again
                response = super().populate_space(trial_id)
                if response["status"] != trial_module.TrialStatus.RUNNING:
                    return response
                if space_lib.over_budget(search, response["values"], input_shape, num_classes) is None:
                    return response
                self.resampled = getattr(self, "resampled", 0) + 1
            values = self._random_values()
            return {"status": trial_module.TrialStatus.RUNNING, "values": values} if values else \
                {"status": trial_module.TrialStatus.STOPPED, "values": None}

    started = time.time() if started is None else started
    # KerasTuner retries a trial that raised anything but FailedTrialError: a trial whose process was killed.
    kwargs = dict(objective=OBJECTIVE, seed=search.seed, max_retries_per_trial=1)
    if search.oracle == "hyperband":
        kwargs.update(max_epochs=search.base.epochs, hyperband_iterations=search.hyperband_iterations)
    else:
        kwargs.update(max_trials=max_trials or search.max_trials)
    oracle = BudgetedOracle(**kwargs)
    if search.seed is not None:
        # KerasTuner reads seed 0 as no seed (`seed or random.randint(1, 10000)`): a search file's
        # `seed: 0` drew other nets on every run.
        oracle.seed = oracle._seed_state = search.seed
        if hasattr(oracle, "_random_state"):
            oracle._random_state = numpy.random.RandomState(search.seed)
    return oracle


def hyperband_size(search, oracle):
    """`(nets, trials)` of a Hyperband search: every bracket's first round, and all its rounds."""
    brackets = range(oracle._get_num_brackets())
    nets = sum(oracle._get_size(b, 0) for b in brackets) * search.hyperband_iterations
    trials = sum(oracle._get_size(b, r) for b in brackets for r in range(b + 1)) * search.hyperband_iterations
    return nets, trials


def plan_text(search, oracle, max_trials):
    """What a search will run, in words: "12 trials", or Hyperband's nets, trials and epochs."""
    if search.oracle != "hyperband":
        return f"{max_trials} trials"
    brackets = oracle._get_num_brackets()
    nets, trials = hyperband_size(search, oracle)
    shortest = oracle._get_epochs(brackets - 1, 0)  # the most aggressive bracket's first round
    epochs = f"{shortest} to {search.base.epochs}" if shortest < search.base.epochs else f"{shortest}"
    steps = f" of {search.base.steps_per_epoch} steps" if search.base.steps_per_epoch else ""
    return (f"{search.hyperband_iterations} pass(es) of {brackets} bracket(s): {nets} nets in {trials} trials of "
            f"{epochs} epochs{steps}")


def _serve(oracle):
    """The chief: KerasTuner's `oracle_chief.start_server`, which checks every 20 s whether its workers are
    done, so a search ended up to 20 s after its last trial; this checks every half second."""
    import grpc
    from keras_tuner.src.distribute import oracle_chief
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    server.start()
    while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
        time.sleep(0.5)
    server.stop(grace=1)


class SpecTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """Runs a `Search`: each trial is `train_and_evaluate` of the base config with the trial's net.

    Args:
        search: a `Search` (from `load_search`).
        datasets: the decoded `Datasets`, shared by every trial.
        project_dir: where trials, the oracle's state and the results live.
        max_trials, max_hours: override the search file's trial count; stop
            starting trials after this many hours.
        log: prints the one-line progress of each trial.
        in_process: train the trials in this process (TensorFlow keeps ~20 MiB of each). By default
            they train in a process apart (`trial_pool`), replaced after `trials_per_process` trials
            (1: a new one per trial), so memory stays bounded over any number of trials. That process
            reads the decoded data from the file cache: load `datasets` with `file_cache=True` so that
            it is written once, up front.
    """

    def __init__(self, search, datasets, project_dir, max_trials=None, max_hours=None, log=print,
                 in_process=False, trials_per_process=trial_pool.TRIALS_PER_PROCESS, **kwargs):
        num_classes = len(datasets.class_names)
        self.definition = search
        self.datasets = datasets
        self.log = log
        self.trial_pool = None if in_process else trial_pool.TrialPool(trials_per_process)
        self._kills = {}  # trial id -> how many times its process was killed
        self.trial_pids = {}  # trial id -> the pid of the process that trained it
        self.max_trials = max_trials or search.max_trials
        self._started = {}
        self._scores = {}
        space_lib.check_feasible(search, datasets.image_shape, num_classes)
        started = runs.read_json(os.path.join(project_dir, space_lib.STARTED), {}).get("time")
        oracle = make_oracle(search, datasets.image_shape, num_classes, self.max_trials, max_hours, started)
        project_dir = os.path.abspath(project_dir)
        super().__init__(oracle=oracle, hypermodel=SpecHyperModel(search, num_classes),
                         directory=os.path.dirname(project_dir), project_name=os.path.basename(project_dir),
                         overwrite=False, **kwargs)
    def trial_config(self, trial):
        """The run config of a trial (its net, its config keys, Hyperband's epochs)."""
        hp = trial.hyperparameters
        values = self.hypermodel.values(hp)
        config = space_lib.config_for(self.definition, values, len(self.datasets.class_names))
        if "tuner/epochs" in hp.values:
            config = dataclasses.replace(config, epochs=int(hp.values["tuner/epochs"]))
        # `precision: auto` stays auto: each trial decides for its own net, as `tinyresnet-train` does (a
        # bfloat16 matmul says nothing of a narrow net's step), and a resumed trial keeps its start's policy.
        return dataclasses.replace(config, verbose=0)

    def run_trial(self, trial, *args, **kwargs):
        try:
            results = self._run(trial)
        except (TrialProcessKilled, keras_tuner.errors.FailedTrialError, keras_tuner.errors.FatalError):
            raise
        except Exception as e:
            # KerasTuner retries any other error, as it retries a killed trial: a bug would train twice.
            traceback.print_exc()
            raise keras_tuner.errors.FailedTrialError(f"{type(e).__name__}: {e}") from None
        # A worker's copy of the trial does not get the metrics it reports to the chief: keep the score here.
        self._scores[trial.trial_id] = results["val_top1"]
        return {"val_top1": results["val_top1"]}

    def _run(self, trial):
        config = self.trial_config(trial)
        trial_dir = self.get_trial_dir(trial.trial_id)
        if self.trial_pool is not None:
            return self._run_in_pool(trial, config, trial_dir)
        keras.backend.clear_session()
        try:
            return train_trial(config, trial_dir, trial.trial_id, self.tuner_id, trial.hyperparameters.values,
                               self.definition.base.verbose != 0, self.log, datasets=self.datasets)
        except train.TrainingDiverged as e:
            raise keras_tuner.errors.FailedTrialError(f"diverged ({e})") from None
    def _run_in_pool(self, trial, config, trial_dir):
        # The decoded data reach the trial through the file cache, written when the search loaded them.
        request = {"config": config_lib.to_dict(dataclasses.replace(config, file_cache=True)),
                   "trial_dir": trial_dir, "trial_id": trial.trial_id, "tuner_id": self.tuner_id,
                   "hyperparameters": trial.hyperparameters.values, "progress": self.definition.base.verbose != 0}
        outcome = self.trial_pool.run(request)
        self.trial_pids[trial.trial_id] = outcome.pid
        if outcome.code < 0:  # killed from outside (the OOM killer, say)
            kills = self._kills[trial.trial_id] = self._kills.get(trial.trial_id, 0) + 1
            if kills == 1:
                self.log(f"trial {trial.trial_id}: its process was killed (signal {-outcome.code}); training it again "
                         "in a new one from its last finished epoch")
            raise TrialProcessKilled(f"trial {trial.trial_id}: its process was killed "
                                     f"{'twice ' if kills == 2 else ''}(signal {-outcome.code})")
        if outcome.code == trial_pool.EXIT_INTERRUPTED:
            raise KeyboardInterrupt
        if outcome.code == trial_pool.EXIT_DIVERGED and outcome.message:
            raise keras_tuner.errors.FailedTrialError(outcome.message)
        if outcome.code != 0:
            raise keras_tuner.errors.FailedTrialError(
                f"trial {trial.trial_id} failed in its process (exit code {outcome.code}; its error is above)")
        return runs.read_json(os.path.join(trial_dir, runs.RESULTS))

    def search(self, *args, **kwargs):
        if dist_utils.is_chief_oracle():  # as KerasTuner's search does for a chief
            self.oracle.verbose = kwargs.get("verbose", self.oracle.verbose)
            self.save()
            return _serve(self.oracle)
        try:
            return super().search(*args, **kwargs)
        finally:
            if self.trial_pool is not None:
                self.trial_pool.close()

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._started[trial.trial_id] = time.perf_counter()

    def on_trial_end(self, trial):
        if trial.status == trial_module.TrialStatus.COMPLETED:
            trial.message = None  # a retried trial keeps its first run's message (its process was killed)
        if trial.message:
            # KerasTuner keeps the traceback: of our own FailedTrialError its last line says all; of anything
            # else (a bug) the whole traceback is shown, as KerasTuner's DEBUG printed it.
            last = trial.message.strip().splitlines()[-1]
            ours = next((prefix for prefix in _OUR_ERRORS if last.startswith(prefix)), None)
            if ours is None:
                print(trial.message, file=sys.stderr, flush=True)
            trial.message = last.removeprefix(ours or "")
        try:
            super().on_trial_end(trial)
        except RuntimeError:  # KerasTuner ends the search at the 3rd failure in a row: that trial's line too
            self._say_ended(trial)
            raise
        if trial.status == trial_module.TrialStatus.INVALID and self._kills.get(trial.trial_id) == 1:
            return  # KerasTuner retries it; `_run_in_pool` has said so
        self._say_ended(trial)

    def _say_ended(self, trial):
        seconds = time.perf_counter() - self._started.pop(trial.trial_id, time.perf_counter())
        net = spec_lib.format_spec(self.trial_config(trial).net)
        score = self._scores.pop(trial.trial_id, None)
        if score is None and trial.metrics.exists("val_top1"):
            score = trial.metrics.get_last_value("val_top1")
        done = f"val top-1 {score:.3f}" if score is not None else trial.message or trial.status.lower()
        left = ""
        trials = getattr(self.oracle, "trials", None)
        if trials is not None:
            finished = sum(t.status in ("COMPLETED", "FAILED", "INVALID") for t in trials.values())
            total = hyperband_size(self.definition, self.oracle)[1] if self.definition.oracle == "hyperband" \
                else self.max_trials
            count = max(0, total - finished)
            left = f", {count} trial{'' if count == 1 else 's'} left"
        self.log(f"trial {trial.trial_id}: {net}  {done}  {seconds:.0f} s{left}")

    def save_model(self, trial_id, model, step=0):
        pass  # the run directory holds the model

    def load_model(self, trial):
        return saving.load_model(os.path.join(self.get_trial_dir(trial.trial_id), runs.MODEL))

"""Console scripts: thin argparse front ends over the library functions."""

import argparse
import os
import sys

from tinyresnet import onednn, options, startup, runs
from tinyresnet.commands import dashed_options, run_training
from tinyresnet.commands import fail as _fail

# Before TensorFlow loads: keep its C++ INFO/WARNING start-up lines out of the way
# (a value the user set is kept). Only the commands set it, not the library.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_SIZES = {"tiny_imagenet": 64, "cifar10": 32}
EXPORT_ROOT = runs.EXPORT_ROOT


def _read_spec(value):
    # --spec takes notation text or the path of a file holding it.
    if os.path.isfile(value):
        try:
            with open(value, encoding="utf-8") as f:
                return f.read()
        except UnicodeDecodeError:
            raise options.UsageError(f"--spec {value}: not a UTF-8 text file of the notation") from None
        except OSError as e:
            raise options.UsageError(f"--spec {value}: cannot read it ({e.strerror})") from None
    return value


def _train_parser():
    from tinyresnet import config as config_lib
    from tinyresnet.spec import PRESETS
    keys = ", ".join(f"{f.name}={f.default!r}" for f in config_lib.fields().values())
    parser = options.Parser(
        prog="tinyresnet-train",
        description="Train a residual net (or its plain twin) from a preset or a spec in the paper's notation, "
                    "log curves, resume after a crash, and optionally export a SavedModel.",
        epilog=f"Any config field can be set as --key=value or --key value (type-checked; --skip-corrupt alone "
               "means true). "
               f"Fields and defaults: {keys}. A rerun in the same --run-dir resumes it; "
               f"{', '.join(sorted(config_lib.EXECUTION_KEYS))} may change on a rerun, the other fields "
               "define the run. precision, augment_on and jit_compile 'auto' are decided for this machine (a GPU: "
               "bfloat16 or float16, the augmentation in the model, XLA on) and written to results.json with "
               "the reason. Example: tinyresnet-train --preset=net1 --data=tiny-imagenet-200.zip "
               "--epochs=2 --width=0.25",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a Table 1 net or the CIFAR pair (default net1)")
    parser.add_argument("--spec", help="network in the paper's notation, or a file holding it (# comments allowed)")
    parser.add_argument("--data", help="archive or folder; omitted: download Tiny ImageNet / TFDS CIFAR-10")
    parser.add_argument("--dataset", choices=sorted(config_lib.CHOICES["dataset"]))
    parser.add_argument("--config", help="experiment file (.py, .yaml, .json) overriding the defaults")
    parser.add_argument("--run-dir", help="run directory (default runs/<preset>-<variant>); rerun to resume")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in a run dir of another config (removes only what a run writes: its "
                             "files and its checkpoints/, backup/ and tensorboard/ folders; other files stay)")
    parser.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    parser.add_argument("--summary", action="store_true",
                        help="print the model with its layer, parameter and FLOP counts; do not train")
    parser.add_argument("--export", metavar="DIR", nargs="?", const=EXPORT_ROOT,
                        help=f"export the trained model as a SavedModel under DIR (--export alone: {EXPORT_ROOT}/)")
    parser.add_argument("--quiet", action="store_true", help="one log line per epoch instead of progress bars")
    return parser


def _resolve_config(args, overrides):
    from tinyresnet import config as config_lib
    from tinyresnet import spec as spec_lib
    cfg = config_lib.Config()
    if args.config:
        options.input_path("--config", args.config, "file")
        try:
            cfg = config_lib.load_file(args.config)
        except config_lib.ConfigError as e:
            raise config_lib.ConfigError(f"--config {e}") from None
    values = {}
    if args.preset and args.spec:
        raise config_lib.ConfigError("give --preset or --spec, not both")
    if args.spec:
        try:
            spec_lib.parse_spec(_read_spec(args.spec))
        except spec_lib.SpecError as e:
            raise config_lib.ConfigError(f"--spec: {e}") from None
    if args.preset or args.spec:
        values["net"] = args.preset or _read_spec(args.spec)
    if args.data:
        values["data"] = args.data
    if args.dataset:
        values["dataset"] = args.dataset
    if args.quiet:
        values["verbose"] = 2
    values.update(config_lib.parse_overrides(overrides))
    return config_lib.override(cfg, values)


def _input_shape(cfg):
    """The image shape a run of `cfg` would see: the dataset's, a folder's first image, or the preset's."""
    from tinyresnet import spec as spec_lib
    if cfg.dataset in IMAGE_SIZES and not (cfg.dataset == "cifar10" and cfg.data):
        size = IMAGE_SIZES[cfg.dataset]
        return (size, size, 3)
    if cfg.data:
        from tinyresnet.data import folders
        return (*folders.first_image_size(cfg.data), 3)
    preset = spec_lib.preset_name(cfg.net)
    return spec_lib.PRESETS[preset].input_shape if preset else (64, 64, 3)


def _print_summary(cfg):
    from tinyresnet import spec as spec_lib
    from tinyresnet.models import build_model
    shape = _input_shape(cfg)
    size = shape[0]
    spec = spec_lib.parse_spec(cfg.net)
    model = build_model(spec, shape, variant=cfg.variant, block_dropout=cfg.block_dropout,
                        shortcut=cfg.shortcut, width=cfg.width)
    model.summary()
    flops = spec_lib.forward_flops(spec, shape, width=cfg.width, shortcut=cfg.shortcut)
    print(f"spec:        {spec_lib.format_spec(spec)}")
    print(f"variant:     {cfg.variant} (shortcut {cfg.shortcut}, width {cfg.width})")
    print(f"layers:      {spec_lib.count_layers(spec)} (paper convention: convs + FC, a BB counts 2)")
    print(f"parameters:  {model.count_params():,}")
    print(f"GFLOPs:      {flops / 1e9:.3f} forward per {size}x{shape[1]} image, "
          f"{3 * flops / 1e9:.3f} per training image (3x forward)")


def train_main(argv=None):
    parser = _train_parser()
    args, overrides = parser.parse_known_args(dashed_options(parser, sys.argv[1:] if argv is None else argv))
    from tinyresnet import config as config_lib
    from tinyresnet import spec as spec_lib
    if args.list_presets:
        given = [a for a in (sys.argv[1:] if argv is None else argv) if a.split("=")[0] not in ("--list-presets",
                                                                                                "--list_presets")]
        if given:  # honoured or refused, never ignored
            return _fail(f"--list-presets lists the presets and does nothing else: give it alone (not {given[0]})")
        for name, preset in spec_lib.PRESETS.items():
            print(f"{name:8s} {spec_lib.count_layers(name):3d} layers  {preset.input_size}x{preset.input_size}  "
                  f"{preset.notation}")
        return 0
    run_dir = args.run_dir
    try:
        cfg = config_lib.check_inputs(_resolve_config(args, overrides))
        if args.summary and (args.run_dir or args.export or args.overwrite):
            raise options.UsageError("--summary prints the model and trains nothing: give it without --run-dir, "
                                     "--overwrite and --export")
        if run_dir is not None and not run_dir.strip():
            raise options.UsageError("--run-dir: empty; give a folder, or leave the option out for "
                                     "runs/<preset>-<variant>")
        run_dir = os.path.expanduser(run_dir) if run_dir else \
            os.path.join("runs", f"{spec_lib.preset_name(cfg.net) or 'spec'}-{cfg.variant}")
        if not args.summary:  # checked now, not after the training
            options.output_folder("--run-dir", run_dir)
            options.output_folder("--export", args.export)
    except (config_lib.ConfigError, spec_lib.SpecError, options.UsageError) as e:
        return _fail(e)
    if args.summary:
        startup.load_tensorflow()
        from tinyresnet.data import DataError
        try:
            _print_summary(cfg)
        except (spec_lib.SpecError, DataError) as e:
            return _fail(e)
        return 0
    try:
        config_lib.admit(cfg, run_dir, args.overwrite)  # before TensorFlow loads, so a wrong --run-dir fails at once
    except runs.RunDirError as e:
        return _fail(e)
    onednn.enable_by_default()
    startup.load_tensorflow()
    from tinyresnet import train

    def work():
        strategy = train.make_strategy(cfg)  # before any other TensorFlow op
        return train.train_and_evaluate(cfg, run_dir, overwrite=args.overwrite, strategy=strategy)
    results, code = run_training(work)
    if code is not None:
        return code
    print(f"\nrun directory: {run_dir}")
    print(f"  train top-1 {results['train_top1']:.3f}  val top-1 {results['val_top1']:.3f}  "
          f"val top-5 {results['val_top5']:.3f}  gap {results['gap']:.3f}  "
          f"{results['images_per_sec']:.0f} images/s  {results['epochs']} epoch{'s' if results['epochs'] != 1 else ''}")
    print(f"  curves: {run_dir}/curves.png  results: {run_dir}/results.json  model: {run_dir}/model.keras")
    if args.export:
        from tinyresnet import export
        try:
            path = export.export_run(run_dir, args.export)
        except export.ExportError as e:
            return _fail(e)
        print(f"  exported: {path}")
    return 0


def report_main(argv=None):
    parser = options.Parser(
        prog="tinyresnet-report",
        description="Compare finished runs: a table (CSV, Markdown) and their curves overlaid.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", default="report", help="folder for comparison.{csv,md,png} (default report/)")
    parser.add_argument("--names", nargs="+", help="labels of the runs (default: folder names)")
    args = parser.parse_args(argv)
    try:
        options.output_folder("--out", args.out)
    except options.UsageError as e:
        return _fail(e)
    if args.names and len(args.names) != len(args.run_dirs):
        return _fail(f"--names gives {len(args.names)} label{'s' if len(args.names) != 1 else ''} for "
                     f"{len(args.run_dirs)} run{'s' if len(args.run_dirs) != 1 else ''}")
    unfinished = [d for d in args.run_dirs if not runs.is_finished(d)]
    if unfinished:  # before pandas and matplotlib load
        return _fail(f"RUN_DIR {unfinished[0]}: no {runs.RESULTS} (not a run directory, or the run has not finished)")
    from tinyresnet import report
    try:
        table = report.compare(args.run_dirs, args.out, args.names)
    except FileNotFoundError as e:
        return _fail(e)
    print(report.to_markdown(table))
    print(f"\nwritten: {args.out}/comparison.csv, comparison.md, comparison.png")
    return 0


def export_main(argv=None):
    parser = options.Parser(
        prog="tinyresnet-export",
        description="Export a trained run (or a .keras file) as a SavedModel for TensorFlow Serving, "
                    "tf.saved_model.load and tinyresnet-predict, into OUT/<name>/<version>/.")
    parser.add_argument("source", metavar="RUN_DIR_OR_KERAS_FILE")
    parser.add_argument("--out", default=EXPORT_ROOT, help=f"root folder (default {EXPORT_ROOT}/)")
    parser.add_argument("--name", help="model name, one folder under --out (default: the model's, e.g. net1)")
    parser.add_argument("--version", type=int, help="version number >= 1 (default: the next free one)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing version (the old one stays until the new one is in place)")
    args = parser.parse_args(argv)
    model_file = os.path.join(args.source, runs.MODEL) if os.path.isdir(args.source) else args.source
    try:  # before TensorFlow loads
        if not os.path.exists(args.source):
            raise options.UsageError(f"RUN_DIR_OR_KERAS_FILE {args.source}: no such run directory or .keras file")
        if not os.path.isfile(model_file):
            raise options.UsageError(f"RUN_DIR_OR_KERAS_FILE {args.source}: no {runs.MODEL} in it (has the run "
                                     "finished?)")
        options.folder_name("--name", args.name)
        options.at_least("--version", args.version, 1)
        options.output_folder("--out", args.out)
    except options.UsageError as e:
        return _fail(e)
    startup.load_tensorflow()
    from tinyresnet import export
    try:
        path = export.export_run(args.source, args.out, args.name, args.version, args.overwrite)
    except export.ExportError as e:
        return _fail(e)
    print(f"exported: {path}")
    print("signatures: serving_default (float32 images), serving_uint8, serve_image_bytes (encoded images)")
    return 0


def predict_main(argv=None):
    parser = options.Parser(
        prog="tinyresnet-predict",
        description="Classify image files (any size; JPEG, PNG, grayscale, RGBA) with an exported model.")
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="an exported version, e.g. exported_models/net1/1")
    parser.add_argument("images", nargs="+", metavar="IMAGES", help="files, folders or glob patterns")
    parser.add_argument("--output", help="write all predictions to a .csv or .json file (checked before any "
                                          "prediction is made)")
    parser.add_argument("--top", type=int, default=3,
                        help="labels per image, best first, in the table and --output; up to the number of "
                             "classes (default 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per call of the model (default 64)")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.model_dir, "saved_model.pb")):
        return _fail(f"{args.model_dir}: not an exported model (no saved_model.pb)")
    from tinyresnet import predict  # loads no TensorFlow: every check below comes before it
    try:
        options.at_least("--batch-size", args.batch_size, 1)
        options.output_file("--output", args.output, predict.OUTPUT_EXTENSIONS)  # before the work, not after
        predict.check_top_k(args.top, len(predict.class_names(args.model_dir)), name="--top")
    except (options.UsageError, predict.PredictError) as e:
        return _fail(e)
    files = predict.expand_inputs(args.images)  # folders walked once: the files are passed on as they are
    if not files:
        return _fail(f"no image files in {' '.join(args.images)}")
    startup.load_tensorflow()
    predictions = predict.predict_files(args.model_dir, files, args.batch_size, top_k=args.top)
    print(predict.format_table(predictions, args.top))
    if args.output:
        predict.write_predictions(predictions, args.output)
        print(f"written: {args.output}")
    failed = [p for p in predictions if p.error]
    if failed:
        print(f"{len(failed)} of {len(predictions)} files could not be classified", file=sys.stderr)
        return 1
    return 0


def bench_main(argv=None):
    from tinyresnet import bench_nets
    defaults = bench_nets.Settings()
    parser = options.Parser(
        prog="tinyresnet-bench",
        description="Measure, in one run: matmul ceilings; for each net, the training step train_and_evaluate "
                    "runs (model, loss, metrics, optimizer, callbacks) in float32 and mixed_bfloat16: ms/step, "
                    "images/s, fraction of the ceiling, and what precision=auto chooses; the fixed per-step cost "
                    "(least squares over the nets); the real input pipeline vs in-memory data; and exported-model "
                    "serving vs model.predict. Ratios are the point: the machine may be noisy.")
    parser.add_argument("--nets", help="comma-separated nets to time: a preset (net1), a preset at a width "
                        "(net1@0.25), search=NAME (every net of the committed search tuning/results/NAME/, with each "
                        "trial's dropout, variant and shortcut), search=PATH/trials.csv, 'search' (every distinct "
                        "net of all committed searches, labelled by search) or notation (default: net1)")
    parser.add_argument("--preset", help="one preset to time (same as --nets=PRESET)")
    parser.add_argument("--spec", action="append",
                        help="a net in the notation, or a file holding it, timed at width 1, e.g. "
                             "'Conv 8, Avg 2, BB 8, FC 20' (repeatable; timed after the --nets)")
    parser.add_argument("--width", type=float, help=f"width of presets given without @ (default {defaults.width})")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "both"),
                        help="precisions to time (default both)")
    parser.add_argument("--batch-size", type=int, help=f"default {defaults.batch_size}")
    parser.add_argument("--steps", type=int, help=f"at most this many timed steps per repeat (default {defaults.steps})")
    parser.add_argument("--seconds", type=float,
                        help=f"fewer steps per repeat where a repeat would take longer (default {defaults.seconds})")
    parser.add_argument("--repeats", type=int, help=f"timed repeats, medians reported (default {defaults.repeats})")
    parser.add_argument("--data", help="Tiny ImageNet archive/folder for the pipeline figures (default: skipped)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds-long run (cifar7 at width 0.25, few steps) for CI; explicit flags still apply")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    args = parser.parse_args(argv)
    import dataclasses
    import json
    import math
    values = dict(bench_nets.SMOKE) if args.smoke else {}
    values.update({k: v for k, v in vars(args).items()
                   if v is not None and k in {f.name for f in dataclasses.fields(defaults)}})
    if args.nets is not None and args.preset is not None:
        parser.error("give --nets or --preset, not both")
    if args.precision:
        values["precisions"] = bench_nets.PRECISIONS if args.precision == "both" else (args.precision,)
    for flag in ("width", "batch_size", "steps", "seconds", "repeats"):
        value = values.get(flag)
        if value is not None and not (math.isfinite(value) and value > 0):
            parser.error(f"--{flag.replace('_', '-')} must be a positive number, got {value}")
    if values.get("width", 1) > 64 or values.get("seconds", 1) > 3600:
        parser.error("--width must be at most 64 and --seconds at most 3600")
    if args.data:
        from tinyresnet.data import files
        try:
            files.check_source(args.data)
        except files.DataError as error:
            parser.error(f"--data {error}")
    groups = []
    if args.nets is not None:
        groups.append(("--nets", args.nets.split(",")))
    if args.preset is not None:
        groups.append(("--preset", [args.preset]))
    width = values.get("width", defaults.width)
    try:
        groups += [("--spec", [_read_spec(text)]) for text in args.spec or []]
        for flag, items in groups:
            bench_nets.expand_nets(items, width, flag)
    except ValueError as error:  # options.UsageError too
        parser.error(str(error))
    if groups:
        values["nets"] = tuple(item for _, items in groups for item in items)
    settings = dataclasses.replace(defaults, **values)
    onednn.enable_by_default()
    startup.load_tensorflow()
    from tinyresnet import bench
    from tinyresnet.data import DataError
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    try:
        result = bench.run(settings, log=log)
    except DataError as error:
        return _fail(error)
    print(json.dumps(result, indent=2) if args.json else bench.format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(train_main())

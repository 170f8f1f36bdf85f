#!/usr/bin/env bash
# The main job, from a fresh clone: install into .venv, train Net 1 (width 0.25, 3 epochs) on the
# 20-class Tiny ImageNet archive, export it as a SavedModel, and classify a few test images with it.
# Extra arguments go to tinyresnet-train (e.g. --epochs=10, or --epochs=1 --steps-per-epoch=2 for a
# seconds-long smoke run). Where things go can be set: DATA (the archive), RUN (the run directory),
# EXPORTS (the export root), IMAGES (the folder of test images to classify); relative paths are taken
# from the repository's root, where the script runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/tiny-imagenet-200-sub20.zip}
RUN=${RUN:-runs/net1-quickstart}
EXPORTS=${EXPORTS:-exported_models}
IMAGES=${IMAGES:-runs/test-images}
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv && .venv/bin/python -m pip install --quiet --upgrade pip > .venv/install.log 2>&1
fi
. .venv/bin/activate
# pip and setuptools talk a lot; their words go to a log, shown only if the install fails. Offline, a
# package installed before is used as it is.
if ! python -m pip install --quiet -e . > .venv/install.log 2>&1; then
  if python -c "import tinyresnet.cli" 2> /dev/null; then
    echo "warning: could not reinstall the package (offline?); using the one installed (log: .venv/install.log)" >&2
  else
    cat .venv/install.log >&2; echo "error: installing the package failed (log: .venv/install.log)" >&2; exit 1
  fi
fi
if [ -e "$DATA" ]; then data_arg=(--data="$DATA"); else
  echo "no $DATA: downloading the official Tiny ImageNet (248 MB, md5-checked)"; data_arg=(); fi
TIMEFORMAT="train wall time: %R s"
time tinyresnet-train --preset=net1 "${data_arg[@]}" --width=0.25 --epochs=3 --warmup_epochs=0.5 \
  --run-dir="$RUN" --quiet "$@"
model=$(tinyresnet-export "$RUN" --out="$EXPORTS" | sed -n 's/^exported: //p')
echo "exported: $model"
du -sh "$RUN"
# A few of the archive's unlabelled test images, to classify with the export.
python - "$DATA" "$IMAGES" <<'PY'
import os, sys, zipfile
archive, out = sys.argv[1:]
os.makedirs(out, exist_ok=True)
if not os.path.exists(archive):  # downloaded by tinyresnet-train instead
    archive = os.path.expanduser(os.path.join("~", ".keras", "datasets", "tiny-imagenet-200.zip"))
if os.path.exists(archive):
    with zipfile.ZipFile(archive) as z:
        names = sorted(n for n in z.namelist() if "/test/images/" in n)[:8]
        for n in names:
            with open(os.path.join(out, os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
PY
tinyresnet-predict "$model" "$IMAGES" --output "$IMAGES-predictions.csv"

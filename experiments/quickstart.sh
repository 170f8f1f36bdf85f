#!/usr/bin/env bash
# The main job, from a fresh clone: install into .venv, train Net 1 (width 0.25, 3 epochs) on the
# 20-class Tiny ImageNet archive, export it as a SavedModel, and classify a few test images with it.
# Extra arguments go to tinyresnet-train (e.g. --epochs=10 --precision=mixed_bfloat16).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/tiny-imagenet-200-sub20.zip}
RUN=${RUN:-runs/net1-quickstart}
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e .
if [ -e "$DATA" ]; then data_arg=(--data="$DATA"); else
  echo "no $DATA: downloading the official Tiny ImageNet (248 MB, md5-checked)"; data_arg=(); fi
/usr/bin/time -f "train wall time: %e s" \
  tinyresnet-train --preset=net1 "${data_arg[@]}" --width=0.25 --epochs=3 --warmup_epochs=0.5 \
  --run-dir="$RUN" --quiet "$@"
model=$(tinyresnet-export "$RUN" | sed -n 's/^exported: //p')
echo "exported: $model"
du -sh "$RUN"
# A few of the archive's unlabelled test images, to classify with the export.
python - "$DATA" <<'PY'
import os, sys, zipfile
os.makedirs("runs/test-images", exist_ok=True)
if os.path.exists(sys.argv[1]):
    with zipfile.ZipFile(sys.argv[1]) as z:
        names = sorted(n for n in z.namelist() if "/test/images/" in n)[:8]
        for n in names:
            open(os.path.join("runs/test-images", os.path.basename(n)), "wb").write(z.read(n))
PY
tinyresnet-predict "$model" runs/test-images --output runs/test-images-predictions.csv

#!/usr/bin/env bash
# GPU check (not part of make test): the tiny config end to end with every torch rule on
# CUDA (gpu.per_job: 1, one GPU job at a time), then the job time per rule and where each
# torch job ran, read from its log. Run it on a machine with a GPU:
#   tests/gpu/check.sh [workdir]        (PYTHON=... to use another interpreter than .venv's)
# Exit status: 0 when every torch job ran on CUDA, 2 when torch sees no GPU, 1 otherwise.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no GPU: torch.cuda.is_available() is False on $(hostname)" >&2
    exit 2
fi
WORK=${1:-$(mktemp -d -t avsep-gpu-XXXX)}
mkdir -p "$WORK"
RULES=$("$PY" -c "from avsep.jobs import TORCH_RULES; print(', '.join(TORCH_RULES))")
printf 'device: cuda\ngpu:\n  per_job: 1\n  rules: [%s]\n' "$RULES" > "$WORK/gpu.yaml"
"$PY" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name())"
cd "$WORK"
start=$(date +%s)
SLURM_CONF=/dev/null "$PY" -m snakemake -s "$REPO/Snakefile" --cores "$(nproc)" --resources gpu=1 \
    --configfile "$REPO/config/config.yaml" "$REPO/tests/config/tiny.yaml" "$WORK/gpu.yaml" \
    > "$WORK/snakemake.out" 2>&1 || { tail -n 60 "$WORK/snakemake.out"; exit 1; }
echo "workflow: $(( $(date +%s) - start )) s wall, in $WORK"
"$PY" - "$WORK" <<'PY'
import re, sys
from pathlib import Path

import pandas as pd

from avsep.bench.workflow import summarize_benchmarks
from avsep.jobs import TORCH_RULES

work = Path(sys.argv[1])
table = summarize_benchmarks(work).sort_values("total_s", ascending=False)
print(table.to_string(index=False))
where = {}
for log in sorted((work / "logs").rglob("*.log")):
    rule = log.relative_to(work / "logs").parts[0].removesuffix(".log")
    for device in re.findall(r"device: (\w+)", log.read_text()):
        where.setdefault(rule, set()).add(device)
print("\ndevice per torch rule:")
for rule in TORCH_RULES:
    print(f"  {rule:20s} {', '.join(sorted(where.get(rule, {'(no job)'})))}")
methods = work / "results" / "eval" / "methods.tsv"
print("\n" + pd.read_csv(methods, sep="\t")[["method", "sdr_mean", "sdr_lo", "sdr_hi"]].to_string(index=False))
off = [r for r in TORCH_RULES if where.get(r, {"cuda"}) != {"cuda"}]
sys.exit(f"torch rules that did not run on CUDA: {off}" if off else 0)
PY

#!/usr/bin/env bash
# The BN network against the trainers an ML.NET user would pick instead, on the same split, one process per trainer
# so that each one's peak resident set (GNU time's "Maximum resident set size") is its own:
#
#   scripts/compare-tasks.sh binary        # Fashion-MNIST, shirts against the rest: AUC, accuracy, F1, log-loss
#   scripts/compare-tasks.sh regression    # scikit-learn's diabetes data: RMSE, MAE, R²
#   RUNS=3 scripts/compare-tasks.sh regression   # 3 rounds, the trainers' order rotated each round; medians at the end
#
# Extra arguments go to the command (for example --epochs 5). OMP_WAIT_POLICY=PASSIVE for every run.
set -euo pipefail
cd "$(dirname "$0")/.."
task=${1:?usage: scripts/compare-tasks.sh binary|regression [command options]}
shift
export OMP_WAIT_POLICY=PASSIVE
[ -x /usr/bin/time ] || { echo "compare-tasks: /usr/bin/time (GNU time) is required" >&2; exit 1; }
command -v python3 > /dev/null || { echo "compare-tasks: python3 is required to read the metrics" >&2; exit 1; }
dotnet build -c Release src/Bn.MLNet.Samples -nologo -v q > /dev/null
dll=src/Bn.MLNet.Samples/bin/Release/net10.0/Bn.MLNet.Samples.dll
runs=${RUNS:-1}
trainers=(bncnn fasttree lightgbm sdca)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for r in $(seq 1 "$runs"); do
  for i in "${!trainers[@]}"; do
    t=${trainers[$(( (i + r - 1) % ${#trainers[@]} ))]}
    /usr/bin/time -v -o "$tmp/$t.$r.time" dotnet "$dll" "$task" --trainer "$t" --metrics-out "$tmp/$t.$r.json" "$@" > "$tmp/$t.$r.out"
    kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$tmp/$t.$r.time")
    echo "$kb" > "$tmp/$t.$r.kb"
    echo "round $r $t: $(cat "$tmp/$t.$r.json") peak RSS $((kb / 1024)) MB"
  done
done

python3 - "$tmp" "$runs" "${trainers[@]}" <<'PY'
import json, statistics, sys
tmp, runs, trainers = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = []
for t in trainers:
    ms = [json.load(open(f"{tmp}/{t}.{r}.json")) for r in range(1, runs + 1)]
    kb = [int(open(f"{tmp}/{t}.{r}.kb").read()) for r in range(1, runs + 1)]
    keys = list(ms[0].keys())
    rows.append((t, {k: statistics.median(m[k] for m in ms) for k in keys}, statistics.median(kb) / 1024))
keys = list(rows[0][1].keys())
print(f"medians of {runs} run(s)")
print("| trainer | " + " | ".join(keys) + " | peak RSS MB |")
print("|---|" + "---|" * (len(keys) + 1))
for t, m, mb in rows:
    print(f"| {t} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + f" | {mb:.0f} |")
PY

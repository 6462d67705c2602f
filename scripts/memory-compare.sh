#!/usr/bin/env bash
# Peak resident set and training throughput of the same short training run with this library's BatchNorm
# (-n Batch) and with libtorch's (-n BatchNative), side by side, and their ratios.
# NORMS="Batch BatchRenorm" compares two other normalizations (the first is the one measured, the second the baseline).
#
#   scripts/memory-compare.sh                       # train --epochs 1 --train-limit 15000 --test-limit 2000
#   scripts/memory-compare.sh --epochs 1            # any `train` options instead (here: the full 60,000 rows)
#   RUNS=3 scripts/memory-compare.sh                # alternate the two runs 3 times; report each and the medians
#
# Peak resident set = "Maximum resident set size" of /usr/bin/time -v for the whole process. Throughput = training
# images per second averaged over the run's epochs (from --metrics-out). OMP_WAIT_POLICY=PASSIVE on both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
[ -x /usr/bin/time ] || { echo "memory-compare: /usr/bin/time (GNU time) is required" >&2; exit 1; }
command -v python3 > /dev/null || { echo "memory-compare: python3 is required to read the metrics JSON" >&2; exit 1; }

dotnet build -c Release src/Bn.MLNet.Samples -nologo -v q > /dev/null
dll=src/Bn.MLNet.Samples/bin/Release/net10.0/Bn.MLNet.Samples.dll
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--epochs 1 --train-limit 15000 --test-limit 2000)
runs=${RUNS:-1}
norms=${NORMS:-Batch BatchNative}
read -r first second <<< "$norms"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "train ${args[*]}  (runs: $runs)"
for r in $(seq 1 "$runs"); do
  for n in $norms; do
    /usr/bin/time -v -o "$tmp/$n.$r.time" dotnet "$dll" train -q -n "$n" --metrics-out "$tmp/$n.$r.json" "${args[@]}" > "$tmp/$n.$r.out"
    kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$tmp/$n.$r.time")
    wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$tmp/$n.$r.time")
    ips=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["history"]; e=h.get("epochs") or h.get("Epochs"); print(round(sum((x.get("imagesPerSecond") or x.get("ImagesPerSecond")) for x in e)/len(e),1))' "$tmp/$n.$r.json")
    acc=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["testAccuracy"],4))' "$tmp/$n.$r.json")
    printf '%-12s run %d: peak RSS %6d MB   wall %8s   %8s images/s   test accuracy %s\n' "$n" "$r" $((kb / 1024)) "$wall" "$ips" "$acc"
    echo "$kb $ips" > "$tmp/$n.$r.res"
  done
done

python3 - "$tmp" "$runs" "$first" "$second" <<'PY'
import sys, statistics
tmp, runs, first, second = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def med(n, i): return statistics.median(float(open(f"{tmp}/{n}.{r}.res").read().split()[i]) for r in range(1, runs + 1))
a_kb, b_kb = med(first, 0), med(second, 0)
a_ips, b_ips = med(first, 1), med(second, 1)
print(f"peak RSS   {first} {a_kb/1024:.0f} MB / {second} {b_kb/1024:.0f} MB = {a_kb/b_kb:.2f}x")
print(f"throughput {first} {a_ips:.0f} / {second} {b_ips:.0f} images/s = {a_ips/b_ips:.2f}")
PY

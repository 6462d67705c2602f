#!/usr/bin/env bash
# Runs every experiment with its full budget and writes the reports, CSV and plots that the README quotes under
# docs/experiments/NAME/. Extra arguments go to each run (for example --threads 1).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
dotnet build -c Release src/Bn.MLNet.Samples
for name in figure1 learning-rates small-batch inference-modes regularization deep-sigmoid; do
  start=$(date +%s)
  dotnet run -c Release --no-build --project src/Bn.MLNet.Samples -- experiment "$name" --out "docs/experiments/$name" "$@"
  echo "$name: $(( $(date +%s) - start )) s" | tee -a docs/experiments/timings.txt
done

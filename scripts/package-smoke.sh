#!/usr/bin/env bash
# Packs Bn.MLNet into a temporary local feed, creates a brand-new console app in a temporary folder, adds the
# package from that feed, trains and evaluates through mlContext.MulticlassClassification.Trainers.BatchNormCnn, saves
# the model, and loads and evaluates it again in a new process (the accuracies must be equal).
#   MLNET_VERSION=6.0.0 scripts/package-smoke.sh   the app references that Microsoft.ML (and ImageAnalytics) instead of
#                                                  the package's floor (5.0.1), as an app on the newest ML.NET does
#   ONNXRUNTIME_VERSION=1.31.1 ...                 the app also references Microsoft.ML.OnnxRuntime, so the model must
#                                                  score on ONNX Runtime (without it: on libtorch); both runs check it
# The version carries a unique suffix so that the global NuGet cache never serves a stale copy; that version is
# removed from the cache again at the end, and so are the temporary folders.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/bnmlnet-pack.XXXXXX)"
suffix="smoke$(date +%s)"
version_prefix="$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' "$repo/Directory.Build.props")"
version="$version_prefix-$suffix"
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
cleanup() { rm -rf "$work" "$cache/bn.mlnet/$version"; rmdir "$cache/bn.mlnet" 2>/dev/null || true; }
trap cleanup EXIT

echo "== pack Bn.MLNet $version"
dotnet pack "$repo/src/Bn.MLNet" -c Release --version-suffix "$suffix" -o "$work/feed" -p:ContinuousIntegrationBuild=true
nupkg="$work/feed/Bn.MLNet.$version.nupkg"
listing="$(python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$nupkg")"
for entry in lib/net10.0/Bn.MLNet.dll lib/net10.0/Bn.MLNet.xml buildTransitive/Bn.MLNet.targets buildTransitive/PatchGlibcxxMarker.cs README.md LICENSE; do
  grep -qx "$entry" <<<"$listing" || { echo "package lacks $entry" >&2; exit 1; }
done

echo "== new console app"
mkdir -p "$work/app"
cd "$work/app"
dotnet new console --framework net10.0 --name SmokeApp --output . >/dev/null
# Bn.MLNet may come from the local feed only; its dependencies come from the machine's usual source.
upstream="$(dotnet nuget list source --format short | awk '/^E/{print $2; exit}')"
cat > nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="upstream" value="$upstream" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="local"><package pattern="Bn.MLNet" /></packageSource>
    <packageSource key="upstream"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
XML
dotnet add package Bn.MLNet --version "$version" >/dev/null
if [ -n "${MLNET_VERSION:-}" ]; then
  echo "== the app references Microsoft.ML $MLNET_VERSION"
  dotnet add package Microsoft.ML --version "$MLNET_VERSION" >/dev/null
  dotnet add package Microsoft.ML.ImageAnalytics --version "$MLNET_VERSION" >/dev/null
fi
engine=LibTorch
if [ -n "${ONNXRUNTIME_VERSION:-}" ]; then
  echo "== the app references Microsoft.ML.OnnxRuntime $ONNXRUNTIME_VERSION"
  dotnet add package Microsoft.ML.OnnxRuntime --version "$ONNXRUNTIME_VERSION" >/dev/null
  engine=OnnxRuntime
fi
cp "$repo/scripts/package-smoke/Program.cs" Program.cs
# The Fashion-MNIST loader belongs to the samples, not to the package: the app brings it as source, as an application
# brings its own data loading.
cp "$repo"/src/Bn.MLNet.Samples/Datasets/*.cs .
echo "== train, save"
dotnet build -c Release -v q -nologo >/dev/null
dotnet run -c Release --no-build -- train "$repo/datasets/fashion-mnist" "$work/model.zip" | tee "$work/train.out"
echo "== load and score in a new process"
dotnet run -c Release --no-build -- score "$repo/datasets/fashion-mnist" "$work/model.zip" | tee "$work/score.out"
if [ -n "${MLNET_VERSION:-}" ]; then
  grep -q "^Microsoft.ML ${MLNET_VERSION%%.*}\." "$work/train.out" || { echo "the app did not run on Microsoft.ML $MLNET_VERSION" >&2; exit 1; }
fi
for out in train score; do
  grep -qx "engine $engine" "$work/$out.out" || { echo "the $out run did not score with $engine" >&2; exit 1; }
done
trained="$(awk '/^accuracy/ {print $2}' "$work/train.out")"
scored="$(awk '/^accuracy/ {print $2}' "$work/score.out")"
[ -n "$trained" ] && [ "$trained" = "$scored" ] || { echo "accuracy after loading in a new process ($scored) differs from the trained model's ($trained)" >&2; exit 1; }
echo "== smoke test passed: accuracy $trained on $engine, the same after save and load in a new process"

using System.Text.Json.Nodes;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using Microsoft.ML;
using TorchSharp;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>Batch Renormalization in the network, the ML.NET pipeline, its inference modes and save/load.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class BatchRenormPipelineTests
{
    [Fact]
    public void NetworkUsesRenormLayersWithTheArchitecturesScheduleAndBatchNormKeys()
    {
        var arch = NetworkArchitecture.Default();
        arch.Normalization = NormalizationKind.BatchRenorm;
        arch.BatchRenormRMax = 2.5;
        arch.BatchRenormDMax = 4;
        arch.BatchRenormWarmupSteps = 123;
        using var renorm = new BatchNormCnnNetwork(arch);
        using var bn = new BatchNormCnnNetwork(NetworkArchitecture.Default());
        Assert.Equal(bn.state_dict().Keys, renorm.state_dict().Keys);
        var layers = renorm.modules().OfType<BatchNormBase>().ToList();
        Assert.Equal(5, layers.Count);
        Assert.Equal(4, layers.OfType<BatchRenorm2d>().Count());
        Assert.Single(layers.OfType<BatchRenorm1d>());
        foreach (var s in layers.OfType<BatchRenorm2d>().Select(l => l.Schedule))
            Assert.Equal((2.5, 4.0, 123L), (s.RMax, s.DMax, s.WarmupSteps));
        Assert.DoesNotContain(renorm.state_dict().Keys, k => k.StartsWith("features.0.bias", StringComparison.Ordinal));

        // A renorm layer is a BatchNorm2d, so the folding API takes it as it is.
        var conv = renorm.modules().OfType<TorchSharp.Modules.Conv2d>().First();
        using var folded = BatchNormFolding.Fold(conv, layers.OfType<BatchRenorm2d>().First());
        Assert.NotNull(folded.bias);
    }

    [Fact]
    public void PipelineTrainsScoresAndRoundTripsInEveryInferenceMode()
    {
        var scores = new Dictionary<BatchNormInferenceMode, float[][]>();
        foreach (var mode in Enum.GetValues<BatchNormInferenceMode>())
        {
            var p = TrainPipeline(mode, o =>
            {
                o.Normalization = NormalizationKind.BatchRenorm;
                o.BatchSize = 8;
                o.BatchRenormWarmupSteps = 20;
            });
            var metrics = p.Context.MulticlassClassification.Evaluate(p.Model.Transform(p.Test));
            Assert.True(metrics.MicroAccuracy > 0.4, $"{mode}: accuracy {metrics.MicroAccuracy}");
            var bn = BnTransformer(p.Model);
            Assert.Equal(NormalizationKind.BatchRenorm, bn.Architecture.Normalization);
            Assert.Equal(20L, bn.Architecture.BatchRenormWarmupSteps);
            Assert.All(bn.Network.modules().OfType<BatchRenorm2d>(), l => Assert.Equal(1.0 * BatchRenormSchedule.DefaultRMax, l.CurrentRMax));

            using var dir = new TempDir();
            var path = dir.File("renorm.zip");
            p.Context.Model.Save(p.Model, p.Train.Schema, path);
            var loaded = new MLContext(seed: 3).Model.Load(path, out _);
            var back = BnTransformer(loaded);
            Assert.Equal(bn.Architecture.ToJson(), back.Architecture.ToJson());
            Assert.Equal(mode, back.InferenceMode);
            scores[mode] = Scores(p.Model, p.Test);
            AssertClose(scores[mode], Scores(loaded, p.Test), 0f);
        }

        // Same seed and data: folding changes only the arithmetic; population statistics change the numbers.
        AssertClose(scores[BatchNormInferenceMode.RunningAverages], scores[BatchNormInferenceMode.Folded], 1e-4f);
        double maxDiff = scores[BatchNormInferenceMode.RunningAverages].Zip(scores[BatchNormInferenceMode.PopulationStatistics])
            .Max(x => x.First.Zip(x.Second).Max(y => Math.Abs(y.First - y.Second)));
        Assert.True(maxDiff > 1e-4, $"population statistics changed no score (max |Δ| = {maxDiff})");
    }

    [Fact]
    public void FormatVersionOneStillLoads()
    {
        var bn = BnTransformer(Pipeline.Model);
        using var dir = new TempDir();
        var path = dir.File("v1.zip");
        bn.SaveFormatVersionOverride = 1;
        try
        {
            Pipeline.Context.Model.Save(bn, Pipeline.Context.Transforms.Conversion.MapValueToKey("Label").Fit(Pipeline.Train).Transform(Pipeline.Train).Schema, path);
        }
        finally
        {
            bn.SaveFormatVersionOverride = null;
        }

        var loaded = new MLContext(seed: 4).Model.Load(path, out _);
        Assert.Equal(bn.Architecture.ToJson(), Assert.IsType<BatchNormCnnTransformer>(loaded).Architecture.ToJson());
        Assert.True(BatchNormCnnModelFormat.FormatVersion >= 2);
    }

    [Fact]
    public void ArchitectureJsonWithoutRenormFieldsReadsTheDefaults()
    {
        // What a version-1 model stores: the architecture JSON before Batch Renormalization existed.
        var json = JsonNode.Parse(NetworkArchitecture.Default().ToJson())!.AsObject();
        Assert.True(json.Remove("batchRenormRMax") && json.Remove("batchRenormDMax") && json.Remove("batchRenormWarmupSteps"));
        var arch = NetworkArchitecture.FromJson(json.ToJsonString());
        Assert.Equal(BatchRenormSchedule.DefaultRMax, arch.BatchRenormRMax);
        Assert.Equal(BatchRenormSchedule.DefaultDMax, arch.BatchRenormDMax);
        Assert.Equal(BatchRenormSchedule.DefaultWarmupSteps, arch.BatchRenormWarmupSteps);
        Assert.Equal(NormalizationKind.Batch, arch.Normalization);
    }
}

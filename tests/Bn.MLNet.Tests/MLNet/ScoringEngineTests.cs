using Bn.MLNet.Networks;
using Bn.MLNet.Onnx;
using Microsoft.ML;
using Microsoft.ML.Data;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>
/// The scoring engines: Automatic picks ONNX Runtime where the app has its native library (this test project references
/// Microsoft.ML.OnnxRuntime) and libtorch where it does not (simulated), both give the same scores on every output and
/// every scoring path, and the choice is saved with the model. The exported graph's equality with libtorch for every
/// architecture is in <c>OnnxExportTests</c>.
/// </summary>
[Collection(TorchGlobalStateCollection.Name)]
public class ScoringEngineTests
{
    private const float Tolerance = 1e-5f;

    [Fact]
    public void AutomaticScoresWithOnnxRuntimeWhereTheAppReferencesItAndLogsTheChoice()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        Assert.Equal(ScoringEngine.Automatic, new BatchNormCnnOptions().ScoringEngine);
        Assert.Equal(ScoringEngine.Automatic, bn.ScoringEngine);
        Assert.Equal(ScoringEngine.OnnxRuntime, bn.ActiveScoringEngine);

        var (ml, log) = LoggingContext();
        using var network = bn.CopyNetwork();
        using var model = BatchNormCnnTransformer.FromNetwork(ml, network, bn.ClassNames);
        Assert.Equal(ScoringEngine.OnnxRuntime, model.ActiveScoringEngine);
        Assert.Contains(log, m => m.Contains("BatchNormCnn: scoring with ONNX Runtime") && m.Contains("intra-op threads"));
    }

    [Fact]
    public void BothEnginesGiveTheSameScoresPredictionsAndEmbeddings()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        using var network = bn.CopyNetwork();
        var options = new BatchNormCnnOptions { EmbeddingColumnName = "Embedding", InferenceBatchSize = 48 };
        using var onnx = BatchNormCnnTransformer.FromNetwork(p.Context, network, bn.ClassNames, options);
        using var torch = onnx.WithScoringEngine(ScoringEngine.LibTorch);
        Assert.Equal(ScoringEngine.OnnxRuntime, onnx.ActiveScoringEngine);
        Assert.Equal(ScoringEngine.LibTorch, torch.ActiveScoringEngine);

        IDataView a = onnx.Transform(p.Test), b = torch.Transform(p.Test);
        AssertClose(b.GetColumn<float[]>("Score").ToArray(), a.GetColumn<float[]>("Score").ToArray(), Tolerance);
        AssertClose(b.GetColumn<float[]>("Embedding").ToArray(), a.GetColumn<float[]>("Embedding").ToArray(), Tolerance);
        Assert.Equal(b.GetColumn<uint>("PredictedLabel").ToArray(), a.GetColumn<uint>("PredictedLabel").ToArray());

        // The prediction engine (one row per run) agrees with the batched cursor of the other engine.
        var engine = p.Context.Model.CreatePredictionEngine<ImageRow, EngineRow>(onnx, inputSchema: p.Test.Schema);
        var rows = p.Test.GetColumn<float[]>("Features").Take(12).ToArray();
        var expected = b.GetColumn<float[]>("Score").Take(12).ToArray();
        for (int i = 0; i < rows.Length; i++)
            AssertClose([expected[i]], [engine.Predict(new ImageRow { Features = rows[i] }).Score], Tolerance);
    }

    [Fact]
    public void WithoutOnnxRuntimeAutomaticFallsBackToLibTorchAndAnExplicitRequestIsRefused()
    {
        var bn = BnTransformer(Pipeline.Model);
        using var network = bn.CopyNetwork();
        var (ml, log) = LoggingContext();
        using (OnnxRuntimeAvailability.SimulateUnavailable("ONNX Runtime's native library does not load (simulated)"))
        {
            using var model = BatchNormCnnTransformer.FromNetwork(ml, network, bn.ClassNames);
            Assert.Equal(ScoringEngine.LibTorch, model.ActiveScoringEngine);
            Assert.Contains(log, m => m.Contains("BatchNormCnn: scoring with libtorch, batch normalization folded (ONNX Runtime's native library does not load (simulated))"));
            AssertClose(Scores(bn, Pipeline.Test), Scores(model, Pipeline.Test), Tolerance);

            var e = Assert.Throws<InvalidOperationException>(() =>
                BatchNormCnnTransformer.FromNetwork(ml, network, bn.ClassNames, new BatchNormCnnOptions { ScoringEngine = ScoringEngine.OnnxRuntime }));
            Assert.Contains("BatchNormCnnOptions.ScoringEngine is OnnxRuntime, but ONNX Runtime's native library does not load (simulated)", e.Message);
            Assert.Throws<InvalidOperationException>(() => model.WithScoringEngine(ScoringEngine.OnnxRuntime));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => bn.WithScoringEngine((ScoringEngine)7));
        var invalid = Assert.Throws<ArgumentException>(() => new BatchNormCnnOptions { ScoringEngine = (ScoringEngine)7 }.Validate());
        Assert.Contains("ScoringEngine", invalid.Message);
    }

    [Fact]
    public void TheEngineIsSavedWithTheModelAndOlderModelsLoadWithAutomatic()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        using var dir = new TempDir();
        using var torch = bn.WithScoringEngine(ScoringEngine.LibTorch);
        p.Context.Model.Save(torch, p.Test.Schema, dir.File("torch.zip"));
        using var older = bn.WithScoringEngine(ScoringEngine.LibTorch);
        older.SaveFormatVersionOverride = 4;
        p.Context.Model.Save(older, p.Test.Schema, dir.File("v4.zip"));

        var fresh = new MLContext(seed: 2);
        var loaded = (BatchNormCnnTransformer)fresh.Model.Load(dir.File("torch.zip"), out _);
        Assert.Equal(ScoringEngine.LibTorch, loaded.ScoringEngine);
        Assert.Equal(ScoringEngine.LibTorch, loaded.ActiveScoringEngine);
        var v4 = (BatchNormCnnTransformer)fresh.Model.Load(dir.File("v4.zip"), out _);
        Assert.Equal(ScoringEngine.Automatic, v4.ScoringEngine);
        AssertClose(Scores(loaded, p.Test), Scores(v4, p.Test), Tolerance);
        loaded.Dispose();
        v4.Dispose();
    }

    [Theory]
    [InlineData(NetworkTask.MulticlassClassification)]
    [InlineData(NetworkTask.BinaryClassification)]
    public void BatchesSplitIntoPassesScoreAsRowByRowOnBothEngines(NetworkTask task)
    {
        // 1024 channels at 28×28 is 3.2 MB of activation a row, so a batch of 12 rows is scored in passes of 4.
        var architecture = new NetworkArchitecture
        {
            Task = task, ClassCount = task == NetworkTask.MulticlassClassification ? 3 : 10,
            ConvStages = [new ConvStage(1024, 1, true)], HiddenLayers = [8],
        };
        Assert.Equal([(0, 4), (4, 4), (8, 4)], ForwardPasses.Split(12, architecture));
        using var network = new BatchNormCnnNetwork(architecture, seed: 3);
        var ml = new MLContext(seed: 1);
        string[] classes = task == NetworkTask.MulticlassClassification ? ["a", "b", "c"] : [];
        IDataView data = ml.Data.LoadFromEnumerable(Pipeline.Test.GetColumn<float[]>("Features").Take(12)
            .Select(f => new FeatureRow { Features = f }));

        float[][] Run(ScoringEngine engine, int batch)
        {
            using var model = BatchNormCnnTransformer.FromNetwork(ml, network, classes,
                new BatchNormCnnOptions { ScoringEngine = engine, InferenceBatchSize = batch });
            IDataView scored = model.Transform(data);
            return task == NetworkTask.MulticlassClassification
                ? scored.GetColumn<float[]>("Score").ToArray()
                : scored.GetColumn<float>("Score").Zip(scored.GetColumn<float>("Probability"), (s, q) => new[] { s, q }).ToArray();
        }

        // Binary scores are logits summed over 200,704 values: libtorch alone differs by up to 2e-5 between batch sizes,
        // so this test holds every path to the 1e-4 the scores must keep; a row scored from the wrong offset is far off.
        const float tolerance = 1e-4f;
        float[][] reference = Run(ScoringEngine.LibTorch, 1);
        AssertClose(reference, Run(ScoringEngine.LibTorch, 12), tolerance);
        AssertClose(reference, Run(ScoringEngine.OnnxRuntime, 1), tolerance);
        AssertClose(reference, Run(ScoringEngine.OnnxRuntime, 12), tolerance);
    }

    private static (MLContext Ml, List<string> Log) LoggingContext()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        return (ml, log);
    }

    private sealed class FeatureRow
    {
        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    private sealed class EngineRow
    {
        [VectorType(10)]
        public float[] Score { get; set; } = [];
    }
}

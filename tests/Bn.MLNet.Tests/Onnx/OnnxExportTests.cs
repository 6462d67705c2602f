using System.Text.Json;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Tests.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.Onnx;

/// <summary>
/// The exported ONNX file scores like <see cref="BatchNormCnnTransformer.Transform"/> on libtorch for every architecture
/// the options express, through ONNX Runtime directly (the whole batch as one input), through ML.NET's ApplyOnnxModel and
/// through the transformer's own ONNX Runtime engine.
/// </summary>
[Collection(TorchGlobalStateCollection.Name)]
public class OnnxExportTests
{
    private const float Tolerance = 1e-4f;
    private const int TestRows = 64;

    public static TheoryData<string> Architectures => new(ArchitectureCases.Keys);

    private static readonly Dictionary<string, Action<BatchNormCnnOptions>> ArchitectureCases = new()
    {
        ["Batch-ReLU-RunningAverages-Embedding"] = o => o.EmbeddingColumnName = "Embedding",
        ["BatchNative-Tanh"] = o => { o.Normalization = NormalizationKind.BatchNative; o.Activation = ActivationKind.Tanh; },
        ["Group-Sigmoid"] = o => { o.Normalization = NormalizationKind.Group; o.GroupCount = 4; o.Activation = ActivationKind.Sigmoid; },
        ["Layer-ReLU-Embedding"] = o => { o.Normalization = NormalizationKind.Layer; o.EmbeddingColumnName = "Embedding"; },
        ["None-Sigmoid"] = o => { o.Normalization = NormalizationKind.None; o.Activation = ActivationKind.Sigmoid; },
        ["Batch-PopulationStatistics"] = o => o.InferenceMode = BatchNormInferenceMode.PopulationStatistics,
        ["Batch-Folded"] = o => o.InferenceMode = BatchNormInferenceMode.Folded,
        ["BatchRenorm-ReLU"] = o => { o.Normalization = NormalizationKind.BatchRenorm; o.BatchRenormWarmupSteps = 5; },
        ["BatchNative-Folded-Tanh"] = o => { o.Normalization = NormalizationKind.BatchNative; o.InferenceMode = BatchNormInferenceMode.Folded; o.Activation = ActivationKind.Tanh; },
        ["FullyConnected-Batch-TwoHidden"] = o => { o.ConvStages = []; o.HiddenLayers = [32, 16]; },
        ["TwoStages-NoHidden-Group-Embedding"] = o =>
        {
            o.ConvStages = [new ConvStage(8, 2, true), new ConvStage(16, 1, false)];
            o.HiddenLayers = [];
            o.Normalization = NormalizationKind.Group;
            o.GroupCount = 2;
            o.EmbeddingColumnName = "Embedding";
        },
        ["Batch-FlipAveraging-Embedding"] = o => { o.TestTimeFlipAveraging = true; o.EmbeddingColumnName = "Embedding"; },
        ["Batch-Folded-FlipAveraging"] = o => { o.InferenceMode = BatchNormInferenceMode.Folded; o.TestTimeFlipAveraging = true; },
        ["Layer-Tanh-NoPool"] = o =>
        {
            o.ConvStages = [new ConvStage(4, 1, false)];
            o.Normalization = NormalizationKind.Layer;
            o.Activation = ActivationKind.Tanh;
        },
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void ExportedModelScoresLikeTransform(string name)
    {
        var (ml, model, test) = Train(ArchitectureCases[name]);
        using var dir = new TempDir();
        string path = dir.File("model.onnx");
        model.SaveAsOnnx(path);

        var expectedScores = model.Transform(test).GetColumn<float[]>("Score").ToArray();
        float[][]? expectedEmbedding = model.EmbeddingColumnName is null ? null : model.Transform(test).GetColumn<float[]>("Embedding").ToArray();

        // ONNX Runtime: the whole test set as one [N, 784] input.
        var rt = RunOnnxRuntime(path, test, model);
        AssertClose(expectedScores, rt.Scores, Tolerance);
        if (expectedEmbedding is not null)
            AssertClose(expectedEmbedding, rt.Embedding!, Tolerance);
        for (int i = 0; i < expectedScores.Length; i++)
            Assert.Equal(ArgMax(expectedScores[i]), rt.PredictedIndex[i]);

        // ML.NET: ApplyOnnxModel in a pipeline.
        var outputs = model.EmbeddingColumnName is null ? new[] { "Score", "PredictedLabelIndex" } : new[] { "Score", "PredictedLabelIndex", "Embedding" };
        var onnx = ml.Transforms.ApplyOnnxModel(outputs, ["Features"], path).Fit(test);
        var scored = onnx.Transform(test);
        AssertClose(expectedScores, scored.GetColumn<float[]>("Score").ToArray(), Tolerance);
        var indices = scored.GetColumn<long[]>("PredictedLabelIndex").ToArray();
        for (int i = 0; i < expectedScores.Length; i++)
            Assert.Equal(ArgMax(expectedScores[i]), Assert.Single(indices[i]));
        if (expectedEmbedding is not null)
            AssertClose(expectedEmbedding, scored.GetColumn<float[]>("Embedding").ToArray(), Tolerance);
        (onnx as IDisposable)?.Dispose();

        // The transformer's ONNX Runtime engine: every output column, through Transform and a prediction engine.
        Assert.Equal(ScoringEngine.LibTorch, model.ActiveScoringEngine);
        using var engine = model.WithScoringEngine(ScoringEngine.OnnxRuntime);
        Assert.Equal(ScoringEngine.OnnxRuntime, engine.ActiveScoringEngine);
        var viaEngine = engine.Transform(test);
        AssertClose(expectedScores, viaEngine.GetColumn<float[]>("Score").ToArray(), Tolerance);
        Assert.Equal(model.Transform(test).GetColumn<uint>("PredictedLabel").ToArray(), viaEngine.GetColumn<uint>("PredictedLabel").ToArray());
        if (expectedEmbedding is not null)
            AssertClose(expectedEmbedding, viaEngine.GetColumn<float[]>("Embedding").ToArray(), Tolerance);
        model.Dispose();
    }

    [Fact]
    public void GraphDeclaresSymbolicBatchAndMetadata()
    {
        var (_, model, _) = Train(o => o.EmbeddingColumnName = "Embedding");
        using var stream = new MemoryStream();
        model.SaveAsOnnx(stream);
        using var session = new InferenceSession(stream.ToArray());

        var input = Assert.Single(session.InputMetadata);
        Assert.Equal("Features", input.Key);
        Assert.Equal(new[] { -1, 784 }, input.Value.Dimensions);
        Assert.Equal("N", input.Value.SymbolicDimensions[0]);
        Assert.Equal(typeof(float), input.Value.ElementType);
        Assert.Equal(new[] { "Embedding", "Score", "PredictedLabelIndex" }, session.OutputMetadata.Keys);
        Assert.Equal(new[] { -1, 10 }, session.OutputMetadata["Score"].Dimensions);
        Assert.Equal(new[] { -1, 32 }, session.OutputMetadata["Embedding"].Dimensions);
        Assert.Equal(typeof(long), session.OutputMetadata["PredictedLabelIndex"].ElementType);

        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(model.ClassNames, JsonSerializer.Deserialize<string[]>(metadata["bn.mlnet.class_names"]));
        Assert.Equal(model.Architecture.ToJson(), metadata["bn.mlnet.architecture"]);
        Assert.Equal("RunningAverages", metadata["bn.mlnet.inference_mode"]);
        Assert.Equal("1,28,28", metadata["bn.mlnet.input_shape"]);
        Assert.Equal("false", metadata["bn.mlnet.test_time_flip_averaging"]);
        Assert.Equal("Bn.MLNet", session.ModelMetadata.ProducerName);
        model.Dispose();
    }

    [Fact]
    public void SaveLoadExportRoundTripGivesTheSameFile()
    {
        var p = TrainPipeline(BatchNormInferenceMode.RunningAverages, o => TinyData(o));
        using var dir = new TempDir();
        string zip = dir.File("model.zip");
        p.Context.Model.Save(p.Model, p.Train.Schema, zip);
        var fresh = new MLContext(seed: 3);
        var loaded = fresh.Model.Load(zip, out _);

        BnTransformer(p.Model).SaveAsOnnx(dir.File("original.onnx"));
        BnTransformer(loaded).SaveAsOnnx(dir.File("loaded.onnx"));
        Assert.Equal(File.ReadAllBytes(dir.File("original.onnx")), File.ReadAllBytes(dir.File("loaded.onnx")));

        var test = fresh.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Test, TestRows));
        var onnx = fresh.Transforms.ApplyOnnxModel("Score", "Features", dir.File("loaded.onnx")).Fit(test);
        AssertClose(Scores(loaded, test), onnx.Transform(test).GetColumn<float[]>("Score").ToArray(), Tolerance);
        (onnx as IDisposable)?.Dispose();
    }

    [Fact]
    public void DisposedTransformerThrowsObjectDisposed()
    {
        var (_, model, _) = Train(_ => { });
        model.Dispose();
        using var dir = new TempDir();
        Assert.Throws<ObjectDisposedException>(() => model.SaveAsOnnx(dir.File("model.onnx")));
        Assert.Throws<ObjectDisposedException>(() => model.SaveAsOnnx(new MemoryStream()));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void UnwritableTargetsGiveClearErrorsAndLeaveNoFile()
    {
        var (_, model, _) = Train(_ => { });
        using var dir = new TempDir();

        string missing = Path.Combine(dir.Path, "no-such-folder", "model.onnx");
        var ex = Assert.Throws<IOException>(() => model.SaveAsOnnx(missing));
        Assert.Contains(missing, ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));

        // The target exists as a folder: the move fails and the temporary file is removed.
        string folder = dir.File("model.onnx");
        Directory.CreateDirectory(folder);
        Assert.Throws<IOException>(() => model.SaveAsOnnx(folder));
        Assert.Equal(new[] { folder }, Directory.GetFileSystemEntries(dir.Path));

        // An existing file is replaced whole.
        string target = dir.File("existing.onnx");
        File.WriteAllText(target, "old");
        model.SaveAsOnnx(target);
        using (var session = new InferenceSession(target))
            Assert.Equal("Features", Assert.Single(session.InputMetadata).Key);

        Assert.Throws<ArgumentException>(() => model.SaveAsOnnx(new MemoryStream(new byte[10], writable: false)));
        var failing = Assert.Throws<IOException>(() => model.SaveAsOnnx(new FailingStream()));
        Assert.Contains("ONNX model", failing.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => model.SaveAsOnnx(" "));
        model.Dispose();
    }

    [Fact]
    public void ColumnNameClashingWithAGraphValueIsRefusedNamingIt()
    {
        var (_, model, _) = Train(o => o.EmbeddingColumnName = "logits");
        using var dir = new TempDir();
        var ex = Assert.Throws<NotSupportedException>(() => model.SaveAsOnnx(dir.File("model.onnx")));
        Assert.Contains("'logits'", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
        model.Dispose();
    }

    private static void TinyData(BatchNormCnnOptions o) => o.MaxSteps = 4;

    private static (MLContext Ml, BatchNormCnnTransformer Model, IDataView Test) Train(Action<BatchNormCnnOptions> configure)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 200));
        var test = ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Test, TestRows));
        var options = SmallOptions();
        options.BatchSize = 25;
        options.ScoringEngine = ScoringEngine.LibTorch;   // the reference the exported graph is compared with
        configure(options);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        var model = ml.Transforms.BatchNormCnn(options).Fit(keyed.Transform(train));
        return (ml, model, test);
    }

    private sealed record RuntimeScores(float[][] Scores, float[][]? Embedding, long[] PredictedIndex);

    private static RuntimeScores RunOnnxRuntime(string path, IDataView test, BatchNormCnnTransformer model)
    {
        var rows = test.GetColumn<float[]>("Features").ToArray();
        int n = rows.Length, length = rows[0].Length;
        var flat = new float[n * length];
        for (int i = 0; i < n; i++)
            rows[i].CopyTo(flat, i * length);

        using var session = new InferenceSession(path);
        using var input = OrtValue.CreateTensorValueFromMemory(flat, [n, length]);
        var names = session.OutputMetadata.Keys.ToArray();
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["Features"], [input], names);
        var byName = names.Zip(results).ToDictionary(z => z.First, z => z.Second);
        float[][] Rows2d(OrtValue v)
        {
            var shape = v.GetTensorTypeAndShape().Shape;
            Assert.Equal(n, shape[0]);
            var data = v.GetTensorDataAsSpan<float>().ToArray();
            return Enumerable.Range(0, n).Select(i => data.AsSpan(i * (int)shape[1], (int)shape[1]).ToArray()).ToArray();
        }

        return new RuntimeScores(
            Rows2d(byName["Score"]),
            model.EmbeddingColumnName is null ? null : Rows2d(byName["Embedding"]),
            byName[model.OnnxPredictedIndexName].GetTensorDataAsSpan<long>().ToArray());
    }

    private sealed class FailingStream : MemoryStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => throw new IOException("disk full");

        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("disk full");
    }
}

using System.IO.Compression;
using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

[Collection(TorchGlobalStateCollection.Name)]
public class BatchNormCnnSaveLoadTests
{
    private const string NetworkEntrySuffix = "BatchNormCnn.bin";

    [Fact]
    public void SavedPipelineLoadsInFreshContextWithIdenticalScores()
    {
        var p = Pipeline;
        using var dir = new TempDir();
        var path = dir.File("model.zip");
        p.Context.Model.Save(p.Model, p.Train.Schema, path);

        var fresh = new MLContext(seed: 99); // nothing registered explicitly
        var loaded = fresh.Model.Load(path, out var inputSchema);
        Assert.NotNull(inputSchema.GetColumnOrNull("Features"));
        var data = fresh.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Test, 100));
        AssertClose(Scores(p.Model, data), Scores(loaded, data), 0f);
        Assert.Equal(p.Model.Transform(data).GetColumn<string>("PredictedLabel"), loaded.Transform(data).GetColumn<string>("PredictedLabel"));

        var original = BnTransformer(p.Model);
        var back = BnTransformer(loaded);
        Assert.Equal(original.ClassNames, back.ClassNames);
        Assert.Equal(original.InferenceMode, back.InferenceMode);
        Assert.Equal(original.Architecture.ToJson(), back.Architecture.ToJson());
        Assert.Equal(original.Network.InputMean, back.Network.InputMean);
        Assert.Equal(original.TrainingHistory!.ToJson(), back.TrainingHistory!.ToJson());
        // Running statistics are part of the state dict and survive the round trip.
        var a = original.Network.state_dict();
        var b = back.Network.state_dict();
        Assert.Equal(a.Keys, b.Keys);
        Assert.Contains(a.Keys, k => k.EndsWith("running_mean", StringComparison.Ordinal));
        foreach (var k in a.Keys)
            Assert.True(a[k].eq(b[k]).all().item<bool>(), $"state-dict entry {k} differs after loading");

        // The loaded pipeline's prediction engine agrees as well.
        var engine = fresh.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(loaded);
        var row = Rows(FashionMnistSplit.Test, 1)[0];
        AssertClose([Scores(p.Model, fresh.Data.LoadFromEnumerable([row]))[0]], [engine.Predict(row).Score], 1e-5f);
    }

    [Fact]
    public void SavedPipelineScoresIdenticallyInAChildProcess()
    {
        var p = Pipeline;
        using var dir = new TempDir();
        var path = dir.File("model.zip");
        p.Context.Model.Save(p.Model, p.Train.Schema, path);
        var rows = Rows(FashionMnistSplit.Test, 30);
        var rowsPath = dir.File("rows.bin");
        ChildProcessProgram.WriteRows(rowsPath, rows);

        var (code, stdout, stderr) = ChildProcessProgram.Run("score", path, rowsPath);
        Assert.True(code == 0, $"child failed ({code}): {stderr}");
        var expected = Scores(p.Model, p.Context.Data.LoadFromEnumerable(rows)).Select(ChildProcessProgram.FormatScores);
        Assert.Equal(expected, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Theory]
    [InlineData(BatchNormInferenceMode.PopulationStatistics)]
    [InlineData(BatchNormInferenceMode.Folded)]
    public void InferenceModeSurvivesSaveAndLoad(BatchNormInferenceMode mode)
    {
        var p = TrainPipeline(mode);
        using var dir = new TempDir();
        var path = dir.File("model.zip");
        p.Context.Model.Save(p.Model, p.Train.Schema, path);
        var loaded = new MLContext(seed: 5).Model.Load(path, out _);
        Assert.Equal(mode, BnTransformer(loaded).InferenceMode);
        AssertClose(Scores(p.Model, p.Test), Scores(loaded, p.Test), 0f);
    }

    [Fact]
    public void TruncatedFilesAreRefused()
    {
        var path = SaveShared(out var dir);
        using (dir)
        {
            var bytes = File.ReadAllBytes(path);
            foreach (double fraction in new[] { 0.1, 0.5, 0.9, 0.999 })
            {
                var cut = dir.File($"cut{fraction}.zip");
                File.WriteAllBytes(cut, bytes.AsSpan(0, (int)(bytes.Length * fraction)).ToArray());
                AssertRefused(cut);
            }

            // A zip that is whole but whose network stream was truncated.
            var inner = dir.File("inner.zip");
            File.Copy(path, inner);
            RewriteEntry(inner, NetworkEntrySuffix, b => b.AsSpan(0, b.Length - 100).ToArray());
            var ex = AssertRefused(inner);
            Assert.IsType<InvalidDataException>(ex);
            Assert.Contains("truncated", ex.Message);
        }
    }

    [Fact]
    public void CorruptedAndEditedFilesAreRefused()
    {
        var path = SaveShared(out var dir);
        using (dir)
        {
            // One flipped bit in a weight: the checksum catches it.
            var flipped = dir.File("flipped.zip");
            File.Copy(path, flipped);
            RewriteEntry(flipped, NetworkEntrySuffix, b =>
            {
                b[b.Length / 2] ^= 0x10;
                return b;
            });
            var ex = Assert.IsType<InvalidDataException>(AssertRefused(flipped));
            Assert.Contains("SHA-256", ex.Message);

            // An edited main block (e.g. another score column name).
            var edited = dir.File("edited.zip");
            File.Copy(path, edited);
            RewriteEntry(edited, MainEntryName(edited), EditMainBlock);
            Assert.IsType<InvalidDataException>(AssertRefused(edited));

            // Random garbage instead of the network stream.
            var garbage = dir.File("garbage.zip");
            File.Copy(path, garbage);
            RewriteEntry(garbage, NetworkEntrySuffix, b =>
            {
                new Random(5).NextBytes(b);
                return b;
            });
            Assert.IsType<InvalidDataException>(AssertRefused(garbage));

            // The network stream removed.
            var missing = dir.File("missing.zip");
            File.Copy(path, missing);
            using (var zip = ZipFile.Open(missing, ZipArchiveMode.Update))
                zip.Entries.Single(e => e.FullName.EndsWith(NetworkEntrySuffix, StringComparison.Ordinal)).Delete();
            Assert.Contains("no stream", AssertRefused(missing).Message);
        }
    }

    [Fact]
    public void NewerPayloadFormatIsRefused()
    {
        var bn = BnTransformer(Pipeline.Model);
        using var dir = new TempDir();
        var path = dir.File("newer.zip");
        bn.SaveFormatVersionOverride = BatchNormCnnModelFormat.FormatVersion + 1;
        try
        {
            Pipeline.Context.Model.Save(bn, KeyedSchema(), path);
        }
        finally
        {
            bn.SaveFormatVersionOverride = null;
        }

        var ex = Assert.IsType<InvalidDataException>(AssertRefused(path));
        Assert.Contains("newer Bn.MLNet", ex.Message);
    }

    [Fact]
    public void MissingOrExtraWeightsAreRefused()
    {
        var bn = BnTransformer(Pipeline.Model);
        using var dir = new TempDir();
        var missing = dir.File("missing-weight.zip");
        bn.SaveTensorEditor = t => t.Where(x => !x.Name.EndsWith("running_var", StringComparison.Ordinal)).ToList();
        try
        {
            Pipeline.Context.Model.Save(bn, KeyedSchema(), missing);
        }
        finally
        {
            bn.SaveTensorEditor = null;
        }

        var ex = Assert.IsType<InvalidDataException>(AssertRefused(missing));
        Assert.Contains("missing", ex.Message);
        Assert.Contains("running_var", ex.Message);

        var extra = dir.File("extra-weight.zip");
        bn.SaveTensorEditor = t => [.. t, new NamedTensor("features.99.weight", TorchSharp.torch.ScalarType.Float32, [2], new float[] { 1, 2 })];
        try
        {
            Pipeline.Context.Model.Save(bn, KeyedSchema(), extra);
        }
        finally
        {
            bn.SaveTensorEditor = null;
        }

        ex = Assert.IsType<InvalidDataException>(AssertRefused(extra));
        Assert.Contains("unexpected: features.99.weight", ex.Message);

        var reshaped = dir.File("reshaped.zip");
        bn.SaveTensorEditor = t => t.Select(x => x.Name == "logits.bias" ? x with { Shape = [5, 2] } : x).ToList();
        try
        {
            Pipeline.Context.Model.Save(bn, KeyedSchema(), reshaped);
        }
        finally
        {
            bn.SaveTensorEditor = null;
        }

        Assert.Contains("logits.bias", Assert.IsType<InvalidDataException>(AssertRefused(reshaped)).Message);
    }

    [Fact]
    public void RegisterBatchNormCnnIsIdempotentAndLoadsAlone()
    {
        var bn = BnTransformer(Pipeline.Model);
        using var dir = new TempDir();
        var path = dir.File("alone.zip");
        Pipeline.Context.Model.Save(bn, KeyedSchema(), path);
        var ml = new MLContext(seed: 0);
        ml.ComponentCatalog.RegisterBatchNormCnn();
        ml.ComponentCatalog.RegisterBatchNormCnn();
        using var loaded = Assert.IsType<BatchNormCnnTransformer>(ml.Model.Load(path, out var schema));
        var keyed = Pipeline.Context.Transforms.Conversion.MapValueToKey("Label").Fit(Pipeline.Train).Transform(Pipeline.Test);
        AssertClose(Scores(bn, keyed), Scores(loaded, keyed), 0f);
        Assert.Equal(KeyedSchema().Count, schema.Count);
    }

    private static Microsoft.ML.DataViewSchema KeyedSchema() =>
        Pipeline.Context.Transforms.Conversion.MapValueToKey("Label").Fit(Pipeline.Train).Transform(Pipeline.Train).Schema;

    private static string SaveShared(out TempDir dir)
    {
        dir = new TempDir();
        var path = dir.File("model.zip");
        Pipeline.Context.Model.Save(Pipeline.Model, Pipeline.Train.Schema, path);
        return path;
    }

    /// <summary>Loading must fail with a clear exception; returns the most specific one (ML.NET wraps loader errors).</summary>
    private static Exception AssertRefused(string path)
    {
        var ex = Record.Exception(() => new MLContext(seed: 1).Model.Load(path, out _));
        Assert.NotNull(ex);
        var specific = ex;
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is InvalidDataException or FormatException)
                specific = e;
        }

        Assert.False(specific is NullReferenceException or IndexOutOfRangeException or AccessViolationException, ex.ToString());
        return specific;
    }

    /// <summary>The main stream of the BatchNormCnn transformer: Model.key beside its network stream.</summary>
    private static string MainEntryName(string zipPath)
    {
        using var zip = ZipFile.OpenRead(zipPath);
        var network = zip.Entries.Single(e => e.FullName.Replace('\\', '/').EndsWith(NetworkEntrySuffix, StringComparison.Ordinal)).FullName.Replace('\\', '/');
        return network[..^NetworkEntrySuffix.Length] + "Model.key";
    }

    private static void RewriteEntry(string zipPath, string suffix, Func<byte[], byte[]> edit)
    {
        using var zip = ZipFile.Open(zipPath, ZipArchiveMode.Update);
        var entry = zip.Entries.Single(e => e.FullName.Replace('\\', '/').EndsWith(suffix, StringComparison.Ordinal));
        byte[] bytes;
        using (var s = entry.Open())
        using (var ms = new MemoryStream())
        {
            s.CopyTo(ms);
            bytes = ms.ToArray();
        }

        var name = entry.FullName;
        entry.Delete();
        var replaced = zip.CreateEntry(name);
        using var o = replaced.Open();
        o.Write(edit(bytes));
    }

    /// <summary>Changes one character of the score column name inside the main block (after ML.NET's header).</summary>
    private static byte[] EditMainBlock(byte[] bytes)
    {
        var needle = "Score"u8.ToArray();
        for (int i = bytes.Length - needle.Length; i >= 0; i--)
        {
            if (bytes.AsSpan(i, needle.Length).SequenceEqual(needle))
            {
                bytes[i] = (byte)'X';
                return bytes;
            }
        }

        throw new InvalidOperationException("score column name not found in the main stream");
    }
}

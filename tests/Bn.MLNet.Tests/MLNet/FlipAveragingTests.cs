using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>Test-time flip averaging: off by default, the mean of two forwards when on, saved, switchable, image input only.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class FlipAveragingTests
{
    private const int Side = 28;

    [Fact]
    public void FlipAveragedScoresAreTheMeanOfTheImageAndMirrorForwards()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        Assert.False(bn.TestTimeFlipAveraging);
        using var flip = bn.WithTestTimeFlipAveraging(true);
        Assert.True(flip.TestTimeFlipAveraging);

        var rows = p.Test.GetColumn<float[]>("Features").ToArray();
        var scored = flip.Transform(p.Test);
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        var predicted = scored.GetColumn<uint>("PredictedLabel").ToArray();
        double changed = 0;
        for (int i = 0; i < rows.Length; i++)
        {
            float[] plain = ManualProbabilities(bn.Network, rows[i]);
            float[] mirrored = ManualProbabilities(bn.Network, Mirror(rows[i]));
            for (int k = 0; k < plain.Length; k++)
            {
                float expected = (plain[k] + mirrored[k]) / 2;
                Assert.True(Math.Abs(expected - scores[i][k]) <= 1e-6f, $"row {i} class {k}: {scores[i][k]} vs mean {expected}");
                changed = Math.Max(changed, Math.Abs(plain[k] - scores[i][k]));
            }

            Assert.Equal((uint)ArgMax(scores[i]) + 1, predicted[i]);
        }

        Assert.True(changed > 1e-4, $"flip averaging changed no score (max |Δ| = {changed})");
    }

    [Fact]
    public void OffByDefaultGivesThePlainScores()
    {
        Assert.False(new BatchNormCnnOptions().TestTimeFlipAveraging);
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        using var on = bn.WithTestTimeFlipAveraging(true);
        using var off = on.WithTestTimeFlipAveraging(false);
        Assert.False(off.TestTimeFlipAveraging);
        var rows = p.Test.GetColumn<float[]>("Features").ToArray();
        var scores = Scores(bn, p.Test);
        Assert.Equal(scores, Scores(off, p.Test));
        for (int i = 0; i < rows.Length; i++)
        {
            float[] plain = ManualProbabilities(bn.Network, rows[i]);
            for (int k = 0; k < plain.Length; k++)
                Assert.True(Math.Abs(plain[k] - scores[i][k]) <= 1e-6f, $"row {i} class {k}: {scores[i][k]} vs {plain[k]}");
        }
    }

    [Fact]
    public void PipelineWithFlipAveragingPassesTheWorkoutAndKeepsTheUnflippedEmbedding()
    {
        // TrainPipeline runs the estimator workout (schema promise, save → load gives identical values, reordered columns).
        var p = TrainPipeline(BatchNormInferenceMode.RunningAverages, o =>
        {
            o.TestTimeFlipAveraging = true;
            o.EmbeddingColumnName = "Embedding";
        });
        var bn = BnTransformer(p.Model);
        Assert.True(bn.TestTimeFlipAveraging);
        using var off = bn.WithTestTimeFlipAveraging(false);
        Assert.Equal(
            off.Transform(p.Test).GetColumn<float[]>("Embedding").ToArray(),
            bn.Transform(p.Test).GetColumn<float[]>("Embedding").ToArray());
        Assert.NotEqual(Scores(off, p.Test), Scores(bn, p.Test));

        // The prediction engine (row mapper) agrees with Transform.
        var engine = p.Context.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(p.Model);
        var row = Rows(FashionMnistSplit.Test, 1)[0];
        AssertClose([Scores(p.Model, p.Context.Data.LoadFromEnumerable([row]))[0]], [engine.Predict(row).Score], 1e-6f);
    }

    [Fact]
    public void SaveLoadKeepsTheOptionAndTheScores()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        using var flip = bn.WithTestTimeFlipAveraging(true);
        using var dir = new TempDir();
        var schema = p.Test.Schema;
        p.Context.Model.Save(flip, schema, dir.File("flip.zip"));
        var loaded = Assert.IsType<BatchNormCnnTransformer>(new MLContext(seed: 2).Model.Load(dir.File("flip.zip"), out _));
        Assert.True(loaded.TestTimeFlipAveraging);
        Assert.Equal(Scores(flip, p.Test), Scores(loaded, p.Test));
        loaded.Dispose();
    }

    [Fact]
    public void FormatVersionTwoLoadsWithFlipAveragingOff()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        using var flip = bn.WithTestTimeFlipAveraging(true);
        flip.SaveFormatVersionOverride = 2;
        using var dir = new TempDir();
        p.Context.Model.Save(flip, p.Test.Schema, dir.File("v2.zip"));
        var loaded = Assert.IsType<BatchNormCnnTransformer>(new MLContext(seed: 2).Model.Load(dir.File("v2.zip"), out _));
        Assert.False(loaded.TestTimeFlipAveraging);
        Assert.Equal(Scores(bn, p.Test), Scores(loaded, p.Test));
        loaded.Dispose();
        Assert.Equal(5, BatchNormCnnModelFormat.FormatVersion);
    }

    [Fact]
    public void NonImageInputIsRejectedNamingTheOption()
    {
        var options = new BatchNormCnnOptions { ImageHeight = 1, ImageWidth = 1, ImageChannels = 784, ConvStages = [], RandomCropPadding = 0, HorizontalFlip = false, TestTimeFlipAveraging = true };
        var ex = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("TestTimeFlipAveraging", ex.Message, StringComparison.Ordinal);
        options.TestTimeFlipAveraging = false;
        options.Validate();

        var ml = new MLContext(seed: 1);
        var architecture = new NetworkArchitecture { InputChannels = 784, InputHeight = 1, InputWidth = 1, ConvStages = [], HiddenLayers = [8], ClassCount = 2 };
        using var network = new BatchNormCnnNetwork(architecture);
        using var plain = BatchNormCnnTransformer.FromNetwork(ml, network, ["a", "b"], new BatchNormCnnOptions { RandomCropPadding = 0 });
        ex = Assert.Throws<ArgumentException>(() => plain.WithTestTimeFlipAveraging(true));
        Assert.Contains("TestTimeFlipAveraging", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<ArgumentException>(() => BatchNormCnnTransformer.FromNetwork(ml, network, ["a", "b"], new BatchNormCnnOptions { RandomCropPadding = 0, TestTimeFlipAveraging = true }));
        Assert.Contains("TestTimeFlipAveraging", ex.Message, StringComparison.Ordinal);

        var source = new TensorBatchSource(new float[4 * 784], [0, 1, 0, 1], 784);
        ex = Assert.Throws<ArgumentException>(() => Evaluation.Evaluate(network, source, testTimeFlipAveraging: true));
        Assert.Contains("testTimeFlipAveraging", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CopiesAreIndependentOfEachOther()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        var on = bn.WithTestTimeFlipAveraging(true);
        var expectedFlip = Scores(on, p.Test);
        using var off = on.WithTestTimeFlipAveraging(false);
        using var onAgain = off.WithTestTimeFlipAveraging(true);
        on.Dispose();
        Assert.Throws<ObjectDisposedException>(() => on.Transform(p.Test));
        Assert.Throws<ObjectDisposedException>(() => on.WithTestTimeFlipAveraging(false));
        Assert.Equal(Scores(bn, p.Test), Scores(off, p.Test));
        Assert.Equal(expectedFlip, Scores(onAgain, p.Test));
        Assert.False(ReferenceEquals(off.Network, bn.Network));
    }

    [Fact]
    public void EvaluateWithFlipAveragingMatchesTheTransformersAccuracy()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        var rows = Rows(FashionMnistSplit.Test, 200);
        var labels = rows.Select(r => bn.ClassNames.ToList().IndexOf(r.Label)).ToArray();
        Assert.DoesNotContain(-1, labels);
        var source = new TensorBatchSource(rows.SelectMany(r => r.Features).ToArray(), labels, 784);
        using var flip = bn.WithTestTimeFlipAveraging(true);
        var data = p.Context.Data.LoadFromEnumerable(rows);
        foreach (var (transformer, on) in new[] { (bn, false), (flip, true) })
        {
            var scores = Scores(transformer, data);
            double accuracy = labels.Where((y, i) => ArgMax(scores[i]) == y).Count() / (double)labels.Length;
            double loss = labels.Select((y, i) => -Math.Log(scores[i][y])).Average();
            var result = Evaluation.Evaluate(bn.Network, source, batchSize: 64, testTimeFlipAveraging: on);
            Assert.Equal(accuracy, result.Accuracy, 10);
            Assert.Equal(loss, result.Loss, 4);
        }
    }

    /// <summary>softmax(forward(x)) of one row, in eval mode under no_grad.</summary>
    private static float[] ManualProbabilities(BatchNormCnnNetwork network, float[] row)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var logits = network.forward(torch.tensor(row, [1, row.Length]));
        return torch.nn.functional.softmax(logits, 1).data<float>().ToArray();
    }

    /// <summary>The 1×28×28 image with its columns in reverse order, by index arithmetic.</summary>
    private static float[] Mirror(float[] row)
    {
        var m = new float[row.Length];
        for (int y = 0; y < Side; y++)
        {
            for (int x = 0; x < Side; x++)
                m[(y * Side) + x] = row[(y * Side) + (Side - 1 - x)];
        }

        return m;
    }
}

using Bn.MLNet.Data;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>Bad runs and bad data: divergence, empty data, NaN and infinity, and the process-wide thread count.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class BatchNormCnnHardeningTests
{
    private static readonly Lazy<List<ImageRow>> TrainRows = new(() => Rows(FashionMnistSplit.Train, 300));

    private static BatchNormCnnOptions Options(Action<BatchNormCnnOptions>? configure = null)
    {
        var o = SmallOptions();
        o.Threads = 1;
        configure?.Invoke(o);
        return o;
    }

    private static IEstimator<ITransformer> PipelineFor(MLContext ml, BatchNormCnnOptions o) =>
        ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.BatchNormCnn(o));

    private static List<ImageRow> WithValue(List<ImageRow> rows, int row, int slot, float value)
    {
        var copy = rows.Select(r => new ImageRow { Label = r.Label, Features = (float[])r.Features.Clone() }).ToList();
        copy[row].Features[slot] = value;
        return copy;
    }

    [Fact]
    public void DivergenceAfterSomeStepsKeepsTheLastFiniteStateAndScoresFinite()
    {
        var ml = new MLContext(seed: 1);
        var warnings = new List<string>();
        ml.Log += (_, e) =>
        {
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning)
                lock (warnings) warnings.Add(e.Message);
        };
        var train = ml.Data.LoadFromEnumerable(TrainRows.Value);
        // Without label smoothing and augmentation (set explicitly: the defaults have both on), this learning rate
        // gives finite steps before the one that diverges.
        var model = PipelineFor(ml, Options(o =>
        {
            o.LearningRate = 1e3;
            o.Schedule = LearningRateScheduleKind.Constant;
            o.LabelSmoothing = 0;
            o.RandomCropPadding = 0;
            o.HorizontalFlip = false;
        })).Fit(train);

        var bn = BnTransformer(model);
        var d = bn.TrainingHistory!.Divergence;
        Assert.NotNull(d);
        Assert.True(d!.RestoredStep is > 0 && d.RestoredStep < d.Step, $"restored step {d.RestoredStep}, divergence at {d.Step}");
        Assert.NotEmpty(d.NonFiniteTensors); // what the diverged step left: the reason the old model scored NaN
        foreach (var (name, t) in bn.Network.state_dict())
            Assert.True(!t.is_floating_point() || torch.isfinite(t).all().item<bool>(), $"{name} is not finite");
        float[][] scores = Scores(model, train);
        Assert.All(scores, s => Assert.All(s, v => Assert.True(float.IsFinite(v), "a score is not finite")));
        string warning = Assert.Single(warnings, w => w.Contains("diverged"));
        Assert.Contains($"step {d.Step}", warning);
        Assert.Contains($"after step {d.RestoredStep} (weights and BN running statistics)", warning);
        Assert.Contains("Lower LearningRate (now 1000)", warning);
        Assert.Contains("TrainingHistory.Divergence", warning);
    }

    [Fact]
    public void DivergenceBeforeAnyFiniteStepThrowsWithStepLossAndAdvice()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TrainRows.Value);
        var e = Assert.Throws<TrainingDivergedException>(() =>
            PipelineFor(ml, Options(o => { o.LearningRate = 1e30; o.Schedule = LearningRateScheduleKind.Constant; })).Fit(train));
        Assert.Equal(1, e.Divergence!.Step);
        Assert.StartsWith("BatchNormCnn: training diverged at step 1 (epoch 0): the loss was NaN, learning rate 1E+30; no optimizer step gave a finite network", e.Message);
        Assert.Contains("Lower LearningRate (now 1E+30), for example 10 times, or use a schedule that starts low (Schedule = OneCycle warms up; now Constant).", e.Message);
    }

    [Fact]
    public void EmptyTrainingDataSaysSo()
    {
        var ml = new MLContext(seed: 1);
        var empty = ml.Data.LoadFromEnumerable(new List<ImageRow>());
        var e = Assert.Throws<ArgumentException>(() => PipelineFor(ml, Options()).Fit(empty));
        Assert.StartsWith("The training data (Fit's input, feature column 'Features', label column 'Label') has no rows; training needs at least 2.", e.Message);

        // A streaming view that does not know its row count, filtered down to nothing.
        var all = ml.Data.LoadFromEnumerable(TrainRows.Value);
        var filtered = ml.Data.FilterByCustomPredicate<ImageRow>(all, _ => true);
        Assert.Null(filtered.GetRowCount());
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(all).Transform(filtered);
        e = Assert.Throws<ArgumentException>(() => ml.Transforms.BatchNormCnn(Options()).Fit(keyed));
        Assert.Contains("has no rows", e.Message);
    }

    [Fact]
    public void EmptyValidationDataSaysSo()
    {
        var ml = new MLContext(seed: 1);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(TrainRows.Value));
        var validation = keys.Transform(ml.Data.LoadFromEnumerable(new List<ImageRow>()));
        var e = Assert.Throws<ArgumentException>(() =>
            ml.Transforms.BatchNormCnn(Options(o => o.ValidationData = validation)).Fit(keys.Transform(ml.Data.LoadFromEnumerable(TrainRows.Value))));
        Assert.StartsWith("The validation data (BatchNormCnnOptions.ValidationData) has no rows", e.Message);
    }

    [Fact]
    public void NaNInTrainingFeaturesNamesColumnRowSlotAndTheMissingValueTransforms()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(WithValue(TrainRows.Value, row: 17, slot: 300, float.NaN));
        var e = Assert.Throws<InvalidDataException>(() => PipelineFor(ml, Options()).Fit(train));
        Assert.Equal(
            "Feature column 'Features' of the training data holds NaN at row 17 (0-based), slot 300; training needs finite values. " +
            "Replace missing values with mlContext.Transforms.ReplaceMissingValues(\"Features\") or drop those rows with " +
            "mlContext.Data.FilterRowsByMissingValues(data, \"Features\") before the estimator.", e.Message);

        // What the message suggests works.
        var filtered = ml.Data.FilterRowsByMissingValues(train, "Features");
        var model = PipelineFor(ml, Options()).Fit(filtered);
        Assert.Equal(299, BnTransformer(model).TrainingHistory!.TrainingRows);
    }

    [Fact]
    public void InfinityInValidationFeaturesIsNamedToo()
    {
        var ml = new MLContext(seed: 1);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(TrainRows.Value));
        var validation = keys.Transform(ml.Data.LoadFromEnumerable(WithValue(TrainRows.Value.Take(40).ToList(), row: 5, slot: 2, float.NegativeInfinity)));
        var e = Assert.Throws<InvalidDataException>(() =>
            ml.Transforms.BatchNormCnn(Options(o => o.ValidationData = validation)).Fit(keys.Transform(ml.Data.LoadFromEnumerable(TrainRows.Value))));
        Assert.StartsWith(
            "Feature column 'Features' of the validation data (BatchNormCnnOptions.ValidationData) holds -Infinity at row 5 (0-based), slot 2; " +
            "training needs finite values. ML.NET's ReplaceMissingValues and FilterRowsByMissingValues handle NaN only", e.Message);
    }

    [Fact]
    public void DoubleOutsideSingleRangeIsNamed()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TrainRows.Value.Take(20).Select((r, i) => new DoubleRow
        {
            Label = r.Label,
            Features = r.Features.Select((v, j) => i == 3 && j == 7 ? 1e300 : v).ToArray(),
        }));
        var e = Assert.Throws<InvalidDataException>(() => PipelineFor(ml, Options()).Fit(data));
        Assert.StartsWith("Feature column 'Features' of the training data holds 1E+300 (outside the range of Single) at row 3 (0-based), slot 7;", e.Message);
    }

    [Fact]
    public void NaNAtScoringTimeGivesNaNScoresAndTheMissingKeyForThatRowOnly()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        var rows = Rows(FashionMnistSplit.Test, 6);
        var bad = WithValue(rows, row: 2, slot: 100, float.NaN);
        var keys = p.Context.Transforms.Conversion.MapValueToKey("Label").Fit(p.Train);
        var good = bn.Transform(keys.Transform(p.Context.Data.LoadFromEnumerable(rows)));
        var scored = bn.Transform(keys.Transform(p.Context.Data.LoadFromEnumerable(bad)));
        var goodScores = good.GetColumn<float[]>("Score").ToArray();
        var badScores = scored.GetColumn<float[]>("Score").ToArray();
        var predicted = scored.GetColumn<uint>("PredictedLabel").ToArray();
        Assert.All(badScores[2], v => Assert.True(float.IsNaN(v)));
        Assert.Equal(0u, predicted[2]);
        for (int i = 0; i < rows.Count; i++)
        {
            if (i != 2)
            {
                Assert.Equal(goodScores[i], badScores[i]);
                Assert.NotEqual(0u, predicted[i]);
            }
        }
    }

    [Fact]
    public void FitPutsBackTheProcessThreadCountAlsoWhenItThrows()
    {
        int before = torch.get_num_threads();
        int host = before == 3 ? 2 : 3;
        torch.set_num_threads(host);
        try
        {
            var ml = new MLContext(seed: 1);
            var train = ml.Data.LoadFromEnumerable(TrainRows.Value);
            int during = 0;
            var o = Options(o => o.Progress = new SyncProgress(_ => during = torch.get_num_threads()));
            PipelineFor(ml, o).Fit(train);
            Assert.Equal(1, during);
            Assert.Equal(host, torch.get_num_threads());

            var bad = ml.Data.LoadFromEnumerable(WithValue(TrainRows.Value, 0, 0, float.NaN));
            Assert.Throws<InvalidDataException>(() => PipelineFor(ml, Options()).Fit(bad));
            Assert.Equal(host, torch.get_num_threads());

            Assert.Throws<TrainingDivergedException>(() =>
                PipelineFor(ml, Options(o => { o.LearningRate = 1e30; o.Schedule = LearningRateScheduleKind.Constant; })).Fit(train));
            Assert.Equal(host, torch.get_num_threads());

            // Scoring leaves it alone as well.
            Scores(Pipeline.Model, Pipeline.Test);
            Assert.Equal(host, torch.get_num_threads());
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    private sealed class DoubleRow
    {
        public string Label { get; set; } = string.Empty;

        [VectorType(784)]
        public double[] Features { get; set; } = [];
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}

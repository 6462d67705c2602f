using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>Long runs through the estimator: the time budget, checkpoints, and training that starts from a trained model.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class LongRunTests
{
    private static (MLContext Ml, IDataView Train, IDataView Test) Slices()
    {
        var ml = new MLContext(seed: 1);
        IDataView all = ml.Data.LoadFromEnumerable(MLNetTestData.Rows(Bn.MLNet.Samples.Datasets.FashionMnistSplit.Train, 400));
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(all);
        IDataView test = toKey.Transform(ml.Data.LoadFromEnumerable(MLNetTestData.Rows(Bn.MLNet.Samples.Datasets.FashionMnistSplit.Test, 200)));
        return (ml, toKey.Transform(all), test);
    }

    [Fact]
    public void ATimeBudgetEndsFitWithAModel()
    {
        var (ml, train, _) = Slices();
        var o = MLNetTestData.SmallOptions();
        o.Epochs = 10_000;
        o.TimeBudget = TimeSpan.FromSeconds(2);
        using var model = ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train);
        var h = model.TrainingHistory!;
        Assert.True(h.StoppedByTimeBudget);
        Assert.InRange(h.TrainSeconds, 2, 20);
        Assert.True(h.TotalSteps < h.PlannedSteps);
        Assert.Equal(TimeSpan.FromSeconds(2), o.Trainer.TimeBudget);
    }

    [Fact]
    public void AFitWhoseCheckpointHoldsTheFinishedRunReturnsItsModelWithoutTraining()
    {
        var (ml, train, test) = Slices();
        using var dir = new MLNetTestData.TempDir();
        var o = MLNetTestData.SmallOptions();
        o.Epochs = 2;
        o.Seed = null;   // drawn from the MLContext, then taken from the checkpoint on the second Fit
        o.CheckpointDirectory = dir.Path;
        using var first = ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train);
        var log = new List<string>();
        var other = new MLContext();   // no seed: the seed comes from the checkpoint
        other.Log += (_, e) => { lock (log) log.Add(e.Message); };
        using var second = other.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train);
        Assert.True(second.TrainingHistory!.LoadedFinishedRun);
        Assert.Contains(log, m => m.Contains("holds a finished run (2 epochs); its model is returned without training"));
        MLNetTestData.AssertClose(MLNetTestData.Scores(first, test), MLNetTestData.Scores(second, test), 0f);
    }

    [Fact]
    public void TrainingContinuesFromAModelOrFineTunesItsBodyForOtherClasses()
    {
        var (ml, train, test) = Slices();
        var o = MLNetTestData.SmallOptions();
        using var start = ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train);
        double startLoss = start.TrainingHistory!.Epochs[^1].TrainLoss;

        // Same classes: every layer carries over, so the first epoch starts from the trained loss, not from scratch.
        var again = MLNetTestData.SmallOptions();
        again.InitialModel = start;
        using var continued = ml.MulticlassClassification.Trainers.BatchNormCnn(again).Fit(train);
        Assert.True(continued.TrainingHistory!.Steps[0].TrainLoss < 0.8 * start.TrainingHistory.Steps[0].TrainLoss,
            $"continued first loss {continued.TrainingHistory.Steps[0].TrainLoss} vs fresh {start.TrainingHistory.Steps[0].TrainLoss}");
        Assert.Equal(start.TrainingHistory.InputMean, continued.TrainingHistory.InputMean);

        // Other classes (a two-class task), frozen convolution stages: the body's weights and BN statistics stay.
        IDataView twoClass = ml.Transforms.Conversion.MapValueToKey("Label", "Label2")
            .Fit(Relabel(ml, train)).Transform(Relabel(ml, train));
        var tune = MLNetTestData.SmallOptions();
        (tune.InitialModel, tune.FreezeConvolutionStages) = (start, true);
        using var tuned = ml.MulticlassClassification.Trainers.BatchNormCnn(tune).Fit(twoClass);
        using BatchNormCnnNetwork before = start.CopyNetwork(), after = tuned.CopyNetwork();
        var a = before.state_dict();
        foreach (var (name, value) in after.state_dict().Where(p => p.Key.StartsWith("features.", StringComparison.Ordinal)))
            Assert.True(value.equal(a[name]).all().item<bool>(), $"frozen {name} changed");
        Assert.Equal(2, tuned.ClassNames.Count);
        Assert.False(after.state_dict()["classifier.0.weight"].equal(a["classifier.0.weight"]).all().item<bool>(), "the hidden layer trained");
    }

    [Fact]
    public void AnInitialModelWithAnotherBodyIsRefusedNamingTheDifference()
    {
        var (ml, train, _) = Slices();
        using var start = ml.MulticlassClassification.Trainers.BatchNormCnn(MLNetTestData.SmallOptions()).Fit(train);
        var o = MLNetTestData.SmallOptions();
        o.HiddenLayers = [64];
        o.InitialModel = start;
        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train));
        Assert.Contains("hiddenLayers[0] is 32 in the initial model and 64 here", e.Message);
        Assert.Equal(nameof(BatchNormCnnOptions.InitialModel), e.ParamName);
    }

    /// <summary>The rows with a second label: "top" for the first five Fashion-MNIST classes, "other" for the rest.</summary>
    private static IDataView Relabel(MLContext ml, IDataView keyed)
    {
        var rows = ml.Data.CreateEnumerable<KeyedRow>(keyed, reuseRowObject: false)
            .Select(r => new TwoClassRow { Features = r.Features, Label2 = r.Label <= 5 ? "top" : "other" }).ToList();
        return ml.Data.LoadFromEnumerable(rows);
    }

    private sealed class KeyedRow
    {
        [KeyType(10)]
        public uint Label { get; set; }

        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    private sealed class TwoClassRow
    {
        public string Label2 { get; set; } = string.Empty;

        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }
}

using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Training;

[Collection(TorchGlobalStateCollection.Name)]
public class TrainerTests
{
    private static NetworkArchitecture SmallCnn(NormalizationKind norm = NormalizationKind.Batch) => new()
    {
        InputHeight = 12,
        InputWidth = 12,
        ConvStages = new List<ConvStage> { new(8, 1, true), new(16, 1, true) },
        HiddenLayers = new[] { 32 },
        Normalization = norm,
    };

    private static TrainerOptions Fast() => new()
    {
        Epochs = 3,
        BatchSize = 32,
        LearningRate = 0.05,
        Threads = 1,
        LogEverySteps = 5,
    };

    private static BatchNormCnnNetwork Build(NetworkArchitecture a, int seed = 1)
    {
        torch.manual_seed(seed);
        return new BatchNormCnnNetwork(a);
    }

    [Fact]
    public void LossFallsOnRealFashionMnist()
    {
        var ml = new MLContext(seed: 1);
        IDataView trainView = FashionMnist.LoadTrain(ml, limit: 2000);
        IDataView testView = FashionMnist.LoadTest(ml, limit: 500);
        var train = new DataViewBatchSource(trainView, "Features", "Label", 784, seed: 3);
        var test = new DataViewBatchSource(testView, "Features", "Label", 784, seed: 3);
        var a = new NetworkArchitecture { ConvStages = new List<ConvStage> { new(8, 1, true), new(16, 1, true) }, HiddenLayers = new[] { 64 } };
        using BatchNormCnnNetwork net = Build(a);
        EvaluationResult before = Evaluation.Evaluate(net, test);
        var options = Fast();
        options.Threads = null;
        TrainingHistory h = new Trainer(options).Train(net, train, test);
        EvaluationResult after = Evaluation.Evaluate(net, test);

        Assert.Equal(3, h.Epochs.Count);
        Assert.True(h.Epochs[^1].TrainLoss < h.Epochs[0].TrainLoss * 0.8, $"train loss {h.Epochs[0].TrainLoss} → {h.Epochs[^1].TrainLoss}");
        Assert.True(after.Loss < before.Loss * 0.5, $"test loss {before.Loss} → {after.Loss}");
        Assert.True(after.Accuracy > 0.7, $"test accuracy {after.Accuracy}");
        Assert.False(net.training);
        // Raw 0..255 pixels: the stored standardization is Fashion-MNIST's (mean ≈ 73, std ≈ 90 on the 0..255 scale).
        Assert.InRange(h.InputMean[0], 60f, 85f);
        Assert.InRange(h.InputStd[0], 80f, 100f);
        Assert.Equal(net.InputMean, h.InputMean);
    }

    [Fact]
    public void SameSeedGivesSameWeightsAndOtherSeedDoesNot()
    {
        float[][] Run(int trainerSeed)
        {
            using BatchNormCnnNetwork net = Build(SmallCnn(), seed: 5);
            var a = net.Architecture;
            var options = Fast();
            options.Seed = trainerSeed;
            options.RandomCropPadding = 2;
            options.HorizontalFlip = true;
            new Trainer(options).Train(net, SyntheticData.Images(200, seed: 1));
            return net.state_dict().Values.Select(t => t.to_type(ScalarType.Float32).data<float>().ToArray()).ToArray();
        }

        float[][] first = Run(3);
        float[][] second = Run(3);
        float[][] other = Run(4);
        Assert.Equal(first.Length, second.Length);
        for (int i = 0; i < first.Length; i++)
        {
            Assert.Equal(first[i], second[i]);
        }

        Assert.Contains(Enumerable.Range(0, first.Length), i => !first[i].SequenceEqual(other[i]));
    }

    [Fact]
    public void EarlyStoppingRestoresTheBestEpoch()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        var train = SyntheticData.Images(320, seed: 1);
        // Validation labels are noise: accuracy wanders, so the best epoch is soon followed by `patience` worse ones.
        var validation = SyntheticData.Images(200, seed: 2, shuffleLabels: true);
        var options = Fast();
        options.Epochs = 30;
        options.Schedule = LearningRateScheduleKind.Constant;
        options.EarlyStoppingPatience = 2;
        options.EarlyStoppingMetric = EarlyStoppingMetric.ValidationLoss;
        TrainingHistory h = new Trainer(options).Train(net, train, validation);

        Assert.True(h.StoppedEarly);
        Assert.True(h.Epochs.Count < 30);
        int best = h.BestEpoch!.Value;
        Assert.Equal(h.Epochs.Count - 1 - 2, best);
        Assert.Equal(h.Epochs.MinBy(e => e.ValidationLoss)!.Epoch, best);
        Assert.True(h.RestoredBestWeights);
        EvaluationResult now = Evaluation.Evaluate(net, validation);
        Assert.Equal(h.Epochs[best].ValidationLoss!.Value, now.Loss, 5);
        Assert.NotEqual(h.Epochs[^1].ValidationLoss!.Value, now.Loss, 5);
    }

    [Fact]
    public void FinalBatchOfOneNeverReachesBatchNorm()
    {
        using BatchNormCnnNetwork net = Build(NetworkArchitecture.PaperMnistMlp() is var a ? Shrink(a) : null!);
        var sizes = new List<long>();
        var hooks = net.modules().OfType<Bn.MLNet.Normalization.BatchNormBase>()
            .Select(bn => bn.register_forward_pre_hook((m, x) =>
            {
                if (m.training)
                {
                    sizes.Add(x.shape[0]);
                }

                return x;
            })).ToList();
        Assert.Equal(3, hooks.Count);
        var source = SyntheticData.Images(33, seed: 1); // 16 + 16 + 1
        var options = Fast();
        options.BatchSize = 16;
        TrainingHistory h = new Trainer(options).Train(net, source);

        Assert.Contains(1, source.HandedOut);
        Assert.NotEmpty(sizes);
        Assert.DoesNotContain(1L, sizes);
        Assert.All(sizes, s => Assert.Equal(16L, s));
        Assert.Equal(3, h.DroppedSingleRowBatches);
        Assert.Equal(6, h.TotalSteps);

        static NetworkArchitecture Shrink(NetworkArchitecture a)
        {
            a.InputHeight = 12;
            a.InputWidth = 12;
            return a;
        }
    }

    [Fact]
    public void CancellationThrowsOperationCanceled()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        using var cts = new CancellationTokenSource();
        var reports = new List<TrainingProgress>();
        var progress = new SyncProgress(p =>
        {
            reports.Add(p);
            if (p.Step >= 4)
            {
                cts.Cancel();
            }
        });
        var options = Fast();
        options.ProgressEverySteps = 2;
        options.Epochs = 50;
        Assert.ThrowsAny<OperationCanceledException>(() => new Trainer(options).Train(net, SyntheticData.Images(320, seed: 1), null, progress, cts.Token));
        Assert.Equal(4, reports[^1].Step);
        Assert.All(reports, r => Assert.True(r.ImagesPerSecond > 0 && double.IsFinite(r.Loss)));
    }

    [Fact]
    public void HugeLearningRateIsRecordedAsDivergence()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn(NormalizationKind.None));
        var options = Fast();
        options.Schedule = LearningRateScheduleKind.Constant;
        options.LearningRate = 1e8;
        options.Epochs = 20;
        TrainingHistory h = new Trainer(options).Train(net, SyntheticData.Images(320, seed: 1));

        Assert.True(h.Diverged);
        Assert.NotNull(h.Divergence);
        Assert.Equal(1e8, h.Divergence!.LearningRate);
        Assert.False(double.IsFinite(h.Divergence.Loss));
        Assert.Equal(h.TotalSteps, h.Divergence.Step);
        Assert.True(h.TotalSteps < h.PlannedSteps);
        Assert.Contains("\"divergence\"", h.ToJson());
    }

    [Fact]
    public void DivergenceRestoresTheLastFiniteWeightsAndRunningStatistics()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        var options = Fast();
        options.Schedule = LearningRateScheduleKind.Constant;
        options.LearningRate = 1e6;
        options.Epochs = 5;
        TrainingHistory h = new Trainer(options).Train(net, SyntheticData.Images(320, seed: 1));

        DivergenceInfo d = Assert.IsType<DivergenceInfo>(h.Divergence);
        Assert.NotNull(d.RestoredStep);
        Assert.True(d.RestoredStep < d.Step);
        Assert.Contains(d.NonFiniteTensors, n => n.EndsWith("running_var", StringComparison.Ordinal) || n.EndsWith("weight", StringComparison.Ordinal));
        foreach ((string name, Tensor t) in net.state_dict())
        {
            if (t.is_floating_point())
                Assert.True(torch.isfinite(t).all().item<bool>(), $"{name} is not finite");
            else if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
                Assert.Equal(d.RestoredStep, t.item<long>()); // the counter as it was before the restored step's forward pass
        }

        // Eval-mode scores of rows like the training rows are finite.
        MiniBatch batch = SyntheticData.Images(64, seed: 2).ReadEpoch(64, 0, shuffle: false).First();
        using (torch.no_grad())
        {
            using Tensor logits = net.call(torch.tensor(batch.Features, new long[] { 64, 1, 12, 12 }));
            using Tensor p = torch.nn.functional.softmax(logits, 1);
            Assert.True(torch.isfinite(p).all().item<bool>());
        }

        Assert.Contains("\"restoredStep\"", h.ToJson());
    }

    [Fact]
    public void AFinalUpdateThatOverflowsIsRecordedAndUndone()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        var options = Fast();
        options.Schedule = LearningRateScheduleKind.Constant;
        options.LearningRate = 1e30;
        options.MaxSteps = 1; // the only loss is finite; the update after it is not checked by any later loss
        TrainingHistory h = new Trainer(options).Train(net, SyntheticData.Images(64, seed: 1));

        DivergenceInfo d = Assert.IsType<DivergenceInfo>(h.Divergence);
        Assert.True(d.NonFiniteState);
        Assert.True(double.IsFinite(d.Loss));
        Assert.Equal(1, d.Step);
        Assert.Equal(0, d.RestoredStep); // the initial network: the estimator refuses to return it
        Assert.Equal(1, h.TotalSteps);
        foreach ((string name, Tensor t) in net.state_dict())
        {
            if (t.is_floating_point())
                Assert.True(torch.isfinite(t).all().item<bool>(), $"{name} is not finite");
        }
    }

    [Fact]
    public void TrainPutsBackTheProcessThreadCount()
    {
        int before = torch.get_num_threads();
        int host = before == 3 ? 2 : 3;
        torch.set_num_threads(host);
        try
        {
            using BatchNormCnnNetwork net = Build(SmallCnn());
            var options = Fast();
            options.Epochs = 1;
            new Trainer(options).Train(net, SyntheticData.Images(64, seed: 1));
            Assert.Equal(host, torch.get_num_threads());
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => new Trainer(options).Train(net, SyntheticData.Images(64, seed: 1), cancellationToken: cts.Token));
            Assert.Equal(host, torch.get_num_threads());
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void NonFiniteRowsAndEmptyValidationAreNamed()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        var features = new float[10 * 144];
        features[(4 * 144) + 9] = float.PositiveInfinity;
        var source = new ArrayBatchSource(features, new int[10], 144);
        var e = Assert.Throws<InvalidDataException>(() => new Trainer(Fast()).Train(net, source));
        Assert.Equal("Training row 4 (0-based) holds Infinity at position 9; the input standardization and training need finite values. Replace or drop such rows before training.", e.Message);

        var empty = new ArrayBatchSource(Array.Empty<float>(), Array.Empty<int>(), 144);
        var v = Assert.Throws<ArgumentException>(() => new Trainer(Fast()).Train(net, SyntheticData.Images(64, seed: 1), empty));
        Assert.StartsWith("The validation data has no rows; pass rows, or no validation data.", v.Message);
    }

    [Fact]
    public void NormalLearningRateDoesNotDiverge()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn(NormalizationKind.None));
        TrainingHistory h = new Trainer(Fast()).Train(net, SyntheticData.Images(320, seed: 1));
        Assert.False(h.Diverged);
        Assert.Equal(h.PlannedSteps, h.TotalSteps);
    }

    [Fact]
    public void MaxStepsTakesPrecedenceAndHistoryRecordsEveryKSteps()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        var options = Fast();
        options.MaxSteps = 23;
        options.RecordPercentiles = true;
        options.Optimizer = OptimizerKind.AdamW;
        options.LearningRate = 3e-3;
        TrainingHistory h = new Trainer(options).Train(net, SyntheticData.Images(320, seed: 1)); // 10 steps per epoch

        Assert.Equal(23, h.TotalSteps);
        Assert.Equal(3, h.Epochs.Count);
        Assert.Equal(new long[] { 1, 6, 11, 16, 21 }, h.Steps.Select(s => s.Step));
        int layers = net.ProbedLayers.Count;
        Assert.All(h.Steps, s => Assert.Equal(layers, s.Percentiles.Count));
        Assert.All(h.Epochs, e => Assert.Equal(layers, e.Percentiles.Count));
        Assert.All(h.Steps, s => Assert.True(s.LearningRate > 0 && s.ImagesPerSecond > 0 && s.ElapsedSeconds > 0));

        string csv = h.ToCsv();
        string[] lines = csv.TrimEnd('\n').Split('\n');
        Assert.Equal(1 + 5 + 3, lines.Length);
        Assert.StartsWith("kind,epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,elapsed_s,images_per_s,features.1_p15,", lines[0]);
        Assert.All(lines, l => Assert.Equal(10 + (3 * layers), l.Split(',').Length));

        TrainingHistory back = TrainingHistory.FromJson(h.ToJson());
        Assert.Equal(h.Steps.Count, back.Steps.Count);
        Assert.Equal(h.Epochs[2].TrainLoss, back.Epochs[2].TrainLoss);
        Assert.Equal(h.Steps[1].Percentiles[0], back.Steps[1].Percentiles[0]);
    }

    [Fact]
    public void TimeBudgetStopsTrainingWithAnAnnealedSchedule()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        var options = Fast();
        options.Epochs = 10_000;
        options.LogEverySteps = 1;
        options.TimeBudget = TimeSpan.FromSeconds(1.5);
        TrainingHistory h = new Trainer(options).Train(net, SyntheticData.Images(320, seed: 1));

        Assert.True(h.StoppedByTimeBudget);
        Assert.True(h.TotalSteps < h.PlannedSteps);
        Assert.InRange(h.TrainSeconds, 1.5, 10);
        // One-cycle by time: the rate peaked and then fell to well below the peak by the end.
        double peak = h.Steps.Max(s => s.LearningRate);
        Assert.True(peak > 0.04, $"peak {peak}");
        Assert.True(h.Steps[^1].LearningRate < peak * 0.2, $"last {h.Steps[^1].LearningRate} vs peak {peak}");
    }

    [Theory]
    [InlineData(OptimizerKind.Sgd, LearningRateScheduleKind.Step)]
    [InlineData(OptimizerKind.Adam, LearningRateScheduleKind.Cosine)]
    [InlineData(OptimizerKind.AdamW, LearningRateScheduleKind.OneCycle)]
    public void EachOptimizerAndScheduleLearns(OptimizerKind optimizer, LearningRateScheduleKind schedule)
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        var options = Fast();
        options.Optimizer = optimizer;
        options.Schedule = schedule;
        options.StepSizeEpochs = 1;
        options.LearningRate = optimizer == OptimizerKind.Sgd ? 0.05 : 3e-3;
        var data = SyntheticData.Images(320, seed: 1);
        TrainingHistory h = new Trainer(options).Train(net, data);
        Assert.True(h.Epochs[^1].TrainLoss < h.Epochs[0].TrainLoss, $"{h.Epochs[0].TrainLoss} → {h.Epochs[^1].TrainLoss}");
        Assert.True(Evaluation.Evaluate(net, data).Accuracy > 0.5);
    }

    [Fact]
    public void FractionDoneIsTheLargerOfTheStepAndTimeFractions()
    {
        Assert.Equal(0.25, LearningRateSchedule.FractionDone(25, 100, 500, null), 12);
        Assert.Equal(0.25, LearningRateSchedule.FractionDone(25, 100, 100, 870), 12);   // steps ahead of the clock
        Assert.Equal(0.5, LearningRateSchedule.FractionDone(25, 100, 435, 870), 12);    // the clock ahead of the steps
        Assert.Equal(1.0, LearningRateSchedule.FractionDone(25, 100, 900, 870), 12);    // past the budget: clamped
        Assert.Equal(1.0, LearningRateSchedule.FractionDone(130, 100, 0, null), 12);
    }

    [Fact]
    public void SchedulesFollowTheirDefinitions()
    {
        var o = new TrainerOptions { LearningRate = 0.1, LearningRateMultiplier = 5, OneCycleDivFactor = 25, OneCycleWarmupFraction = 0.25, FinalLearningRateFraction = 0 };
        o.Schedule = LearningRateScheduleKind.Constant;
        Assert.Equal(0.5, LearningRateSchedule.At(o, 77, 100, 10), 12);
        o.Schedule = LearningRateScheduleKind.OneCycle;
        o.OneCycleWarmupFraction = 0.2;
        Assert.Equal(0.5 / 25, LearningRateSchedule.At(o, 0, 125, 10), 12);
        Assert.Equal(0.5, LearningRateSchedule.At(o, 25, 125, 10), 12);
        Assert.Equal(0.25, LearningRateSchedule.At(o, 75, 125, 10), 12);
        Assert.Equal(0.0, LearningRateSchedule.At(o, 125, 125, 10), 12);
        o.Schedule = LearningRateScheduleKind.Cosine;
        Assert.Equal(0.5, LearningRateSchedule.At(o, 0, 100, 10), 12);
        Assert.Equal(0.25, LearningRateSchedule.At(o, 50, 100, 10), 12);
        o.Schedule = LearningRateScheduleKind.Step;
        o.StepSizeEpochs = 2;
        o.StepGamma = 0.1;
        Assert.Equal(0.5, LearningRateSchedule.At(o, 19, 100, 10), 12);
        Assert.Equal(0.05, LearningRateSchedule.At(o, 20, 100, 10), 12);
    }

    [Fact]
    public void OptionsValidationNamesTheField()
    {
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(new TrainerOptions { BatchSize = 1 }));
        Assert.Equal("BatchSize", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => new Trainer(new TrainerOptions { LearningRate = -1 }));
        Assert.Equal("LearningRate", ex.ParamName);
    }

    [Fact]
    public void MismatchedRowLengthIsRefused()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        var source = new ArrayBatchSource(new float[10 * 50], new int[10], 50);
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(Fast()).Train(net, source));
        Assert.Contains("144", ex.Message);
    }

    [Fact]
    public void EvaluationUsesEvalModeAndRestoresTheMode()
    {
        using BatchNormCnnNetwork net = Build(SmallCnn());
        net.train();
        var data = SyntheticData.Images(50, seed: 1);
        EvaluationResult r1 = Evaluation.Evaluate(net, data, batchSize: 7);
        EvaluationResult r2 = Evaluation.Evaluate(net, data, batchSize: 50);
        Assert.True(net.training);
        Assert.Equal(50, r1.Count);
        Assert.Equal(r1.Accuracy, r2.Accuracy);
        Assert.Equal(r1.Loss, r2.Loss, 4); // eval mode: batch composition does not matter
    }

    [Fact]
    public void InputStatisticsArePerChannel()
    {
        // Two channels of 2×2: channel 0 is all 1, channel 1 alternates 0 and 4 (mean 2, std 2).
        float[] row = { 1, 1, 1, 1, 0, 4, 0, 4 };
        var features = Enumerable.Repeat(row, 5).SelectMany(r => r).ToArray();
        var stats = InputStandardization.Compute(new ArrayBatchSource(features, new int[5], 8), channels: 2, batchSize: 2);
        Assert.Equal(5, stats.Rows);
        Assert.Equal(new[] { 1f, 2f }, stats.Mean);
        Assert.Equal(new[] { 1f, 2f }, stats.Std); // constant channel 0 gets std 1
    }

    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}

using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Reporting;
using Bn.MLNet.Training;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>
/// The claim that BN regularizes: the gap between training and test accuracy with and without BN at an equal training
/// budget, dropout off.
/// </summary>
internal static class RegularizationExperiment
{
    public static void Run(ExperimentContext ctx)
    {
        int rows = ctx.Quick ? 2000 : 10_000;
        int epochs = ctx.Quick ? 2 : 10;
        var runs = new List<(ExperimentRun Run, double TrainAccuracy)>();
        var train = ctx.TrainSource(rows);
        foreach (var norm in new[] { NormalizationKind.None, NormalizationKind.Batch })
        {
            var arch = new NetworkArchitecture
            {
                ConvStages = new List<ConvStage> { new(32, 1, true), new(64, 1, true) },
                HiddenLayers = new[] { 256 },
                Dropout = 0,
                Normalization = norm,
            };
            var options = new TrainerOptions
            {
                BatchSize = 64,
                Epochs = epochs,
                Optimizer = OptimizerKind.Sgd,
                Momentum = 0.9,
                LearningRate = 0.02,
                Schedule = LearningRateScheduleKind.Cosine,
                WeightDecay = 0,
                LogEverySteps = 100,
                RecordPercentiles = false,
            };
            var run = ctx.Run(norm == NormalizationKind.None ? "Without BN" : "With BN", arch, options, int.MaxValue, train);
            double trainAccuracy = Evaluation.Evaluate(run.Network, train).Accuracy;
            runs.Add((run, trainAccuracy));
        }

        SaveCurves(ctx, runs);
        SaveReport(ctx, runs, rows, epochs);
        foreach (var (run, _) in runs)
        {
            run.Network.Dispose();
        }
    }

    /// <summary>regularization.csv and the plot of train and test accuracy per epoch.</summary>
    private static void SaveCurves(ExperimentContext ctx, List<(ExperimentRun Run, double TrainAccuracy)> runs)
    {
        var csv = new CsvTable("run", "epoch", "train_loss", "train_accuracy_running", "test_accuracy");
        foreach (var (run, _) in runs)
        {
            foreach (var e in run.History.Epochs)
            {
                csv.Add(run.Name, e.Epoch + 1, e.TrainLoss, e.TrainAccuracy, e.ValidationAccuracy);
            }
        }

        csv.Save(ctx.PathOf("regularization.csv"));
        LinePlot.Save(ctx.PathOf("regularization.png"), "Train (running, train mode) and test accuracy per epoch, dropout off", "epoch", "accuracy",
            runs.SelectMany(r => new[]
            {
                new Curve(r.Run.Name + " train", r.Run.History.Epochs.Select(e => ((double)e.Epoch + 1, e.TrainAccuracy)).ToList()),
                new Curve(r.Run.Name + " test", r.Run.History.Epochs.Select(e => ((double)e.Epoch + 1, e.ValidationAccuracy ?? double.NaN)).ToList()),
            }));
    }

    /// <summary>Writes report.md: the two regularization claims checked against the runs (without BN first).</summary>
    private static void SaveReport(ExperimentContext ctx, List<(ExperimentRun Run, double TrainAccuracy)> runs, int rows, int epochs)
    {
        var report = new MarkdownReport("Does Batch Normalization regularize? Train/test gap with and without BN, dropout off");
        var (plain, plainTrain) = runs[0];
        var (bn, bnTrain) = runs[1];
        double plainGap = plainTrain - plain.TestAccuracy, bnGap = bnTrain - bn.TestAccuracy;
        report.Claim("BN acts as a regularizer: a smaller train/test gap at the same budget",
            $"gap {bnGap:F4} with BN (train {bnTrain:F4}, test {bn.TestAccuracy:F4}) vs {plainGap:F4} without (train {plainTrain:F4}, test {plain.TestAccuracy:F4})",
            bnGap < plainGap);
        report.Claim("BN gives higher test accuracy at the same budget, without dropout",
            $"{bn.TestAccuracy:F4} with BN vs {plain.TestAccuracy:F4} without", bn.TestAccuracy > plain.TestAccuracy);
        report.Paragraph($"Setup: {(ctx.Quick ? "QUICK smoke-test budget, " : "")}CNN conv32-pool-conv64-pool-fc256, no dropout, no weight decay, no augmentation, {epochs} epochs over the first {rows} training images, " +
                         $"SGD momentum 0.9 with cosine schedule from 0.02, batch 64, seed {ctx.Seed}. Train accuracy is measured after training in eval mode over the same {rows} images; " +
                         $"test accuracy over {ctx.Test.Count} test images. Training time: {bn.Seconds:F0} s with BN, {plain.Seconds:F0} s without.");
        report.Image("regularization.png", "train and test accuracy per epoch");
        report.Save(ctx.PathOf("report.md"));
    }
}

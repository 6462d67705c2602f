using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using Bn.MLNet.Samples.Reporting;
using Bn.MLNet.Training;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>
/// BN's small-batch limit: test accuracy for batch sizes 2, 4, 8, 16 and 64 with Batch, Group and Layer
/// normalization and Batch Renormalization (Ioffe 2017, the paper author's fix for this limit, with its default
/// schedule), at an equal budget of training images and a learning rate scaled linearly with the batch size.
/// </summary>
internal static class SmallBatchExperiment
{
    /// <summary>Largest accuracy gap below BN at batch 64 that still counts as keeping BN's accuracy.</summary>
    private const double KeptMargin = 0.02;

    public static void Run(ExperimentContext ctx)
    {
        int[] batchSizes = { 2, 4, 8, 16, 64 };
        var kinds = new[] { NormalizationKind.Batch, NormalizationKind.Group, NormalizationKind.Layer, NormalizationKind.BatchRenorm };
        int rows = ctx.Quick ? 1000 : 12_000;
        int epochs = ctx.Quick ? 1 : 2;
        const double rateAt64 = 0.05;

        var results = new List<(NormalizationKind Kind, int Batch, ExperimentRun Run)>();
        var train = ctx.TrainSource(rows);
        foreach (var kind in kinds)
        {
            foreach (int batch in batchSizes)
            {
                var arch = new NetworkArchitecture
                {
                    ConvStages = new List<ConvStage> { new(16, 1, true), new(32, 1, true) },
                    HiddenLayers = new[] { 64 },
                    Normalization = kind,
                    GroupCount = 4,
                };
                var options = new TrainerOptions
                {
                    BatchSize = batch,
                    Epochs = epochs,
                    Optimizer = OptimizerKind.Sgd,
                    Momentum = 0.9,
                    LearningRate = rateAt64 * batch / 64.0,
                    Schedule = LearningRateScheduleKind.Cosine,
                    WeightDecay = 0,
                    LogEverySteps = 1000,
                    RecordPercentiles = false,
                };
                int evalEvery = int.MaxValue; // final evaluation only (after each epoch)
                var run = ctx.Run($"{kind} b{batch}", arch, options, evalEvery, train);
                results.Add((kind, batch, run));
                run.Network.Dispose();
            }
        }

        SaveResults(ctx, results, kinds);
        SaveReport(ctx, results, kinds, batchSizes, rows, epochs, rateAt64);
    }

    /// <summary>small_batch.csv and the plot of test accuracy against batch size.</summary>
    private static void SaveResults(ExperimentContext ctx, List<(NormalizationKind Kind, int Batch, ExperimentRun Run)> results, NormalizationKind[] kinds)
    {
        var csv = new CsvTable("normalization", "batch_size", "test_accuracy", "train_seconds", "diverged");
        foreach (var (kind, batch, run) in results)
        {
            csv.Add(kind, batch, run.TestAccuracy, run.Seconds, run.History.Diverged);
        }

        csv.Save(ctx.PathOf("small_batch.csv"));
        LinePlot.Save(ctx.PathOf("small_batch.png"), "Test accuracy against batch size (equal image budget)", "batch size (log2)", "test accuracy",
            kinds.Select(k => new Curve(k.ToString(), results.Where(r => r.Kind == k).Select(r => ((double)r.Batch, r.Run.TestAccuracy)).ToList())),
            logX: true);
    }

    /// <summary>Writes report.md: the three small-batch claims checked against the runs, the table and the setup.</summary>
    private static void SaveReport(ExperimentContext ctx, List<(NormalizationKind Kind, int Batch, ExperimentRun Run)> results, NormalizationKind[] kinds,
        int[] batchSizes, int rows, int epochs, double rateAt64)
    {
        double Acc(NormalizationKind k, int b) => results.First(r => r.Kind == k && r.Batch == b).Run.TestAccuracy;
        var report = new MarkdownReport("Batch Normalization's small-batch limit (Batch vs Group vs Layer normalization vs Batch Renormalization)");
        double bnDrop = Acc(NormalizationKind.Batch, 64) - Acc(NormalizationKind.Batch, 2);
        double gnDrop = Acc(NormalizationKind.Group, 64) - Acc(NormalizationKind.Group, 2);
        double lnDrop = Acc(NormalizationKind.Layer, 64) - Acc(NormalizationKind.Layer, 2);
        report.Claim("BN degrades at very small batches, where its batch statistics become noisy",
            $"BN accuracy at batch 2: {Acc(NormalizationKind.Batch, 2):F4}, at 64: {Acc(NormalizationKind.Batch, 64):F4} (drop {bnDrop:F4})",
            bnDrop > 0.01);
        report.Claim("Group and Layer normalization, which do not use batch statistics, are insensitive to batch size",
            $"drop from batch 64 to 2: Group {gnDrop:F4}, Layer {lnDrop:F4}, Batch {bnDrop:F4}",
            gnDrop < bnDrop && lnDrop < bnDrop);
        double renormGap = Acc(NormalizationKind.Batch, 64) - Acc(NormalizationKind.BatchRenorm, 2);
        report.Claim("Batch Renorm keeps BN's accuracy at small batches",
            $"Batch Renorm at batch 2: {Acc(NormalizationKind.BatchRenorm, 2):F4}, at 4: {Acc(NormalizationKind.BatchRenorm, 4):F4}; " +
            $"BN at 64: {Acc(NormalizationKind.Batch, 64):F4}, at 2: {Acc(NormalizationKind.Batch, 2):F4} (Renorm at 2 is {renormGap:F4} below BN at 64; kept = within {KeptMargin})",
            renormGap <= KeptMargin);
        report.Table(new[] { "batch size" }.Concat(kinds.Select(k => k.ToString())).ToArray(),
            batchSizes.Select(b => new object?[] { b }.Concat(kinds.Select(k => (object?)Acc(k, b))).ToArray()));
        report.Paragraph($"Setup: {(ctx.Quick ? "QUICK smoke-test budget, " : "")}CNN conv16-pool-conv32-pool-fc64, {epochs} epoch(s) over the first {rows} training images for every run " +
                         $"(equal image budget), SGD momentum 0.9 with a cosine schedule, learning rate {rateAt64} × batch/64, GroupNorm with 4 groups, seed {ctx.Seed}; " +
                         $"test set of {ctx.Test.Count} images, BN and Batch Renorm scored with their running averages. Batch Renorm uses the library defaults: " +
                         $"r_max 1 → {BatchRenormSchedule.DefaultRMax}, d_max 0 → {BatchRenormSchedule.DefaultDMax}, relaxed linearly over {BatchRenormSchedule.DefaultWarmupSteps} steps " +
                         $"(steps per run: about {rows * epochs / 2} at batch 2, {rows * epochs / 64} at batch 64; r_max reached at the end of the run: " +
                         string.Join(", ", batchSizes.Select(b => $"{new BatchRenormSchedule().RMaxAt(rows * epochs / b):0.##} at batch {b}")) + ").");
        report.Image("small_batch.png", "test accuracy against batch size");
        report.Save(ctx.PathOf("report.md"));
    }
}

using System.Diagnostics;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using Bn.MLNet.Samples.Reporting;
using Bn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>
/// Inference with running averages (moving averages kept during training) vs population statistics recomputed after
/// training (the paper's Algorithm 2) vs BN folded into the preceding layers: test accuracy and scoring throughput.
/// </summary>
internal static class InferenceModesExperiment
{
    private const int ScoringBatchSize = 500;

    public static void Run(ExperimentContext ctx)
    {
        var arch = NetworkArchitecture.Default();
        var options = new TrainerOptions
        {
            BatchSize = 128,
            Epochs = ctx.Quick ? 1 : 3,
            LogEverySteps = 100,
            RecordPercentiles = false,
        };
        var run = ctx.Run("BN CNN", arch, options, int.MaxValue, ctx.TrainSource(ctx.Quick ? 3000 : null));
        BatchNormCnnNetwork network = run.Network;
        BatchSource test = ctx.TestSource();
        int repeats = ctx.Quick ? 1 : 3;

        var rows = new List<(string Mode, EvaluationResult Result, double ImagesPerSecond)>();
        rows.Add(("Running averages", Evaluation.Evaluate(network, test), Throughput(network, test, repeats)));

        using (BatchNormCnnNetwork folded = network.FoldBatchNorm())
        {
            rows.Add(("Folded into conv/linear (from running averages)", Evaluation.Evaluate(folded, test), Throughput(folded, test, repeats)));
        }

        int populationBatches = ctx.Quick ? 20 : 200;
        PopulationStatistics.Recompute(network, TrainingBatches(ctx.TrainSource(ctx.Quick ? 3000 : null), 128, populationBatches));
        rows.Add(($"Population statistics (Algorithm 2, {populationBatches} batches of 128)", Evaluation.Evaluate(network, test), Throughput(network, test, repeats)));

        var csv = new CsvTable("mode", "test_accuracy", "test_loss", "images_per_second");
        foreach (var (mode, result, ips) in rows)
        {
            csv.Add(mode, result.Accuracy, result.Loss, ips);
        }

        csv.Save(ctx.PathOf("inference_modes.csv"));
        var report = new MarkdownReport("Inference modes: running averages, population statistics (Algorithm 2), folded BN");
        var running = rows[0];
        var folded2 = rows[1];
        var population = rows[2];
        report.Claim("Population statistics give an inference network as accurate as the moving averages (Algorithm 2)",
            $"{population.Result.Accuracy:F4} vs {running.Result.Accuracy:F4}", Math.Abs(population.Result.Accuracy - running.Result.Accuracy) <= 0.005);
        report.Claim("BN at inference is a linear transform that can be folded into the preceding layer at no loss",
            $"{folded2.Result.Accuracy:F4} vs {running.Result.Accuracy:F4}; throughput {folded2.ImagesPerSecond / running.ImagesPerSecond:F2}× of unfolded",
            Math.Abs(folded2.Result.Accuracy - running.Result.Accuracy) < 1e-3);
        report.Table(new[] { "mode", "test accuracy", "test loss", "scoring images/s (median)" },
            rows.Select(r => new object?[] { r.Mode, r.Result.Accuracy, r.Result.Loss, Math.Round(r.ImagesPerSecond) }));
        report.Paragraph($"Setup: {(ctx.Quick ? "QUICK smoke-test budget, " : "")}default BN CNN ({string.Join(", ", arch.ConvStages.Select(s => $"{s.Channels}×{s.Repeats}"))} conv stages, hidden {string.Join(",", arch.HiddenLayers)}), " +
                         $"{options.Epochs} epoch(s), batch 128, trainer defaults otherwise, seed {ctx.Seed}; {run.Seconds:F0} s of training. Throughput is the median of {repeats} passes " +
                         $"over the {ctx.Test.Count} test images in batches of {ScoringBatchSize}, eval mode, no_grad.");
        report.Save(ctx.PathOf("report.md"));
        network.Dispose();
    }

    private static double Throughput(nn.Module<Tensor, Tensor> network, BatchSource source, int repeats)
    {
        var rates = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            var r = Evaluation.Evaluate(network, source, ScoringBatchSize);
            rates.Add(r.Count / clock.Elapsed.TotalSeconds);
        }

        rates.Sort();
        return rates[rates.Count / 2];
    }

    private static IEnumerable<Tensor> TrainingBatches(BatchSource source, int batchSize, int count)
    {
        int produced = 0;
        foreach (MiniBatch batch in source.ReadEpoch(batchSize, 0, shuffle: true))
        {
            if (produced == count || batch.Count < 2)
            {
                yield break;
            }

            yield return torch.tensor(batch.Features.AsSpan(0, batch.Count * batch.FeatureLength).ToArray(), new long[] { batch.Count, batch.FeatureLength });
            produced++;
        }
    }
}

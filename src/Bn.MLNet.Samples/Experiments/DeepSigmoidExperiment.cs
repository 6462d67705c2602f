using System.Globalization;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Reporting;
using Bn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>
/// The paper's sigmoid claim (sec. 4.2.1, 4.2.2) at depth: fully-connected sigmoid networks of 2, 4, 8 and 12 hidden
/// layers of 100 units, with and without Batch Normalization, at a base and a 5× learning rate. Test accuracy against
/// depth and against steps; the 15/50/85th percentiles of the last sigmoid's input; and, on the test set after
/// training, how many of the last sigmoid's outputs are saturated and how much they still vary from image to image.
/// </summary>
internal static class DeepSigmoidExperiment
{
    /// <summary>Numbers of hidden sigmoid layers that are trained.</summary>
    internal static readonly int[] Depths = { 2, 4, 8, 12 };

    /// <summary>Learning-rate multipliers of the base rate.</summary>
    internal static readonly double[] Multipliers = { 1, 5 };

    private const double BaseRate = 0.01;
    private const int Width = 100;

    /// <summary>A best test accuracy at or above this counts as "trains" (a linear classifier reaches about 0.84).</summary>
    private const double TrainsAt = 0.80;

    /// <summary>A best test accuracy below this counts as "fails" (chance is 0.10).</summary>
    private const double FailsBelow = 0.50;

    /// <summary>A sigmoid output below this or above 1 − this is saturated (|input| &gt; 3.9, slope &lt; 8% of its peak).</summary>
    private const float SaturatedOutput = 0.02f;

    private sealed record Result(int Depth, bool Bn, double Multiplier, ExperimentRun Run, string LastSigmoid, LayerPercentiles? LastInput, double Saturated, double Spread)
    {
        public bool Failed => Status is "fails" or "diverged";

        public string Status => Run.History.Diverged && Run.TestCurve.Count == 0 ? "diverged"
            : Run.BestTestAccuracy >= TrainsAt ? "trains" : Run.BestTestAccuracy < FailsBelow ? "fails" : "partly";
    }

    public static void Run(ExperimentContext ctx)
    {
        long steps = ctx.Quick ? 100 : 8000;
        int evalEvery = ctx.Quick ? 50 : 400;
        var options = new TrainerOptions
        {
            BatchSize = 64,
            MaxSteps = steps,
            Optimizer = OptimizerKind.Sgd,
            Momentum = 0.9,
            Nesterov = false,
            LearningRate = BaseRate,
            Schedule = LearningRateScheduleKind.Constant,
            WeightDecay = 0,
            LogEverySteps = ctx.Quick ? 25 : 50,
            RecordPercentiles = true,
        };

        var results = new List<Result>();
        foreach (double multiplier in Multipliers)
        {
            foreach (int depth in Depths)
            {
                foreach (bool bn in new[] { false, true })
                {
                    results.Add(Train(ctx, options, depth, bn, multiplier, evalEvery));
                }
            }
        }

        SaveCsv(ctx, results);
        SavePlots(ctx, results);
        WriteReport(ctx, results, steps, evalEvery);
    }

    private static Result Train(ExperimentContext ctx, TrainerOptions options, int depth, bool bn, double multiplier, int evalEvery)
    {
        var architecture = new NetworkArchitecture
        {
            ConvStages = new List<ConvStage>(),
            HiddenLayers = Enumerable.Repeat(Width, depth).ToArray(),
            Dropout = 0,
            Normalization = bn ? NormalizationKind.Batch : NormalizationKind.None,
            Activation = ActivationKind.Sigmoid,
        };
        var o = options.Clone();
        o.LearningRateMultiplier = multiplier;
        ExperimentRun run = ctx.Run(Name(depth, bn, multiplier), architecture, o, evalEvery);
        string layer = run.History.Layers.Last(l => l.Kind == ProbedLayerKind.Activation).Name;
        LayerPercentiles? last = run.History.Steps.LastOrDefault(e => e.Percentiles.Any(p => p.Layer == layer))?.Percentiles.First(p => p.Layer == layer);
        var (saturated, spread) = Diagnose(run.Network, ctx.Test);
        run.Network.Dispose();
        return new Result(depth, bn, multiplier, run, layer, last, saturated, spread);
    }

    private static string Name(int depth, bool bn, double multiplier) => $"{(bn ? "BN" : "No BN")}, depth {depth}, x{multiplier:g}";

    /// <summary>
    /// On (at most) the first 2,000 test images in eval mode: the fraction of the last sigmoid's outputs that are
    /// saturated, and the mean over its units of the standard deviation of a unit's output across images (near 0 when
    /// every image gives the same output, i.e. the signal has collapsed).
    /// </summary>
    private static (double Saturated, double Spread) Diagnose(BatchNormCnnNetwork network, IdxLabeledImages test)
    {
        int n = Math.Min(test.Count, 2000), f = test.Images.PixelsPerImage;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        network.eval();
        Tensor x = torch.tensor(test.Images.Pixels.AsSpan(0, n * f).ToArray(), new long[] { n, f }).to_type(ScalarType.Float32);
        Tensor s = network.Embed(x);
        double saturated = ((s < SaturatedOutput) | (s > 1 - SaturatedOutput)).to_type(ScalarType.Float32).mean().item<float>();
        double spread = s.std(0).mean().item<float>();
        return (saturated, spread);
    }

    private static void SaveCsv(ExperimentContext ctx, List<Result> results)
    {
        ctx.SaveCurves("deep_sigmoid_test_accuracy.csv", results.Select(r => r.Run));
        var summary = new CsvTable("depth", "normalization", "lr_multiplier", "learning_rate", "best_test_accuracy", "final_test_accuracy", "status",
            "diverged", "last_sigmoid_input_p15", "last_sigmoid_input_p50", "last_sigmoid_input_p85", "saturated_fraction", "unit_spread", "train_seconds");
        var percentiles = new CsvTable("run", "step", "layer", "p15", "p50", "p85");
        foreach (Result r in results)
        {
            summary.Add(r.Depth, r.Bn ? "Batch" : "None", r.Multiplier, BaseRate * r.Multiplier, r.Run.BestTestAccuracy, r.Run.TestAccuracy, r.Status,
                r.Run.History.Diverged, r.LastInput?.P15, r.LastInput?.P50, r.LastInput?.P85, r.Saturated, r.Spread, r.Run.Seconds);
            foreach (var (step, p) in LastSigmoidInputs(r))
            {
                percentiles.Add(r.Run.Name, step, r.LastSigmoid, p.P15, p.P50, p.P85);
            }
        }

        summary.Save(ctx.PathOf("deep_sigmoid_summary.csv"));
        percentiles.Save(ctx.PathOf("deep_sigmoid_last_sigmoid_input.csv"));
    }

    private static List<(long Step, LayerPercentiles P)> LastSigmoidInputs(Result r) =>
        r.Run.History.Steps.SelectMany(e => e.Percentiles.Where(p => p.Layer == r.LastSigmoid).Select(p => (e.Step, p))).ToList();

    private static void SavePlots(ExperimentContext ctx, List<Result> results)
    {
        LinePlot.Save(ctx.PathOf("deep_sigmoid_accuracy_by_depth.png"), "Best test accuracy against depth, sigmoid MLP (100 units per layer)",
            "hidden sigmoid layers", "best test accuracy",
            SeriesOrder.Select(s => new Curve(SeriesName(s.Bn, s.Multiplier),
                results.Where(r => r.Bn == s.Bn && r.Multiplier == s.Multiplier).Select(r => ((double)r.Depth, r.Run.BestTestAccuracy)).ToList())),
            yMin: 0, yMax: 1, legendOutside: true);
        foreach (int depth in Depths)
        {
            LinePlot.Save(ctx.PathOf(StepsPlotName(depth)), $"Test accuracy against steps, {depth} hidden sigmoid layers",
                "training steps", "test accuracy",
                SeriesOrder.Select(s => results.First(r => r.Depth == depth && r.Bn == s.Bn && r.Multiplier == s.Multiplier))
                    .Select(r => new Curve(SeriesName(r.Bn, r.Multiplier), r.Run.TestCurve)),
                yMin: 0, yMax: 1, legendOutside: true);
        }

        foreach (Result r in results.Where(r => r.Depth == Depths[^1]))
        {
            var points = LastSigmoidInputs(r);
            LinePlot.Save(ctx.PathOf(InputPlotName(r)), $"Last sigmoid's input, {r.Run.Name}", "training steps", "input value",
                new[]
                {
                    new Curve("15th percentile", points.Select(q => ((double)q.Step, q.P.P15)).ToList()),
                    new Curve("50th percentile", points.Select(q => ((double)q.Step, q.P.P50)).ToList()),
                    new Curve("85th percentile", points.Select(q => ((double)q.Step, q.P.P85)).ToList()),
                },
                legendOutside: true);
        }
    }

    /// <summary>The four series of the depth and step plots, in legend order (same colours in every plot).</summary>
    private static IEnumerable<(bool Bn, double Multiplier)> SeriesOrder =>
        Multipliers.SelectMany(m => new[] { true, false }.Select(bn => (bn, m)));

    private static string SeriesName(bool bn, double multiplier) => $"{(bn ? "BN" : "No BN")}, lr x{multiplier:g}";

    private static string StepsPlotName(int depth) => $"deep_sigmoid_steps_depth{depth}.png";

    private static string InputPlotName(Result r) => $"deep_sigmoid_input_depth{r.Depth}_{(r.Bn ? "bn" : "no_bn")}_x{r.Multiplier:g}.png";

    private static void WriteReport(ExperimentContext ctx, List<Result> results, long steps, int evalEvery)
    {
        var report = new MarkdownReport("The sigmoid claim at depth: deep sigmoid networks with and without Batch Normalization");
        AddClaims(report, results);
        report.Table(
            new[] { "depth", "BN", "learning rate", "best test accuracy", "final test accuracy", "outcome", "last sigmoid input p15 / p50 / p85 (end)", "saturated outputs", "unit spread", "seconds" },
            results.OrderBy(r => r.Multiplier).ThenBy(r => r.Bn).ThenBy(r => r.Depth).Select(r => new object?[]
            {
                r.Depth, r.Bn ? "yes" : "no", $"{BaseRate * r.Multiplier:g} (x{r.Multiplier:g})", r.Run.BestTestAccuracy, r.Run.TestAccuracy,
                r.Run.History.Diverged ? $"{r.Status}, diverged at step {r.Run.History.Divergence!.Step}" : r.Status,
                r.LastInput is { } p ? $"{p.P15:F2} / {p.P50:F2} / {p.P85:F2}" : "–", $"{r.Saturated:P1}", r.Spread, r.Run.Seconds,
            }));
        report.Paragraph($"Setup: {(ctx.Quick ? "QUICK smoke-test budget, " : "")}fully-connected networks of {Width} sigmoid units per hidden layer " +
                         $"({string.Join(", ", Depths)} hidden layers; with BN, BN sits before every sigmoid), PyTorch's default initialization, " +
                         $"SGD momentum 0.9, constant learning rate {BaseRate} or {BaseRate * Multipliers[^1]:g}, batch 64, {steps} steps, no weight decay, no dropout, " +
                         $"seed {ctx.Seed}; test set of {ctx.Test.Count} images every {evalEvery} steps. Outcome: \"trains\" if the best test accuracy reaches " +
                         $"{TrainsAt}, \"fails\" if it stays below {FailsBelow} (chance is 0.10), \"partly\" in between. The last sigmoid's input percentiles " +
                         "are over a sample of that layer's inputs in one training batch, recorded every few steps; the value in the table is the last one. " +
                         $"Saturated outputs: the share of the last sigmoid's outputs below {SaturatedOutput} or above {1 - SaturatedOutput} on the first " +
                         "2,000 test images after training (|input| > 3.9). Unit spread: the standard deviation of a unit's output across those images, " +
                         "averaged over the units (near 0 when every image gives the same output).");
        DescribeFailures(report, results);
        report.Image("deep_sigmoid_accuracy_by_depth.png", "best test accuracy against depth");
        foreach (int depth in Depths)
        {
            report.Image(StepsPlotName(depth), $"test accuracy against steps, depth {depth}");
        }

        foreach (Result r in results.Where(r => r.Depth == Depths[^1]).OrderBy(r => r.Multiplier).ThenBy(r => r.Bn))
        {
            report.Image(InputPlotName(r), $"last sigmoid's input percentiles, {r.Run.Name}");
        }

        report.Save(ctx.PathOf("report.md"));
    }

    private static void AddClaims(MarkdownReport report, List<Result> results)
    {
        string Accuracies(bool bn) => string.Join("; ", Multipliers.Select(m =>
            $"x{m:g} {string.Join(" / ", results.Where(r => r.Bn == bn && r.Multiplier == m).Select(r => $"{r.Run.BestTestAccuracy:F3}"))}"));
        string depths = string.Join("/", Depths);
        int deepest = Depths[^1], shallowest = Depths[0];
        var bnRuns = results.Where(r => r.Bn).ToList();
        report.Claim("With BN, a deep sigmoid network trains, also at a 5× learning rate (sec. 4.2.1, 4.2.2)",
            $"best test accuracy with BN at depth {depths}: {Accuracies(true)}",
            bnRuns.All(r => r.Status == "trains") ? "reproduced"
            : bnRuns.Where(r => r.Depth == deepest).All(r => r.Status != "trains") ? "not reproduced" : "partly reproduced");

        // The smallest depth from which every deeper no-BN network fails at every rate.
        int? failsFrom = Depths.Where(d => results.Where(r => !r.Bn && r.Depth >= d).All(r => r.Failed)).Select(d => (int?)d).FirstOrDefault();
        report.Claim("Without BN, a deep sigmoid network does not train (the sigmoid Inception never beat chance)",
            $"best test accuracy without BN at depth {depths}: {Accuracies(false)}. " +
            $"Fails (best < {FailsBelow}) at {string.Join("; ", Multipliers.Select(m => $"x{m:g}: {FailureDepths(results, m)}"))}",
            failsFrom == shallowest ? "reproduced"
            : failsFrom is int d ? $"reproduced from depth {d}"
            : results.Any(r => !r.Bn && r.Depth == deepest && r.Status != "trains") ? "partly reproduced" : "not reproduced");

        double Gap(int depth, double m) => Find(results, true, depth, m).Run.BestTestAccuracy - Find(results, false, depth, m).Run.BestTestAccuracy;
        report.Claim("BN's advantage for sigmoid networks grows with depth",
            string.Join("; ", Multipliers.Select(m => $"BN − no BN best accuracy at x{m:g}: {Gap(shallowest, m):F3} at depth {shallowest}, {Gap(deepest, m):F3} at depth {deepest}")),
            Multipliers.All(m => Gap(deepest, m) > Gap(shallowest, m) + 0.01));

        report.Claim($"Without BN the sigmoid saturates; BN keeps its input in the non-saturated range (depth {deepest})",
            string.Join("; ", Multipliers.Select(m =>
            {
                Result plain = Find(results, false, deepest, m), withBn = Find(results, true, deepest, m);
                return $"x{m:g}: saturated last-sigmoid outputs on test images {plain.Saturated:P1} without BN vs {withBn.Saturated:P1} with, " +
                       $"median input at the end {Median(plain)} vs {Median(withBn)}";
            })),
            Multipliers.All(m => Find(results, false, deepest, m).Saturated > Math.Max(0.10, 2 * Find(results, true, deepest, m).Saturated)));
    }

    private static Result Find(List<Result> results, bool bn, int depth, double multiplier) =>
        results.First(r => r.Bn == bn && r.Depth == depth && r.Multiplier == multiplier);

    private static string Median(Result r) => r.LastInput is { } p ? p.P50.ToString("F2", CultureInfo.InvariantCulture) : "–";

    /// <summary>The depths at which the no-BN network fails at <paramref name="multiplier"/>, e.g. "depth 8, 12" or "no depth".</summary>
    private static string FailureDepths(List<Result> results, double multiplier)
    {
        var failed = results.Where(r => !r.Bn && r.Multiplier == multiplier && r.Failed).Select(r => r.Depth).ToList();
        return failed.Count == 0 ? "no depth" : "depth " + string.Join(", ", failed);
    }

    /// <summary>What the failed runs' last sigmoid looks like: its inputs' spread in a batch and across test images.</summary>
    private static void DescribeFailures(MarkdownReport report, List<Result> results)
    {
        var failed = results.Where(r => r.Failed && r.LastInput is not null).ToList();
        if (failed.Count == 0)
        {
            report.Paragraph("No run failed.");
            return;
        }

        double batchRange = failed.Max(r => r.LastInput!.P85 - r.LastInput.P15);
        report.Paragraph($"The {failed.Count} failed runs ({string.Join("; ", failed.Select(r => r.Run.Name))}) end with the last sigmoid's input " +
                         $"between {failed.Min(r => r.LastInput!.P15):F2} and {failed.Max(r => r.LastInput!.P85):F2}, at most {batchRange:F3} between " +
                         $"the 15th and 85th percentile of a batch, and a unit spread across test images of at most {failed.Max(r => r.Spread):F4} " +
                         $"(at most {failed.Max(r => r.Saturated):P1} of the outputs saturated): when the spread is near 0, every image gives the " +
                         "same output and the network predicts one class for all.");
    }
}

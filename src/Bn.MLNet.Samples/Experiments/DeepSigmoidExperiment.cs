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
    private static (double Saturated, double Spread) Diagnose(BnCnn network, IdxLabeledImages test)
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
            Multipliers.SelectMany(m => new[] { true, false }.Select(bn => new Curve($"{(bn ? "BN" : "No BN")}, lr x{m:g}",
                results.Where(r => r.Bn == bn && r.Multiplier == m).Select(r => ((double)r.Depth, r.Run.BestTestAccuracy)).ToList()))),
            yMin: 0, yMax: 1);
        foreach (double m in Multipliers)
        {
            LinePlot.Save(ctx.PathOf($"deep_sigmoid_steps_x{m:g}.png"), $"Test accuracy against steps, lr x{m:g} ({BaseRate * m:g})",
                "training steps", "test accuracy", results.Where(r => r.Multiplier == m).Select(r => r.Run.ToCurve()), yMin: 0, yMax: 1);
        }

        int deepest = Depths[^1];
        foreach (Result r in results.Where(r => r.Depth == deepest))
        {
            var points = LastSigmoidInputs(r);
            LinePlot.Save(ctx.PathOf(InputPlotName(r)), $"Last sigmoid's input, {r.Run.Name}", "training steps", "input value",
                new[]
                {
                    new Curve("15th percentile", points.Select(q => ((double)q.Step, q.P.P15)).ToList()),
                    new Curve("50th percentile", points.Select(q => ((double)q.Step, q.P.P50)).ToList()),
                    new Curve("85th percentile", points.Select(q => ((double)q.Step, q.P.P85)).ToList()),
                });
        }
    }

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
        report.Image("deep_sigmoid_accuracy_by_depth.png", "best test accuracy against depth");
        foreach (double m in Multipliers)
        {
            report.Image($"deep_sigmoid_steps_x{m:g}.png", $"test accuracy against steps at x{m:g}");
        }

        foreach (Result r in results.Where(r => r.Depth == Depths[^1]).OrderBy(r => r.Multiplier).ThenBy(r => r.Bn))
        {
            report.Image(InputPlotName(r), $"last sigmoid's input percentiles, {r.Run.Name}");
        }

        report.Save(ctx.PathOf("report.md"));
    }

    private static void AddClaims(MarkdownReport report, List<Result> results)
    {
        string Accuracies(bool bn, double m) => string.Join(" / ", results.Where(r => r.Bn == bn && r.Multiplier == m).Select(r => $"{r.Run.BestTestAccuracy:F3}"));
        string depths = string.Join("/", Depths);
        int deepest = Depths[^1], shallowest = Depths[0];
        var bnRuns = results.Where(r => r.Bn).ToList();
        report.Claim("With BN, a deep sigmoid network trains, also at a 5× learning rate (sec. 4.2.1, 4.2.2)",
            $"best test accuracy with BN at depth {depths}: x1 {Accuracies(true, 1)}; x5 {Accuracies(true, 5)}",
            bnRuns.All(r => r.Status == "trains") ? "reproduced"
            : bnRuns.Where(r => r.Depth == deepest).All(r => r.Status != "trains") ? "not reproduced" : "partly reproduced");

        var plainDeepest = results.Where(r => !r.Bn && r.Depth == deepest).ToList();
        string failures = string.Join("; ", Multipliers.Select(m => $"x{m:g}: {FailureDepths(results, m)}"));
        report.Claim("Without BN, a deep sigmoid network does not train (saturation; the sigmoid Inception never beat chance)",
            $"best test accuracy without BN at depth {depths}: x1 {Accuracies(false, 1)}; x5 {Accuracies(false, 5)}. Fails (best < {FailsBelow}) at {failures}",
            plainDeepest.All(r => r.Status is "fails" or "diverged") ? "reproduced"
            : plainDeepest.Any(r => r.Status != "trains") ? "partly reproduced" : "not reproduced");

        double Gap(int depth, double m) => results.First(r => r.Bn && r.Depth == depth && r.Multiplier == m).Run.BestTestAccuracy
                                           - results.First(r => !r.Bn && r.Depth == depth && r.Multiplier == m).Run.BestTestAccuracy;
        report.Claim("BN's advantage for sigmoid networks grows with depth",
            string.Join("; ", Multipliers.Select(m => $"BN − no BN best accuracy at x{m:g}: {Gap(shallowest, m):F3} at depth {shallowest}, {Gap(deepest, m):F3} at depth {deepest}")),
            Multipliers.All(m => Gap(deepest, m) > Gap(shallowest, m) + 0.01));

        Result plain = results.First(r => !r.Bn && r.Depth == deepest && r.Multiplier == Multipliers[^1]);
        Result withBn = results.First(r => r.Bn && r.Depth == deepest && r.Multiplier == Multipliers[^1]);
        report.Claim($"Without BN the sigmoid saturates; BN keeps its input in the non-saturated range (depth {deepest}, x{Multipliers[^1]:g})",
            $"saturated last-sigmoid outputs on test images: {plain.Saturated:P1} without BN vs {withBn.Saturated:P1} with; " +
            $"unit spread across images: {plain.Spread:F3} without vs {withBn.Spread:F3} with",
            plain.Saturated > Math.Max(0.10, 2 * withBn.Saturated));
    }

    /// <summary>The depths at which the no-BN network fails at <paramref name="multiplier"/>, e.g. "depth 8, 12" or "no depth".</summary>
    private static string FailureDepths(List<Result> results, double multiplier)
    {
        var failed = results.Where(r => !r.Bn && r.Multiplier == multiplier && r.Status is "fails" or "diverged").Select(r => r.Depth).ToList();
        return failed.Count == 0 ? "no depth" : "depth " + string.Join(", ", failed);
    }
}

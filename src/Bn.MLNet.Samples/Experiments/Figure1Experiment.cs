using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Reporting;
using Bn.MLNet.Training;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>
/// The paper's figure 1: its MNIST network (three fully-connected hidden layers of 100 sigmoid units, batch 60) with
/// and without Batch Normalization, here on Fashion-MNIST. (a) test accuracy against training steps; (b, c) the 15th,
/// 50th and 85th percentiles of the input of the last hidden layer's sigmoid against steps.
/// </summary>
internal static class Figure1Experiment
{
    public static void Run(ExperimentContext ctx)
    {
        long steps = ctx.Quick ? 300 : 50_000;
        int evalEvery = ctx.Quick ? 100 : 1000;
        var options = new TrainerOptions
        {
            BatchSize = 60,
            MaxSteps = steps,
            Optimizer = OptimizerKind.Sgd,
            Momentum = 0,
            Nesterov = false,
            LearningRate = 0.5,
            Schedule = LearningRateScheduleKind.Constant,
            WeightDecay = 0,
            LogEverySteps = 50,
            RecordPercentiles = true,
        };

        var withBn = NetworkArchitecture.PaperMnistMlp();
        var withoutBn = NetworkArchitecture.PaperMnistMlp();
        withoutBn.Normalization = NormalizationKind.None;
        ExperimentRun bn = ctx.Run("With BN", withBn, options, evalEvery);
        ExperimentRun plain = ctx.Run("Without BN", withoutBn, options, evalEvery);
        var runs = new[] { plain, bn };
        ctx.SaveCurves("figure1a_test_accuracy.csv", runs);
        LinePlot.Save(ctx.PathOf("figure1a_test_accuracy.png"), "Figure 1(a): test accuracy, MLP 3×100 sigmoid, batch 60",
            "training steps", "test accuracy", runs.Select(r => r.ToCurve()));

        Dictionary<string, double> drift = SaveSigmoidInputPercentiles(ctx, runs, bn, steps);
        SaveReport(ctx, bn, plain, drift, options, steps, evalEvery);
        foreach (var run in runs)
        {
            run.Network.Dispose();
        }
    }

    /// <summary>
    /// Figure 1 (b, c): the input of the last sigmoid. The paper follows one typical unit; we record percentiles over a
    /// sample of all that layer's inputs in the batch. Returns each run's drift of those percentiles after the first 10% of steps.
    /// </summary>
    private static Dictionary<string, double> SaveSigmoidInputPercentiles(ExperimentContext ctx, ExperimentRun[] runs, ExperimentRun bn, long steps)
    {
        var percentileCsv = new CsvTable("run", "step", "layer", "p15", "p50", "p85");
        var drift = new Dictionary<string, double>();
        foreach (var run in runs)
        {
            string layer = run.History.Layers.Last(l => l.Kind == ProbedLayerKind.Activation).Name;
            var points = run.History.Steps
                .SelectMany(e => e.Percentiles.Where(p => p.Layer == layer).Select(p => (e.Step, p)))
                .ToList();
            foreach (var (step, p) in points)
            {
                percentileCsv.Add(run.Name, step, layer, p.P15, p.P50, p.P85);
            }

            string tag = run == bn ? "c" : "b";
            LinePlot.Save(ctx.PathOf($"figure1{tag}_sigmoid_input_{(run == bn ? "with" : "without")}_bn.png"),
                $"Figure 1({tag}): last sigmoid's input, {run.Name}", "training steps", "input value",
                new[]
                {
                    new Curve("15th percentile", points.Select(q => ((double)q.Step, q.p.P15)).ToList()),
                    new Curve("50th percentile", points.Select(q => ((double)q.Step, q.p.P50)).ToList()),
                    new Curve("85th percentile", points.Select(q => ((double)q.Step, q.p.P85)).ToList()),
                });

            // Drift: how far the percentiles move after the first 10% of training (mean over the three of max − min).
            var late = points.Where(q => q.Step > steps / 10).ToList();
            drift[run.Name] = late.Count == 0 ? double.NaN : new[]
            {
                late.Max(q => q.p.P15) - late.Min(q => q.p.P15),
                late.Max(q => q.p.P50) - late.Min(q => q.p.P50),
                late.Max(q => q.p.P85) - late.Min(q => q.p.P85),
            }.Average();
        }

        percentileCsv.Save(ctx.PathOf("figure1bc_sigmoid_input_percentiles.csv"));
        return drift;
    }

    /// <summary>Writes report.md: the paper's three figure-1 claims checked against the two runs.</summary>
    private static void SaveReport(ExperimentContext ctx, ExperimentRun bn, ExperimentRun plain, Dictionary<string, double> drift,
        TrainerOptions options, long steps, int evalEvery)
    {
        var report = new MarkdownReport("Figure 1: the MNIST network with and without Batch Normalization (on Fashion-MNIST)");
        double target = 0.95 * plain.BestTestAccuracy;
        double? bnSteps = bn.StepsToReach(target), plainSteps = plain.StepsToReach(target);
        report.Claim("BN network reaches higher test accuracy (fig. 1a)",
            $"final {bn.TestAccuracy:F4} with BN vs {plain.TestAccuracy:F4} without",
            bn.TestAccuracy > plain.TestAccuracy);
        report.Claim("BN network trains faster (fig. 1a)",
            $"steps to reach 95% of the no-BN best ({target:F4}): {Fmt(bnSteps)} with BN vs {Fmt(plainSteps)} without",
            bnSteps is null ? false : plainSteps is null || bnSteps < plainSteps);
        report.Claim("BN keeps the sigmoid's input distribution stable (fig. 1b, 1c)",
            $"mean range of the 15/50/85th percentiles after the first 10% of steps: {drift[bn.Name]:F3} with BN vs {drift[plain.Name]:F3} without",
            drift[bn.Name] < drift[plain.Name]);
        report.Paragraph($"Setup: {(ctx.Quick ? "QUICK smoke-test budget, " : "")}{steps} steps of plain SGD (learning rate {options.LearningRate}, constant), batch 60, seed {ctx.Seed}; " +
                         $"test set of {ctx.Test.Count} images evaluated every {evalEvery} steps. Sigmoid-input percentiles are over a sample of all " +
                         "inputs of the last hidden layer's sigmoid in the batch (the paper follows one typical unit), recorded every 50 steps. " +
                         $"Training time: {bn.Seconds:F0} s with BN, {plain.Seconds:F0} s without (evaluations included).");
        report.Image("figure1a_test_accuracy.png", "test accuracy against steps");
        report.Image("figure1b_sigmoid_input_without_bn.png", "sigmoid input percentiles without BN");
        report.Image("figure1c_sigmoid_input_with_bn.png", "sigmoid input percentiles with BN");
        report.Save(ctx.PathOf("report.md"));
    }

    internal static string Fmt(double? steps) => steps is double s ? s.ToString("F0") : "never";
}

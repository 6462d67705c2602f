using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Reporting;
using Bn.MLNet.Training;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>
/// The paper's figure 2 and table 2 pattern on a small CNN: no BN at a base learning rate; BN at ×1, ×5 and ×30;
/// BN ×5 with sigmoid; no BN with sigmoid at ×5. Accuracy against steps, steps each run needs to reach the no-BN run's
/// best accuracy, best accuracy, and which runs diverged.
/// </summary>
internal static class LearningRatesExperiment
{
    public static void Run(ExperimentContext ctx)
    {
        long steps = ctx.Quick ? 300 : 3000;
        int evalEvery = ctx.Quick ? 100 : 250;
        const double baseRate = 0.01;
        var options = new TrainerOptions
        {
            BatchSize = 64,
            MaxSteps = steps,
            Optimizer = OptimizerKind.Sgd,
            Momentum = 0.9,
            Nesterov = false,
            LearningRate = baseRate,
            Schedule = LearningRateScheduleKind.Constant,
            WeightDecay = 0,
            LogEverySteps = 50,
            RecordPercentiles = false,
        };

        NetworkArchitecture Net(NormalizationKind norm, ActivationKind act) => new()
        {
            ConvStages = new List<ConvStage> { new(16, 1, true), new(32, 1, true) },
            HiddenLayers = new[] { 128 },
            Dropout = 0,
            Normalization = norm,
            Activation = act,
        };

        var configs = new (string Name, NormalizationKind Norm, ActivationKind Act, double Multiplier)[]
        {
            ("No BN", NormalizationKind.None, ActivationKind.ReLU, 1),
            ("BN-Baseline", NormalizationKind.Batch, ActivationKind.ReLU, 1),
            ("BN-x5", NormalizationKind.Batch, ActivationKind.ReLU, 5),
            ("BN-x30", NormalizationKind.Batch, ActivationKind.ReLU, 30),
            ("BN-x5-Sigmoid", NormalizationKind.Batch, ActivationKind.Sigmoid, 5),
            ("No BN, Sigmoid x5", NormalizationKind.None, ActivationKind.Sigmoid, 5),
        };

        var runs = new List<ExperimentRun>();
        foreach (var (name, norm, act, multiplier) in configs)
        {
            var o = options.Clone();
            o.LearningRateMultiplier = multiplier;
            runs.Add(ctx.Run(name, Net(norm, act), o, evalEvery));
        }

        ctx.SaveCurves("learning_rates_test_accuracy.csv", runs);
        LinePlot.Save(ctx.PathOf("learning_rates_test_accuracy.png"), "Test accuracy against steps (figure 2 pattern)",
            "training steps", "test accuracy", runs.Select(r => r.ToCurve()), yMin: 0);

        SaveReport(ctx, runs, configs.ToDictionary(c => c.Name, c => c.Multiplier), baseRate, steps, evalEvery);
        foreach (var run in runs)
        {
            run.Network.Dispose();
        }
    }

    /// <summary>Writes report.md: the table of runs and the paper's three claims checked against them.</summary>
    private static void SaveReport(ExperimentContext ctx, List<ExperimentRun> runs, Dictionary<string, double> multipliers, double baseRate, long steps, int evalEvery)
    {
        ExperimentRun baseline = runs[0];
        double target = baseline.BestTestAccuracy;
        var report = new MarkdownReport("Higher learning rates with Batch Normalization (the paper's figure 2 and table 2 pattern)");
        report.Table(
            new[] { "run", "learning rate", "steps to reach no-BN best", "speed-up vs no BN", "best test accuracy", "final test accuracy", "diverged", "seconds" },
            runs.Select(r =>
            {
                double? s = r.StepsToReach(target);
                double? b = baseline.StepsToReach(target);
                return new object?[]
                {
                    r.Name, baseRate * multipliers[r.Name], Figure1Experiment.Fmt(s),
                    s is double sv && b is double bv ? $"{bv / sv:F1}×" : "–", r.BestTestAccuracy, r.TestAccuracy,
                    r.History.Diverged ? $"yes (step {r.History.Divergence!.Step}, lr {r.History.Divergence.LearningRate:g3})" : "no", r.Seconds,
                };
            }));

        ExperimentRun x5 = runs.First(r => r.Name == "BN-x5");
        ExperimentRun x30 = runs.First(r => r.Name == "BN-x30");
        ExperimentRun bnSigmoid = runs.First(r => r.Name == "BN-x5-Sigmoid");
        ExperimentRun plainSigmoid = runs.First(r => r.Name == "No BN, Sigmoid x5");
        double? x5Steps = x5.StepsToReach(target), baseSteps = baseline.StepsToReach(target);
        report.Claim("BN with a 5× higher learning rate reaches the no-BN accuracy in fewer steps (Inception: 14× fewer)",
            x5Steps is double a && baseSteps is double b ? $"{b / a:F1}× fewer steps ({a:F0} vs {b:F0})" : $"BN-x5 reached it: {x5Steps is not null}",
            x5Steps is not null && baseSteps is not null && x5Steps < baseSteps);
        report.Claim("BN allows a 30× learning rate without diverging",
            x30.History.Diverged ? "diverged" : $"trained, best {x30.BestTestAccuracy:F4}", !x30.History.Diverged && x30.BestTestAccuracy > 0.5);
        report.Claim("A sigmoid network trains with BN; without BN it does not (or far more slowly)",
            $"best {bnSigmoid.BestTestAccuracy:F4} with BN vs {plainSigmoid.BestTestAccuracy:F4} without",
            bnSigmoid.BestTestAccuracy > plainSigmoid.BestTestAccuracy + 0.05);
        report.Paragraph($"Setup: {(ctx.Quick ? "QUICK smoke-test budget, " : "")}CNN conv16-pool-conv32-pool-fc128, SGD momentum 0.9, constant learning rate (base {baseRate}), " +
                         $"batch 64, {steps} steps, no weight decay, no dropout, seed {ctx.Seed}; test set of {ctx.Test.Count} images every {evalEvery} steps. " +
                         "The no-BN target is the best test accuracy the no-BN run reached.");
        report.Image("learning_rates_test_accuracy.png", "test accuracy against steps");
        report.Save(ctx.PathOf("report.md"));
    }
}

using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Reporting;
using Bn.MLNet.Training;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>One trained configuration of an experiment: its history, its test-accuracy curve and final scores.</summary>
/// <param name="Name">Short label used in legends, tables and CSV.</param>
/// <param name="Network">The trained network (eval mode); the caller disposes it.</param>
/// <param name="History">The trainer's history.</param>
/// <param name="TestCurve">Test accuracy against training steps (evaluated every K steps and at the end).</param>
/// <param name="TestAccuracy">Final test accuracy (NaN when the run diverged before any evaluation).</param>
/// <param name="Seconds">Wall-clock training time including the periodic evaluations.</param>
public sealed record ExperimentRun(string Name, BatchNormCnnNetwork Network, TrainingHistory History, IReadOnlyList<(double X, double Y)> TestCurve, double TestAccuracy, double Seconds)
{
    /// <summary>Best test accuracy seen on the curve.</summary>
    public double BestTestAccuracy => TestCurve.Count == 0 ? double.NaN : TestCurve.Max(p => p.Y);

    /// <summary>First evaluated step at which the test accuracy reached <paramref name="target"/>, or null.</summary>
    public double? StepsToReach(double target) => TestCurve.Where(p => p.Y >= target).Select(p => (double?)p.X).FirstOrDefault();

    /// <summary>The curve as a plot series.</summary>
    public Curve ToCurve() => new(Name, TestCurve);
}

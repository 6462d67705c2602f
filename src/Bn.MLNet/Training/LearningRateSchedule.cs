namespace Bn.MLNet.Training;

/// <summary>Learning rate as a function of the step, for the schedules of <see cref="LearningRateScheduleKind"/>.</summary>
internal static class LearningRateSchedule
{
    /// <summary>The learning rate to use at zero-based <paramref name="step"/>.</summary>
    /// <param name="options">Schedule settings; the base rate is <see cref="TrainerOptions.LearningRate"/> × <see cref="TrainerOptions.LearningRateMultiplier"/>.</param>
    /// <param name="step">Zero-based step.</param>
    /// <param name="totalSteps">Planned number of steps (at least 1).</param>
    /// <param name="stepsPerEpoch">Steps per epoch (at least 1), for <see cref="LearningRateScheduleKind.Step"/>.</param>
    public static double At(TrainerOptions options, long step, long totalSteps, long stepsPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(options);
        totalSteps = Math.Max(1, totalSteps);
        return AtFraction(options, Math.Min(1.0, (double)step / totalSteps), step, totalSteps, stepsPerEpoch);
    }

    /// <summary>
    /// The fraction of training done after <paramref name="step"/> of <paramref name="plannedSteps"/> steps, in [0, 1]:
    /// with a time budget (<see cref="TrainerOptions.TimeBudget"/>), the larger of the step and time fractions,
    /// so the schedule ends annealed when the budget runs out first. This is the fraction <see cref="Trainer"/> passes to
    /// <see cref="AtFraction"/>.
    /// </summary>
    /// <param name="step">Steps done.</param>
    /// <param name="plannedSteps">Planned number of steps.</param>
    /// <param name="elapsedSeconds">Seconds since training started.</param>
    /// <param name="timeBudgetSeconds">The time budget, or null for none.</param>
    public static double FractionDone(long step, long plannedSteps, double elapsedSeconds, double? timeBudgetSeconds)
    {
        double fraction = (double)step / Math.Max(1, plannedSteps);
        if (timeBudgetSeconds is double budget)
        {
            fraction = Math.Max(fraction, elapsedSeconds / budget);
        }

        return Math.Clamp(fraction, 0, 1);
    }

    /// <summary>
    /// The learning rate when a <paramref name="fraction"/> in [0, 1] of training is done (for cosine and one-cycle; a time
    /// budget makes the fraction the larger of the step and time fractions). <see cref="LearningRateScheduleKind.Step"/>
    /// decays by epochs, computed from <paramref name="step"/>.
    /// </summary>
    /// <param name="options">Schedule settings.</param>
    /// <param name="fraction">Fraction of training done, clamped to [0, 1].</param>
    /// <param name="step">Zero-based step.</param>
    /// <param name="totalSteps">Planned number of steps, used to place the one-cycle warm-up on whole steps.</param>
    /// <param name="stepsPerEpoch">Steps per epoch, for <see cref="LearningRateScheduleKind.Step"/>.</param>
    public static double AtFraction(TrainerOptions options, double fraction, long step, long totalSteps, long stepsPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(options);
        double baseRate = options.LearningRate * options.LearningRateMultiplier;
        fraction = Math.Clamp(double.IsNaN(fraction) ? 0 : fraction, 0, 1);
        totalSteps = Math.Max(1, totalSteps);
        stepsPerEpoch = Math.Max(1, stepsPerEpoch);
        double final = baseRate * options.FinalLearningRateFraction;
        switch (options.Schedule)
        {
            case LearningRateScheduleKind.Constant:
                return baseRate;
            case LearningRateScheduleKind.Step:
                long epoch = step / stepsPerEpoch;
                return baseRate * Math.Pow(options.StepGamma, epoch / options.StepSizeEpochs);
            case LearningRateScheduleKind.Cosine:
                return Anneal(baseRate, final, fraction);
            case LearningRateScheduleKind.OneCycle:
                double start = baseRate / options.OneCycleDivFactor;
                double warm = Math.Max(1.0 / totalSteps, options.OneCycleWarmupFraction);
                if (fraction < warm)
                {
                    return Anneal(start, baseRate, fraction / warm);
                }

                return Anneal(baseRate, final, Math.Min(1.0, (fraction - warm) / Math.Max(1e-12, 1 - warm)));
            default:
                throw new ArgumentOutOfRangeException(nameof(options), options.Schedule, "Unknown schedule.");
        }
    }

    private static double Anneal(double from, double to, double fraction) =>
        to + ((from - to) * 0.5 * (1 + Math.Cos(Math.PI * fraction)));
}

namespace Bn.MLNet.Training;

/// <summary>
/// How long a run is planned to last: optimizer steps per epoch (a final batch of one row is not a step), the planned
/// steps (<see cref="TrainerOptions.MaxSteps"/>, or the epochs times the steps per epoch) and the epochs they span.
/// </summary>
internal readonly record struct TrainingPlan(long StepsPerEpoch, long Steps, int Epochs)
{
    /// <summary>The plan for <paramref name="rows"/> training rows under <paramref name="options"/>.</summary>
    public static TrainingPlan For(long rows, TrainerOptions options)
    {
        int batchSize = options.BatchSize;
        long stepsPerEpoch = (rows / batchSize) + (rows % batchSize >= 2 ? 1 : 0);
        long steps = options.MaxSteps ?? (options.Epochs * stepsPerEpoch);
        int epochs = (int)((steps + stepsPerEpoch - 1) / stepsPerEpoch);
        return new TrainingPlan(stepsPerEpoch, steps, epochs);
    }
}

using Bn.MLNet.Data;
using Bn.MLNet.Networks;

namespace Bn.MLNet.Training;

/// <summary>
/// What a run writes down and tells as it goes: a <see cref="TrainingHistory.Steps"/> entry every
/// <see cref="TrainerOptions.LogEverySteps"/> steps (means over the steps since the previous entry), a validation pass every
/// <see cref="TrainerOptions.ValidationEverySteps"/> steps, and <see cref="TrainingProgress"/> reports every
/// <see cref="TrainerOptions.ProgressEverySteps"/> steps and at the end of each epoch.
/// </summary>
internal sealed class StepReporter(
    TrainerOptions options,
    TrainingHistory history,
    TrainingPlan plan,
    TrainingClock clock,
    BatchSource? validation,
    IProgress<TrainingProgress>? progress,
    CancellationToken cancellationToken)
{
    private RunningTotals _span = new();

    /// <summary>Starts the first log span of an epoch.</summary>
    public void StartEpoch() => _span = new RunningTotals();

    /// <summary>Whether the step about to run (after <paramref name="step"/> steps) is logged.</summary>
    public bool IsLogged(long step) => step % options.LogEverySteps == 0;

    /// <summary>
    /// After a step (<paramref name="step"/> steps done): adds it to the log span, writes the step entry when
    /// <paramref name="logged"/>, and validates when it is due.
    /// </summary>
    public void AfterStep(BatchNormCnnNetwork network, int epoch, long step, double lr, float loss, int rows, long correct, bool logged, List<LayerPercentiles>? percentiles)
    {
        _span.Add(loss, rows, correct);
        HistoryEntry? entry = null;
        if (logged)
        {
            entry = new HistoryEntry
            {
                Epoch = epoch,
                Step = step,
                TrainLoss = _span.MeanLoss,
                TrainAccuracy = _span.Accuracy,
                LearningRate = lr,
                ElapsedSeconds = clock.Elapsed.TotalSeconds,
                ImagesPerSecond = _span.ImagesPerSecond(_span.Seconds),
                PercentilesData = percentiles ?? new List<LayerPercentiles>(),
            };
            history.StepsData.Add(entry);
            _span.Restart();
        }

        if (validation is not null && options.ValidationEverySteps is int every && step % every == 0)
        {
            if (entry is null)
            {
                entry = new HistoryEntry { Epoch = epoch, Step = step, TrainLoss = double.NaN, TrainAccuracy = double.NaN, LearningRate = lr };
                history.StepsData.Add(entry);
            }

            EvaluationResult v = Evaluation.Evaluate(network, validation, options.EvaluationBatchSize, cancellationToken);
            entry.ValidationLoss = v.Loss;
            entry.ValidationAccuracy = v.Accuracy;
            entry.ElapsedSeconds = clock.Elapsed.TotalSeconds;
        }
    }

    /// <summary>Reports progress within the epoch when it is due after <paramref name="step"/> steps.</summary>
    public void ReportStep(int epoch, long step, double lr, RunningTotals epochTotals)
    {
        if (progress is not null && step % options.ProgressEverySteps == 0)
        {
            progress.Report(new TrainingProgress(epoch, plan.Epochs, step, plan.Steps, epochTotals.MeanLoss, epochTotals.Accuracy,
                epochTotals.Images / Math.Max(1e-9, epochTotals.Seconds), lr, clock.Elapsed.TotalSeconds, false, null));
        }
    }

    /// <summary>Reports the end of an epoch (after its validation).</summary>
    public void ReportEpoch(HistoryEntry entry) =>
        progress?.Report(new TrainingProgress(entry.Epoch, plan.Epochs, entry.Step, plan.Steps, entry.TrainLoss, entry.TrainAccuracy,
            entry.ImagesPerSecond, entry.LearningRate, entry.ElapsedSeconds, true, entry.ValidationAccuracy));
}

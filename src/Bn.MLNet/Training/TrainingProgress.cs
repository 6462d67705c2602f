namespace Bn.MLNet.Training;

/// <summary>A progress report of a <see cref="Trainer"/>, sent every few steps and at the end of each epoch.</summary>
/// <param name="Epoch">Zero-based epoch.</param>
/// <param name="PlannedEpochs">Planned number of epochs.</param>
/// <param name="Step">Optimizer steps done so far (over all epochs).</param>
/// <param name="PlannedSteps">Planned number of steps.</param>
/// <param name="Loss">Mean training loss of the epoch so far.</param>
/// <param name="Accuracy">Training accuracy of the epoch so far (train mode, augmented inputs).</param>
/// <param name="ImagesPerSecond">Training throughput of the epoch so far.</param>
/// <param name="LearningRate">The learning rate of the last step.</param>
/// <param name="ElapsedSeconds">Seconds since training started.</param>
/// <param name="EpochCompleted">True for the report sent at the end of an epoch (after validation).</param>
/// <param name="ValidationAccuracy">Validation accuracy of the completed epoch, when there is a validation source.</param>
public sealed record TrainingProgress(
    int Epoch,
    int PlannedEpochs,
    long Step,
    long PlannedSteps,
    double Loss,
    double Accuracy,
    double ImagesPerSecond,
    double LearningRate,
    double ElapsedSeconds,
    bool EpochCompleted,
    double? ValidationAccuracy);

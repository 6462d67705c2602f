namespace Bn.MLNet.Training;

/// <summary>
/// Training diverged (a NaN or infinite loss, weights or running statistics) before any optimizer step gave a finite
/// network, so there is no trained model to return. Thrown by <c>BatchNormCnnEstimator.Fit</c>; the message names the
/// step, the loss and the learning rate and suggests what to change.
/// </summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    /// <summary>Creates the exception for <paramref name="history"/>, whose <see cref="TrainingHistory.Divergence"/> is set.</summary>
    public TrainingDivergedException(string message, TrainingHistory history)
        : base(message)
    {
        ArgumentNullException.ThrowIfNull(history);
        History = history;
    }

    /// <summary>The run that diverged.</summary>
    public TrainingHistory History { get; }

    /// <summary>Where and why it diverged.</summary>
    public DivergenceInfo? Divergence => History.Divergence;
}

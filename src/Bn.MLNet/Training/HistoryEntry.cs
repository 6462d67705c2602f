using Bn.MLNet.Networks;

namespace Bn.MLNet.Training;

/// <summary>One row of a <see cref="TrainingHistory"/>: the state at the end of an epoch or at a logged step.</summary>
public sealed class HistoryEntry
{
    /// <summary>Zero-based epoch.</summary>
    public int Epoch { get; set; }

    /// <summary>Optimizer steps done so far (over all epochs).</summary>
    public long Step { get; set; }

    /// <summary>Mean training loss: over the epoch for epoch rows, over the steps since the previous step row for step rows.</summary>
    public double TrainLoss { get; set; }

    /// <summary>Training accuracy over the same span as <see cref="TrainLoss"/> (train mode, augmented inputs).</summary>
    public double TrainAccuracy { get; set; }

    /// <summary>Validation loss (eval mode); epoch rows with a validation source only.</summary>
    public double? ValidationLoss { get; set; }

    /// <summary>Validation accuracy (eval mode); epoch rows with a validation source only.</summary>
    public double? ValidationAccuracy { get; set; }

    /// <summary>The learning rate of the last step of the span.</summary>
    public double LearningRate { get; set; }

    /// <summary>Seconds since training started.</summary>
    public double ElapsedSeconds { get; set; }

    /// <summary>Training images per second over the span (validation excluded).</summary>
    public double ImagesPerSecond { get; set; }

    /// <summary>
    /// 15/50/85th percentiles of each probed layer's input (<see cref="BatchNormCnnNetwork.ProbedLayers"/>) sampled on one training batch:
    /// on this step for step rows, on the epoch's last sampled step for epoch rows; empty when not recorded.
    /// </summary>
    public List<LayerPercentiles> Percentiles { get; set; } = new();
}

using System.Text.Json.Serialization;
using Bn.MLNet.Networks;

namespace Bn.MLNet.Training;

/// <summary>One row of a <see cref="TrainingHistory"/>: the state at the end of an epoch or at a logged step.</summary>
public sealed class HistoryEntry
{
    /// <summary>Zero-based epoch.</summary>
    [JsonInclude]
    public int Epoch { get; internal set; }

    /// <summary>Optimizer steps done so far (over all epochs).</summary>
    [JsonInclude]
    public long Step { get; internal set; }

    /// <summary>Mean training loss: over the epoch for epoch rows, over the steps since the previous step row for step rows.</summary>
    [JsonInclude]
    public double TrainLoss { get; internal set; }

    /// <summary>Training accuracy over the same span as <see cref="TrainLoss"/> (train mode, augmented inputs).</summary>
    [JsonInclude]
    public double TrainAccuracy { get; internal set; }

    /// <summary>Validation loss (eval mode); epoch rows with a validation source only.</summary>
    [JsonInclude]
    public double? ValidationLoss { get; internal set; }

    /// <summary>Validation accuracy (eval mode); epoch rows with a validation source only.</summary>
    [JsonInclude]
    public double? ValidationAccuracy { get; internal set; }

    /// <summary>The learning rate of the last step of the span.</summary>
    [JsonInclude]
    public double LearningRate { get; internal set; }

    /// <summary>Seconds since training started.</summary>
    [JsonInclude]
    public double ElapsedSeconds { get; internal set; }

    /// <summary>Training images per second over the span (validation excluded).</summary>
    [JsonInclude]
    public double ImagesPerSecond { get; internal set; }

    /// <summary>
    /// 15/50/85th percentiles of each probed layer's input (<see cref="BatchNormCnnNetwork.ProbedLayers"/>) sampled on one training batch:
    /// on this step for step rows, on the epoch's last sampled step for epoch rows; empty when not recorded.
    /// </summary>
    [JsonIgnore]
    public IReadOnlyList<LayerPercentiles> Percentiles => PercentilesData;

    [JsonInclude]
    [JsonPropertyName("percentiles")]
    internal List<LayerPercentiles> PercentilesData { get; set; } = new();
}

using Bn.MLNet.Networks;

namespace Bn.MLNet;

/// <summary>Column settings shared by the estimator, the transformer and the saved model, and the task that decides the output columns.</summary>
internal sealed record ColumnSettings(
    string FeatureColumnName,
    string LabelColumnName,
    string ScoreColumnName,
    string PredictedLabelColumnName,
    string? EmbeddingColumnName,
    int ImageChannels,
    int ImageHeight,
    int ImageWidth,
    NetworkTask Task = NetworkTask.MulticlassClassification,
    string ProbabilityColumnName = BatchNormCnnOptions.DefaultProbabilityColumnName)
{
    public int FeatureLength => ImageChannels * ImageHeight * ImageWidth;

    public static ColumnSettings From(BatchNormCnnOptions o, NetworkTask task) => new(
        o.FeatureColumnName, o.LabelColumnName, o.ScoreColumnName, o.PredictedLabelColumnName, o.EmbeddingColumnName,
        o.ImageChannels, o.ImageHeight, o.ImageWidth, task, o.ProbabilityColumnName);

    public string ShapeText => $"{ImageChannels}×{ImageHeight}×{ImageWidth} = {FeatureLength}";
}

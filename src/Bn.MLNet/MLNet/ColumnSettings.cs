namespace Bn.MLNet;

/// <summary>Column settings shared by the estimator, the transformer and the saved model.</summary>
internal sealed record ColumnSettings(
    string FeatureColumnName,
    string LabelColumnName,
    string ScoreColumnName,
    string PredictedLabelColumnName,
    string? EmbeddingColumnName,
    int ImageChannels,
    int ImageHeight,
    int ImageWidth)
{
    public int FeatureLength => ImageChannels * ImageHeight * ImageWidth;

    public static ColumnSettings From(BatchNormCnnOptions o) => new(
        o.FeatureColumnName, o.LabelColumnName, o.ScoreColumnName, o.PredictedLabelColumnName, o.EmbeddingColumnName,
        o.ImageChannels, o.ImageHeight, o.ImageWidth);

    public string ShapeText => $"{ImageChannels}×{ImageHeight}×{ImageWidth} = {FeatureLength}";
}

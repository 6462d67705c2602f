namespace Bn.MLNet.Onnx;

/// <summary>Names and metadata of an exported graph.</summary>
/// <param name="FeatureName">Graph input: float32 [N, C·H·W].</param>
/// <param name="ScoreName">Graph output: softmax probabilities, float32 [N, K].</param>
/// <param name="EmbeddingName">Optional graph output: the last hidden layer's activations, float32 [N, E].</param>
/// <param name="PredictedIndexName">Graph output: the 0-based index of the largest probability, int64 [N].</param>
/// <param name="Metadata">metadata_props entries.</param>
/// <param name="FlipAveraging">Test-time flip averaging: the score is the mean of the probabilities of each image and its mirror.</param>
internal sealed record OnnxExportSettings(
    string FeatureName, string ScoreName, string? EmbeddingName, string PredictedIndexName, IReadOnlyList<KeyValuePair<string, string>> Metadata,
    bool FlipAveraging = false);

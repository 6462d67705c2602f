using Bn.MLNet.Networks;

namespace Bn.MLNet.Onnx;

/// <summary>Names and metadata of an exported graph.</summary>
/// <param name="FeatureName">Graph input: float32 [N, C·H·W].</param>
/// <param name="ScoreName">Graph output: softmax probabilities, float32 [N, K] (multiclass); the logit, float32 [N] (binary); the prediction, float32 [N] (regression).</param>
/// <param name="EmbeddingName">Optional graph output: the last hidden layer's activations, float32 [N, E].</param>
/// <param name="PredictedIndexName">Multiclass graph output: the 0-based index of the largest probability, int64 [N].</param>
/// <param name="Metadata">metadata_props entries.</param>
/// <param name="FlipAveraging">Test-time flip averaging: the score is the mean of the probabilities of each image and its mirror.</param>
/// <param name="Task">What the network predicts, which decides the outputs.</param>
/// <param name="ProbabilityName">Binary graph output: the sigmoid of the score, float32 [N].</param>
/// <param name="PredictedLabelName">Binary graph output: score &gt; 0, bool [N].</param>
internal sealed record OnnxExportSettings(
    string FeatureName, string ScoreName, string? EmbeddingName, string PredictedIndexName, IReadOnlyList<KeyValuePair<string, string>> Metadata,
    bool FlipAveraging = false, NetworkTask Task = NetworkTask.MulticlassClassification, string? ProbabilityName = null, string? PredictedLabelName = null);

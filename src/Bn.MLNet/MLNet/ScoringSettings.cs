namespace Bn.MLNet;

/// <summary>How a <see cref="BatchNormCnnTransformer"/> scores: one record for the settings saved with the model.</summary>
/// <param name="InferenceMode">How batch normalization behaves at inference.</param>
/// <param name="BatchSize">Rows per forward pass in <c>Transform</c>'s cursors.</param>
/// <param name="TestTimeFlipAveraging">Whether each image is scored with its mirror.</param>
/// <param name="Engine">What computes the scores.</param>
internal sealed record ScoringSettings(BatchNormInferenceMode InferenceMode, int BatchSize, bool TestTimeFlipAveraging, ScoringEngine Engine)
{
    /// <summary>The scoring settings of <paramref name="options"/>.</summary>
    public static ScoringSettings From(BatchNormCnnOptions options) =>
        new(options.InferenceMode, options.InferenceBatchSize, options.TestTimeFlipAveraging, options.ScoringEngine);
}

using Bn.MLNet.Networks;

namespace Bn.MLNet;

/// <summary>How a trained <see cref="BatchNormCnnTransformer"/> normalizes at inference time.</summary>
public enum BatchNormInferenceMode
{
    /// <summary>Batch Normalization uses the moving averages of mean and variance updated during training (the default, as in PyTorch).</summary>
    RunningAverages,

    /// <summary>
    /// After training, the moving averages are replaced by population statistics computed over one pass of the
    /// training data in training-mode mini-batches (the paper's Algorithm 2, steps 8–11). Needs
    /// <see cref="NormalizationKind.Batch"/> or <see cref="NormalizationKind.BatchRenorm"/>.
    /// </summary>
    PopulationStatistics,

    /// <summary>
    /// Every Batch Normalization is folded into the convolution or linear layer before it (same function as
    /// <see cref="RunningAverages"/>, fewer operations). Needs <see cref="NormalizationKind.Batch"/>,
    /// <see cref="NormalizationKind.BatchNative"/>, <see cref="NormalizationKind.BatchRenorm"/> or <see cref="NormalizationKind.None"/>.
    /// </summary>
    Folded,
}

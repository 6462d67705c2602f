namespace Bn.MLNet.Networks;

/// <summary>The normalization placed after each convolution and hidden fully-connected layer of a <see cref="BatchNormCnnNetwork"/>.</summary>
public enum NormalizationKind
{
    /// <summary>This library's Batch Normalization (<c>Bn.MLNet.Normalization.BatchNorm2d</c>/<c>BatchNorm1d</c>), the default.</summary>
    Batch = 0,

    /// <summary>TorchSharp's own <c>torch.nn.BatchNorm2d</c>/<c>BatchNorm1d</c>, for comparison.</summary>
    BatchNative = 1,

    /// <summary>No normalization (the paper's baseline); convolutions and linear layers keep their bias.</summary>
    None = 2,

    /// <summary>Group Normalization with <see cref="NetworkArchitecture.GroupCount"/> groups (convolutions and hidden layers).</summary>
    Group = 3,

    /// <summary>
    /// Layer Normalization: <c>GroupNorm(1, C)</c> after convolutions (statistics over C×H×W, per-channel affine, as in
    /// Wu &amp; He 2018) and <c>LayerNorm(features)</c> after hidden fully-connected layers.
    /// </summary>
    Layer = 4,

    /// <summary>
    /// Batch Renormalization (Ioffe 2017, <c>Bn.MLNet.Normalization.BatchRenorm2d</c>/<c>BatchRenorm1d</c>): batch statistics
    /// corrected toward the moving averages in training, with the limits <see cref="NetworkArchitecture.BatchRenormRMax"/>,
    /// <see cref="NetworkArchitecture.BatchRenormDMax"/> and <see cref="NetworkArchitecture.BatchRenormWarmupSteps"/>;
    /// plain Batch Normalization with the moving averages at inference.
    /// </summary>
    BatchRenorm = 5,
}

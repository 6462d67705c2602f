namespace Bn.MLNet.Networks;

/// <summary>What a probed layer of a <see cref="BatchNormCnnNetwork"/> does.</summary>
public enum ProbedLayerKind
{
    /// <summary>A normalization layer (batch, group or layer normalization).</summary>
    Normalization = 0,

    /// <summary>An activation (nonlinearity) layer.</summary>
    Activation = 1,
}

namespace Bn.MLNet.Networks;

/// <summary>How a <see cref="BatchNormCnnNetwork"/> standardizes its input before the first layer: (x − mean) / std with statistics of the training data.</summary>
public enum StandardizationKind
{
    /// <summary>
    /// Per feature for tabular input (a 1×1×N vector without convolution stages), whose columns have their own scales;
    /// per channel for images. The default.
    /// </summary>
    Automatic = 0,

    /// <summary>One mean and deviation per channel, over all its pixels (images).</summary>
    PerChannel = 1,

    /// <summary>One mean and deviation per feature value (tabular data of mixed scales).</summary>
    PerFeature = 2,
}

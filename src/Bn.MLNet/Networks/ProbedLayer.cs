namespace Bn.MLNet.Networks;

/// <summary>What a probed layer of a <see cref="BnCnn"/> does.</summary>
public enum ProbedLayerKind
{
    /// <summary>A normalization layer (batch, group or layer normalization).</summary>
    Normalization = 0,

    /// <summary>An activation (nonlinearity) layer.</summary>
    Activation = 1,
}

/// <summary>
/// A normalization or activation layer of a <see cref="BnCnn"/> whose input distribution can be recorded
/// (the paper's figure 1b/1c tracks the 15th, 50th and 85th percentiles of a sigmoid's input over training).
/// </summary>
/// <param name="Name">State-dict path of the layer, e.g. <c>features.1</c> or <c>classifier.2</c>.</param>
/// <param name="Kind">Normalization or activation.</param>
/// <param name="ModuleType">The module's type name, e.g. <c>BatchNorm2d</c> or <c>ReLU</c>.</param>
public sealed record ProbedLayer(string Name, ProbedLayerKind Kind, string ModuleType);

/// <summary>The 15th, 50th and 85th percentiles of the input of one probed layer over one mini-batch (a sample of its values).</summary>
/// <param name="Layer">The probed layer's <see cref="ProbedLayer.Name"/>.</param>
/// <param name="P15">15th percentile.</param>
/// <param name="P50">Median.</param>
/// <param name="P85">85th percentile.</param>
public sealed record LayerPercentiles(string Layer, double P15, double P50, double P85);

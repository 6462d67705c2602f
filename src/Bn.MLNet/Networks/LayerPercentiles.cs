namespace Bn.MLNet.Networks;

/// <summary>The 15th, 50th and 85th percentiles of the input of one probed layer over one mini-batch (a sample of its values).</summary>
/// <param name="Layer">The probed layer's <see cref="ProbedLayer.Name"/>.</param>
/// <param name="P15">15th percentile.</param>
/// <param name="P50">Median.</param>
/// <param name="P85">85th percentile.</param>
public sealed record LayerPercentiles(string Layer, double P15, double P50, double P85);

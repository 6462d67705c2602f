namespace Bn.MLNet.Networks;

/// <summary>
/// A normalization or activation layer of a <see cref="BatchNormCnnNetwork"/> whose input distribution can be recorded
/// (the paper's figure 1b/1c tracks the 15th, 50th and 85th percentiles of a sigmoid's input over training).
/// </summary>
/// <param name="Name">State-dict path of the layer, e.g. <c>features.1</c> or <c>classifier.2</c>.</param>
/// <param name="Kind">Normalization or activation.</param>
/// <param name="ModuleType">The module's type name, e.g. <c>BatchNorm2d</c> or <c>ReLU</c>.</param>
public sealed record ProbedLayer(string Name, ProbedLayerKind Kind, string ModuleType);

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bn.MLNet.Networks;

/// <summary>What a layer of a <see cref="BatchNormCnnNetwork"/> does (for folding, probing and the bfloat16 path).</summary>
internal enum LayerRole
{
    Conv,
    Norm,
    Activation,
    Pool,
    Linear,
    Dropout,
}

/// <summary>
/// The layers a <see cref="NetworkArchitecture"/> describes, built in one fixed order (convolution stages, hidden layers,
/// the output layer), with each layer's role, the probed layers and the width of the embedding.
/// </summary>
internal sealed class NetworkLayers
{
    /// <summary>Every convolution is 3×3 with padding 1 (see <see cref="ConvStage"/>).</summary>
    public const int ConvKernel = 3;

    /// <summary>Padding of every convolution.</summary>
    public const int ConvPadding = 1;

    private NetworkLayers(NetworkArchitecture a, DropoutRandom dropoutRandom)
    {
        int width = BuildFeatures(a);
        BuildClassifier(a, ref width, dropoutRandom);
        EmbeddingSize = width;
        Output = Linear(width, a.OutputCount);
    }

    public List<Module<Tensor, Tensor>> Features { get; } = new();

    public List<LayerRole> FeatureRoles { get; } = new();

    public List<Module<Tensor, Tensor>> Classifier { get; } = new();

    public List<LayerRole> ClassifierRoles { get; } = new();

    /// <summary>Index in <see cref="Classifier"/> of the last hidden activation, or −1 without hidden layers.</summary>
    public int LastHiddenActivation { get; private set; } = -1;

    public List<ProbedLayer> Probed { get; } = new();

    public int EmbeddingSize { get; }

    /// <summary>The output layer: class logits, or the one score of binary classification and regression.</summary>
    public Linear Output { get; }

    /// <summary>Builds the layers, drawing initial weights as TorchSharp's modules do (libtorch's global generator).</summary>
    public static NetworkLayers Build(NetworkArchitecture a, DropoutRandom dropoutRandom) => new(a, dropoutRandom);

    /// <summary>The layers with weights (convolutions and linear layers) in the order they were built.</summary>
    public IEnumerable<Module> WeightedLayers() =>
        Features.Where((_, i) => FeatureRoles[i] == LayerRole.Conv)
            .Concat(Classifier.Where((_, i) => ClassifierRoles[i] == LayerRole.Linear))
            .Append(Output);

    /// <summary>Whether BN-like normalization follows every weighted layer (which then has no bias).</summary>
    public static bool IsBatchNorm(NormalizationKind kind) => kind is NormalizationKind.Batch or NormalizationKind.BatchNative or NormalizationKind.BatchRenorm;

    /// <summary>The convolution stages (conv → normalization → activation, optional pooling); returns the flattened width.</summary>
    private int BuildFeatures(NetworkArchitecture a)
    {
        int channels = a.InputChannels, h = a.InputHeight, w = a.InputWidth;
        foreach (ConvStage stage in a.ConvStages)
        {
            for (int r = 0; r < stage.Repeats; r++)
            {
                Add(Features, FeatureRoles, Conv2d(channels, stage.Channels, ConvKernel, padding: ConvPadding, bias: !IsBatchNorm(a.Normalization)), LayerRole.Conv);
                channels = stage.Channels;
                AddNormalizationAndActivation(Features, FeatureRoles, "features", NormalizationLayers.For2d(a, channels), a.Activation);
            }

            if (stage.MaxPool)
            {
                Add(Features, FeatureRoles, MaxPool2d(2, 2), LayerRole.Pool);
                h /= 2;
                w /= 2;
            }
        }

        return channels * h * w;
    }

    /// <summary>The hidden fully-connected layers (linear → normalization → activation, optional dropout).</summary>
    private void BuildClassifier(NetworkArchitecture a, ref int width, DropoutRandom dropoutRandom)
    {
        foreach (int hidden in a.HiddenLayers)
        {
            Add(Classifier, ClassifierRoles, Linear(width, hidden, hasBias: !IsBatchNorm(a.Normalization)), LayerRole.Linear);
            width = hidden;
            AddNormalizationAndActivation(Classifier, ClassifierRoles, "classifier", NormalizationLayers.For1d(a, hidden), a.Activation);
            LastHiddenActivation = Classifier.Count - 1;
            if (a.Dropout > 0)
                Add(Classifier, ClassifierRoles, new SeededDropout(a.Dropout, dropoutRandom), LayerRole.Dropout);
        }
    }

    /// <summary>Appends the normalization (if any) and the activation, and records both as probed layers.</summary>
    private void AddNormalizationAndActivation(
        List<Module<Tensor, Tensor>> layers, List<LayerRole> roles, string prefix, Module<Tensor, Tensor>? norm, ActivationKind activation)
    {
        if (norm is not null)
        {
            Add(layers, roles, norm, LayerRole.Norm);
            Probed.Add(new ProbedLayer($"{prefix}.{layers.Count - 1}", ProbedLayerKind.Normalization, norm.GetType().Name));
        }

        Add(layers, roles, CreateActivation(activation), LayerRole.Activation);
        Probed.Add(new ProbedLayer($"{prefix}.{layers.Count - 1}", ProbedLayerKind.Activation, activation.ToString()));
    }

    private static Module<Tensor, Tensor> CreateActivation(ActivationKind kind) => kind switch
    {
        ActivationKind.ReLU => ReLU(),
        ActivationKind.Sigmoid => Sigmoid(),
        ActivationKind.Tanh => Tanh(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown activation."),
    };

    private static void Add(List<Module<Tensor, Tensor>> modules, List<LayerRole> roles, Module<Tensor, Tensor> module, LayerRole role)
    {
        modules.Add(module);
        roles.Add(role);
    }
}

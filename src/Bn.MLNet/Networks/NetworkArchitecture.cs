using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bn.MLNet.Networks;

/// <summary>
/// A serializable description of a <see cref="BatchNormCnnNetwork"/>: input shape, convolution stages, hidden fully-connected layers,
/// normalization and activation. It is stored inside saved models (see <see cref="ToJson"/>), so every property is a
/// plain settable value.
/// </summary>
public sealed class NetworkArchitecture
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = false,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Default of <see cref="InputChannels"/>: 1 (grey images).</summary>
    internal const int DefaultInputChannels = 1;

    /// <summary>Default of <see cref="InputHeight"/> and <see cref="InputWidth"/>: 28 pixels (Fashion-MNIST).</summary>
    internal const int DefaultInputSize = 28;

    /// <summary>Default of <see cref="Normalization"/>.</summary>
    internal const NormalizationKind DefaultNormalization = NormalizationKind.Batch;

    /// <summary>Default of <see cref="Activation"/>.</summary>
    internal const ActivationKind DefaultActivation = ActivationKind.ReLU;

    /// <summary>Default of <see cref="BatchNormMomentum"/>: 0.1 (PyTorch's).</summary>
    internal const double DefaultBatchNormMomentum = 0.1;

    /// <summary>Default of <see cref="BatchNormEps"/>: 1e-5 (PyTorch's).</summary>
    internal const double DefaultBatchNormEps = 1e-5;

    /// <summary>Default of <see cref="GroupCount"/>: 8.</summary>
    internal const int DefaultGroupCount = 8;

    /// <summary>Dropout of the <see cref="Default"/> network: 0, none (the paper's "Remove Dropout" for BN networks).</summary>
    internal const double DefaultNetworkDropout = 0;

    /// <summary>Input channels C (1 for grey images).</summary>
    public int InputChannels { get; set; } = DefaultInputChannels;

    /// <summary>Input height H in pixels.</summary>
    public int InputHeight { get; set; } = DefaultInputSize;

    /// <summary>Input width W in pixels.</summary>
    public int InputWidth { get; set; } = DefaultInputSize;

    /// <summary>Convolution stages, in order (3×3 kernels, padding 1). Empty for a fully-connected network.</summary>
    public List<ConvStage> ConvStages { get; set; } = new();

    /// <summary>Widths of the hidden fully-connected layers between the (flattened) convolution output and the logits.</summary>
    public int[] HiddenLayers { get; set; } = Array.Empty<int>();

    /// <summary>Dropout probability after each hidden fully-connected layer's activation; 0 disables dropout.</summary>
    public double Dropout { get; set; }

    /// <summary>What the output layer predicts. Default <see cref="NetworkTask.MulticlassClassification"/>.</summary>
    public NetworkTask Task { get; set; }

    /// <summary>Number of classes, the width of the output layer, for <see cref="NetworkTask.MulticlassClassification"/> (at least 2; the other tasks have one output). Default 10.</summary>
    public int ClassCount { get; set; } = 10;

    /// <summary>How the input is standardized. Default <see cref="StandardizationKind.Automatic"/>: per feature for tabular input, per channel for images.</summary>
    public StandardizationKind Standardization { get; set; }

    /// <summary>Normalization after every convolution and hidden fully-connected layer.</summary>
    public NormalizationKind Normalization { get; set; } = DefaultNormalization;

    /// <summary>Activation after every normalization.</summary>
    public ActivationKind Activation { get; set; } = DefaultActivation;

    /// <summary>
    /// Momentum of the running-statistics update of the batch normalization layers (PyTorch convention: new = (1 − m)·old + m·batch).
    /// <see langword="null"/> means a cumulative average (only with <see cref="NormalizationKind.Batch"/>).
    /// </summary>
    public double? BatchNormMomentum { get; set; } = DefaultBatchNormMomentum;

    /// <summary>The ε added to the variance by the normalization layers.</summary>
    public double BatchNormEps { get; set; } = DefaultBatchNormEps;

    /// <summary>Number of groups for <see cref="NormalizationKind.Group"/>; must divide every channel count and hidden width.</summary>
    public int GroupCount { get; set; } = DefaultGroupCount;

    /// <summary>
    /// Final r_max of <see cref="NormalizationKind.BatchRenorm"/> (≥ 1). Default
    /// <see cref="Bn.MLNet.Normalization.BatchRenormSchedule.DefaultRMax"/> (3, the paper's).
    /// </summary>
    public double BatchRenormRMax { get; set; } = Bn.MLNet.Normalization.BatchRenormSchedule.DefaultRMax;

    /// <summary>
    /// Final d_max of <see cref="NormalizationKind.BatchRenorm"/> (≥ 0). Default
    /// <see cref="Bn.MLNet.Normalization.BatchRenormSchedule.DefaultDMax"/> (5, the paper's).
    /// </summary>
    public double BatchRenormDMax { get; set; } = Bn.MLNet.Normalization.BatchRenormSchedule.DefaultDMax;

    /// <summary>
    /// Training steps over which <see cref="NormalizationKind.BatchRenorm"/> relaxes r_max from 1 and d_max from 0 to their
    /// final values, linearly (≥ 0). Default <see cref="Bn.MLNet.Normalization.BatchRenormSchedule.DefaultWarmupSteps"/> (2,000).
    /// </summary>
    public long BatchRenormWarmupSteps { get; set; } = Bn.MLNet.Normalization.BatchRenormSchedule.DefaultWarmupSteps;

    /// <summary>
    /// Mixed-precision training: in training mode the convolutions compute in bfloat16 (their input, weights and bias are
    /// cast down, the output cast back to float32; the float32 weights are the ones kept and updated, and normalization,
    /// activations, the classifier and the loss stay float32). Inference is always float32. Faster only where the CPU's
    /// bfloat16 convolutions are (measured here: 1.6–2.2× on an AMD EPYC with AVX512-BF16, 0.5× on an Intel Xeon with
    /// AVX512-BF16 and without AMX, and slower still without bfloat16 instructions);
    /// <see cref="BFloat16Support.IsFasterThanFloat32"/> measures it. Gradients carry bfloat16's 8-bit mantissa.
    /// Default <see langword="false"/>.
    /// </summary>
    public bool BFloat16Convolutions { get; set; }

    /// <summary>Feature values per input row: C×H×W.</summary>
    [JsonIgnore]
    public int InputLength => InputChannels * InputHeight * InputWidth;

    /// <summary>Whether the input is a vector of features (1×1×N) for a fully-connected network: tabular data.</summary>
    [JsonIgnore]
    public bool IsTabular => InputChannels == 1 && InputHeight == 1 && ConvStages.Count == 0;

    /// <summary>Whether the input is standardized per feature rather than per channel.</summary>
    internal bool StandardizesPerFeature => Standardization == StandardizationKind.PerFeature || (Standardization == StandardizationKind.Automatic && IsTabular);

    /// <summary>Values of the input standardization: one per feature, or one per channel.</summary>
    internal int StandardizationLength => StandardizesPerFeature ? InputLength : InputChannels;

    /// <summary>Width of the output layer: the class count for multiclass classification, else 1.</summary>
    internal int OutputCount => Task == NetworkTask.MulticlassClassification ? ClassCount : 1;

    /// <summary>
    /// The default network, chosen for accuracy per CPU minute on 28×28 grey images (Fashion-MNIST): a small VGG-style
    /// CNN, stages 32×2 → pool → 64×2 → pool, one hidden layer of 256 without dropout, Batch Normalization and ReLU.
    /// </summary>
    public static NetworkArchitecture Default() => new()
    {
        ConvStages = new List<ConvStage> { new(32, 2, true), new(64, 2, true) },
        HiddenLayers = new[] { 256 },
        Dropout = DefaultNetworkDropout,
    };

    /// <summary>
    /// The paper's MNIST network (its figure 1): no convolutions, three fully-connected hidden layers of 100 sigmoid
    /// units, each with Batch Normalization before the sigmoid, and a 10-way logits layer.
    /// </summary>
    public static NetworkArchitecture PaperMnistMlp() => new()
    {
        ConvStages = new List<ConvStage>(),
        HiddenLayers = new[] { 100, 100, 100 },
        Activation = ActivationKind.Sigmoid,
    };

    /// <summary>Serializes this description as compact JSON (camelCase names, enums as strings).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads a description written by <see cref="ToJson"/> and validates it.</summary>
    /// <exception cref="ArgumentException">The JSON is malformed or describes an invalid network.</exception>
    public static NetworkArchitecture FromJson(string json)
    {
        NetworkArchitecture result = Parse(json);
        result.Validate();
        return result;
    }

    /// <summary>A deep copy (not validated: a copy of an invalid description is as invalid).</summary>
    public NetworkArchitecture Clone() => Parse(ToJson());

    private static NetworkArchitecture Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        NetworkArchitecture? result;
        try
        {
            result = JsonSerializer.Deserialize<NetworkArchitecture>(json, JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"Not a valid network architecture JSON: {ex.Message}", nameof(json), ex);
        }

        if (result is null)
            throw new ArgumentException("The network architecture JSON is null.", nameof(json));
        result.ConvStages ??= new List<ConvStage>();
        result.HiddenLayers ??= Array.Empty<int>();
        return result;
    }

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message and <see cref="ArgumentException.ParamName"/> name it.</exception>
    public void Validate() => Validate(field => "NetworkArchitecture." + field);

    /// <summary>Checks every field; <paramref name="name"/> gives the name a message uses for a field.</summary>
    internal void Validate(Func<string, string> name)
    {
        var require = new Requirement(name);
        require.That(InputChannels >= 1, nameof(InputChannels), $"must be at least 1 (was {InputChannels})");
        require.That(InputHeight >= 1, nameof(InputHeight), $"must be at least 1 (was {InputHeight})");
        require.That(InputWidth >= 1, nameof(InputWidth), $"must be at least 1 (was {InputWidth})");
        require.That(ConvStages is not null, nameof(ConvStages), "must not be null");
        require.That(HiddenLayers is not null, nameof(HiddenLayers), "must not be null");
        require.That(Enum.IsDefined(Normalization), nameof(Normalization), $"unknown value {Normalization}");
        require.That(Enum.IsDefined(Activation), nameof(Activation), $"unknown value {Activation}");
        require.That(Enum.IsDefined(Task), nameof(Task), $"unknown value {Task}");
        require.That(Enum.IsDefined(Standardization), nameof(Standardization), $"unknown value {Standardization}");
        require.That(ClassCount >= 2 || Task != NetworkTask.MulticlassClassification, nameof(ClassCount), $"must be at least 2 (was {ClassCount})");
        require.That(ConvStages is null || ConvStages.Count == 0 || InputChannels != 1 || InputHeight != 1, nameof(ConvStages),
            $"must be empty for a 1×1×{InputWidth} input: a vector of features (tabular data) is the input of a fully-connected network, which " +
            "convolution stages do not fit; set ConvStages to an empty list (hidden layers then do the work, as in the paper's MLP)");
        require.That(Dropout >= 0 && Dropout < 1, nameof(Dropout), $"must be in [0, 1) (was {Dropout})");
        require.That(BatchNormEps > 0 && double.IsFinite(BatchNormEps), nameof(BatchNormEps), $"must be positive (was {BatchNormEps})");
        if (BatchNormMomentum is double m)
        {
            require.That(Bn.MLNet.Normalization.BatchNormChecks.IsValidMomentum(m), nameof(BatchNormMomentum),
                $"must be in {Bn.MLNet.Normalization.BatchNormChecks.MomentumRange} or null (was {m})");
        }
        else
        {
            require.That(Normalization != NormalizationKind.BatchNative, nameof(BatchNormMomentum),
                "null (cumulative average) is not supported by TorchSharp's BatchNorm (NormalizationKind.BatchNative)");
        }

        require.That(GroupCount >= 1, nameof(GroupCount), $"must be at least 1 (was {GroupCount})");
        Bn.MLNet.Normalization.BatchRenormSchedule.Validate(BatchRenormRMax, BatchRenormDMax, BatchRenormWarmupSteps,
            nameof(BatchRenormRMax), nameof(BatchRenormDMax), nameof(BatchRenormWarmupSteps), name);
        ValidateStages(require);
        ValidateHiddenLayers(require);
    }

    private void ValidateStages(Requirement require)
    {
        int h = InputHeight, w = InputWidth;
        for (int i = 0; i < ConvStages.Count; i++)
        {
            ConvStage? s = ConvStages[i];
            require.That(s is not null, $"{nameof(ConvStages)}[{i}]", "must not be null");
            require.That(s!.Channels >= 1, $"{nameof(ConvStages)}[{i}].{nameof(ConvStage.Channels)}", $"must be at least 1 (was {s.Channels})");
            require.That(s.Repeats >= 1, $"{nameof(ConvStages)}[{i}].{nameof(ConvStage.Repeats)}", $"must be at least 1 (was {s.Repeats})");
            if (Normalization == NormalizationKind.Group)
            {
                require.That(s.Channels % GroupCount == 0, nameof(GroupCount),
                    $"{GroupCount} groups do not divide the {s.Channels} channels of {nameof(ConvStages)}[{i}]");
            }

            if (s.MaxPool)
            {
                h /= 2;
                w /= 2;
                require.That(h >= 1 && w >= 1, $"{nameof(ConvStages)}[{i}].{nameof(ConvStage.MaxPool)}",
                    $"pooling shrinks the {InputHeight}×{InputWidth} input below 1×1");
            }
        }
    }

    private void ValidateHiddenLayers(Requirement require)
    {
        for (int i = 0; i < HiddenLayers.Length; i++)
        {
            require.That(HiddenLayers[i] >= 1, $"{nameof(HiddenLayers)}[{i}]", $"must be at least 1 (was {HiddenLayers[i]})");
            if (Normalization == NormalizationKind.Group)
            {
                require.That(HiddenLayers[i] % GroupCount == 0, nameof(GroupCount),
                    $"{GroupCount} groups do not divide the {HiddenLayers[i]} units of {nameof(HiddenLayers)}[{i}]");
            }
        }
    }
}

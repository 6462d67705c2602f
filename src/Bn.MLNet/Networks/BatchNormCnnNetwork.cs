using System.Diagnostics.CodeAnalysis;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bn.MLNet.Networks;

/// <summary>
/// A convolutional network with Batch Normalization, built from a <see cref="NetworkArchitecture"/>.
/// <para>
/// Layout (PyTorch state-dict keys): <c>input_mean</c>/<c>input_std</c> (per-channel standardization buffers);
/// <c>features.N</c> (for each convolution stage, <c>Repeats</c> × [3×3 Conv2d (no bias when a batch normalization follows)
/// → normalization → activation], then MaxPool2d(2)); <c>classifier.N</c> (for each hidden width: Linear → BatchNorm1d /
/// other normalization → activation → Dropout); <c>logits</c> (Linear to <see cref="NetworkArchitecture.ClassCount"/>).
/// </para>
/// <para>
/// <see cref="Module{T, TResult}.forward"/> accepts N×(C·H·W) or N×C×H×W float input in the units the training data had
/// (raw 0..255 pixels for Fashion-MNIST): the standardization buffers are applied inside. Initialization uses libtorch's
/// default generator, so it is deterministic after <c>torch.manual_seed</c>. Use inference in eval mode under
/// <c>torch.no_grad()</c>.
/// </para>
/// </summary>
public sealed class BatchNormCnnNetwork : Module<Tensor, Tensor>
{
    [ComponentName(Name = "input_mean")]
    private readonly Tensor _inputMean;

    [ComponentName(Name = "input_std")]
    private readonly Tensor _inputStd;

    [ComponentName(Name = "features")]
    private readonly ModuleList<Module<Tensor, Tensor>> _features;

    [ComponentName(Name = "classifier")]
    private readonly ModuleList<Module<Tensor, Tensor>> _classifier;

    [ComponentName(Name = "logits")]
    private readonly Linear _logits;

    private readonly LayerRole[] _featureRoles;
    private readonly LayerRole[] _classifierRoles;
    private readonly int _lastHiddenActivation;
    private readonly List<ProbedLayer> _probed = new();
    private readonly NetworkArchitecture _architecture;
    // Every convolution is 3×3 with padding 1 (see ConvStage); the bfloat16 path (CallFeature) repeats the module's call.
    private const int ConvKernel = 3;
    private const int ConvPadding = 1;
    // The header keeps the name the type had when the format was defined, so files saved before still load.
    private const string FileMagic = "Bn.MLNet.BnCnn/1";

    /// <summary>Builds the network described by <paramref name="architecture"/> (which is validated and copied).</summary>
    /// <exception cref="ArgumentException">The architecture is invalid.</exception>
    public BatchNormCnnNetwork(NetworkArchitecture architecture)
        : base(Native.LibTorchSharpLoader.BeforeTorch(nameof(BatchNormCnnNetwork)))
    {
        ArgumentNullException.ThrowIfNull(architecture);
        architecture.Validate();
        _architecture = architecture.Clone();
        NetworkArchitecture a = _architecture;

        _inputMean = torch.zeros(a.InputChannels);
        _inputStd = torch.ones(a.InputChannels);

        var (features, featureRoles, width) = BuildFeatures(a);
        var (classifier, classifierRoles, lastActivation) = BuildClassifier(a, ref width);
        EmbeddingSize = width;
        _logits = Linear(width, a.ClassCount);
        _features = ModuleList(features.ToArray());
        _classifier = ModuleList(classifier.ToArray());
        _featureRoles = featureRoles.ToArray();
        _classifierRoles = classifierRoles.ToArray();
        _lastHiddenActivation = lastActivation;

        RegisterComponents();
    }

    /// <summary>The convolution stages (conv → normalization → activation, optional pooling); returns the flattened width.</summary>
    private (List<Module<Tensor, Tensor>> Layers, List<LayerRole> Roles, int Width) BuildFeatures(NetworkArchitecture a)
    {
        var layers = new List<Module<Tensor, Tensor>>();
        var roles = new List<LayerRole>();
        int channels = a.InputChannels, h = a.InputHeight, w = a.InputWidth;
        foreach (ConvStage stage in a.ConvStages)
        {
            for (int r = 0; r < stage.Repeats; r++)
            {
                Add(layers, roles, Conv2d(channels, stage.Channels, ConvKernel, padding: ConvPadding, bias: !IsBatchNorm(a.Normalization)), LayerRole.Conv);
                channels = stage.Channels;
                AddNormalizationAndActivation(layers, roles, "features", NormalizationLayers.For2d(a, channels), a.Activation);
            }

            if (stage.MaxPool)
            {
                Add(layers, roles, MaxPool2d(2, 2), LayerRole.Pool);
                h /= 2;
                w /= 2;
            }
        }

        return (layers, roles, channels * h * w);
    }

    /// <summary>The hidden fully-connected layers (linear → normalization → activation, optional dropout).</summary>
    private (List<Module<Tensor, Tensor>> Layers, List<LayerRole> Roles, int LastActivation) BuildClassifier(NetworkArchitecture a, ref int width)
    {
        var layers = new List<Module<Tensor, Tensor>>();
        var roles = new List<LayerRole>();
        int lastActivation = -1;
        foreach (int hidden in a.HiddenLayers)
        {
            Add(layers, roles, Linear(width, hidden, hasBias: !IsBatchNorm(a.Normalization)), LayerRole.Linear);
            width = hidden;
            AddNormalizationAndActivation(layers, roles, "classifier", NormalizationLayers.For1d(a, hidden), a.Activation);
            lastActivation = layers.Count - 1;
            if (a.Dropout > 0)
                Add(layers, roles, nn.Dropout(a.Dropout), LayerRole.Dropout);
        }

        return (layers, roles, lastActivation);
    }

    /// <summary>Appends the normalization (if any) and the activation, and records both as probed layers.</summary>
    private void AddNormalizationAndActivation(
        List<Module<Tensor, Tensor>> layers, List<LayerRole> roles, string prefix, Module<Tensor, Tensor>? norm, ActivationKind activation)
    {
        if (norm is not null)
        {
            Add(layers, roles, norm, LayerRole.Norm);
            _probed.Add(new ProbedLayer($"{prefix}.{layers.Count - 1}", ProbedLayerKind.Normalization, norm.GetType().Name));
        }

        Add(layers, roles, CreateActivation(activation), LayerRole.Activation);
        _probed.Add(new ProbedLayer($"{prefix}.{layers.Count - 1}", ProbedLayerKind.Activation, activation.ToString()));
    }

    private enum LayerRole
    {
        Conv,
        Norm,
        Activation,
        Pool,
        Linear,
        Dropout,
    }

    /// <summary>A copy of the architecture this network was built from.</summary>
    public NetworkArchitecture Architecture => _architecture.Clone();

    /// <summary>Width of <see cref="Embed"/>'s output: the last hidden layer's width, or the flattened convolution output when there is no hidden layer.</summary>
    public int EmbeddingSize { get; }

    /// <summary>The normalization and activation layers, in forward order, whose inputs <see cref="ForwardRecording"/> records.</summary>
    public IReadOnlyList<ProbedLayer> ProbedLayers => _probed;

    /// <summary>The per-channel mean subtracted from the input (a copy).</summary>
    public float[] InputMean => _inputMean.data<float>().ToArray();

    /// <summary>The per-channel standard deviation the input is divided by (a copy).</summary>
    public float[] InputStd => _inputStd.data<float>().ToArray();

    /// <summary>
    /// Sets the per-channel standardization applied at the start of <c>forward</c>: x ↦ (x − mean[c]) / std[c].
    /// The trainer computes these from the training data before training; they are saved with the state dict.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ from the input channels, or a std is not positive and finite.</exception>
    public void SetInputStandardization(float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        int c = _architecture.InputChannels;
        if (mean.Length != c)
        {
            throw new ArgumentException($"Expected {c} means, got {mean.Length}.", nameof(mean));
        }

        if (std.Length != c)
        {
            throw new ArgumentException($"Expected {c} standard deviations, got {std.Length}.", nameof(std));
        }

        if (mean.Any(v => !float.IsFinite(v)))
        {
            throw new ArgumentException("Means must be finite.", nameof(mean));
        }

        if (std.Any(v => !(v > 0) || !float.IsFinite(v)))
        {
            throw new ArgumentException("Standard deviations must be positive and finite.", nameof(std));
        }

        using var noGrad = torch.no_grad();
        using var m = torch.tensor(mean);
        using var s = torch.tensor(std);
        _inputMean.copy_(m);
        _inputStd.copy_(s);
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input) => Run(input, null, 0, embed: false);

    /// <summary>
    /// The forward pass that also records the 15th, 50th and 85th percentiles of the input of every layer in
    /// <see cref="ProbedLayers"/> (computed on at most <paramref name="maxSample"/> values per layer, drawn with a fixed
    /// private generator so the global random state is untouched).
    /// </summary>
    /// <param name="input">As for <c>forward</c>.</param>
    /// <param name="into">Receives one entry per probed layer, in order.</param>
    /// <param name="maxSample">Largest number of values of one layer's input used for its percentiles.</param>
    public Tensor ForwardRecording(Tensor input, ICollection<LayerPercentiles> into, int maxSample = 16384)
    {
        ArgumentNullException.ThrowIfNull(into);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSample, 1);
        return Run(input, into, maxSample, embed: false);
    }

    /// <summary>
    /// The activations of the last hidden layer (after its activation function, before dropout), N×<see cref="EmbeddingSize"/>;
    /// the flattened convolution output when there is no hidden layer. Call in eval mode under no_grad for inference.
    /// </summary>
    public Tensor Embed(Tensor input) => Run(input, null, 0, embed: true);

    /// <summary>
    /// Eval mode: the logits and the embedding from one pass through the network. The layers between the embedding and
    /// the logits are dropout only, the identity in eval mode, so the logits are the last linear layer of the embedding.
    /// </summary>
    /// <exception cref="InvalidOperationException">The network is in training mode.</exception>
    internal (Tensor Logits, Tensor Embedding) EvalLogitsAndEmbedding(Tensor input)
    {
        if (training)
            throw new InvalidOperationException("EvalLogitsAndEmbedding needs the network in eval mode (call eval() first).");
        Tensor embedding = Embed(input);
        return (_logits.call(embedding), embedding);
    }

    /// <summary>
    /// Returns a new network computing the same eval-mode function without batch normalization: every BN is folded into
    /// the convolution or linear layer before it (w' = w·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε), using the running statistics
    /// and ε of each BN layer, through <see cref="Bn.MLNet.Normalization.BatchNormFolding"/>'s routine, computed in float64).
    /// The result has <see cref="NetworkArchitecture.Normalization"/> = <see cref="NormalizationKind.None"/> and is in eval mode.
    /// </summary>
    /// <exception cref="NotSupportedException">The network uses group or layer normalization, whose statistics depend on each input.</exception>
    public BatchNormCnnNetwork FoldBatchNorm()
    {
        NormalizationKind kind = _architecture.Normalization;
        if (kind is NormalizationKind.Group or NormalizationKind.Layer)
        {
            throw new NotSupportedException($"{kind} normalization computes its statistics per input and cannot be folded.");
        }

        NetworkArchitecture foldedArchitecture = _architecture.Clone();
        foldedArchitecture.Normalization = NormalizationKind.None;
        var folded = new BatchNormCnnNetwork(foldedArchitecture);

        using (torch.no_grad())
        {
            folded._inputMean.copy_(_inputMean);
            folded._inputStd.copy_(_inputStd);
            FoldList(_features, _featureRoles, folded._features, folded._featureRoles);
            FoldList(_classifier, _classifierRoles, folded._classifier, folded._classifierRoles);
            folded._logits.weight!.copy_(_logits.weight!);
            folded._logits.bias!.copy_(_logits.bias!);
        }

        folded.eval();
        return folded;
    }

    /// <summary>
    /// Writes the architecture (JSON) and every parameter and buffer (TorchSharp's state-dict format, which includes the
    /// input standardization and the BN running statistics) to <paramref name="stream"/>. Read back with <see cref="Load(Stream)"/>.
    /// </summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(FileMagic);
        writer.Write(_architecture.ToJson());
        save(writer);
        writer.Flush();
    }

    /// <summary>Writes the network to a file (see <see cref="Save(Stream)"/>).</summary>
    public void Save(string path)
    {
        using FileStream file = File.Create(path);
        Save(file);
    }

    /// <summary>Reads a network written by <see cref="Save(Stream)"/>; it is returned in eval mode.</summary>
    /// <exception cref="InvalidDataException">The stream does not hold a saved <see cref="BatchNormCnnNetwork"/>.</exception>
    public static BatchNormCnnNetwork Load(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        string magic;
        try
        {
            magic = reader.ReadString();
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException("Not a saved BatchNormCnnNetwork: the stream is empty or truncated.", ex);
        }

        if (magic != FileMagic)
        {
            throw new InvalidDataException($"Not a saved BatchNormCnnNetwork (header '{magic}', expected '{FileMagic}').");
        }

        var network = new BatchNormCnnNetwork(NetworkArchitecture.FromJson(reader.ReadString()));
        network.load(reader, strict: true);
        network.eval();
        return network;
    }

    /// <summary>Reads a network from a file written by <see cref="Save(string)"/>.</summary>
    public static BatchNormCnnNetwork Load(string path)
    {
        using FileStream file = File.OpenRead(path);
        return Load(file);
    }

    private Tensor Run(Tensor input, ICollection<LayerPercentiles>? record, int maxSample, bool embed)
    {
        ArgumentNullException.ThrowIfNull(input);
        using DisposeScope scope = torch.NewDisposeScope();
        Tensor x = Prepare(input);
        int probe = 0;
        // Without gradient tracking nothing keeps an intermediate activation: free each one as soon as the next layer
        // has consumed it, so inference holds about two activations at a time instead of the whole network's.
        bool freeEarly = !torch.is_grad_enabled();
        for (int i = 0; i < _features.Count; i++)
        {
            if (record is not null && _featureRoles[i] is LayerRole.Norm or LayerRole.Activation)
            {
                record.Add(Percentiles(_probed[probe++].Name, x, maxSample));
            }

            x = Next(x, CallFeature(i, x), input, freeEarly);
        }

        x = x.flatten(1);
        for (int i = 0; i < _classifier.Count; i++)
        {
            if (embed && i > _lastHiddenActivation)
            {
                break;
            }

            if (record is not null && _classifierRoles[i] is LayerRole.Norm or LayerRole.Activation)
            {
                record.Add(Percentiles(_probed[probe++].Name, x, maxSample));
            }

            x = Next(x, _classifier[i].call(x), input, freeEarly);
        }

        if (!embed)
        {
            x = _logits.call(x);
        }

        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Feature layer <paramref name="i"/> on <paramref name="x"/>: a training-mode convolution in bfloat16 when the architecture asks for it.</summary>
    private Tensor CallFeature(int i, Tensor x)
    {
        if (!training || !_architecture.BFloat16Convolutions || _featureRoles[i] != LayerRole.Conv)
        {
            return _features[i].call(x);
        }

        var conv = (Conv2d)_features[i];
        using Tensor x16 = x.to_type(ScalarType.BFloat16);
        using Tensor w16 = conv.weight!.to_type(ScalarType.BFloat16);
        using Tensor? b16 = conv.bias?.to_type(ScalarType.BFloat16);
        using Tensor y16 = nn.functional.conv2d(x16, w16, b16, padding: new long[] { ConvPadding, ConvPadding });
        return y16.to_type(ScalarType.Float32);
    }

    private static Tensor Next(Tensor previous, Tensor next, Tensor input, bool freeEarly)
    {
        if (freeEarly && !ReferenceEquals(previous, next) && !ReferenceEquals(previous, input))
        {
            previous.Dispose();
        }

        return next;
    }

    private Tensor Prepare(Tensor input)
    {
        NetworkArchitecture a = _architecture;
        long n = input.shape[0];
        Tensor x;
        if (input.dim() == 2 && input.shape[1] == a.InputLength)
        {
            x = input.view(n, a.InputChannels, a.InputHeight, a.InputWidth);
        }
        else if (input.dim() == 4 && input.shape[1] == a.InputChannels && input.shape[2] == a.InputHeight && input.shape[3] == a.InputWidth)
        {
            x = input;
        }
        else
        {
            throw new ArgumentException(
                $"Expected input N×{a.InputLength} or N×{a.InputChannels}×{a.InputHeight}×{a.InputWidth}, got [{string.Join(", ", input.shape)}].",
                nameof(input));
        }

        if (x.dtype != ScalarType.Float32)
        {
            x = x.to_type(ScalarType.Float32);
        }

        Tensor standardized = (x - _inputMean.view(1, -1, 1, 1)) / _inputStd.view(1, -1, 1, 1);
        return a.ConvStages.Count > 0 ? ToChannelsLast(standardized) : standardized;
    }

    /// <summary>
    /// The same values stored channels-last (N×C×H×W laid out as N×H×W×C). libtorch's CPU convolutions then take oneDNN's
    /// channels-last path (1.2–1.5× faster than N×C×H×W on the default network's shapes, forward and backward) and
    /// return channels-last output, which the normalization, activation and pooling layers keep; flattening for the
    /// classifier restores the C×H×W order.
    /// </summary>
    internal static Tensor ToChannelsLast(Tensor x)
    {
        long c = x.shape[1], h = x.shape[2], w = x.shape[3];
        // One channel: both layouts are the same memory; only the strides tell libtorch which one is meant.
        return c == 1
            ? x.contiguous().as_strided(x.shape, new[] { h * w, 1, w, 1 })
            : x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
    }

    private static LayerPercentiles Percentiles(string name, Tensor x, int maxSample)
    {
        using var noGrad = torch.no_grad();
        Tensor flat = x.detach().flatten();
        long count = flat.numel();
        if (count > maxSample)
        {
            using var generator = new Generator(12345);
            flat = flat.index_select(0, torch.randint(count, new long[] { maxSample }, ScalarType.Int64, generator: generator));
        }

        Tensor q = torch.quantile(flat.to_type(ScalarType.Float32), torch.tensor(new float[] { 0.15f, 0.5f, 0.85f }));
        float[] v = q.data<float>().ToArray();
        return new LayerPercentiles(name, v[0], v[1], v[2]);
    }

    private static void FoldList(
        ModuleList<Module<Tensor, Tensor>> source, LayerRole[] sourceRoles,
        ModuleList<Module<Tensor, Tensor>> target, LayerRole[] targetRoles)
    {
        int t = 0;
        for (int s = 0; s < source.Count; s++)
        {
            if (sourceRoles[s] is not (LayerRole.Conv or LayerRole.Linear))
            {
                continue;
            }

            while (targetRoles[t] != sourceRoles[s])
            {
                t++;
            }

            Tensor weight = Param(source[s], "weight");
            Tensor? bias = TryParam(source[s], "bias");
            Tensor targetWeight = Param(target[t], "weight");
            Tensor targetBias = Param(target[t], "bias");
            if (s + 1 < source.Count && sourceRoles[s + 1] == LayerRole.Norm)
            {
                Bn.MLNet.Normalization.BatchNormFolding.FoldInto(weight, bias, source[s + 1], targetWeight, targetBias);
            }
            else
            {
                targetWeight.copy_(weight);
                if (bias is not null)
                {
                    targetBias.copy_(bias);
                }
                else
                {
                    targetBias.zero_();
                }
            }

            t++;
        }
    }

    private static Tensor Param(Module module, string name) =>
        TryParam(module, name) ?? throw new InvalidOperationException($"{module.GetName()} has no parameter '{name}'.");

    private static Tensor? TryParam(Module module, string name)
    {
        foreach ((string n, Parameter p) in module.named_parameters(recurse: false))
        {
            if (n == name)
            {
                return p;
            }
        }

        return null;
    }

    private static bool IsBatchNorm(NormalizationKind kind) => kind is NormalizationKind.Batch or NormalizationKind.BatchNative or NormalizationKind.BatchRenorm;

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

using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bn.MLNet.Networks;

/// <summary>
/// A convolutional network with Batch Normalization, built from a <see cref="NetworkArchitecture"/>.
/// <para>
/// Layout (PyTorch state-dict keys): <c>input_mean</c>/<c>input_std</c> (standardization buffers: per channel for
/// images, per feature for tabular input); <c>features.N</c> (for each convolution stage, <c>Repeats</c> × [3×3 Conv2d
/// (no bias when a batch normalization follows) → normalization → activation], then MaxPool2d(2)); <c>classifier.N</c>
/// (for each hidden width: Linear → BatchNorm1d / other normalization → activation → Dropout); <c>logits</c> (the output
/// Linear: one unit per class, or one score for binary classification and regression).
/// </para>
/// <para>
/// <see cref="Module{T, TResult}.forward"/> accepts N×(C·H·W) or N×C×H×W float input in the units the training data had
/// (raw 0..255 pixels for Fashion-MNIST): the standardization buffers are applied inside. The convolution stages run on
/// channels-last memory. Initial weights come from libtorch's global generator (deterministic after
/// <c>torch.manual_seed</c>), or, with the constructor that takes a seed, from a private generator that leaves the global
/// stream untouched. Use inference in eval mode under <c>torch.no_grad()</c>.
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

    // Regression only (null otherwise, so not in the state dict): the label's mean and deviation; the output layer
    // predicts the standardized label, and the network returns it in the label's units.
    [ComponentName(Name = "target_mean")]
    private readonly Tensor? _targetMean;

    [ComponentName(Name = "target_std")]
    private readonly Tensor? _targetStd;

    private readonly NetworkArchitecture _architecture;
    private readonly DropoutRandom _dropoutRandom = new();
    private readonly Dictionary<int, BFloat16Convolution> _bfloat16 = new();

    /// <summary>Builds the network described by <paramref name="architecture"/> (validated and copied), drawing the initial
    /// weights from libtorch's global generator as TorchSharp's modules do.</summary>
    /// <exception cref="ArgumentException">The architecture is invalid.</exception>
    public BatchNormCnnNetwork(NetworkArchitecture architecture)
        : this(architecture, seed: null)
    {
    }

    /// <summary>
    /// Builds the network described by <paramref name="architecture"/> with initial weights drawn from a private generator
    /// seeded with <paramref name="seed"/>: the same weights as <c>torch.manual_seed(seed)</c> followed by the other
    /// constructor, without changing libtorch's global random stream. Dropout draws from a private generator as well.
    /// </summary>
    /// <exception cref="ArgumentException">The architecture is invalid.</exception>
    public BatchNormCnnNetwork(NetworkArchitecture architecture, int seed)
        : this(architecture, (int?)seed)
    {
    }

    private BatchNormCnnNetwork(NetworkArchitecture architecture, int? seed)
        : base(Native.LibTorchSharpLoader.BeforeTorch(nameof(BatchNormCnnNetwork)))
    {
        ArgumentNullException.ThrowIfNull(architecture);
        architecture.Validate();
        _architecture = architecture.Clone();
        NetworkArchitecture a = _architecture;

        _inputMean = torch.zeros(a.StandardizationLength);
        _inputStd = torch.ones(a.StandardizationLength);
        if (a.Task == NetworkTask.Regression)
            (_targetMean, _targetStd) = (torch.zeros(1), torch.ones(1));
        if (seed is int s)
            _dropoutRandom.Seed(s);
        Layers = seed is int value ? SeededInitialization.Build(a, _dropoutRandom, value) : NetworkLayers.Build(a, _dropoutRandom);
        EmbeddingSize = Layers.EmbeddingSize;
        _logits = Layers.Output;
        _features = ModuleList(Layers.Features.ToArray());
        _classifier = ModuleList(Layers.Classifier.ToArray());
        RegisterComponents();
    }

    /// <summary>A copy of the architecture this network was built from.</summary>
    public NetworkArchitecture Architecture => _architecture.Clone();

    /// <summary>Width of <see cref="Embed"/>'s output: the last hidden layer's width, or the flattened convolution output when there is no hidden layer.</summary>
    public int EmbeddingSize { get; }

    /// <summary>The normalization and activation layers, in forward order, whose inputs <see cref="ForwardRecording"/> records.</summary>
    public IReadOnlyList<ProbedLayer> ProbedLayers => Layers.Probed;

    /// <summary>The standardization mean subtracted from the input, per channel (images) or per feature (tabular input); a copy.</summary>
    public float[] InputMean => _inputMean.data<float>().ToArray();

    /// <summary>The standardization deviation the input is divided by, per channel or per feature; a copy.</summary>
    public float[] InputStd => _inputStd.data<float>().ToArray();

    /// <summary>The layers and their roles.</summary>
    internal NetworkLayers Layers { get; }

    /// <summary>The device the network's weights and buffers are on (<c>to(device)</c> moves them).</summary>
    internal Device Device => _inputMean.device;

    /// <summary>Receives the one log line of each convolution that falls back from bfloat16 to float32.</summary>
    internal Action<BFloat16Fallback>? BFloat16FallbackReported { get; set; }

    /// <summary>The bfloat16 guards of the convolutions used so far, by feature-layer index.</summary>
    internal IReadOnlyDictionary<int, BFloat16Convolution> BFloat16Guards => _bfloat16;

    /// <summary>Takes over a bfloat16 decision of an earlier run (a resumed checkpoint), so both compute the same.</summary>
    internal void RestoreBFloat16Decision(int layer, ShapeKey shape, bool useBFloat16)
    {
        if (!_bfloat16.TryGetValue(layer, out BFloat16Convolution? guard))
            _bfloat16[layer] = guard = new BFloat16Convolution($"features.{layer}", BFloat16Check);
        guard.Restore(shape, useBFloat16);
    }

    /// <summary>Measures a convolution's bfloat16 errors on a batch for the guards made from now on; null: the real check.</summary>
    internal Func<Conv2d, Tensor, (double, double, double)>? BFloat16Check { get; set; }

    /// <summary>The generator dropout draws from (the trainer seeds it).</summary>
    internal DropoutRandom DropoutRandom => _dropoutRandom;

    /// <summary>
    /// Sets the standardization applied at the start of <c>forward</c>: x ↦ (x − mean[i]) / std[i], per channel for images
    /// and per feature for tabular input (<see cref="NetworkArchitecture.StandardizationLength"/> values each). The
    /// trainer computes these from the training data before training; they are saved with the state dict.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ from the standardization length, or a std is not positive and finite.</exception>
    public void SetInputStandardization(float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        int c = _architecture.StandardizationLength;
        if (mean.Length != c)
            throw new ArgumentException($"Expected {c} means, got {mean.Length}.", nameof(mean));
        if (std.Length != c)
            throw new ArgumentException($"Expected {c} standard deviations, got {std.Length}.", nameof(std));
        if (mean.Any(v => !float.IsFinite(v)))
            throw new ArgumentException("Means must be finite.", nameof(mean));
        if (std.Any(v => !(v > 0) || !float.IsFinite(v)))
            throw new ArgumentException("Standard deviations must be positive and finite.", nameof(std));

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
    /// Eval mode: the output and the embedding from one pass through the network. The layers between the embedding and
    /// the output are dropout only, the identity in eval mode, so the output is the last linear layer of the embedding.
    /// </summary>
    /// <exception cref="InvalidOperationException">The network is in training mode.</exception>
    internal (Tensor Output, Tensor Embedding) EvalOutputAndEmbedding(Tensor input)
    {
        if (training)
            throw new InvalidOperationException("EvalOutputAndEmbedding needs the network in eval mode (call eval() first).");
        Tensor embedding = Embed(input);
        return (Output(embedding), embedding);
    }

    /// <summary>The output layer on the last hidden layer's activations, in the label's units for regression.</summary>
    private Tensor Output(Tensor hidden)
    {
        Tensor y = _logits.call(hidden);
        return _targetStd is null ? y : (y * _targetStd) + _targetMean!;
    }

    /// <summary>
    /// Returns a new network computing the same eval-mode function without batch normalization: every BN is folded into
    /// the convolution or linear layer before it (w' = w·γ/√(σ²+ε), b' = β + (b − μ)·γ/√(σ²+ε), using the running statistics
    /// and ε of each BN layer, through <see cref="Bn.MLNet.Normalization.BatchNormFolding"/>'s routine, computed in float64).
    /// The result has <see cref="NetworkArchitecture.Normalization"/> = <see cref="NormalizationKind.None"/> and is in eval mode.
    /// </summary>
    /// <exception cref="NotSupportedException">The network uses group or layer normalization, whose statistics depend on each input.</exception>
    public BatchNormCnnNetwork FoldBatchNorm() => NetworkFolding.Fold(this);

    /// <summary>
    /// Writes the architecture (JSON) and every parameter and buffer (TorchSharp's state-dict format, which includes the
    /// input standardization and the BN running statistics) to <paramref name="stream"/>. Read back with <see cref="Load(Stream)"/>.
    /// </summary>
    public void Save(Stream stream) => NetworkFile.Write(this, stream);

    /// <summary>Writes the network to a file (see <see cref="Save(Stream)"/>).</summary>
    public void Save(string path)
    {
        using FileStream file = File.Create(path);
        Save(file);
    }

    /// <summary>Reads a network written by <see cref="Save(Stream)"/>; it is returned in eval mode.</summary>
    /// <exception cref="InvalidDataException">The stream does not hold a saved <see cref="BatchNormCnnNetwork"/>.</exception>
    public static BatchNormCnnNetwork Load(Stream stream) => NetworkFile.Read(stream);

    /// <summary>Reads a network from a file written by <see cref="Save(string)"/>.</summary>
    public static BatchNormCnnNetwork Load(string path)
    {
        using FileStream file = File.OpenRead(path);
        return Load(file);
    }

    /// <summary>
    /// Whether the convolution stages are frozen (<see cref="Training.TrainerOptions.FreezeConvolutionStages"/>): they then
    /// stay in eval mode when the network trains, so their normalization keeps its running statistics.
    /// </summary>
    internal bool ConvolutionStagesFrozen { get; set; }

    /// <inheritdoc/>
    public override void train(bool train = true)
    {
        base.train(train);
        if (train && ConvolutionStagesFrozen)
        {
            foreach (var layer in _features)
                layer.eval();
        }
    }

    /// <summary>
    /// Regression: the label's mean and standard deviation over the training data. The output layer then learns the
    /// standardized label, (y − mean) / std, and <c>forward</c> returns output·std + mean, in the label's units.
    /// </summary>
    /// <exception cref="InvalidOperationException">The network is not a regression network.</exception>
    /// <exception cref="ArgumentException">A value is not finite, or the deviation is not positive.</exception>
    internal void SetTargetStandardization(float mean, float std)
    {
        if (_targetMean is null || _targetStd is null)
            throw new InvalidOperationException($"Only a regression network standardizes its label; this one is {_architecture.Task}.");
        if (!float.IsFinite(mean) || !(std > 0) || !float.IsFinite(std))
            throw new ArgumentException($"The label's mean {mean} and deviation {std} must be finite, the deviation positive.");
        using var noGrad = torch.no_grad();
        _targetMean.fill_(mean);
        _targetStd.fill_(std);
    }

    /// <summary>Regression: the label's deviation the output is scaled by (1 for the other tasks).</summary>
    internal float TargetStd => _targetStd?.cpu().item<float>() ?? 1f;

    /// <summary>Regression: the label's mean added to the output (0 for the other tasks).</summary>
    internal float TargetMean => _targetMean?.cpu().item<float>() ?? 0f;

    /// <summary>Copies another network's input standardization (same architecture input).</summary>
    internal void CopyInputStandardization(BatchNormCnnNetwork other)
    {
        using var noGrad = torch.no_grad();
        _inputMean.copy_(other._inputMean);
        _inputStd.copy_(other._inputStd);
        _targetMean?.copy_(other._targetMean!);
        _targetStd?.copy_(other._targetStd!);
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
        NetworkLayers layers = Layers;
        for (int i = 0; i < _features.Count; i++)
        {
            if (record is not null && layers.FeatureRoles[i] is LayerRole.Norm or LayerRole.Activation)
                record.Add(PercentileProbe.Measure(layers.Probed[probe++].Name, x, maxSample));
            x = freeEarly && layers.FeatureRoles[i] == LayerRole.Activation ? ActivateInPlace(x) : Next(x, CallFeature(i, x), input, freeEarly);
        }

        x = x.flatten(1);
        for (int i = 0; i < _classifier.Count; i++)
        {
            if (embed && i > layers.LastHiddenActivation)
                break;
            if (record is not null && layers.ClassifierRoles[i] is LayerRole.Norm or LayerRole.Activation)
                record.Add(PercentileProbe.Measure(layers.Probed[probe++].Name, x, maxSample));
            x = freeEarly && layers.ClassifierRoles[i] == LayerRole.Activation ? ActivateInPlace(x) : Next(x, _classifier[i].call(x), input, freeEarly);
        }

        if (!embed)
            x = Output(x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Feature layer <paramref name="i"/> on <paramref name="x"/>: a training-mode convolution in bfloat16 when the architecture asks for it.</summary>
    private Tensor CallFeature(int i, Tensor x)
    {
        if (!training || !_architecture.BFloat16Convolutions || Layers.FeatureRoles[i] != LayerRole.Conv)
            return _features[i].call(x);
        if (!_bfloat16.TryGetValue(i, out BFloat16Convolution? guard))
            _bfloat16[i] = guard = new BFloat16Convolution($"features.{i}", BFloat16Check);
        return guard.Forward((Conv2d)_features[i], x, BFloat16FallbackReported);
    }

    /// <summary>
    /// Without gradient tracking: the activation applied to <paramref name="x"/> in place, as its layer computes it. Nothing
    /// else holds the layer's input then (the layer before produced it), so no activation-sized block is allocated.
    /// </summary>
    private Tensor ActivateInPlace(Tensor x) => _architecture.Activation switch
    {
        ActivationKind.Sigmoid => x.sigmoid_(),
        ActivationKind.Tanh => x.tanh_(),
        _ => x.relu_(),
    };

    private static Tensor Next(Tensor previous, Tensor next, Tensor input, bool freeEarly)
    {
        if (freeEarly && !ReferenceEquals(previous, next) && !ReferenceEquals(previous, input))
            previous.Dispose();
        return next;
    }

    /// <summary>The input as float32, standardized, shaped N×C×H×W (channels-last) for convolutions or N×C·H·W without.</summary>
    internal Tensor Prepare(Tensor input)
    {
        NetworkArchitecture a = _architecture;
        long n = input.shape[0];
        bool flat = input.dim() == 2 && input.shape[1] == a.InputLength;
        bool image = input.dim() == 4 && input.shape[1] == a.InputChannels && input.shape[2] == a.InputHeight && input.shape[3] == a.InputWidth;
        if (!flat && !image)
        {
            throw new ArgumentException(
                $"Expected input N×{a.InputLength} or N×{a.InputChannels}×{a.InputHeight}×{a.InputWidth}, got [{string.Join(", ", input.shape)}].",
                nameof(input));
        }

        Tensor x = input.dtype == ScalarType.Float32 ? input : input.to_type(ScalarType.Float32);
        if (a.StandardizesPerFeature)
        {
            Tensor rows = x.reshape(n, a.InputLength);
            return (rows - _inputMean.view(1, -1)) / _inputStd.view(1, -1);
        }

        if (flat)
            x = x.reshape(n, a.InputChannels, a.InputHeight, a.InputWidth);
        Tensor standardized = (x - _inputMean.view(1, -1, 1, 1)) / _inputStd.view(1, -1, 1, 1);
        return a.ConvStages.Count > 0 ? ChannelsLast.From(standardized) : standardized;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _dropoutRandom.Dispose();
        base.Dispose(disposing);
    }
}

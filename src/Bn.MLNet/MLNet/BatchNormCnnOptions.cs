using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using Bn.MLNet.Training;
using Microsoft.ML;

namespace Bn.MLNet;

/// <summary>How a trained <see cref="BatchNormCnnTransformer"/> normalizes at inference time.</summary>
public enum BatchNormInferenceMode
{
    /// <summary>Batch Normalization uses the moving averages of mean and variance updated during training (the default, as in PyTorch).</summary>
    RunningAverages,

    /// <summary>
    /// After training, the moving averages are replaced by population statistics computed over one pass of the
    /// training data in training-mode mini-batches (the paper's Algorithm 2, steps 8–11). Needs
    /// <see cref="NormalizationKind.Batch"/> or <see cref="NormalizationKind.BatchRenorm"/>.
    /// </summary>
    PopulationStatistics,

    /// <summary>
    /// Every Batch Normalization is folded into the convolution or linear layer before it (same function as
    /// <see cref="RunningAverages"/>, fewer operations). Needs <see cref="NormalizationKind.Batch"/>,
    /// <see cref="NormalizationKind.BatchNative"/>, <see cref="NormalizationKind.BatchRenorm"/> or <see cref="NormalizationKind.None"/>.
    /// </summary>
    Folded,
}

/// <summary>
/// Settings of <see cref="BatchNormCnnCatalog.BatchNormCnn(TransformsCatalog, BatchNormCnnOptions)"/>: the columns,
/// the image shape, the network, the training engine and the inference mode. Every property is settable so an object
/// initializer works; each documents its default.
/// </summary>
public sealed class BatchNormCnnOptions
{
    // ---- Columns -----------------------------------------------------------------------------------------------

    /// <summary>The feature column: a known-size vector of Single, Byte or Double of length C×H×W. Default "Features".</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>The label column: a key type (use <c>MapValueToKey</c> first). Default "Label".</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>The output column of softmax class probabilities (vector of Single). Default "Score".</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>The output column of the predicted class (the label's key type). Default "PredictedLabel".</summary>
    public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

    /// <summary>
    /// Optional output column with the last hidden layer's activations (vector of Single, length
    /// <see cref="BnCnn.EmbeddingSize"/>). Default <see langword="null"/>: no embedding column.
    /// </summary>
    public string? EmbeddingColumnName { get; set; }

    // ---- Image shape -------------------------------------------------------------------------------------------

    /// <summary>Image channels C. Default 1.</summary>
    public int ImageChannels { get; set; } = 1;

    /// <summary>Image height H in pixels. Default 28.</summary>
    public int ImageHeight { get; set; } = 28;

    /// <summary>Image width W in pixels. Default 28.</summary>
    public int ImageWidth { get; set; } = 28;

    // ---- Network -----------------------------------------------------------------------------------------------

    /// <summary>
    /// Convolution stages (3×3 kernels), in order. Default <see langword="null"/>: the default network's stages
    /// (32×2 → max-pool → 64×2 → max-pool, see <see cref="NetworkArchitecture.Default"/>). An empty list gives a
    /// fully-connected network.
    /// </summary>
    public IList<ConvStage>? ConvStages { get; set; }

    /// <summary>Hidden fully-connected widths. Default <see langword="null"/>: the default network's [256].</summary>
    public IList<int>? HiddenLayers { get; set; }

    /// <summary>Dropout after each hidden layer's activation. Default 0.25.</summary>
    public double Dropout { get; set; } = 0.25;

    /// <summary>Normalization after every convolution and hidden layer. Default <see cref="NormalizationKind.Batch"/>.</summary>
    public NormalizationKind Normalization { get; set; } = NormalizationKind.Batch;

    /// <summary>Activation after every normalization. Default <see cref="ActivationKind.ReLU"/>.</summary>
    public ActivationKind Activation { get; set; } = ActivationKind.ReLU;

    /// <summary>
    /// Momentum of the BN running-statistics update (new = (1 − m)·old + m·batch). Default 0.1;
    /// <see langword="null"/> = cumulative average (only with <see cref="NormalizationKind.Batch"/>).
    /// </summary>
    public double? BatchNormMomentum { get; set; } = 0.1;

    /// <summary>The ε added to the variance. Default 1e-5.</summary>
    public double BatchNormEps { get; set; } = 1e-5;

    /// <summary>Groups of <see cref="NormalizationKind.Group"/>. Default 8.</summary>
    public int GroupCount { get; set; } = 8;

    /// <summary>
    /// Final r_max of <see cref="NormalizationKind.BatchRenorm"/>: r = σ_B/σ is clipped to [1/r_max, r_max] (≥ 1).
    /// Default <see cref="BatchRenormSchedule.DefaultRMax"/> (3, the paper's).
    /// </summary>
    public double BatchRenormRMax { get; set; } = BatchRenormSchedule.DefaultRMax;

    /// <summary>
    /// Final d_max of <see cref="NormalizationKind.BatchRenorm"/>: d = (μ_B − μ)/σ is clipped to [−d_max, d_max] (≥ 0).
    /// Default <see cref="BatchRenormSchedule.DefaultDMax"/> (5, the paper's).
    /// </summary>
    public double BatchRenormDMax { get; set; } = BatchRenormSchedule.DefaultDMax;

    /// <summary>
    /// Training steps over which <see cref="NormalizationKind.BatchRenorm"/> relaxes r_max from 1 and d_max from 0 to
    /// their final values, linearly (≥ 0; 0 = final limits from the first step). Default
    /// <see cref="BatchRenormSchedule.DefaultWarmupSteps"/> (2,000).
    /// </summary>
    public long BatchRenormWarmupSteps { get; set; } = BatchRenormSchedule.DefaultWarmupSteps;

    // ---- Training engine ---------------------------------------------------------------------------------------

    /// <summary>Passes over the training data. Default 10.</summary>
    public int Epochs { get; set; } = 10;

    /// <summary>Optional step budget that overrides <see cref="Epochs"/>. Default <see langword="null"/>.</summary>
    public long? MaxSteps { get; set; }

    /// <summary>Rows per training mini-batch. Default 128.</summary>
    public int BatchSize { get; set; } = 128;

    /// <summary>Optimizer. Default <see cref="OptimizerKind.Sgd"/> (with momentum).</summary>
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.Sgd;

    /// <summary>Base (peak, for one-cycle) learning rate. Default 0.1.</summary>
    public double LearningRate { get; set; } = 0.1;

    /// <summary>Multiplier of the learning rate (the paper's ×5 and ×30 runs). Default 1.</summary>
    public double LearningRateMultiplier { get; set; } = 1.0;

    /// <summary>Learning-rate schedule. Default <see cref="LearningRateScheduleKind.OneCycle"/>.</summary>
    public LearningRateScheduleKind Schedule { get; set; } = LearningRateScheduleKind.OneCycle;

    /// <summary>SGD momentum. Default 0.9.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>Nesterov momentum for SGD. Default <see langword="true"/>.</summary>
    public bool Nesterov { get; set; } = true;

    /// <summary>Weight decay (decoupled for AdamW). Default 5e-4.</summary>
    public double WeightDecay { get; set; } = 5e-4;

    /// <summary>Label smoothing of the cross-entropy loss. Default 0.</summary>
    public double LabelSmoothing { get; set; }

    /// <summary>Random-crop padding in pixels for augmentation; 0 disables it. Default 0.</summary>
    public int RandomCropPadding { get; set; }

    /// <summary>Random horizontal flips for augmentation. Default <see langword="false"/>.</summary>
    public bool HorizontalFlip { get; set; }

    /// <summary>
    /// Seed of weight initialization, dropout, augmentation and shuffling. Default <see langword="null"/>: drawn from
    /// the <see cref="MLContext"/>'s random source (deterministic when the context was created with a seed).
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>
    /// libtorch threads during Fit. Default <see langword="null"/>: all cores. The process-wide count
    /// (<c>torch.set_num_threads</c>) is put back when Fit returns or throws; scoring does not change it.
    /// </summary>
    public int? Threads { get; set; }

    /// <summary>Rows held by the streaming shuffle buffer. Default 8192.</summary>
    public int ShuffleBufferSize { get; set; } = 8192;

    /// <summary>Optional validation data, evaluated after every epoch (same columns as the training data). Default <see langword="null"/>.</summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>
    /// Stop after this many epochs without validation improvement (needs <see cref="ValidationData"/>); the best
    /// epoch's weights are restored. Default <see langword="null"/>: no early stopping.
    /// </summary>
    public int? EarlyStoppingPatience { get; set; }

    /// <summary>Receives training progress (epoch, step, loss, throughput), synchronously on the training thread. Default <see langword="null"/>.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels <c>Fit</c> with <see cref="OperationCanceledException"/>. Default <see cref="CancellationToken.None"/>.</summary>
    public CancellationToken CancellationToken { get; set; }

    // ---- Inference ---------------------------------------------------------------------------------------------

    /// <summary>How BN behaves at inference. Default <see cref="BatchNormInferenceMode.RunningAverages"/>.</summary>
    public BatchNormInferenceMode InferenceMode { get; set; } = BatchNormInferenceMode.RunningAverages;

    /// <summary>Rows per forward pass when <c>Transform</c>'s cursors score. Default 256.</summary>
    public int InferenceBatchSize { get; set; } = 256;

    /// <summary>A copy (the validation data, progress receiver and token are shared, not copied).</summary>
    public BatchNormCnnOptions Clone()
    {
        var c = (BatchNormCnnOptions)MemberwiseClone();
        c.ConvStages = ConvStages?.Select(s => new ConvStage(s.Channels, s.Repeats, s.MaxPool)).ToList();
        c.HiddenLayers = HiddenLayers?.ToList();
        return c;
    }

    /// <summary>The network description for <paramref name="classCount"/> classes.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public NetworkArchitecture ToArchitecture(int classCount)
    {
        var d = NetworkArchitecture.Default();
        var a = new NetworkArchitecture
        {
            InputChannels = ImageChannels,
            InputHeight = ImageHeight,
            InputWidth = ImageWidth,
            ConvStages = ConvStages is null ? d.ConvStages : ConvStages.Select(s => new ConvStage(s.Channels, s.Repeats, s.MaxPool)).ToList(),
            HiddenLayers = HiddenLayers is null ? d.HiddenLayers : HiddenLayers.ToArray(),
            Dropout = Dropout,
            ClassCount = classCount,
            Normalization = Normalization,
            Activation = Activation,
            BatchNormMomentum = BatchNormMomentum,
            BatchNormEps = BatchNormEps,
            GroupCount = GroupCount,
            BatchRenormRMax = BatchRenormRMax,
            BatchRenormDMax = BatchRenormDMax,
            BatchRenormWarmupSteps = BatchRenormWarmupSteps,
        };
        a.Validate();
        return a;
    }

    /// <summary>The training engine's settings with <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public TrainerOptions ToTrainerOptions(int seed)
    {
        var t = new TrainerOptions
        {
            Epochs = Epochs,
            MaxSteps = MaxSteps,
            BatchSize = BatchSize,
            Optimizer = Optimizer,
            LearningRate = LearningRate,
            LearningRateMultiplier = LearningRateMultiplier,
            Schedule = Schedule,
            Momentum = Momentum,
            Nesterov = Nesterov,
            WeightDecay = WeightDecay,
            LabelSmoothing = LabelSmoothing,
            RandomCropPadding = RandomCropPadding,
            HorizontalFlip = HorizontalFlip,
            Seed = seed,
            Threads = Threads,
            EarlyStoppingPatience = EarlyStoppingPatience,
        };
        t.Validate();
        return t;
    }

    /// <summary>Checks everything that does not depend on the data.</summary>
    /// <exception cref="ArgumentException">An option is out of range or two options contradict; the message names it.</exception>
    public void Validate()
    {
        Require(!string.IsNullOrWhiteSpace(FeatureColumnName), nameof(FeatureColumnName), "must be a column name");
        Require(!string.IsNullOrWhiteSpace(LabelColumnName), nameof(LabelColumnName), "must be a column name");
        Require(!string.IsNullOrWhiteSpace(ScoreColumnName), nameof(ScoreColumnName), "must be a column name");
        Require(!string.IsNullOrWhiteSpace(PredictedLabelColumnName), nameof(PredictedLabelColumnName), "must be a column name");
        Require(EmbeddingColumnName is null || !string.IsNullOrWhiteSpace(EmbeddingColumnName), nameof(EmbeddingColumnName), "must be null or a column name");
        var outputs = new[] { ScoreColumnName, PredictedLabelColumnName, EmbeddingColumnName }.Where(n => n is not null).ToList();
        Require(outputs.Distinct(StringComparer.Ordinal).Count() == outputs.Count, nameof(ScoreColumnName),
            $"the output columns ({string.Join(", ", outputs)}) must have distinct names");
        Require(ImageChannels >= 1, nameof(ImageChannels), $"must be at least 1 (was {ImageChannels})");
        Require(ImageHeight >= 1, nameof(ImageHeight), $"must be at least 1 (was {ImageHeight})");
        Require(ImageWidth >= 1, nameof(ImageWidth), $"must be at least 1 (was {ImageWidth})");
        Require((long)ImageChannels * ImageHeight * ImageWidth <= int.MaxValue, nameof(ImageChannels), "C×H×W is too large");
        Require(InferenceBatchSize >= 1, nameof(InferenceBatchSize), $"must be at least 1 (was {InferenceBatchSize})");
        Require(ShuffleBufferSize >= 1, nameof(ShuffleBufferSize), $"must be at least 1 (was {ShuffleBufferSize})");
        Require(Enum.IsDefined(InferenceMode), nameof(InferenceMode), $"unknown value {InferenceMode}");
        Require(InferenceMode != BatchNormInferenceMode.PopulationStatistics || Normalization is NormalizationKind.Batch or NormalizationKind.BatchRenorm,
            nameof(InferenceMode), $"PopulationStatistics needs Normalization = Batch or BatchRenorm (was {Normalization})");
        Require(InferenceMode != BatchNormInferenceMode.Folded || Normalization is NormalizationKind.Batch or NormalizationKind.BatchNative or NormalizationKind.BatchRenorm or NormalizationKind.None,
            nameof(InferenceMode), $"Folded needs Normalization = Batch, BatchNative, BatchRenorm or None (was {Normalization}, whose statistics depend on each input)");
        BatchRenormSchedule.Validate(BatchRenormRMax, BatchRenormDMax, BatchRenormWarmupSteps,
            nameof(BatchRenormRMax), nameof(BatchRenormDMax), nameof(BatchRenormWarmupSteps), "BatchNormCnnOptions.");
        Require(EarlyStoppingPatience is null || ValidationData is not null, nameof(EarlyStoppingPatience), "needs ValidationData");
        ToArchitecture(2);
        ToTrainerOptions(0);
    }

    private static void Require(bool condition, string name, string message)
    {
        if (!condition)
            throw new ArgumentException($"BatchNormCnnOptions.{name} {message}.", name);
    }
}

using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using Bn.MLNet.Training;
using Microsoft.ML;

namespace Bn.MLNet;

/// <summary>
/// Settings of <see cref="BatchNormCnnCatalog.BatchNormCnn(TransformsCatalog, BatchNormCnnOptions)"/>: the columns,
/// the image shape, the network, the training engine and the inference mode. Every property is settable so an object
/// initializer works; each documents its default.
/// </summary>
/// <remarks>
/// The defaults are the training recipe of the samples' <c>train</c> command, which reads its defaults from this
/// class: SGD with Nesterov momentum, a one-cycle schedule to 0.1, weight decay 5e-4, batch 128, label smoothing 0.1,
/// random crops (padding 2) and horizontal flips. The lower-level <see cref="TrainerOptions"/> leaves smoothing and
/// augmentation off by default.
/// </remarks>
public sealed class BatchNormCnnOptions
{
    // ---- Columns -----------------------------------------------------------------------------------------------

    /// <summary>Default of <see cref="FeatureColumnName"/>.</summary>
    internal const string DefaultFeatureColumnName = "Features";

    /// <summary>Default of <see cref="LabelColumnName"/>.</summary>
    internal const string DefaultLabelColumnName = "Label";

    /// <summary>Default of <see cref="ScoreColumnName"/>.</summary>
    internal const string DefaultScoreColumnName = "Score";

    /// <summary>Default of <see cref="PredictedLabelColumnName"/>.</summary>
    internal const string DefaultPredictedLabelColumnName = "PredictedLabel";

    /// <summary>The feature column: a known-size vector of Single, Byte or Double of length C×H×W. Default "Features".</summary>
    public string FeatureColumnName { get; set; } = DefaultFeatureColumnName;

    /// <summary>The label column: a key type (use <c>MapValueToKey</c> first). Default "Label".</summary>
    public string LabelColumnName { get; set; } = DefaultLabelColumnName;

    /// <summary>The output column of softmax class probabilities (vector of Single). Default "Score".</summary>
    public string ScoreColumnName { get; set; } = DefaultScoreColumnName;

    /// <summary>The output column of the predicted class (the label's key type). Default "PredictedLabel".</summary>
    public string PredictedLabelColumnName { get; set; } = DefaultPredictedLabelColumnName;

    /// <summary>
    /// Optional output column with the last hidden layer's activations (vector of Single, length
    /// <see cref="BatchNormCnnNetwork.EmbeddingSize"/>). Default <see langword="null"/>: no embedding column.
    /// </summary>
    public string? EmbeddingColumnName { get; set; }

    // ---- Image shape -------------------------------------------------------------------------------------------

    /// <summary>Image channels C. Default 1.</summary>
    public int ImageChannels { get; set; } = NetworkArchitecture.DefaultInputChannels;

    /// <summary>Image height H in pixels. Default 28.</summary>
    public int ImageHeight { get; set; } = NetworkArchitecture.DefaultInputSize;

    /// <summary>Image width W in pixels. Default 28.</summary>
    public int ImageWidth { get; set; } = NetworkArchitecture.DefaultInputSize;

    // ---- Network -----------------------------------------------------------------------------------------------

    /// <summary>
    /// Convolution stages (3×3 kernels), in order. Default <see langword="null"/>: the default network's stages
    /// (32×2 → max-pool → 64×2 → max-pool, see <see cref="NetworkArchitecture.Default"/>). An empty list gives a
    /// fully-connected network.
    /// </summary>
    public IList<ConvStage>? ConvStages { get; set; }

    /// <summary>Hidden fully-connected widths. Default <see langword="null"/>: the default network's [256].</summary>
    public IList<int>? HiddenLayers { get; set; }

    /// <summary>
    /// Dropout after each hidden layer's activation, in [0, 1). Default 0: none, as the paper recommends for BN networks
    /// ("Remove Dropout", section 4.2.1); on Fashion-MNIST it raised the default network's test accuracy.
    /// </summary>
    public double Dropout { get; set; } = NetworkArchitecture.DefaultNetworkDropout;

    /// <summary>Normalization after every convolution and hidden layer. Default <see cref="NormalizationKind.Batch"/>.</summary>
    public NormalizationKind Normalization { get; set; } = NetworkArchitecture.DefaultNormalization;

    /// <summary>Activation after every normalization. Default <see cref="ActivationKind.ReLU"/>.</summary>
    public ActivationKind Activation { get; set; } = NetworkArchitecture.DefaultActivation;

    /// <summary>
    /// Momentum of the BN running-statistics update (new = (1 − m)·old + m·batch). Default 0.1;
    /// <see langword="null"/> = cumulative average (only with <see cref="NormalizationKind.Batch"/>).
    /// </summary>
    public double? BatchNormMomentum { get; set; } = NetworkArchitecture.DefaultBatchNormMomentum;

    /// <summary>The ε added to the variance. Default 1e-5.</summary>
    public double BatchNormEps { get; set; } = NetworkArchitecture.DefaultBatchNormEps;

    /// <summary>Groups of <see cref="NormalizationKind.Group"/>. Default 8.</summary>
    public int GroupCount { get; set; } = NetworkArchitecture.DefaultGroupCount;

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

    /// <summary>
    /// Mixed-precision training: convolutions compute in bfloat16 during Fit (float32 weights kept and updated; scoring is
    /// float32). About twice as fast on CPUs with bfloat16 instructions (AVX512-BF16, AMX), slower elsewhere:
    /// <see cref="BFloat16Support.IsAccelerated"/> tells which. See <see cref="NetworkArchitecture.BFloat16Convolutions"/>.
    /// Default <see langword="false"/>.
    /// </summary>
    public bool BFloat16Convolutions { get; set; }

    // ---- Training engine ---------------------------------------------------------------------------------------

    /// <summary>Passes over the training data. Default 10.</summary>
    public int Epochs { get; set; } = TrainerOptions.DefaultEpochs;

    /// <summary>Optional step budget that overrides <see cref="Epochs"/>. Default <see langword="null"/>.</summary>
    public long? MaxSteps { get; set; }

    /// <summary>Rows per training mini-batch. Default 128.</summary>
    public int BatchSize { get; set; } = TrainerOptions.DefaultBatchSize;

    /// <summary>Optimizer. Default <see cref="OptimizerKind.Sgd"/> (with momentum).</summary>
    public OptimizerKind Optimizer { get; set; } = TrainerOptions.DefaultOptimizer;

    /// <summary>Base (peak, for one-cycle) learning rate. Default 0.1.</summary>
    public double LearningRate { get; set; } = TrainerOptions.DefaultLearningRate;

    /// <summary>Multiplier of the learning rate (the paper's ×5 and ×30 runs). Default 1.</summary>
    public double LearningRateMultiplier { get; set; } = TrainerOptions.DefaultLearningRateMultiplier;

    /// <summary>Learning-rate schedule. Default <see cref="LearningRateScheduleKind.OneCycle"/>.</summary>
    public LearningRateScheduleKind Schedule { get; set; } = TrainerOptions.DefaultSchedule;

    /// <summary>SGD momentum. Default 0.9.</summary>
    public double Momentum { get; set; } = TrainerOptions.DefaultMomentum;

    /// <summary>Nesterov momentum for SGD. Default <see langword="true"/>.</summary>
    public bool Nesterov { get; set; } = TrainerOptions.DefaultNesterov;

    /// <summary>Weight decay (decoupled for AdamW). Default 5e-4.</summary>
    public double WeightDecay { get; set; } = TrainerOptions.DefaultWeightDecay;

    /// <summary>Label smoothing of the cross-entropy loss; 0 disables it. Default 0.1.</summary>
    public double LabelSmoothing { get; set; } = 0.1;

    /// <summary>
    /// Random-crop augmentation: each training image is zero-padded by this many pixels on every side and cropped back
    /// to its size at a random offset; 0 disables it. Default 2. Set 0 when the features are not an image (for
    /// example a 1×1×N vector), where a shifted crop would replace values by padding.
    /// </summary>
    public int RandomCropPadding { get; set; } = 2;

    /// <summary>
    /// Random horizontal flips for augmentation. Default <see langword="true"/>. Set <see langword="false"/> when
    /// a mirrored image may belong to another class (digits, letters, left/right arrows) or the features are not an image.
    /// </summary>
    public bool HorizontalFlip { get; set; } = true;

    /// <summary>
    /// Random-erasing augmentation (Zhong et al. 2017), in [0, 1]: the probability that a training image gets a random
    /// rectangle (2–25 % of its area, height/width ratio in [0.3, 3.3]) set to the per-channel input mean (0 after the
    /// network's standardization), after the crop and flip; 0 disables it. Default 0.
    /// </summary>
    public double RandomErasingProbability { get; set; } = TrainerOptions.DefaultRandomErasingProbability;

    /// <summary>
    /// Decay of an exponential moving average of the weights and floating-point buffers (BN running statistics), in
    /// (0, 1), with a warm-up (effective decay min(decay, (1 + t)/(10 + t)) after t steps); validation scores the
    /// average and the network receives it when training ends, when it is finite. Default <see langword="null"/>: off.
    /// </summary>
    public double? WeightAveragingDecay { get; set; } = TrainerOptions.DefaultWeightAveragingDecay;

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

    /// <summary>
    /// Test-time flip averaging: when true, the transformer scores each image as the mean of the softmax probabilities of
    /// the image and of its horizontal mirror (the width axis reversed), and <c>PredictedLabel</c> follows the averaged
    /// probabilities; the embedding column stays the un-flipped image's. Use it for images whose mirror shows the same
    /// class (clothing, natural photos; not digits or text), typically together with <see cref="HorizontalFlip"/> in
    /// training. Scoring costs about twice as much (twice the rows per forward pass). Needs image input (width at least
    /// 2). Saved with the model; <c>BatchNormCnnTransformer.WithTestTimeFlipAveraging</c> switches it on a trained model.
    /// Default <see langword="false"/>.
    /// </summary>
    public bool TestTimeFlipAveraging { get; set; }

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
            BFloat16Convolutions = BFloat16Convolutions,
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
            RandomErasingProbability = RandomErasingProbability,
            WeightAveragingDecay = WeightAveragingDecay,
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
        Require(!TestTimeFlipAveraging || ImageWidth >= 2, nameof(TestTimeFlipAveraging),
            $"needs image input whose width is at least 2 (mirroring reverses the width axis); the input is {ImageChannels}×{ImageHeight}×{ImageWidth}");
        Require(EarlyStoppingPatience is null || ValidationData is not null, nameof(EarlyStoppingPatience), "needs ValidationData");
        Require(RandomCropPadding == 0 || RandomCropPadding < Math.Min(ImageHeight, ImageWidth), nameof(RandomCropPadding),
            $"must be smaller than the image ({ImageHeight}×{ImageWidth}); set 0 when the features are not an image (was {RandomCropPadding})");
        Require(RandomErasingProbability is >= 0 and <= 1, nameof(RandomErasingProbability), $"must be in [0, 1] (was {RandomErasingProbability})");
        Require(WeightAveragingDecay is null or (> 0 and < 1), nameof(WeightAveragingDecay), $"must be in (0, 1) or null (was {WeightAveragingDecay})");
        ToArchitecture(2);
        ToTrainerOptions(0);
    }

    private static void Require(bool condition, string name, string message)
    {
        if (!condition)
            throw new ArgumentException($"BatchNormCnnOptions.{name} {message}.", name);
    }
}

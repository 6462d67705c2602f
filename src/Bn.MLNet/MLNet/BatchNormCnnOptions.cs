using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using Bn.MLNet.Training;
using Microsoft.ML;

namespace Bn.MLNet;

/// <summary>
/// Settings of the BatchNormCnn estimator (<see cref="BatchNormCnnCatalog"/>): the columns, the network
/// (<see cref="Network"/>), the training engine (<see cref="Trainer"/>), the data and the inference mode. Every property
/// is settable so an object initializer works; each documents its default.
/// </summary>
/// <remarks>
/// <para><b>One source for each setting.</b> The network's settings live in <see cref="Network"/> (a
/// <see cref="NetworkArchitecture"/>) and the training engine's in <see cref="Trainer"/> (a <see cref="TrainerOptions"/>),
/// the same types a user of <see cref="BatchNormCnnNetwork"/> and <see cref="Training.Trainer"/> sets, with their
/// defaults and validation declared there once; every training setting is reachable through <see cref="Trainer"/>. The
/// flat properties (<see cref="Epochs"/>, <see cref="ImageChannels"/>, ...) read and write those nested settings: they
/// are shortcuts for the common ones, not copies.</para>
/// <para><see cref="Network"/>'s class count comes from the label column at <c>Fit</c>.</para>
/// </remarks>
public sealed class BatchNormCnnOptions
{
    /// <summary>Default of <see cref="FeatureColumnName"/>.</summary>
    internal const string DefaultFeatureColumnName = "Features";

    /// <summary>Default of <see cref="LabelColumnName"/>.</summary>
    internal const string DefaultLabelColumnName = "Label";

    /// <summary>Default of <see cref="ScoreColumnName"/>.</summary>
    internal const string DefaultScoreColumnName = "Score";

    /// <summary>Default of <see cref="PredictedLabelColumnName"/>.</summary>
    internal const string DefaultPredictedLabelColumnName = "PredictedLabel";

    /// <summary>Default of <see cref="ProbabilityColumnName"/>.</summary>
    internal const string DefaultProbabilityColumnName = "Probability";

    /// <summary>Default of <see cref="ShuffleBufferSize"/>.</summary>
    internal const int DefaultShuffleBufferSize = 8192;

    /// <summary>Default of <see cref="InferenceBatchSize"/>.</summary>
    internal const int DefaultInferenceBatchSize = 256;

    /// <summary>
    /// Turns on the natural-image recipe of the training engine (random crops, horizontal flips, label smoothing; see
    /// <see cref="TrainerOptions.UseNaturalImageRecipe"/>, its one place). The defaults leave it off: they never change
    /// the data or the objective. Returns this instance.
    /// </summary>
    public BatchNormCnnOptions UseNaturalImageRecipe()
    {
        Trainer.UseNaturalImageRecipe();
        return this;
    }

    // ---- Columns -----------------------------------------------------------------------------------------------

    /// <summary>The feature column: a known-size vector of Single, Byte or Double of length C×H×W. Default "Features".</summary>
    public string FeatureColumnName { get; set; } = DefaultFeatureColumnName;

    /// <summary>The label column: a key type (use <c>MapValueToKey</c> first). Default "Label".</summary>
    public string LabelColumnName { get; set; } = DefaultLabelColumnName;

    /// <summary>
    /// The output column of scores: the softmax class probabilities (vector of Single) for multiclass classification, the
    /// raw logit (Single) for binary classification, the prediction in the label's units (Single) for regression.
    /// Default "Score".
    /// </summary>
    public string ScoreColumnName { get; set; } = DefaultScoreColumnName;

    /// <summary>Binary classification: the output column of the positive class's probability, the sigmoid of the score (Single). Default "Probability".</summary>
    public string ProbabilityColumnName { get; set; } = DefaultProbabilityColumnName;

    /// <summary>
    /// The output column of the predicted class: the label's key type (multiclass), Boolean (binary; Score &gt; 0); none
    /// for regression. Default "PredictedLabel".
    /// </summary>
    public string PredictedLabelColumnName { get; set; } = DefaultPredictedLabelColumnName;

    /// <summary>
    /// Optional output column with the last hidden layer's activations (vector of Single, length
    /// <see cref="BatchNormCnnNetwork.EmbeddingSize"/>). Default <see langword="null"/>: no embedding column.
    /// </summary>
    public string? EmbeddingColumnName { get; set; }

    // ---- The two nested settings -------------------------------------------------------------------------------

    /// <summary>
    /// The network: input shape, convolution stages, hidden layers, normalization, activation, bfloat16 training.
    /// Default <see cref="NetworkArchitecture.Default"/> (1×28×28 input, 32×2 → pool → 64×2 → pool, one hidden layer of 256,
    /// Batch Normalization, ReLU). Its class count is set from the label column at <c>Fit</c>.
    /// </summary>
    public NetworkArchitecture Network { get; set; } = NetworkArchitecture.Default();

    /// <summary>
    /// The training engine: epochs or steps or a time budget, batch size, optimizer, schedule, regularization,
    /// augmentation, seed, threads, early stopping, logging. Default: <see cref="TrainerOptions"/>' defaults, which
    /// leave the data and the loss as they are (no augmentation, no label smoothing; <see cref="UseNaturalImageRecipe"/>
    /// turns on the natural-image recipe).
    /// </summary>
    public TrainerOptions Trainer { get; set; } = new();

    // ---- Shortcuts to the network's settings ------------------------------------------------------------------

    /// <summary>Image channels C (<see cref="NetworkArchitecture.InputChannels"/>). Default 1.</summary>
    public int ImageChannels { get => Network.InputChannels; set => Network.InputChannels = value; }

    /// <summary>Image height H in pixels (<see cref="NetworkArchitecture.InputHeight"/>). Default 28.</summary>
    public int ImageHeight { get => Network.InputHeight; set => Network.InputHeight = value; }

    /// <summary>Image width W in pixels (<see cref="NetworkArchitecture.InputWidth"/>). Default 28.</summary>
    public int ImageWidth { get => Network.InputWidth; set => Network.InputWidth = value; }

    /// <summary>
    /// Convolution stages (3×3 kernels), in order (<see cref="NetworkArchitecture.ConvStages"/>). Default: 32×2 → max-pool →
    /// 64×2 → max-pool. An empty list gives a fully-connected network; setting <see langword="null"/> restores the default.
    /// </summary>
    public IList<ConvStage>? ConvStages
    {
        get => Network.ConvStages;
        set => Network.ConvStages = value is null ? NetworkArchitecture.Default().ConvStages : value.Select(s => new ConvStage(s.Channels, s.Repeats, s.MaxPool)).ToList();
    }

    /// <summary>Hidden fully-connected widths (<see cref="NetworkArchitecture.HiddenLayers"/>). Default [256]; setting <see langword="null"/> restores it.</summary>
    public IList<int>? HiddenLayers
    {
        get => Network.HiddenLayers;
        set => Network.HiddenLayers = value is null ? NetworkArchitecture.Default().HiddenLayers : value.ToArray();
    }

    /// <inheritdoc cref="NetworkArchitecture.Dropout"/>
    public double Dropout { get => Network.Dropout; set => Network.Dropout = value; }

    /// <inheritdoc cref="NetworkArchitecture.Normalization"/>
    public NormalizationKind Normalization { get => Network.Normalization; set => Network.Normalization = value; }

    /// <inheritdoc cref="NetworkArchitecture.Activation"/>
    public ActivationKind Activation { get => Network.Activation; set => Network.Activation = value; }

    /// <inheritdoc cref="NetworkArchitecture.BatchNormMomentum"/>
    public double? BatchNormMomentum { get => Network.BatchNormMomentum; set => Network.BatchNormMomentum = value; }

    /// <inheritdoc cref="NetworkArchitecture.BatchNormEps"/>
    public double BatchNormEps { get => Network.BatchNormEps; set => Network.BatchNormEps = value; }

    /// <inheritdoc cref="NetworkArchitecture.GroupCount"/>
    public int GroupCount { get => Network.GroupCount; set => Network.GroupCount = value; }

    /// <inheritdoc cref="NetworkArchitecture.BatchRenormRMax"/>
    public double BatchRenormRMax { get => Network.BatchRenormRMax; set => Network.BatchRenormRMax = value; }

    /// <inheritdoc cref="NetworkArchitecture.BatchRenormDMax"/>
    public double BatchRenormDMax { get => Network.BatchRenormDMax; set => Network.BatchRenormDMax = value; }

    /// <inheritdoc cref="NetworkArchitecture.BatchRenormWarmupSteps"/>
    public long BatchRenormWarmupSteps { get => Network.BatchRenormWarmupSteps; set => Network.BatchRenormWarmupSteps = value; }

    /// <inheritdoc cref="NetworkArchitecture.BFloat16Convolutions"/>
    public bool BFloat16Convolutions { get => Network.BFloat16Convolutions; set => Network.BFloat16Convolutions = value; }

    // ---- Shortcuts to the training engine's settings ----------------------------------------------------------

    /// <inheritdoc cref="TrainerOptions.Epochs"/>
    public int Epochs { get => Trainer.Epochs; set => Trainer.Epochs = value; }

    /// <inheritdoc cref="TrainerOptions.MaxSteps"/>
    public long? MaxSteps { get => Trainer.MaxSteps; set => Trainer.MaxSteps = value; }

    /// <inheritdoc cref="TrainerOptions.BatchSize"/>
    public int BatchSize { get => Trainer.BatchSize; set => Trainer.BatchSize = value; }

    /// <inheritdoc cref="TrainerOptions.Optimizer"/>
    public OptimizerKind Optimizer { get => Trainer.Optimizer; set => Trainer.Optimizer = value; }

    /// <inheritdoc cref="TrainerOptions.LearningRate"/>
    public double LearningRate { get => Trainer.LearningRate; set => Trainer.LearningRate = value; }

    /// <inheritdoc cref="TrainerOptions.LearningRateMultiplier"/>
    public double LearningRateMultiplier { get => Trainer.LearningRateMultiplier; set => Trainer.LearningRateMultiplier = value; }

    /// <inheritdoc cref="TrainerOptions.Schedule"/>
    public LearningRateScheduleKind Schedule { get => Trainer.Schedule; set => Trainer.Schedule = value; }

    /// <inheritdoc cref="TrainerOptions.Momentum"/>
    public double Momentum { get => Trainer.Momentum; set => Trainer.Momentum = value; }

    /// <inheritdoc cref="TrainerOptions.Nesterov"/>
    public bool Nesterov { get => Trainer.Nesterov; set => Trainer.Nesterov = value; }

    /// <inheritdoc cref="TrainerOptions.WeightDecay"/>
    public double WeightDecay { get => Trainer.WeightDecay; set => Trainer.WeightDecay = value; }

    /// <inheritdoc cref="TrainerOptions.LabelSmoothing"/>
    public double LabelSmoothing { get => Trainer.LabelSmoothing; set => Trainer.LabelSmoothing = value; }

    /// <inheritdoc cref="TrainerOptions.RandomCropPadding"/>
    public int RandomCropPadding { get => Trainer.RandomCropPadding; set => Trainer.RandomCropPadding = value; }

    /// <inheritdoc cref="TrainerOptions.HorizontalFlip"/>
    public bool HorizontalFlip { get => Trainer.HorizontalFlip; set => Trainer.HorizontalFlip = value; }

    /// <inheritdoc cref="TrainerOptions.RandomErasingProbability"/>
    public double RandomErasingProbability { get => Trainer.RandomErasingProbability; set => Trainer.RandomErasingProbability = value; }

    /// <inheritdoc cref="TrainerOptions.WeightAveragingDecay"/>
    public double? WeightAveragingDecay { get => Trainer.WeightAveragingDecay; set => Trainer.WeightAveragingDecay = value; }

    /// <inheritdoc cref="TrainerOptions.Seed"/>
    public int? Seed { get => Trainer.Seed; set => Trainer.Seed = value; }

    /// <inheritdoc cref="TrainerOptions.Threads"/>
    public int? Threads { get => Trainer.Threads; set => Trainer.Threads = value; }

    /// <inheritdoc cref="TrainerOptions.EarlyStoppingPatience"/>
    public int? EarlyStoppingPatience { get => Trainer.EarlyStoppingPatience; set => Trainer.EarlyStoppingPatience = value; }

    /// <inheritdoc cref="TrainerOptions.TimeBudget"/>
    public TimeSpan? TimeBudget { get => Trainer.TimeBudget; set => Trainer.TimeBudget = value; }

    /// <inheritdoc cref="TrainerOptions.CheckpointDirectory"/>
    public string? CheckpointDirectory { get => Trainer.CheckpointDirectory; set => Trainer.CheckpointDirectory = value; }

    /// <inheritdoc cref="TrainerOptions.FreezeConvolutionStages"/>
    public bool FreezeConvolutionStages { get => Trainer.FreezeConvolutionStages; set => Trainer.FreezeConvolutionStages = value; }

    // ---- Data and the run --------------------------------------------------------------------------------------

    /// <summary>Rows held by the streaming shuffle buffer. Default 8192.</summary>
    public int ShuffleBufferSize { get; set; } = DefaultShuffleBufferSize;

    /// <summary>
    /// Optional validation data, evaluated after every epoch (same columns as the training data); the estimator's
    /// <c>Fit(trainData, validationData)</c> is the other way to give it (not both). Default <see langword="null"/>.
    /// </summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>
    /// The share of the training rows held out as validation data, in [0, 1): a seeded split that streams (each row goes
    /// to one part by a hash of its row id and the seed, the same part every epoch), evaluated after every epoch like
    /// <see cref="ValidationData"/>, so it picks the best epoch and serves <see cref="EarlyStoppingPatience"/>. Not
    /// together with validation data. Default 0: off.
    /// </summary>
    public double ValidationFraction { get; set; }

    /// <summary>
    /// A trained model to start from (continue training, or fine-tune): it must have the same input shape and body as
    /// <see cref="Network"/> (everything but the class count; refused naming the first difference otherwise). With the
    /// same classes (the same label values, in order) training continues from the whole model; with other classes the
    /// body carries over and a new output layer is trained; <see cref="FreezeConvolutionStages"/> then trains only the
    /// layers after the convolution stages. The model's input standardization is kept. The model is read, not changed.
    /// Default <see langword="null"/>: random initial weights.
    /// </summary>
    public BatchNormCnnTransformer? InitialModel { get; set; }

    /// <summary>Receives training progress (epoch, step, loss, throughput), synchronously on the training thread. Default <see langword="null"/>.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels <c>Fit</c> with <see cref="OperationCanceledException"/>. Default <see cref="CancellationToken.None"/>.</summary>
    public CancellationToken CancellationToken { get; set; }

    // ---- Inference ---------------------------------------------------------------------------------------------

    /// <summary>How BN behaves at inference. Default <see cref="BatchNormInferenceMode.RunningAverages"/>.</summary>
    public BatchNormInferenceMode InferenceMode { get; set; } = BatchNormInferenceMode.RunningAverages;

    /// <summary>Rows per forward pass when <c>Transform</c>'s cursors score. Default 256.</summary>
    public int InferenceBatchSize { get; set; } = DefaultInferenceBatchSize;

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

    /// <summary>
    /// What computes the scores: <see cref="Bn.MLNet.ScoringEngine.Automatic"/> (ONNX Runtime when the app references the
    /// <c>Microsoft.ML.OnnxRuntime</c> package and the network is on the CPU, libtorch otherwise),
    /// <see cref="Bn.MLNet.ScoringEngine.LibTorch"/> or <see cref="Bn.MLNet.ScoringEngine.OnnxRuntime"/>. Both compute the
    /// same scores up to float32 rounding. Saved with the model; <c>BatchNormCnnTransformer.WithScoringEngine</c> switches
    /// it on a trained model. Default <see cref="Bn.MLNet.ScoringEngine.Automatic"/>.
    /// </summary>
    public ScoringEngine ScoringEngine { get; set; }

    /// <summary>A deep copy of the settings (the validation data, progress receiver and token are shared, not copied).</summary>
    public BatchNormCnnOptions Clone()
    {
        var c = (BatchNormCnnOptions)MemberwiseClone();
        c.Network = Network.Clone();
        c.Trainer = Trainer.Clone();
        return c;
    }

    /// <summary>Checks everything that does not depend on the data.</summary>
    /// <exception cref="ArgumentException">An option is out of range or two options contradict; the message names it.</exception>
    public void Validate()
    {
        Require(Network is not null, nameof(Network), "must not be null");
        Require(Trainer is not null, nameof(Trainer), "must not be null");
        ValidateColumns();
        NetworkArchitecture network = Network!.Clone();
        network.ClassCount = 2;   // set from the label at Fit
        network.Validate(NetworkName);
        Trainer!.Validate(TrainerName);
        Trainer.CheckFits(ImageHeight, ImageWidth, TrainerName);
        Require(InferenceBatchSize >= 1, nameof(InferenceBatchSize), $"must be at least 1 (was {InferenceBatchSize})");
        Require(ShuffleBufferSize >= 1, nameof(ShuffleBufferSize), $"must be at least 1 (was {ShuffleBufferSize})");
        Require(ValidationFraction is >= 0 and < 1, nameof(ValidationFraction), $"must be in [0, 1) (was {ValidationFraction})");
        Require(Enum.IsDefined(InferenceMode), nameof(InferenceMode), $"unknown value {InferenceMode}");
        Require(Enum.IsDefined(ScoringEngine), nameof(ScoringEngine), $"unknown value {ScoringEngine}");
        Require(InferenceMode != BatchNormInferenceMode.PopulationStatistics || Normalization is NormalizationKind.Batch or NormalizationKind.BatchRenorm,
            nameof(InferenceMode), $"PopulationStatistics needs Normalization = Batch or BatchRenorm (was {Normalization})");
        Require(InferenceMode != BatchNormInferenceMode.Folded || Normalization is NormalizationKind.Batch or NormalizationKind.BatchNative or NormalizationKind.BatchRenorm or NormalizationKind.None,
            nameof(InferenceMode), $"Folded needs Normalization = Batch, BatchNative, BatchRenorm or None (was {Normalization}, whose statistics depend on each input)");
        Require(!TestTimeFlipAveraging || ImageWidth >= 2, nameof(TestTimeFlipAveraging),
            $"needs image input whose width is at least 2 (mirroring reverses the width axis); the input is {ImageChannels}×{ImageHeight}×{ImageWidth}");
    }

    private void ValidateColumns()
    {
        Require(!string.IsNullOrWhiteSpace(FeatureColumnName), nameof(FeatureColumnName), "must be a column name");
        Require(!string.IsNullOrWhiteSpace(LabelColumnName), nameof(LabelColumnName), "must be a column name");
        Require(!string.IsNullOrWhiteSpace(ScoreColumnName), nameof(ScoreColumnName), "must be a column name");
        Require(!string.IsNullOrWhiteSpace(PredictedLabelColumnName), nameof(PredictedLabelColumnName), "must be a column name");
        Require(!string.IsNullOrWhiteSpace(ProbabilityColumnName), nameof(ProbabilityColumnName), "must be a column name");
        Require(EmbeddingColumnName is null || !string.IsNullOrWhiteSpace(EmbeddingColumnName), nameof(EmbeddingColumnName), "must be null or a column name");
        var outputs = new[] { ScoreColumnName, ProbabilityColumnName, PredictedLabelColumnName, EmbeddingColumnName }.Where(n => n is not null).ToList();
        Require(outputs.Distinct(StringComparer.Ordinal).Count() == outputs.Count, nameof(ScoreColumnName),
            $"the output columns ({string.Join(", ", outputs)}) must have distinct names");
    }

    /// <summary>How a message names a network field: the flat shortcut when there is one, else the nested path.</summary>
    private static string NetworkName(string field) => field switch
    {
        nameof(NetworkArchitecture.InputChannels) => "BatchNormCnnOptions." + nameof(ImageChannels),
        nameof(NetworkArchitecture.InputHeight) => "BatchNormCnnOptions." + nameof(ImageHeight),
        nameof(NetworkArchitecture.InputWidth) => "BatchNormCnnOptions." + nameof(ImageWidth),
        _ when HasShortcut(field) => "BatchNormCnnOptions." + field,
        _ => "BatchNormCnnOptions.Network." + field,
    };

    /// <summary>How a message names a training field: the flat shortcut when there is one, else the nested path.</summary>
    private static string TrainerName(string field) =>
        HasShortcut(field) ? "BatchNormCnnOptions." + field : "BatchNormCnnOptions.Trainer." + field;

    private static bool HasShortcut(string field)
    {
        string root = field.Split('[', '.')[0];
        return typeof(BatchNormCnnOptions).GetProperty(root) is { } p && p.Name is not (nameof(Network) or nameof(Trainer));
    }

    private static void Require(bool condition, string name, string message) =>
        new Requirement(field => "BatchNormCnnOptions." + field).That(condition, name, message);
}

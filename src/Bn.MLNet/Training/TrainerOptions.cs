namespace Bn.MLNet.Training;

/// <summary>Settings of a <see cref="Trainer"/>. Defaults suit the default <see cref="Networks.NetworkArchitecture"/> on Fashion-MNIST.</summary>
public sealed class TrainerOptions
{
    /// <summary>Default of <see cref="Epochs"/>: 10.</summary>
    internal const int DefaultEpochs = 10;

    /// <summary>Default of <see cref="BatchSize"/>: 128.</summary>
    internal const int DefaultBatchSize = 128;

    /// <summary>Default of <see cref="LearningRate"/>: 0.1.</summary>
    internal const double DefaultLearningRate = 0.1;

    /// <summary>Number of passes over the training data (ignored when <see cref="MaxSteps"/> is set). Default 10.</summary>
    public int Epochs { get; set; } = DefaultEpochs;

    /// <summary>
    /// Step budget. When set it takes precedence over <see cref="Epochs"/>: training runs exactly this many optimizer
    /// steps (unless stopped early), over as many epochs as needed, and the schedule spans these steps.
    /// </summary>
    public long? MaxSteps { get; set; }

    /// <summary>
    /// Wall-clock budget for the whole <see cref="Trainer.Train"/> call (statistics pass, training and validation). When
    /// set, cosine and one-cycle schedules advance by the larger of the step fraction and the time fraction, and training
    /// stops after the step during which the budget runs out, so the schedule still ends annealed, and returns the model:
    /// the best epoch's with validation data (and <see cref="RestoreBestWeights"/>), the last step's without. This is the
    /// way to stop a long run and keep its result (cancelling throws <see cref="OperationCanceledException"/> instead).
    /// Runs limited by time are not reproducible (how far they get depends on the machine's speed). Default
    /// <see langword="null"/>: no budget.
    /// </summary>
    public TimeSpan? TimeBudget { get; set; }

    /// <summary>
    /// Rows per training mini-batch (at least 2: a batch of one row cannot be batch-normalized). Default 128.
    /// </summary>
    public int BatchSize { get; set; } = DefaultBatchSize;

    /// <summary>The optimizer. Default <see cref="OptimizerKind.Sgd"/> (with <see cref="Momentum"/>).</summary>
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.Sgd;

    /// <summary>Base learning rate (the schedule's peak for one-cycle). Default 0.1.</summary>
    public double LearningRate { get; set; } = DefaultLearningRate;

    /// <summary>
    /// Multiplies <see cref="LearningRate"/> (the paper's ×5 and ×30 runs with Batch Normalization). Default 1.
    /// </summary>
    public double LearningRateMultiplier { get; set; } = 1.0;

    /// <summary>The learning rate schedule. Default <see cref="LearningRateScheduleKind.OneCycle"/>.</summary>
    public LearningRateScheduleKind Schedule { get; set; } = LearningRateScheduleKind.OneCycle;

    /// <summary>For <see cref="LearningRateScheduleKind.Step"/>: epochs between decays. Default 10.</summary>
    public int StepSizeEpochs { get; set; } = 10;

    /// <summary>For <see cref="LearningRateScheduleKind.Step"/>: factor applied at each decay. Default 0.1.</summary>
    public double StepGamma { get; set; } = 0.1;

    /// <summary>
    /// For <see cref="LearningRateScheduleKind.OneCycle"/>: fraction of the steps spent warming up. Default 0.25.
    /// </summary>
    public double OneCycleWarmupFraction { get; set; } = 0.25;

    /// <summary>For <see cref="LearningRateScheduleKind.OneCycle"/>: the first rate is base / this. Default 25.</summary>
    public double OneCycleDivFactor { get; set; } = 25;

    /// <summary>For cosine and one-cycle: the last rate is base × this. Default 1e-4.</summary>
    public double FinalLearningRateFraction { get; set; } = 1e-4;

    /// <summary>SGD momentum (0 for plain SGD). Default 0.9.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>
    /// Whether SGD uses Nesterov momentum (requires <see cref="Momentum"/> &gt; 0). Default <see langword="true"/>.
    /// </summary>
    public bool Nesterov { get; set; } = true;

    /// <summary>Adam/AdamW β₁. Default 0.9.</summary>
    public double Beta1 { get; set; } = 0.9;

    /// <summary>Adam/AdamW β₂. Default 0.999.</summary>
    public double Beta2 { get; set; } = 0.999;

    /// <summary>Weight decay (L2 for SGD and Adam, decoupled for AdamW). Default 5e-4.</summary>
    public double WeightDecay { get; set; } = 5e-4;

    /// <summary>
    /// Label smoothing of the cross-entropy loss, in [0, 1). Default 0: the loss is the plain cross-entropy (the
    /// natural-image recipe uses 0.1).
    /// </summary>
    public double LabelSmoothing { get; set; }

    /// <summary>
    /// Seed of everything the trainer draws: the dropout masks and the augmentation (row shuffling is seeded by the
    /// <see cref="Data.BatchSource"/> and the epoch number; the estimator gives its sources this seed too). Default
    /// <see langword="null"/>: the estimator draws one from the <c>MLContext</c>'s random source (deterministic when the
    /// context has a seed), a <see cref="Trainer"/> used directly draws one at random; either way the seed used is
    /// recorded in <see cref="TrainingHistory.Seed"/>. The trainer never calls <c>torch.manual_seed</c>: it draws from
    /// private generators and leaves libtorch's global random stream alone.
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>libtorch intra-op threads (<c>torch.set_num_threads</c>) during <see cref="Trainer.Train"/>, which puts the
    /// previous count back when it returns or throws. Default <see langword="null"/>: every core.</summary>
    public int? Threads { get; set; }

    /// <summary>Whether rows are shuffled each epoch. Default <see langword="true"/>.</summary>
    public bool Shuffle { get; set; } = true;

    /// <summary>
    /// Whether the trainer computes the per-channel mean and standard deviation of the training inputs (one streaming
    /// pass before training) and stores them into the network. When false the network's current values are kept. Default
    /// <see langword="true"/>.
    /// </summary>
    public bool ComputeInputStandardization { get; set; } = true;

    /// <summary>
    /// Random-crop augmentation: pad each side by this many zero pixels and crop back at a random offset; 0 disables.
    /// Default 0 (the natural-image recipe uses 2). Only for images: a crop shifts values into the padding.
    /// </summary>
    public int RandomCropPadding { get; set; }

    /// <summary>
    /// Horizontal-flip augmentation with probability ½. Default <see langword="false"/> (the natural-image recipe turns
    /// it on). Only for images whose mirror shows the same class: not digits, letters, arrows, charts, or anything whose
    /// left and right differ in meaning.
    /// </summary>
    public bool HorizontalFlip { get; set; }

    /// <summary>
    /// Random-erasing augmentation (Zhong et al. 2017), in [0, 1]: the probability that a training image gets a rectangle
    /// (area 2–25 % of the image, height/width ratio log-uniform in [0.3, 3.3], fully inside the image) set to the
    /// network's per-channel input mean, i.e. to 0 after the input standardization; applied after the crop and flip.
    /// Default 0: off.
    /// </summary>
    public double RandomErasingProbability { get; set; }

    /// <summary>
    /// Exponential moving average of the weights, in (0, 1): after every optimizer step each parameter's average becomes
    /// d·average + (1 − d)·parameter with d = min(decay, (1 + t)/(10 + t)) after t steps (a warm-up so the random
    /// initialization fades quickly). Floating-point buffers (BN running mean and variance, input standardization) are
    /// averaged the same way, so the statistics match the averaged weights as closely as a running average can; integer
    /// buffers (batch counters) are copied. Validation after each epoch scores the averaged weights (the best-epoch
    /// snapshot holds them; the extra validations of <see cref="ValidationEverySteps"/> score the raw ones), and they are written
    /// into the network when training ends (before the best-epoch restore) when they are finite; otherwise the raw weights
    /// are kept. <see cref="TrainingHistory.UsedWeightAverage"/> tells which. Default null: off.
    /// </summary>
    public double? WeightAveragingDecay { get; set; }

    /// <summary>
    /// With a validation source: stop after this many epochs without improvement of <see cref="EarlyStoppingMetric"/>.
    /// Default <see langword="null"/>: never stops early.
    /// </summary>
    public int? EarlyStoppingPatience { get; set; }

    /// <summary>
    /// The metric that decides the best epoch (for regression always the validation loss). Default <see cref="EarlyStoppingMetric.ValidationAccuracy"/>.
    /// </summary>
    public EarlyStoppingMetric EarlyStoppingMetric { get; set; } = EarlyStoppingMetric.ValidationAccuracy;

    /// <summary>
    /// With a validation source: load the weights of the best epoch when training ends. Default <see langword="true"/>.
    /// </summary>
    public bool RestoreBestWeights { get; set; } = true;

    /// <summary>
    /// With a validation source: also evaluate it every this many steps, recorded in <see cref="TrainingHistory.Steps"/>
    /// (for accuracy-against-steps curves). Default null: only after each epoch.
    /// </summary>
    public int? ValidationEverySteps { get; set; }

    /// <summary>Rows per batch when evaluating the validation source. Default 256.</summary>
    public int EvaluationBatchSize { get; set; } = 256;

    /// <summary>
    /// K: a step record (and, with <see cref="RecordPercentiles"/>, layer-input percentiles) every K steps. Default 50.
    /// </summary>
    public int LogEverySteps { get; set; } = 50;

    /// <summary>
    /// Whether the 15/50/85th percentiles of each normalization/activation input are sampled every <see
    /// cref="LogEverySteps"/> steps (the paper's figure 1b/1c probe; it costs a sort per probed layer). Default <see
    /// langword="false"/>.
    /// </summary>
    public bool RecordPercentiles { get; set; }

    /// <summary>Largest number of values of one layer's input used for its percentiles. Default 16384.</summary>
    public int PercentileSampleSize { get; set; } = 16384;

    /// <summary>Progress is reported every this many steps, and at the end of each epoch. Default 10.</summary>
    public int ProgressEverySteps { get; set; } = 10;

    /// <summary>
    /// Folder for checkpoints. After every epoch the trainer writes one file there with everything training needs to go
    /// on (weights and every buffer, optimizer state, schedule position, epoch and step, the early-stopping best state, the
    /// weight average, the bfloat16 decisions and the history; the random streams are functions of the seed and the epoch),
    /// and when training ends the model it returned. Each file is written atomically (a crash while writing leaves the
    /// previous checkpoint intact); the newest <see cref="CheckpointsToKeep"/> are kept. A run whose folder holds a
    /// checkpoint resumes from the newest one, or, when that run had finished, returns its model without training; a
    /// checkpoint of other settings or data is refused naming the first difference. With epoch or step budgets a resumed
    /// run ends with exactly the model of an uninterrupted one at the same thread count; under <see cref="TimeBudget"/>
    /// the schedule follows the training time, which the checkpoint carries over. Default <see langword="null"/>: no checkpoints.
    /// </summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Checkpoints kept in <see cref="CheckpointDirectory"/> (the newest); older ones are deleted. Default 2.</summary>
    public int CheckpointsToKeep { get; set; } = 2;

    /// <summary>
    /// Trains only the layers after the convolution stages (hidden layers and output): the convolutions' weights stay as
    /// they are and their normalization layers keep their running statistics (they run in eval mode). For fine-tuning a
    /// trained network on a new task. Default <see langword="false"/>.
    /// </summary>
    public bool FreezeConvolutionStages { get; set; }

    /// <summary>
    /// Binary classification: the weight of the positive class's loss against the negative class's (above 1 when positives
    /// are rare, for example the negatives' count over the positives'). Default 1.
    /// </summary>
    public double PositiveClassWeight { get; set; } = 1;

    /// <summary>Regression: the loss on the standardized residual. Default <see cref="RegressionLossKind.SquaredError"/>.</summary>
    public RegressionLossKind RegressionLoss { get; set; }

    /// <summary>Regression with <see cref="RegressionLossKind.Huber"/>: where the loss turns from squared to linear, in standard deviations of the label. Default 1.</summary>
    public double HuberDelta { get; set; } = 1;

    /// <summary>Random-crop padding of the natural-image recipe: 2 pixels.</summary>
    public const int NaturalImageCropPadding = 2;

    /// <summary>Label smoothing of the natural-image recipe: 0.1.</summary>
    public const double NaturalImageLabelSmoothing = 0.1;

    /// <summary>
    /// Turns on the natural-image recipe: random crops from a <see cref="NaturalImageCropPadding"/>-pixel zero padding,
    /// random horizontal flips and label smoothing <see cref="NaturalImageLabelSmoothing"/>. It suits photographs and
    /// clothing (Fashion-MNIST: about +1 point of test accuracy), whose mirror image and small shifts show the same class.
    /// Do not use it when left and right differ in meaning (digits, letters, arrows, charts, medical images with sides,
    /// sensor layouts) or the features are not an image: flips then destroy the classes, crops replace values by
    /// padding. Returns this instance.
    /// </summary>
    public TrainerOptions UseNaturalImageRecipe()
    {
        RandomCropPadding = NaturalImageCropPadding;
        HorizontalFlip = true;
        LabelSmoothing = NaturalImageLabelSmoothing;
        return this;
    }

    /// <summary>Checks every setting.</summary>
    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate() => Validate(field => "TrainerOptions." + field);

    /// <summary>Checks every setting; <paramref name="name"/> gives the name a message uses for a field.</summary>
    internal void Validate(Func<string, string> name)
    {
        var require = new Networks.Requirement(name);
        require.That(Epochs >= 1, nameof(Epochs), $"must be at least 1 (was {Epochs})");
        require.That(MaxSteps is null or >= 1, nameof(MaxSteps), $"must be at least 1 or null (was {MaxSteps})");
        require.That(TimeBudget is null || TimeBudget > TimeSpan.Zero, nameof(TimeBudget), $"must be positive or null (was {TimeBudget})");
        require.That(BatchSize >= 2, nameof(BatchSize), $"must be at least 2 (was {BatchSize})");
        require.That(Enum.IsDefined(Optimizer), nameof(Optimizer), $"unknown value {Optimizer}");
        require.That(Enum.IsDefined(Schedule), nameof(Schedule), $"unknown value {Schedule}");
        require.That(Enum.IsDefined(EarlyStoppingMetric), nameof(EarlyStoppingMetric), $"unknown value {EarlyStoppingMetric}");
        require.That(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), $"must be positive (was {LearningRate})");
        require.That(LearningRateMultiplier > 0 && double.IsFinite(LearningRateMultiplier), nameof(LearningRateMultiplier), $"must be positive (was {LearningRateMultiplier})");
        require.That(StepSizeEpochs >= 1, nameof(StepSizeEpochs), $"must be at least 1 (was {StepSizeEpochs})");
        require.That(StepGamma > 0 && StepGamma <= 1, nameof(StepGamma), $"must be in (0, 1] (was {StepGamma})");
        require.That(OneCycleWarmupFraction >= 0 && OneCycleWarmupFraction < 1, nameof(OneCycleWarmupFraction), $"must be in [0, 1) (was {OneCycleWarmupFraction})");
        require.That(OneCycleDivFactor >= 1, nameof(OneCycleDivFactor), $"must be at least 1 (was {OneCycleDivFactor})");
        require.That(FinalLearningRateFraction >= 0 && FinalLearningRateFraction <= 1, nameof(FinalLearningRateFraction), $"must be in [0, 1] (was {FinalLearningRateFraction})");
        require.That(Momentum >= 0 && Momentum < 1, nameof(Momentum), $"must be in [0, 1) (was {Momentum})");
        require.That(!Nesterov || Optimizer != OptimizerKind.Sgd || Momentum > 0, nameof(Nesterov), "requires Momentum > 0");
        require.That(Beta1 >= 0 && Beta1 < 1, nameof(Beta1), $"must be in [0, 1) (was {Beta1})");
        require.That(Beta2 >= 0 && Beta2 < 1, nameof(Beta2), $"must be in [0, 1) (was {Beta2})");
        require.That(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), $"must be non-negative (was {WeightDecay})");
        require.That(LabelSmoothing >= 0 && LabelSmoothing < 1, nameof(LabelSmoothing), $"must be in [0, 1) (was {LabelSmoothing})");
        require.That(Threads is null or >= 1, nameof(Threads), $"must be at least 1 or null (was {Threads})");
        require.That(RandomCropPadding >= 0, nameof(RandomCropPadding), $"must be non-negative (was {RandomCropPadding})");
        require.That(RandomErasingProbability is >= 0 and <= 1, nameof(RandomErasingProbability), $"must be in [0, 1] (was {RandomErasingProbability})");
        require.That(WeightAveragingDecay is null or (> 0 and < 1), nameof(WeightAveragingDecay), $"must be in (0, 1) or null (was {WeightAveragingDecay})");
        require.That(EarlyStoppingPatience is null or >= 1, nameof(EarlyStoppingPatience), $"must be at least 1 or null (was {EarlyStoppingPatience})");
        require.That(ValidationEverySteps is null or >= 1, nameof(ValidationEverySteps), $"must be at least 1 or null (was {ValidationEverySteps})");
        require.That(EvaluationBatchSize >= 1, nameof(EvaluationBatchSize), $"must be at least 1 (was {EvaluationBatchSize})");
        require.That(LogEverySteps >= 1, nameof(LogEverySteps), $"must be at least 1 (was {LogEverySteps})");
        require.That(PercentileSampleSize >= 1, nameof(PercentileSampleSize), $"must be at least 1 (was {PercentileSampleSize})");
        require.That(ProgressEverySteps >= 1, nameof(ProgressEverySteps), $"must be at least 1 (was {ProgressEverySteps})");
        require.That(CheckpointDirectory is null || CheckpointDirectory.Trim().Length > 0, nameof(CheckpointDirectory), "must be null or a folder");
        require.That(PositiveClassWeight > 0 && double.IsFinite(PositiveClassWeight), nameof(PositiveClassWeight), $"must be positive (was {PositiveClassWeight})");
        require.That(Enum.IsDefined(RegressionLoss), nameof(RegressionLoss), $"unknown value {RegressionLoss}");
        require.That(HuberDelta > 0 && double.IsFinite(HuberDelta), nameof(HuberDelta), $"must be positive (was {HuberDelta})");
        require.That(CheckpointsToKeep >= 1, nameof(CheckpointsToKeep), $"must be at least 1 (was {CheckpointsToKeep})");
    }

    /// <summary>A shallow copy (all settings are values).</summary>
    public TrainerOptions Clone() => (TrainerOptions)MemberwiseClone();

    /// <summary>
    /// The one rule that ties augmentation to the input shape: the random-crop padding must be smaller than the image
    /// (a crop padded by as much as the image is wide would hold only padding).
    /// </summary>
    /// <exception cref="ArgumentException">The padding does not fit; the message names the option and says to set 0 for non-image features.</exception>
    internal void CheckFits(int height, int width, Func<string, string> name)
    {
        if (RandomCropPadding != 0 && RandomCropPadding >= Math.Min(height, width))
        {
            throw new ArgumentException(
                $"{name(nameof(RandomCropPadding))} must be smaller than the image ({height}×{width}); set 0 when the features are not an image (was {RandomCropPadding}).",
                nameof(RandomCropPadding));
        }
    }
}

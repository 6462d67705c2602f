namespace Bn.MLNet.Training;

/// <summary>Settings of a <see cref="Trainer"/>. Defaults suit the default <see cref="Networks.NetworkArchitecture"/> on Fashion-MNIST.</summary>
public sealed class TrainerOptions
{
    /// <summary>Default of <see cref="Epochs"/>: 10.</summary>
    internal const int DefaultEpochs = 10;

    /// <summary>Default of <see cref="BatchSize"/>: 128.</summary>
    internal const int DefaultBatchSize = 128;

    /// <summary>Default of <see cref="Optimizer"/>: SGD.</summary>
    internal const OptimizerKind DefaultOptimizer = OptimizerKind.Sgd;

    /// <summary>Default of <see cref="LearningRate"/>: 0.1.</summary>
    internal const double DefaultLearningRate = 0.1;

    /// <summary>Default of <see cref="LearningRateMultiplier"/>: 1.</summary>
    internal const double DefaultLearningRateMultiplier = 1.0;

    /// <summary>Default of <see cref="Schedule"/>: one-cycle.</summary>
    internal const LearningRateScheduleKind DefaultSchedule = LearningRateScheduleKind.OneCycle;

    /// <summary>Default of <see cref="Momentum"/>: 0.9.</summary>
    internal const double DefaultMomentum = 0.9;

    /// <summary>Default of <see cref="Nesterov"/>: true.</summary>
    internal const bool DefaultNesterov = true;

    /// <summary>Default of <see cref="WeightDecay"/>: 5e-4.</summary>
    internal const double DefaultWeightDecay = 5e-4;

    /// <summary>Default of <see cref="RandomErasingProbability"/>: 0 (off).</summary>
    internal const double DefaultRandomErasingProbability = 0;

    /// <summary>Default of <see cref="WeightAveragingDecay"/>: null (off).</summary>
    internal static readonly double? DefaultWeightAveragingDecay = null;

    /// <summary>Number of passes over the training data (ignored when <see cref="MaxSteps"/> is set).</summary>
    public int Epochs { get; set; } = DefaultEpochs;

    /// <summary>
    /// Step budget. When set it takes precedence over <see cref="Epochs"/>: training runs exactly this many optimizer
    /// steps (unless stopped early), over as many epochs as needed, and the schedule spans these steps.
    /// </summary>
    public long? MaxSteps { get; set; }

    /// <summary>
    /// Wall-clock budget in seconds for the whole <see cref="Trainer.Train"/> call (statistics pass, training and validation).
    /// When set, cosine and one-cycle schedules advance by the larger of the step fraction and the time fraction, and
    /// training stops after the step during which the budget runs out, so the schedule still ends annealed. Runs limited by
    /// time are not reproducible (how far they get depends on the machine's speed). Null: no budget.
    /// </summary>
    public double? TimeBudgetSeconds { get; set; }

    /// <summary>Rows per training mini-batch (at least 2: a batch of one row cannot be batch-normalized).</summary>
    public int BatchSize { get; set; } = DefaultBatchSize;

    /// <summary>The optimizer.</summary>
    public OptimizerKind Optimizer { get; set; } = DefaultOptimizer;

    /// <summary>Base learning rate (the schedule's peak for one-cycle).</summary>
    public double LearningRate { get; set; } = DefaultLearningRate;

    /// <summary>Multiplies <see cref="LearningRate"/> (the paper's ×5 and ×30 runs with Batch Normalization).</summary>
    public double LearningRateMultiplier { get; set; } = DefaultLearningRateMultiplier;

    /// <summary>The learning rate schedule.</summary>
    public LearningRateScheduleKind Schedule { get; set; } = DefaultSchedule;

    /// <summary>For <see cref="LearningRateScheduleKind.Step"/>: epochs between decays.</summary>
    public int StepSizeEpochs { get; set; } = 10;

    /// <summary>For <see cref="LearningRateScheduleKind.Step"/>: factor applied at each decay.</summary>
    public double StepGamma { get; set; } = 0.1;

    /// <summary>For <see cref="LearningRateScheduleKind.OneCycle"/>: fraction of the steps spent warming up.</summary>
    public double OneCycleWarmupFraction { get; set; } = 0.25;

    /// <summary>For <see cref="LearningRateScheduleKind.OneCycle"/>: the first rate is base / this.</summary>
    public double OneCycleDivFactor { get; set; } = 25;

    /// <summary>For cosine and one-cycle: the last rate is base × this.</summary>
    public double FinalLearningRateFraction { get; set; } = 1e-4;

    /// <summary>SGD momentum (0 for plain SGD).</summary>
    public double Momentum { get; set; } = DefaultMomentum;

    /// <summary>Whether SGD uses Nesterov momentum (requires <see cref="Momentum"/> &gt; 0).</summary>
    public bool Nesterov { get; set; } = DefaultNesterov;

    /// <summary>Adam/AdamW β₁.</summary>
    public double Beta1 { get; set; } = 0.9;

    /// <summary>Adam/AdamW β₂.</summary>
    public double Beta2 { get; set; } = 0.999;

    /// <summary>Weight decay (L2 for SGD and Adam, decoupled for AdamW).</summary>
    public double WeightDecay { get; set; } = DefaultWeightDecay;

    /// <summary>Label smoothing of the cross-entropy loss, in [0, 1).</summary>
    public double LabelSmoothing { get; set; }

    /// <summary>
    /// Seed for everything the trainer draws: <c>torch.manual_seed</c> (dropout) at the start of training and the
    /// augmentation generator. Row shuffling is seeded by the <see cref="Data.IBatchSource"/> and the epoch number.
    /// </summary>
    public int Seed { get; set; } = 1;

    /// <summary>libtorch intra-op threads (<c>torch.set_num_threads</c>) during <see cref="Trainer.Train"/>, which puts the
    /// previous count back when it returns or throws; null uses every core.</summary>
    public int? Threads { get; set; }

    /// <summary>Whether rows are shuffled each epoch.</summary>
    public bool Shuffle { get; set; } = true;

    /// <summary>
    /// Whether the trainer computes the per-channel mean and standard deviation of the training inputs (one streaming
    /// pass before training) and stores them into the network. When false the network's current values are kept.
    /// </summary>
    public bool ComputeInputStandardization { get; set; } = true;

    /// <summary>Random-crop augmentation: pad each side by this many zero pixels and crop back at a random offset; 0 disables.</summary>
    public int RandomCropPadding { get; set; }

    /// <summary>Horizontal-flip augmentation with probability ½.</summary>
    public bool HorizontalFlip { get; set; }

    /// <summary>
    /// Random-erasing augmentation (Zhong et al. 2017), in [0, 1]: the probability that a training image gets a rectangle
    /// (area 2–25 % of the image, height/width ratio log-uniform in [0.3, 3.3], fully inside the image) set to the
    /// network's per-channel input mean, i.e. to 0 after the input standardization; applied after the crop and flip.
    /// Default 0: off.
    /// </summary>
    public double RandomErasingProbability { get; set; } = DefaultRandomErasingProbability;

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
    public double? WeightAveragingDecay { get; set; } = DefaultWeightAveragingDecay;

    /// <summary>
    /// With a validation source: stop after this many epochs without improvement of <see cref="EarlyStoppingMetric"/>;
    /// null never stops early.
    /// </summary>
    public int? EarlyStoppingPatience { get; set; }

    /// <summary>The metric that decides the best epoch.</summary>
    public EarlyStoppingMetric EarlyStoppingMetric { get; set; } = EarlyStoppingMetric.ValidationAccuracy;

    /// <summary>With a validation source: load the weights of the best epoch when training ends.</summary>
    public bool RestoreBestWeights { get; set; } = true;

    /// <summary>
    /// With a validation source: also evaluate it every this many steps, recorded in <see cref="TrainingHistory.Steps"/>
    /// (for accuracy-against-steps curves). Default null: only after each epoch.
    /// </summary>
    public int? ValidationEverySteps { get; set; }

    /// <summary>Rows per batch when evaluating the validation source.</summary>
    public int EvaluationBatchSize { get; set; } = 256;

    /// <summary>K: a step record (and, with <see cref="RecordPercentiles"/>, layer-input percentiles) every K steps.</summary>
    public int LogEverySteps { get; set; } = 50;

    /// <summary>Whether the 15/50/85th percentiles of each normalization/activation input are sampled every <see cref="LogEverySteps"/> steps.</summary>
    public bool RecordPercentiles { get; set; } = true;

    /// <summary>Largest number of values of one layer's input used for its percentiles.</summary>
    public int PercentileSampleSize { get; set; } = 16384;

    /// <summary>Progress is reported every this many steps, and at the end of each epoch.</summary>
    public int ProgressEverySteps { get; set; } = 10;

    /// <summary>Checks every setting.</summary>
    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        Require(Epochs >= 1, nameof(Epochs), $"must be at least 1 (was {Epochs})");
        Require(MaxSteps is null or >= 1, nameof(MaxSteps), $"must be at least 1 or null (was {MaxSteps})");
        Require(TimeBudgetSeconds is null || (TimeBudgetSeconds > 0 && double.IsFinite(TimeBudgetSeconds.Value)), nameof(TimeBudgetSeconds), $"must be positive or null (was {TimeBudgetSeconds})");
        Require(BatchSize >= 2, nameof(BatchSize), $"must be at least 2 (was {BatchSize})");
        Require(Enum.IsDefined(Optimizer), nameof(Optimizer), $"unknown value {Optimizer}");
        Require(Enum.IsDefined(Schedule), nameof(Schedule), $"unknown value {Schedule}");
        Require(Enum.IsDefined(EarlyStoppingMetric), nameof(EarlyStoppingMetric), $"unknown value {EarlyStoppingMetric}");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), $"must be positive (was {LearningRate})");
        Require(LearningRateMultiplier > 0 && double.IsFinite(LearningRateMultiplier), nameof(LearningRateMultiplier), $"must be positive (was {LearningRateMultiplier})");
        Require(StepSizeEpochs >= 1, nameof(StepSizeEpochs), $"must be at least 1 (was {StepSizeEpochs})");
        Require(StepGamma > 0 && StepGamma <= 1, nameof(StepGamma), $"must be in (0, 1] (was {StepGamma})");
        Require(OneCycleWarmupFraction >= 0 && OneCycleWarmupFraction < 1, nameof(OneCycleWarmupFraction), $"must be in [0, 1) (was {OneCycleWarmupFraction})");
        Require(OneCycleDivFactor >= 1, nameof(OneCycleDivFactor), $"must be at least 1 (was {OneCycleDivFactor})");
        Require(FinalLearningRateFraction >= 0 && FinalLearningRateFraction <= 1, nameof(FinalLearningRateFraction), $"must be in [0, 1] (was {FinalLearningRateFraction})");
        Require(Momentum >= 0 && Momentum < 1, nameof(Momentum), $"must be in [0, 1) (was {Momentum})");
        Require(!Nesterov || Optimizer != OptimizerKind.Sgd || Momentum > 0, nameof(Nesterov), "requires Momentum > 0");
        Require(Beta1 >= 0 && Beta1 < 1, nameof(Beta1), $"must be in [0, 1) (was {Beta1})");
        Require(Beta2 >= 0 && Beta2 < 1, nameof(Beta2), $"must be in [0, 1) (was {Beta2})");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), $"must be non-negative (was {WeightDecay})");
        Require(LabelSmoothing >= 0 && LabelSmoothing < 1, nameof(LabelSmoothing), $"must be in [0, 1) (was {LabelSmoothing})");
        Require(Threads is null or >= 1, nameof(Threads), $"must be at least 1 or null (was {Threads})");
        Require(RandomCropPadding >= 0, nameof(RandomCropPadding), $"must be non-negative (was {RandomCropPadding})");
        Require(RandomErasingProbability is >= 0 and <= 1, nameof(RandomErasingProbability), $"must be in [0, 1] (was {RandomErasingProbability})");
        Require(WeightAveragingDecay is null or (> 0 and < 1), nameof(WeightAveragingDecay), $"must be in (0, 1) or null (was {WeightAveragingDecay})");
        Require(EarlyStoppingPatience is null or >= 1, nameof(EarlyStoppingPatience), $"must be at least 1 or null (was {EarlyStoppingPatience})");
        Require(ValidationEverySteps is null or >= 1, nameof(ValidationEverySteps), $"must be at least 1 or null (was {ValidationEverySteps})");
        Require(EvaluationBatchSize >= 1, nameof(EvaluationBatchSize), $"must be at least 1 (was {EvaluationBatchSize})");
        Require(LogEverySteps >= 1, nameof(LogEverySteps), $"must be at least 1 (was {LogEverySteps})");
        Require(PercentileSampleSize >= 1, nameof(PercentileSampleSize), $"must be at least 1 (was {PercentileSampleSize})");
        Require(ProgressEverySteps >= 1, nameof(ProgressEverySteps), $"must be at least 1 (was {ProgressEverySteps})");
    }

    /// <summary>A shallow copy (all settings are values).</summary>
    public TrainerOptions Clone() => (TrainerOptions)MemberwiseClone();

    private static void Require(bool condition, string field, string message)
    {
        if (!condition)
        {
            throw new ArgumentException($"TrainerOptions.{field} {message}.", field);
        }
    }
}

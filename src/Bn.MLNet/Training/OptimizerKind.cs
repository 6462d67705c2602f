namespace Bn.MLNet.Training;

/// <summary>The optimizer a <see cref="Trainer"/> uses.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with <see cref="TrainerOptions.Momentum"/> (Nesterov when <see cref="TrainerOptions.Nesterov"/>); weight decay is an L2 term added to the gradient.</summary>
    Sgd = 0,

    /// <summary>Adam (Kingma &amp; Ba); weight decay is an L2 term added to the gradient.</summary>
    Adam = 1,

    /// <summary>AdamW (Loshchilov &amp; Hutter): Adam with decoupled weight decay.</summary>
    AdamW = 2,
}

/// <summary>How the learning rate changes over training. All schedules are evaluated per step.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>The base learning rate throughout.</summary>
    Constant = 0,

    /// <summary>Multiplied by <see cref="TrainerOptions.StepGamma"/> every <see cref="TrainerOptions.StepSizeEpochs"/> epochs.</summary>
    Step = 1,

    /// <summary>Cosine annealing from the base rate to base × <see cref="TrainerOptions.FinalLearningRateFraction"/> over all steps.</summary>
    Cosine = 2,

    /// <summary>
    /// One-cycle (Smith &amp; Topin), as PyTorch's OneCycleLR with cosine annealing: from base / <see cref="TrainerOptions.OneCycleDivFactor"/>
    /// up to the base rate over the first <see cref="TrainerOptions.OneCycleWarmupFraction"/> of the steps, then down to
    /// base × <see cref="TrainerOptions.FinalLearningRateFraction"/>.
    /// </summary>
    OneCycle = 3,
}

/// <summary>The validation metric early stopping and best-weight restoration watch.</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Higher validation accuracy is better.</summary>
    ValidationAccuracy = 0,

    /// <summary>Lower validation loss is better.</summary>
    ValidationLoss = 1,
}

namespace Bn.MLNet.Training;

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

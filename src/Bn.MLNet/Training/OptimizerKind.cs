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

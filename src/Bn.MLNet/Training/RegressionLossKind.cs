namespace Bn.MLNet.Training;

/// <summary>The loss of regression (<see cref="Networks.NetworkTask.Regression"/>), on the residual in units of the label's standard deviation.</summary>
public enum RegressionLossKind
{
    /// <summary>Squared error: the mean of the squared standardized residual. The default.</summary>
    SquaredError = 0,

    /// <summary>Huber loss: squared within <see cref="TrainerOptions.HuberDelta"/> of 0, linear beyond, so outliers pull less.</summary>
    Huber = 1,
}

namespace Bn.MLNet.Training;

/// <summary>The validation metric early stopping and best-weight restoration watch.</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Higher validation accuracy is better.</summary>
    ValidationAccuracy = 0,

    /// <summary>Lower validation loss is better.</summary>
    ValidationLoss = 1,
}

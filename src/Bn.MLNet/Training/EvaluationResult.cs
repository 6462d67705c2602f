namespace Bn.MLNet.Training;

/// <summary>Loss and accuracy of a classifier over a data source.</summary>
/// <param name="Loss">Mean cross-entropy.</param>
/// <param name="Accuracy">Fraction of rows whose arg-max logit is the label, in [0, 1].</param>
/// <param name="Count">Rows evaluated.</param>
public sealed record EvaluationResult(double Loss, double Accuracy, long Count);

using Bn.MLNet.Data;
using Microsoft.ML;

namespace Bn.MLNet;

/// <summary>The validation data of one Fit, and how messages name it.</summary>
/// <param name="Data">The rows (for a hold-out: the training data, of which <see cref="HoldOutFraction"/> is held out).</param>
/// <param name="Name">What messages call it, for example "the validation data (Fit's validationData)".</param>
/// <param name="ParamName">The argument or option it came from.</param>
/// <param name="HoldOutFraction">The share of the training rows held out for validation; 0 when the data is separate.</param>
internal sealed record ValidationInput(IDataView Data, string Name, string ParamName, double HoldOutFraction = 0)
{
    /// <summary>Whether the validation rows are held out of the training data.</summary>
    public bool IsHoldOut => HoldOutFraction > 0;

    /// <summary>
    /// The validation data of a Fit: the argument, <see cref="BatchNormCnnOptions.ValidationData"/>, or a hold-out of
    /// <see cref="BatchNormCnnOptions.ValidationFraction"/> of <paramref name="trainData"/>; null for none.
    /// </summary>
    /// <exception cref="ArgumentException">Two of them were given, or early stopping has no validation data.</exception>
    public static ValidationInput? Resolve(IDataView? argument, IDataView trainData, BatchNormCnnOptions o)
    {
        if (argument is not null && o.ValidationData is not null)
        {
            throw new ArgumentException(
                "Validation data was given twice: as Fit's validationData and as BatchNormCnnOptions.ValidationData. Give one of them.", "validationData");
        }

        if (o.ValidationFraction > 0 && (argument ?? o.ValidationData) is not null)
        {
            string given = argument is not null ? "Fit's validationData" : "BatchNormCnnOptions.ValidationData";
            throw new ArgumentException(
                $"BatchNormCnnOptions.ValidationFraction ({o.ValidationFraction}) holds validation rows out of the training data, and {given} gives " +
                "validation data as well. Use one of them: set ValidationFraction = 0 to validate on the given data.", nameof(BatchNormCnnOptions.ValidationFraction));
        }

        ValidationInput? validation = argument is not null
            ? new ValidationInput(argument, "the validation data (Fit's validationData)", "validationData")
            : o.ValidationData is not null
                ? new ValidationInput(o.ValidationData, "the validation data (BatchNormCnnOptions.ValidationData)", nameof(BatchNormCnnOptions.ValidationData))
                : o.ValidationFraction > 0
                    ? new ValidationInput(trainData, $"the validation rows held out of the training data (BatchNormCnnOptions.ValidationFraction = {o.ValidationFraction})",
                        nameof(BatchNormCnnOptions.ValidationFraction), o.ValidationFraction)
                    : null;
        if (validation is null && o.EarlyStoppingPatience is not null)
        {
            throw new ArgumentException(
                "BatchNormCnnOptions.EarlyStoppingPatience needs validation data: call Fit(trainData, validationData), set BatchNormCnnOptions.ValidationData, " +
                "or hold rows out with BatchNormCnnOptions.ValidationFraction.", nameof(BatchNormCnnOptions.EarlyStoppingPatience));
        }

        return validation;
    }

    /// <summary>The split a source of the training data reads (<paramref name="validationPart"/>: the held-out rows), or null without a hold-out.</summary>
    public HoldOutSplit? Split(int seed, bool validationPart) =>
        IsHoldOut ? new HoldOutSplit(HoldOutFraction, seed, validationPart) : null;
}

using Microsoft.ML;

namespace Bn.MLNet;

/// <summary>The validation data of one Fit, and how messages name it.</summary>
/// <param name="Data">The rows.</param>
/// <param name="Name">What messages call it, for example "the validation data (Fit's validationData)".</param>
/// <param name="ParamName">The argument or option it came from.</param>
internal sealed record ValidationInput(IDataView Data, string Name, string ParamName)
{
    /// <summary>
    /// The validation data of a Fit: the argument, or <see cref="BatchNormCnnOptions.ValidationData"/>; null for none.
    /// </summary>
    /// <exception cref="ArgumentException">Both were given, or early stopping has no validation data.</exception>
    public static ValidationInput? Resolve(IDataView? argument, BatchNormCnnOptions o)
    {
        if (argument is not null && o.ValidationData is not null)
        {
            throw new ArgumentException(
                "Validation data was given twice: as Fit's validationData and as BatchNormCnnOptions.ValidationData. Give one of them.", "validationData");
        }

        ValidationInput? validation = argument is not null
            ? new ValidationInput(argument, "the validation data (Fit's validationData)", "validationData")
            : o.ValidationData is not null
                ? new ValidationInput(o.ValidationData, "the validation data (BatchNormCnnOptions.ValidationData)", nameof(BatchNormCnnOptions.ValidationData))
                : null;
        if (validation is null && o.EarlyStoppingPatience is not null)
        {
            throw new ArgumentException(
                "BatchNormCnnOptions.EarlyStoppingPatience needs validation data: call Fit(trainData, validationData) or set BatchNormCnnOptions.ValidationData.",
                nameof(BatchNormCnnOptions.EarlyStoppingPatience));
        }

        return validation;
    }
}

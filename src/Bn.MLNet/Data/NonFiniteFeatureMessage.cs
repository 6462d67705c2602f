using System.Globalization;

namespace Bn.MLNet.Data;

/// <summary>The message for a NaN or infinite feature value, with ML.NET's ways to handle it.</summary>
internal static class NonFiniteFeatureMessage
{
    /// <summary>
    /// Names the column, the data, the row, the slot and the value. <paramref name="value"/> is the value as read (a
    /// Double may be finite yet outside Single's range).
    /// </summary>
    public static string Create(string column, string dataName, long row, int slot, double value)
    {
        string where = $"Feature column '{column}' of {dataName} holds {Describe(value)} at row {row} (0-based), slot {slot}; training needs finite values.";
        if (double.IsNaN(value))
        {
            return where + $" Replace missing values with mlContext.Transforms.ReplaceMissingValues(\"{column}\") or drop those rows with " +
                   $"mlContext.Data.FilterRowsByMissingValues(data, \"{column}\") before the estimator.";
        }

        return where + " ML.NET's ReplaceMissingValues and FilterRowsByMissingValues handle NaN only: drop or clip such values before the " +
               "estimator (for example mlContext.Data.FilterByCustomPredicate, or a CustomMapping that turns them into NaN for ReplaceMissingValues).";
    }

    private static string Describe(double value) =>
        double.IsNaN(value) ? "NaN"
        : double.IsPositiveInfinity(value) ? "+Infinity"
        : double.IsNegativeInfinity(value) ? "-Infinity"
        : $"{value.ToString("R", CultureInfo.InvariantCulture)} (outside the range of Single)";
}

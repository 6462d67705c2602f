namespace Bn.MLNet.Data;

/// <summary>
/// The one rule for the number of classes of a label key column: 2 to 1,000,000 (the estimator's rule; one class
/// cannot be learned, and the bound keeps the score vector and the saved key values reasonable).
/// </summary>
internal static class ClassCountRule
{
    public const int Min = 2;

    public const int Max = 1_000_000;

    /// <summary>"2 to 1,000,000", for messages.</summary>
    public const string RangeText = "2 to 1,000,000";

    public static bool IsValid(ulong count) => count >= Min && count <= Max;
}

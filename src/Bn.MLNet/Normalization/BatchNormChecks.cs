namespace Bn.MLNet.Normalization;

/// <summary>
/// The argument rules of Batch Normalization shared by the layers (<see cref="BatchNormBase"/>) and the network
/// description that configures them, so both accept exactly the same values.
/// </summary>
internal static class BatchNormChecks
{
    /// <summary>The range of a running-statistics momentum, as written in error messages.</summary>
    internal const string MomentumRange = "[0, 1]";

    /// <summary>
    /// Whether <paramref name="momentum"/> is a valid running-statistics momentum: new = (1 − m)·old + m·batch with m in
    /// [0, 1] (PyTorch's rule). 0 keeps the running statistics at their initial values (frozen), 1 keeps only the last batch.
    /// </summary>
    internal static bool IsValidMomentum(double momentum) => momentum >= 0 && momentum <= 1;
}

namespace Bn.MLNet.Data;

/// <summary>The shared, deterministic per-epoch random generator of the batch sources.</summary>
internal static class EpochShuffle
{
    /// <summary>A large prime multiplied by the epoch so that consecutive epochs get unrelated seeds.</summary>
    public const int EpochPrime = 1_000_003;

    /// <summary><c>new Random(seed + epoch × 1,000,003)</c> (wrapping on overflow); never unseeded.</summary>
    public static Random ForEpoch(int seed, int epoch) => new(unchecked(seed + (epoch * EpochPrime)));

    public static void CheckArguments(int batchSize, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
    }
}

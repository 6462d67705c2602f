namespace Bn.MLNet.Training;

/// <summary>
/// The trainer's random streams, one per epoch and purpose, each a function of the seed and the epoch alone: an epoch
/// draws the same augmentation and dropout whether the run started at epoch 0 or resumed from a checkpoint before it,
/// so a resumed run computes what the uninterrupted one computes. (Row order is the batch source's, seeded by the same
/// rule from its seed and the epoch.)
/// </summary>
internal static class EpochSeeds
{
    private const ulong AugmentationStream = 1;
    private const ulong DropoutStream = 2;

    /// <summary>The generator of epoch <paramref name="epoch"/>'s crops, flips and erasing.</summary>
    public static Random Augmentation(int seed, int epoch) => new((int)(Mix(seed, epoch, AugmentationStream) & int.MaxValue));

    /// <summary>The seed of epoch <paramref name="epoch"/>'s dropout generator.</summary>
    public static long Dropout(int seed, int epoch) => (long)(Mix(seed, epoch, DropoutStream) >> 1);

    private static ulong Mix(int seed, int epoch, ulong stream)
    {
        ulong z = ((ulong)(uint)seed << 32) ^ (uint)epoch ^ (stream * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

using Microsoft.ML.Data;

namespace Bn.MLNet.Data;

/// <summary>
/// A seeded hold-out split that streams: each row goes to the validation part when a hash of its row id and the seed,
/// read as a number in [0, 1), is below <see cref="Fraction"/>, and to the training part otherwise. The same row always
/// lands in the same part (for every epoch and every cursor order), and nothing is materialized.
/// </summary>
/// <param name="Fraction">The share of rows held out for validation, in (0, 1).</param>
/// <param name="Seed">Seed of the hash.</param>
/// <param name="Validation">Which part this source reads: true for the held-out rows, false for the training rows.</param>
internal sealed record HoldOutSplit(double Fraction, int Seed, bool Validation)
{
    /// <summary>Whether the row with <paramref name="id"/> belongs to the part this source reads.</summary>
    public bool Keeps(DataViewRowId id) => (Draw(id) < Fraction) == Validation;

    /// <summary>The row's number in [0, 1): SplitMix64 of its id's two halves and the seed, top 53 bits.</summary>
    private double Draw(DataViewRowId id)
    {
        ulong h = Mix(id.Low ^ Mix(id.High ^ Mix((ulong)(uint)Seed)));
        return (h >> 11) * (1.0 / (1UL << 53));
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

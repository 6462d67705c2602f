using Bn.MLNet.Data;

namespace Bn.MLNet.Training;

/// <summary>Computes the input standardization a <see cref="Networks.BatchNormCnnNetwork"/> applies.</summary>
internal static class InputStandardization
{
    /// <summary>
    /// One unshuffled pass over <paramref name="source"/> accumulating, in double precision, each channel's sum and sum of
    /// squares (rows are C×H×W with <paramref name="channels"/> channels). Only one batch is held at a time.
    /// </summary>
    /// <exception cref="ArgumentException">The row length is not a multiple of <paramref name="channels"/>.</exception>
    /// <exception cref="InvalidDataException">A value is NaN or infinite; the message names the row, the position and the value.</exception>
    public static InputStatistics Compute(BatchSource source, int channels, int batchSize = 1000, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        int length = source.FeatureLength;
        if (length % channels != 0)
        {
            throw new ArgumentException($"Rows of {length} values cannot hold {channels} channels.", nameof(channels));
        }

        int plane = length / channels;
        var sum = new double[channels];
        var sumSq = new double[channels];
        long rows = 0;
        foreach (MiniBatch batch in source.ReadEpoch(batchSize, 0, shuffle: false, cancellationToken))
        {
            float[] f = batch.Features;
            for (int r = 0; r < batch.Count; r++)
            {
                int rowStart = r * length;
                for (int c = 0; c < channels; c++)
                {
                    double s = 0, s2 = 0;
                    int start = rowStart + (c * plane);
                    for (int i = start; i < start + plane; i++)
                    {
                        double v = f[i];
                        s += v;
                        s2 += v * v;
                    }

                    if (!double.IsFinite(s))
                    {
                        ThrowNonFinite(f, start, plane, rows + r, rowStart);
                    }

                    sum[c] += s;
                    sumSq[c] += s2;
                }
            }

            rows += batch.Count;
        }

        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double n = Math.Max(1.0, (double)rows * plane);
            double m = sum[c] / n;
            double variance = Math.Max(0, (sumSq[c] / n) - (m * m));
            double sd = Math.Sqrt(variance);
            mean[c] = (float)m;
            std[c] = sd > 1e-6 ? (float)sd : 1f;
        }

        return new InputStatistics(mean, std, rows);
    }

    private static void ThrowNonFinite(float[] features, int start, int count, long row, int rowStart)
    {
        int i = Array.FindIndex(features, start, count, v => !float.IsFinite(v));
        throw new InvalidDataException(
            $"Training row {row} (0-based) holds {features[i].ToString(System.Globalization.CultureInfo.InvariantCulture)} at position {i - rowStart}; " +
            "the input standardization and training need finite values. Replace or drop such rows before training.");
    }
}

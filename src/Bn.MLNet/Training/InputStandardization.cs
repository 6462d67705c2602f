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
        double targetSum = 0, targetSumSq = 0;
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

            for (int r = 0; r < batch.Count; r++)
            {
                targetSum += batch.Targets[r];
                targetSumSq += (double)batch.Targets[r] * batch.Targets[r];
            }

            rows += batch.Count;
        }

        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
            (mean[c], std[c]) = MeanAndStd(sum[c], sumSq[c], (double)rows * plane);

        var (targetMean, targetStd) = MeanAndStd(targetSum, targetSumSq, rows);
        return new InputStatistics(mean, std, rows, targetMean, targetStd);
    }

    /// <summary>Mean and population deviation from a sum and a sum of squares over <paramref name="n"/> values (deviation 1 when it vanishes).</summary>
    private static (float Mean, float Std) MeanAndStd(double sum, double sumSq, double n)
    {
        n = Math.Max(1.0, n);
        double m = sum / n;
        double sd = Math.Sqrt(Math.Max(0, (sumSq / n) - (m * m)));
        return ((float)m, sd > 1e-6 ? (float)sd : 1f);
    }

    private static void ThrowNonFinite(float[] features, int start, int count, long row, int rowStart)
    {
        int i = Array.FindIndex(features, start, count, v => !float.IsFinite(v));
        throw new InvalidDataException(
            $"Training row {row} (0-based) holds {features[i].ToString(System.Globalization.CultureInfo.InvariantCulture)} at position {i - rowStart}; " +
            "the input standardization and training need finite values. Replace or drop such rows before training.");
    }
}

using Bn.MLNet.Data;

namespace Bn.MLNet.Tests.Training;

/// <summary>An in-memory <see cref="BatchSource"/> over arrays, shuffling with a seeded Fisher–Yates per epoch.</summary>
internal sealed class ArrayBatchSource : BatchSource
{
    private readonly float[] _features;
    private readonly int[] _labels;
    private readonly int _seed;

    public ArrayBatchSource(float[] features, int[] labels, int featureLength, int seed = 7)
    {
        _features = features;
        _labels = labels;
        FeatureLength = featureLength;
        _seed = seed;
    }

    public override int FeatureLength { get; }

    public override long? RowCount => Rows;

    internal override string Describe() => $"test arrays: {Rows} × {FeatureLength}, seed {_seed}";

    public int Rows => _labels.Length;

    /// <summary>Sizes of the batches handed out, over all epochs.</summary>
    public List<int> HandedOut { get; } = new();

    internal override IEnumerable<MiniBatch> ReadEpoch(int batchSize, int epoch, bool shuffle, CancellationToken cancellationToken = default)
    {
        int[] order = Enumerable.Range(0, Rows).ToArray();
        if (shuffle)
        {
            var random = new Random(HashCode.Combine(_seed, epoch));
            random.Shuffle(order);
        }

        var batch = new MiniBatch(batchSize, FeatureLength);
        for (int start = 0; start < Rows; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(batchSize, Rows - start);
            for (int i = 0; i < n; i++)
            {
                int row = order[start + i];
                Array.Copy(_features, row * FeatureLength, batch.Features, i * FeatureLength, FeatureLength);
                batch.Labels[i] = _labels[row];
            }

            batch.Count = n;
            HandedOut.Add(n);
            yield return batch;
        }
    }
}

/// <summary>Small synthetic image classification data: class k has a bright 4×4 square at a class-specific place, plus noise.</summary>
internal static class SyntheticData
{
    public static ArrayBatchSource Images(int rows, int seed, int classes = 10, int size = 12, int channels = 1, bool shuffleLabels = false, int sourceSeed = 7)
    {
        var random = new Random(seed);
        int plane = size * size;
        var features = new float[rows * channels * plane];
        var labels = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            int label = r % classes;
            labels[r] = shuffleLabels ? random.Next(classes) : label;
            int cy = 1 + (label * 3 % (size - 5)), cx = 1 + (label * 5 % (size - 5));
            for (int c = 0; c < channels; c++)
            {
                for (int i = 0; i < plane; i++)
                {
                    int y = i / size, x = i % size;
                    bool on = y >= cy && y < cy + 4 && x >= cx && x < cx + 4;
                    features[(r * channels * plane) + (c * plane) + i] = (on ? 200f : 20f) + (float)(random.NextDouble() * 60);
                }
            }
        }

        return new ArrayBatchSource(features, labels, channels * plane, sourceSeed);
    }
}

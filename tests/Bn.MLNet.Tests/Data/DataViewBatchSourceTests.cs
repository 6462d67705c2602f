using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.Data;

public sealed class DataViewBatchSourceTests
{
    private readonly MLContext _ml = new(seed: 0);

    [Theory]
    [InlineData(true, 100)]
    [InlineData(true, 5000)]
    [InlineData(false, 100)]
    public void EachEpochCoversEveryRowExactlyOnce(bool shuffle, int buffer)
    {
        var view = _ml.Data.LoadFromEnumerable(FloatRows(1000));
        var source = new DataViewBatchSource(view, "Features", "Label", 3, buffer, seed: 4);
        Assert.Equal(5, source.ClassCount);
        Assert.Null(source.LabelKeyValues);

        var batches = new List<int>();
        var ids = new List<int>();
        foreach (var batch in source.ReadEpoch(32, epoch: 0, shuffle))
        {
            batches.Add(batch.Count);
            for (int i = 0; i < batch.Count; i++)
            {
                int id = (int)batch.Features[i * 3];
                ids.Add(id);
                Assert.Equal(id % 5, batch.Labels[i]);
                Assert.Equal(id * 0.5f, batch.Features[(i * 3) + 1]);
                Assert.Equal(-id, batch.Features[(i * 3) + 2]);
            }
        }

        Assert.Equal(Enumerable.Repeat(32, 31).Append(8), batches);
        Assert.Equal(Enumerable.Range(0, 1000), ids.Order());
        if (shuffle)
        {
            Assert.NotEqual(Enumerable.Range(0, 1000), ids);
        }
        else
        {
            Assert.Equal(Enumerable.Range(0, 1000), ids);
        }
    }

    [Fact]
    public void SameSeedSameOrder_DifferentEpochOrSeedDifferentOrder()
    {
        var view = _ml.Data.LoadFromEnumerable(FloatRows(600));
        List<int> Order(int seed, int epoch, int buffer = 64) =>
            Ids(new DataViewBatchSource(view, "Features", "Label", 3, buffer, seed).ReadEpoch(50, epoch, shuffle: true), 3);

        var a = Order(seed: 7, epoch: 3);
        Assert.Equal(a, Order(seed: 7, epoch: 3));
        Assert.NotEqual(a, Order(seed: 7, epoch: 4));
        Assert.NotEqual(a, Order(seed: 8, epoch: 3));
        Assert.Equal(Enumerable.Range(0, 600), Order(seed: 7, epoch: 4).Order());

        // An in-memory view that can shuffle is also deterministic per seed and epoch.
        var images = new LabeledImageDataView(SyntheticImages(300), ["a", "b", "c"]);
        List<int> ImageOrder(int seed, int epoch) =>
            Ids(new DataViewBatchSource(images, "Features", "Label", 4, 16, seed).ReadEpoch(32, epoch, shuffle: true), 4, 256);
        var b = ImageOrder(1, 0);
        Assert.Equal(b, ImageOrder(1, 0));
        Assert.NotEqual(b, ImageOrder(1, 1));
        Assert.Equal(Enumerable.Range(0, 300), b.Order());
    }

    [Fact]
    public void NeverHoldsMoreThanTheShuffleBufferPlusOneBatch()
    {
        const int rows = 2000, buffer = 100, batchSize = 25;
        var counter = new CountingRows(rows);
        var view = _ml.Data.LoadFromEnumerable(counter);
        Assert.False(view.CanShuffle);
        Assert.Null(view.GetRowCount());
        var source = new DataViewBatchSource(view, "Features", "Label", 3, buffer, seed: 1);

        int emitted = 0, maxHeld = 0, firstPull = -1;
        var ids = new List<int>();
        foreach (var batch in source.ReadEpoch(batchSize, 0, shuffle: true))
        {
            emitted += batch.Count;
            if (firstPull < 0)
            {
                firstPull = counter.Pulled;
            }

            // Rows taken from the cursor but not yet handed out live in the buffer: never more than its size.
            maxHeld = Math.Max(maxHeld, counter.Pulled - emitted);
            ids.AddRange(Enumerable.Range(0, batch.Count).Select(i => (int)batch.Features[i * 3]));
        }

        Assert.InRange(maxHeld, 1, buffer);
        Assert.InRange(firstPull, buffer, buffer + batchSize + 1); // streamed, not read up front
        Assert.Equal(rows, emitted);
        Assert.Equal(Enumerable.Range(0, rows), ids.Order());
        Assert.NotEqual(Enumerable.Range(0, rows), ids);
    }

    [Fact]
    public void ByteAndDoubleVectorsAreConvertedToFloat()
    {
        var bytes = _ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new ByteRow
        {
            Label = (uint)(i % 3),
            Features = [(byte)i, (byte)(255 - i), 7],
        }));
        var fromBytes = Rows(new DataViewBatchSource(bytes, "Features", "Label", 3, seed: 2).ReadEpoch(16, 0, shuffle: true), 3);
        Assert.Equal(40, fromBytes.Count);
        Assert.All(fromBytes, r =>
        {
            int i = (int)r.Features[0];
            Assert.Equal(new float[] { i, 255 - i, 7 }, r.Features);
            Assert.Equal(i % 3, r.Label);
        });

        var doubles = _ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new DoubleRow
        {
            Label = (uint)(i % 3),
            Features = [i, i + 0.25, -1e3 * i],
        }));
        var fromDoubles = Rows(new DataViewBatchSource(doubles, "Features", "Label", 3).ReadEpoch(7, 0, shuffle: false), 3);
        Assert.Equal(Enumerable.Range(0, 40), fromDoubles.Select(r => (int)r.Features[0]));
        Assert.All(fromDoubles, r => Assert.Equal(new float[] { r.Features[0], r.Features[0] + 0.25f, -1e3f * r.Features[0] }, r.Features));
    }

    [Fact]
    public void WrongLengthNonKeyLabelAndMissingColumnsAreRefusedClearly()
    {
        var floats = _ml.Data.LoadFromEnumerable(FloatRows(10));
        var wrongLength = Assert.Throws<ArgumentException>(() => new DataViewBatchSource(floats, "Features", "Label", 4));
        Assert.Contains("'Features'", wrongLength.Message);
        Assert.Contains("length 3", wrongLength.Message);
        Assert.Contains("4", wrongLength.Message);

        var variable = _ml.Data.LoadFromEnumerable(new[] { new VariableRow { Label = 0, Features = [1, 2, 3] } });
        var unknown = Assert.Throws<ArgumentException>(() => new DataViewBatchSource(variable, "Features", "Label", 3));
        Assert.Contains("unknown", unknown.Message);

        var plain = _ml.Data.LoadFromEnumerable(new[] { new PlainLabelRow { Label = 0, Features = [1, 2, 3] } });
        var notKey = Assert.Throws<ArgumentException>(() => new DataViewBatchSource(plain, "Features", "Label", 3));
        Assert.Contains("'Label'", notKey.Message);
        Assert.Contains("UInt32", notKey.Message);
        Assert.Contains("key type", notKey.Message);

        var labelAsFeatures = Assert.Throws<ArgumentException>(() => new DataViewBatchSource(plain, "Label", "Label", 3));
        Assert.Contains("'Label'", labelAsFeatures.Message);
        Assert.Contains("vector", labelAsFeatures.Message);

        var missing = Assert.Throws<ArgumentException>(() => new DataViewBatchSource(floats, "Pixels", "Label", 3));
        Assert.Contains("'Pixels'", missing.Message);
        Assert.Contains("'Features'", missing.Message); // lists what exists

        var strings = _ml.Data.LoadFromEnumerable(new[] { new StringVectorRow { Label = 0, Features = ["a", "b", "c"] } });
        var text = Assert.Throws<ArgumentException>(() => new DataViewBatchSource(strings, "Features", "Label", 3));
        Assert.Contains("Single, Byte or Double", text.Message);

        Assert.Throws<ArgumentOutOfRangeException>(() => new DataViewBatchSource(floats, "Features", "Label", 3, shuffleBufferSize: 0));
        var source = new DataViewBatchSource(floats, "Features", "Label", 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => source.ReadEpoch(0, 0, true));
    }

    [Fact]
    public void MissingKeyValueNamesColumnAndRow()
    {
        var rows = FloatRows(10).ToArray();
        rows[6].Label = 99; // LoadFromEnumerable exposes an out-of-range key member as the missing key value 0
        var view = _ml.Data.LoadFromEnumerable(rows);
        var source = new DataViewBatchSource(view, "Features", "Label", 3);
        var e = Assert.Throws<InvalidDataException>(() => source.ReadEpoch(4, 0, shuffle: false).ToList());
        Assert.Contains("'Label'", e.Message);
        Assert.Contains("row 6", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void CancellationThrowsBetweenBatches()
    {
        var view = _ml.Data.LoadFromEnumerable(FloatRows(500));
        var source = new DataViewBatchSource(view, "Features", "Label", 3, 64, seed: 1);
        using var cts = new CancellationTokenSource();
        int seen = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var batch in source.ReadEpoch(10, 0, shuffle: true, cts.Token))
            {
                seen++;
                cts.Cancel();
            }
        });
        Assert.Equal(1, seen);

        Assert.ThrowsAny<OperationCanceledException>(() => source.ReadEpoch(10, 0, false, cts.Token).First());
    }

    [Fact]
    public void FashionMnistViewGivesClassCountAndNames()
    {
        var view = FashionMnist.LoadTrain(_ml, limit: 64);
        var source = new DataViewBatchSource(view, "Features", "Label", FashionMnist.FeatureLength, seed: 3);
        Assert.Equal(10, source.ClassCount);
        Assert.Equal(FashionMnist.ClassNames, source.LabelKeyValues);
        var raw = FashionMnist.Read(null, FashionMnistSplit.Train, limit: 64);
        var batch = source.ReadEpoch(64, 0, shuffle: false).Single(); // Single() resumes the iterator: the batch must stay intact
        Assert.Equal(64, batch.Count);
        Assert.Equal(raw.Labels.Select(l => (int)l), batch.Labels);
        Assert.Equal(raw.Images.Pixels.Select(p => (float)p), batch.Features);
    }

    private static IEnumerable<FloatRow> FloatRows(int count) =>
        Enumerable.Range(0, count).Select(i => new FloatRow { Label = (uint)(i % 5), Features = [i, i * 0.5f, -i] });

    /// <summary>Images whose first two pixels encode the row id (id = p0 + 256 × p1), 2×2 pixels.</summary>
    private static IdxLabeledImages SyntheticImages(int count)
    {
        var pixels = new byte[count * 4];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            pixels[i * 4] = (byte)(i % 256);
            pixels[(i * 4) + 1] = (byte)(i / 256);
            labels[i] = (byte)(i % 3);
        }

        return new IdxLabeledImages(new IdxImages(count, 2, 2, pixels), labels);
    }

    private static List<int> Ids(IEnumerable<MiniBatch> epoch, int featureLength, int highMultiplier = 0)
    {
        var ids = new List<int>();
        foreach (var batch in epoch)
        {
            for (int i = 0; i < batch.Count; i++)
            {
                ids.Add((int)batch.Features[i * featureLength] + (highMultiplier * (int)batch.Features[(i * featureLength) + 1]));
            }
        }

        return ids;
    }

    private static List<(float[] Features, int Label)> Rows(IEnumerable<MiniBatch> epoch, int featureLength)
    {
        var rows = new List<(float[], int)>();
        foreach (var batch in epoch)
        {
            for (int i = 0; i < batch.Count; i++)
            {
                rows.Add((batch.Features.AsSpan(i * featureLength, featureLength).ToArray(), batch.Labels[i]));
            }
        }

        return rows;
    }

    /// <summary>A lazy row sequence that counts how many rows the cursor has pulled.</summary>
    private sealed class CountingRows(int count) : IEnumerable<FloatRow>
    {
        public int Pulled { get; private set; }

        public IEnumerator<FloatRow> GetEnumerator()
        {
            for (int i = 0; i < count; i++)
            {
                Pulled++;
                yield return new FloatRow { Label = (uint)(i % 5), Features = [i, i * 0.5f, -i] };
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Note: ML.NET's LoadFromEnumerable treats a [KeyType] member as a 0-based index and exposes key value index + 1.</summary>
    private sealed class FloatRow
    {
        [KeyType(5)]
        public uint Label { get; set; }

        [VectorType(3)]
        public float[] Features { get; set; } = [];
    }

    private sealed class ByteRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(3)]
        public byte[] Features { get; set; } = [];
    }

    private sealed class DoubleRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(3)]
        public double[] Features { get; set; } = [];
    }

    private sealed class VariableRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        public float[] Features { get; set; } = [];
    }

    private sealed class PlainLabelRow
    {
        public uint Label { get; set; }

        [VectorType(3)]
        public float[] Features { get; set; } = [];
    }

    private sealed class StringVectorRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(3)]
        public string[] Features { get; set; } = [];
    }
}

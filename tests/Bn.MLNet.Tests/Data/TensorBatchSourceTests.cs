using Bn.MLNet.Data;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Data;

public sealed class TensorBatchSourceTests
{
    [Fact]
    public void FloatRowsCoveredOncePerEpochWithSeededOrder()
    {
        const int n = 250, f = 2;
        var features = new float[n * f];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            features[i * f] = i;
            features[(i * f) + 1] = i * 10;
            labels[i] = i % 4;
        }

        var source = new TensorBatchSource(features, labels, f, seed: 5);
        Assert.Equal(4, source.ClassCount);
        Assert.Equal(n, source.Count);

        List<int> Order(TensorBatchSource s, int epoch, bool shuffle = true)
        {
            var ids = new List<int>();
            foreach (var batch in s.ReadEpoch(64, epoch, shuffle))
            {
                Assert.InRange(batch.Count, 1, 64);
                for (int i = 0; i < batch.Count; i++)
                {
                    int id = (int)batch.Features[i * f];
                    Assert.Equal(id * 10, batch.Features[(i * f) + 1]);
                    Assert.Equal(id % 4, batch.Labels[i]);
                    ids.Add(id);
                }
            }

            return ids;
        }

        var epoch0 = Order(source, 0);
        Assert.Equal(Enumerable.Range(0, n), epoch0.Order());
        Assert.NotEqual(Enumerable.Range(0, n), epoch0);
        Assert.Equal(epoch0, Order(new TensorBatchSource(features, labels, f, seed: 5), 0));
        Assert.NotEqual(epoch0, Order(source, 1));
        Assert.NotEqual(epoch0, Order(new TensorBatchSource(features, labels, f, seed: 6), 0));
        Assert.Equal(Enumerable.Range(0, n), Order(source, 0, shuffle: false));
        Assert.Equal([64, 64, 64, 58], source.ReadEpoch(64, 0, true).Select(b => b.Count).ToArray());
    }

    [Fact]
    public void BytesAndTensorsGiveTheSameRows()
    {
        var pixels = IdxTestFiles.RandomBytes(12 * 4, seed: 9);
        var labels = IdxTestFiles.RandomBytes(12, seed: 10, maxExclusive: 3);
        var fromBytes = new TensorBatchSource(pixels, labels, 4, classCount: 3);
        using var featureTensor = tensor(pixels.Select(p => (float)p).ToArray(), [12, 1, 2, 2]);
        using var labelTensor = tensor(labels.Select(l => (long)l).ToArray());
        var fromTensor = new TensorBatchSource(featureTensor, labelTensor, classCount: 3);
        Assert.Equal(4, fromTensor.FeatureLength);

        foreach (var source in new BatchSource[] { fromBytes, fromTensor })
        {
            var batch = source.ReadEpoch(100, 0, shuffle: false).Single();
            Assert.Equal(12, batch.Count);
            Assert.Equal(pixels.Select(p => (float)p), batch.Features.Take(48));
            Assert.Equal(labels.Select(l => (int)l), batch.Labels.Take(12));
        }
    }

    [Fact]
    public void BadShapesLabelsAndCancellationAreReported()
    {
        var e = Assert.Throws<ArgumentException>(() => new TensorBatchSource(new float[10], new int[3], 4));
        Assert.Contains("10 values", e.Message);
        Assert.Contains("12", e.Message);

        var e2 = Assert.Throws<ArgumentException>(() => new TensorBatchSource(new float[6], [0, 5, 1], 2, classCount: 3));
        Assert.Contains("row 1", e2.Message);
        Assert.Contains("5", e2.Message);

        using var features = zeros(4, 3);
        using var wrongLabels = zeros(5, dtype: ScalarType.Int64);
        Assert.Throws<ArgumentException>(() => new TensorBatchSource(features, wrongLabels));
        using var floatLabels = zeros(4);
        var e3 = Assert.Throws<ArgumentException>(() => new TensorBatchSource(features, floatLabels));
        Assert.Contains("integer", e3.Message);

        var source = new TensorBatchSource(new float[40], new int[20], 2);
        using var cts = new CancellationTokenSource();
        int seen = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var batch in source.ReadEpoch(5, 0, true, cts.Token))
            {
                seen++;
                cts.Cancel();
            }
        });
        Assert.Equal(1, seen);
    }
}

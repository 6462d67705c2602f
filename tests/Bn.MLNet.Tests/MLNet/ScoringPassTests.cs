using System.Threading;
using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>What one scoring pass reads from its input, and how features of every item type arrive.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class ScoringPassTests
{
    public sealed class PixelRow
    {
        public string Class { get; set; } = string.Empty;

        [VectorType(784)]
        public float[] Pixels { get; set; } = [];
    }

    public sealed class PixelsIn
    {
        [VectorType(784)]
        public float[] Pixels { get; set; } = [];
    }

    public sealed class FeaturesOut
    {
        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    public sealed class ScoredRow
    {
        public string Class { get; set; } = string.Empty;

        [VectorType(784)]
        public float[] Features { get; set; } = [];

        [VectorType(10)]
        public float[] Score { get; set; } = [];
    }

    public sealed class ByteImageRow
    {
        public string Label { get; set; } = string.Empty;

        [VectorType(784)]
        public byte[] Features { get; set; } = [];
    }

    [Fact]
    public void UpstreamColumnsAreComputedOncePerScoringPass()
    {
        var ml = new MLContext(seed: 1);
        int calls = 0;
        var mapping = ml.Transforms.CustomMapping<PixelsIn, FeaturesOut>((input, output) =>
        {
            Interlocked.Increment(ref calls);
            output.Features = input.Pixels;
        }, contractName: null);
        var train = ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 200).Select(r => new PixelRow { Class = r.Label, Pixels = r.Features }));
        var model = ml.Transforms.Conversion.MapValueToKey("Label", "Class").Append(mapping).Append(ml.Transforms.BatchNormCnn(SmallOptions())).Fit(train);

        // 150 rows with an inference batch of 64: three read-ahead batches, the last one partial.
        List<ImageRow> rows = Rows(FashionMnistSplit.Test, 150);
        var test = ml.Data.LoadFromEnumerable(rows.Select(r => new PixelRow { Class = r.Label, Pixels = r.Features }));
        Volatile.Write(ref calls, 0);
        float[][] scoresAlone = model.Transform(test).GetColumn<float[]>("Score").ToArray();
        Assert.Equal(rows.Count, Volatile.Read(ref calls));

        Volatile.Write(ref calls, 0);
        List<ScoredRow> scored = ml.Data.CreateEnumerable<ScoredRow>(model.Transform(test), reuseRowObject: false).ToList();
        Assert.Equal(rows.Count, Volatile.Read(ref calls));

        // The pass-through columns read ahead with the batch stay with their own row and its score.
        Assert.Equal(rows.Count, scored.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(rows[i].Label, scored[i].Class);
            Assert.Equal(rows[i].Features, scored[i].Features);
            Assert.Equal(scoresAlone[i], scored[i].Score);
        }
    }

    [Fact]
    public void ByteFeaturesTrainAndScoreLikeTheSameSingleFeatures()
    {
        List<ImageRow> trainRows = Rows(FashionMnistSplit.Train, 300);
        List<ImageRow> testRows = Rows(FashionMnistSplit.Test, 40);
        Assert.All(trainRows, r => Assert.All(r.Features, v => Assert.True(v == MathF.Round(v) && v is >= 0 and <= 255)));

        float[][] singleScores = TrainAndScore(trainRows, testRows, bytes: false);
        float[][] byteScores = TrainAndScore(trainRows, testRows, bytes: true);

        // Bytes widen exactly to the same floats, so training and scoring are the same computation.
        AssertClose(singleScores, byteScores, 1e-6f);
        Assert.All(byteScores, s => Assert.Equal(1.0, s.Sum(), 3));
    }

    private static float[][] TrainAndScore(List<ImageRow> trainRows, List<ImageRow> testRows, bool bytes)
    {
        var ml = new MLContext(seed: 1);
        IDataView Load(List<ImageRow> rows) => bytes
            ? ml.Data.LoadFromEnumerable(rows.Select(r => new ByteImageRow { Label = r.Label, Features = r.Features.Select(v => (byte)v).ToArray() }))
            : ml.Data.LoadFromEnumerable(rows);
        IDataView train = Load(trainRows);
        var featureType = (VectorDataViewType)train.Schema["Features"].Type;
        Assert.Equal(bytes ? NumberDataViewType.Byte : NumberDataViewType.Single, featureType.ItemType);
        BatchNormCnnOptions options = SmallOptions();
        options.Threads = 1;
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.BatchNormCnn(options)).Fit(train);
        return Scores(model, Load(testRows));
    }
}

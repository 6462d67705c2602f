using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>A Fashion-MNIST row with a text label, as an application would have it.</summary>
public sealed class ImageRow
{
    public string Label { get; set; } = string.Empty;

    [VectorType(784)]
    public float[] Features { get; set; } = [];
}

/// <summary>What a prediction engine returns.</summary>
public sealed class ImagePrediction
{
    [VectorType(10)]
    public float[] Score { get; set; } = [];

    public string PredictedLabel { get; set; } = string.Empty;
}

/// <summary>Small slices of Fashion-MNIST and one small pipeline trained once per test process.</summary>
internal static class MLNetTestData
{
    private static readonly Lazy<TrainedPipeline> Shared = new(() => TrainPipeline(BatchNormInferenceMode.RunningAverages), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The shared pipeline (600 rows, 1 epoch, small network), trained on first use.</summary>
    public static TrainedPipeline Pipeline => Shared.Value;

    public static List<ImageRow> Rows(FashionMnistSplit split, int limit, int skip = 0)
    {
        var data = FashionMnist.Read(null, split, limit + skip);
        var rows = new List<ImageRow>(limit);
        for (int i = skip; i < data.Count; i++)
        {
            var image = data.Images.GetImage(i);
            var features = new float[image.Length];
            for (int j = 0; j < image.Length; j++)
                features[j] = image[j];
            rows.Add(new ImageRow { Label = FashionMnist.ClassNames[data.Labels[i]], Features = features });
        }

        return rows;
    }

    /// <summary>A small, fast network and training run.</summary>
    public static BatchNormCnnOptions SmallOptions(BatchNormInferenceMode mode = BatchNormInferenceMode.RunningAverages) => new()
    {
        ConvStages = [new ConvStage(8, 1, true)],
        HiddenLayers = [32],
        Dropout = 0.1,
        Epochs = 1,
        BatchSize = 50,
        LearningRate = 0.05,
        Seed = 7,
        InferenceMode = mode,
        InferenceBatchSize = 64,
    };

    public static TrainedPipeline TrainPipeline(BatchNormInferenceMode mode, Action<BatchNormCnnOptions>? configure = null)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 600));
        var test = ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Test, 200));
        var options = SmallOptions(mode);
        configure?.Invoke(options);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.BatchNormCnn(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        string[] outputs = options.EmbeddingColumnName is { } embedding ? ["Score", "PredictedLabel", embedding] : ["Score", "PredictedLabel"];
        EstimatorWorkout.Run(ml, pipeline, model, train, ml.Data.TakeRows(test, 24), "Features", outputs);
        return new TrainedPipeline(ml, train, test, model);
    }

    /// <summary>Scores of every row of <paramref name="data"/> through <paramref name="model"/>'s Transform.</summary>
    public static float[][] Scores(ITransformer model, IDataView data) =>
        model.Transform(data).GetColumn<float[]>("Score").ToArray();

    public static void AssertClose(float[][] expected, float[][] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Length, actual[i].Length);
            for (int j = 0; j < expected[i].Length; j++)
            {
                float d = Math.Abs(expected[i][j] - actual[i][j]);
                Assert.True(d <= tolerance, $"row {i} class {j}: {expected[i][j]} vs {actual[i][j]} (|Δ| = {d} > {tolerance})");
            }
        }
    }

    public static BatchNormCnnTransformer BnTransformer(ITransformer model) =>
        ((IEnumerable<ITransformer>)model).OfType<BatchNormCnnTransformer>().Single();

    /// <summary>A temporary folder deleted on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public TempDir() => Path = Directory.CreateTempSubdirectory("bnmlnet-test-").FullName;

        public string Path { get; }

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            if (Directory.Exists(Path))
                Directory.Delete(Path, recursive: true);
        }
    }

    /// <summary>Index of the first largest value.</summary>
    public static int ArgMax(float[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
            {
                best = i;
            }
        }

        return best;
    }
}

internal sealed record TrainedPipeline(MLContext Context, IDataView Train, IDataView Test, ITransformer Model);

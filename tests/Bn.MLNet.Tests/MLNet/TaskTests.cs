using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>
/// Binary classification and regression with the same network body: the trainers catalogs, ML.NET's evaluators, the
/// estimator workout (promised schema, invalid input, save/load), the prediction engine, ONNX export, tabular input
/// standardized per feature, and older model formats.
/// </summary>
[Collection(TorchGlobalStateCollection.Name)]
public class TaskTests
{
    /// <summary>Fashion-MNIST rows with a Boolean label: footwear (sandal, sneaker, ankle boot) or not.</summary>
    private static (MLContext Ml, IDataView Train, IDataView Test) Footwear()
    {
        var ml = new MLContext(seed: 1);
        static List<BinaryRow> Rows(Bn.MLNet.Samples.Datasets.FashionMnistSplit split, int n) => MLNetTestData.Rows(split, n)
            .Select(r => new BinaryRow { Features = r.Features, Label = r.Label is "Sandal" or "Sneaker" or "Ankle boot" }).ToList();
        return (ml, ml.Data.LoadFromEnumerable(Rows(Bn.MLNet.Samples.Datasets.FashionMnistSplit.Train, 600)),
            ml.Data.LoadFromEnumerable(Rows(Bn.MLNet.Samples.Datasets.FashionMnistSplit.Test, 200)));
    }

    /// <summary>A tabular regression: 12 features of very different scales, the label a known function of them plus noise, in the thousands.</summary>
    private static (MLContext Ml, IDataView Train, IDataView Test) Tabular()
    {
        var ml = new MLContext(seed: 1);
        List<TabularRow> Rows(int n, int seed)
        {
            var random = new Random(seed);
            return Enumerable.Range(0, n).Select(_ =>
            {
                var f = Enumerable.Range(0, 12).Select(j => (float)(random.NextDouble() * Math.Pow(10, (j % 6) - 2))).ToArray();
                float y = 3000 + (2000 * f[0] / 0.01f) - (1500 * f[5] / 1000f) + (800 * f[3] / 10f) + (float)(random.NextDouble() * 50);
                return new TabularRow { Features = f, Label = y };
            }).ToList();
        }

        return (ml, ml.Data.LoadFromEnumerable(Rows(800, 1)), ml.Data.LoadFromEnumerable(Rows(200, 2)));
    }

    private static BatchNormCnnOptions TabularOptions() => new()
    {
        ImageChannels = 1,
        ImageHeight = 1,
        ImageWidth = 12,
        ConvStages = [],
        HiddenLayers = [32, 32],
        Epochs = 30,
        BatchSize = 32,
        LearningRate = 0.05,
        Seed = 2,
    };

    [Fact]
    public void BinaryClassificationGivesWhatMLNetsBinaryEvaluatorReads()
    {
        var (ml, train, test) = Footwear();
        var o = MLNetTestData.SmallOptions();
        o.Epochs = 2;
        var estimator = ml.BinaryClassification.Trainers.BatchNormCnn(o);
        using var model = estimator.Fit(train);
        IDataView scored = model.Transform(test);
        Assert.Equal(NumberDataViewType.Single, scored.Schema["Score"].Type);
        Assert.Equal(NumberDataViewType.Single, scored.Schema["Probability"].Type);
        Assert.Equal(BooleanDataViewType.Instance, scored.Schema["PredictedLabel"].Type);
        var metrics = ml.BinaryClassification.Evaluate(scored);
        Assert.True(metrics.AreaUnderRocCurve > 0.95, $"AUC {metrics.AreaUnderRocCurve}");
        Assert.True(metrics.Accuracy > 0.9, $"accuracy {metrics.Accuracy}");

        // Probability is the sigmoid of the score; the predicted label is score > 0.
        var rows = ml.Data.CreateEnumerable<BinaryScored>(scored, reuseRowObject: false).ToList();
        Assert.All(rows, r => Assert.Equal(1 / (1 + Math.Exp(-r.Score)), r.Probability, 5));
        Assert.All(rows, r => Assert.Equal(r.Score > 0, r.PredictedLabel));
        EstimatorWorkout.Run(ml, estimator, model, train, ml.Data.TakeRows(test, 24), "Features", "Score", "Probability", "PredictedLabel");

        var engine = ml.Model.CreatePredictionEngine<BinaryRow, BinaryScored>(model);
        var first = ml.Data.CreateEnumerable<BinaryRow>(test, reuseRowObject: false).First();
        Assert.Equal(rows[0].Score, engine.Predict(first).Score, 5);
        AssertOnnxScores(model, test, rows.Select(r => r.Score).ToArray(), "Score", "Probability", "PredictedLabel");
    }

    [Fact]
    public void APositiveClassWeightRaisesTheRecallOfTheRareClass()
    {
        var (ml, train, test) = Footwear();
        double Recall(double weight)
        {
            var o = MLNetTestData.SmallOptions();
            (o.Epochs, o.Trainer.PositiveClassWeight) = (2, weight);
            using var model = ml.BinaryClassification.Trainers.BatchNormCnn(o).Fit(train);
            return ml.BinaryClassification.Evaluate(model.Transform(test)).PositiveRecall;
        }

        Assert.True(Recall(20) > Recall(0.05), "weighting the positives up finds more of them");
    }

    [Fact]
    public void RegressionOnMixedScaleTabularDataTrainsAndUnscalesItsOutput()
    {
        var (ml, train, test) = Tabular();
        var estimator = ml.Regression.Trainers.BatchNormCnn(TabularOptions());
        using var model = estimator.Fit(train);
        Assert.Equal(StandardizationKind.Automatic, model.Architecture.Standardization);
        Assert.True(model.Architecture.IsTabular);
        Assert.Equal(12, model.TrainingHistory!.InputMean.Count);   // one mean per feature, not one per channel
        IDataView scored = model.Transform(test);
        Assert.Equal(NumberDataViewType.Single, scored.Schema["Score"].Type);
        var metrics = ml.Regression.Evaluate(scored);
        Assert.True(metrics.RSquared > 0.9, $"R² {metrics.RSquared}, RMSE {metrics.RootMeanSquaredError}");
        EstimatorWorkout.Run(ml, estimator, model, train, ml.Data.TakeRows(test, 24), "Features", "Score");

        var scores = scored.GetColumn<float>("Score").ToArray();
        Assert.InRange(scores.Average(), 2000, 6000);   // the label's units, not standardized ones
        AssertOnnxScores(model, test, scores, "Score");

        // Huber loss trains too.
        var huber = TabularOptions();
        huber.Trainer.RegressionLoss = RegressionLossKind.Huber;
        using var robust = ml.Regression.Trainers.BatchNormCnn(huber).Fit(train);
        Assert.True(ml.Regression.Evaluate(robust.Transform(test)).RSquared > 0.8);
    }

    [Fact]
    public void LabelsOfTheWrongTypeAndConvolutionsOnVectorsAreRefusedWithTheFix()
    {
        var (ml, train, _) = Footwear();
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.Regression.Trainers.BatchNormCnn(MLNetTestData.SmallOptions()).Fit(train));
        Assert.Contains("Label column 'Label' has type Boolean; regression expects Single", e.Message);
        var (tml, tabular, _) = Tabular();
        e = Assert.ThrowsAny<ArgumentException>(() => tml.BinaryClassification.Trainers.BatchNormCnn(TabularOptions()).Fit(tabular));
        Assert.Contains("binary classification expects Boolean", e.Message);

        var o = TabularOptions();
        o.ConvStages = [new ConvStage(8, 1, false)];
        e = Assert.ThrowsAny<ArgumentException>(() => tml.Regression.Trainers.BatchNormCnn(o));
        Assert.Contains("BatchNormCnnOptions.ConvStages must be empty for a 1×1×12 input", e.Message);
    }

    [Fact]
    public void BinaryAndRegressionModelsSaveAndScoreInANewProcess()
    {
        var (ml, train, test) = Tabular();
        using var dir = new MLNetTestData.TempDir();
        var o = TabularOptions();
        o.Epochs = 3;
        using var model = ml.Regression.Trainers.BatchNormCnn(o).Fit(train);
        ml.Model.Save(model, train.Schema, dir.File("regression.zip"));
        float[] expected = model.Transform(test).GetColumn<float>("Score").ToArray();
        using var loaded = (BatchNormCnnTransformer)new MLContext().Model.Load(dir.File("regression.zip"), out _);
        Assert.Equal(NetworkTask.Regression, loaded.Architecture.Task);
        Assert.Equal(expected, loaded.Transform(test).GetColumn<float>("Score").ToArray());

        var (code, stdout, stderr) = ChildProcessProgram.Run("score-tabular", dir.File("regression.zip"));
        Assert.True(code == 0, stderr);
        float first = float.Parse(stdout.Trim().Split('\n')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(expected[0], first);
    }

    /// <summary>The ONNX export of <paramref name="model"/> gives the transformer's scores, and declares the task's outputs.</summary>
    /// <summary>
    /// The exported graph and both scoring engines give the same scores as <paramref name="expected"/> (the model's own
    /// Transform): the file through an ONNX Runtime session, and the transformer on libtorch and on ONNX Runtime.
    /// </summary>
    private static void AssertOnnxScores(BatchNormCnnTransformer model, IDataView data, float[] expected, params string[] outputs)
    {
        foreach (ScoringEngine engine in new[] { ScoringEngine.LibTorch, ScoringEngine.OnnxRuntime })
        {
            using BatchNormCnnTransformer other = model.WithScoringEngine(engine);
            float[] scores = other.Transform(data).GetColumn<float>("Score").ToArray();
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(scores[i] - expected[i]) <= 1e-4 * Math.Max(1, Math.Abs(expected[i])), $"row {i}: {engine} {scores[i]} vs {expected[i]}");
        }

        using var stream = new MemoryStream();
        model.SaveAsOnnx(stream);
        using var session = new InferenceSession(stream.ToArray());
        Assert.Equal(outputs.OrderBy(o => o), session.OutputMetadata.Keys.OrderBy(o => o));
        float[][] rows = data.GetColumn<float[]>("Features").ToArray();
        int length = rows[0].Length;
        var input = new DenseTensor<float>(rows.SelectMany(r => r).ToArray(), [rows.Length, length]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("Features", input)]);
        float[] onnx = results.First(r => r.Name == "Score").AsEnumerable<float>().ToArray();
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(onnx[i] - expected[i]) <= 1e-3 * Math.Max(1, Math.Abs(expected[i])), $"row {i}: ONNX {onnx[i]} vs {expected[i]}");
    }

    private sealed class BinaryRow
    {
        public bool Label { get; set; }

        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    private sealed class BinaryScored
    {
        public float Score { get; set; }

        public float Probability { get; set; }

        public bool PredictedLabel { get; set; }
    }

    internal sealed class TabularRow
    {
        public float Label { get; set; }

        [VectorType(12)]
        public float[] Features { get; set; } = [];
    }
}

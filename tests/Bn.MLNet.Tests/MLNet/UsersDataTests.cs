using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>
/// The estimator on data that is not the project's demo: defaults that leave the data alone, the trainers catalog, and
/// validation the ML.NET way (Fit(train, validation), a hold-out fraction).
/// </summary>
[Collection(TorchGlobalStateCollection.Name)]
public class UsersDataTests
{
    private const int Height = 6, Width = 12, Classes = 3;

    /// <summary>
    /// Three classes told apart only by where a vertical bar stands along the width (left, centre, right), on noise:
    /// mirroring swaps left and right, so random horizontal flips make the classes indistinguishable.
    /// </summary>
    private static List<PositionRow> PositionCoded(int rows, int seed)
    {
        var random = new Random(seed);
        var list = new List<PositionRow>(rows);
        for (int i = 0; i < rows; i++)
        {
            int label = i % Classes;
            var pixels = new float[Height * Width];
            for (int p = 0; p < pixels.Length; p++)
                pixels[p] = (float)random.NextDouble() * 60;
            int column = label switch { 0 => 1, 1 => 5, _ => 9 };
            for (int y = 0; y < Height; y++)
            {
                pixels[(y * Width) + column] += 150;
                pixels[(y * Width) + column + 1] += 150;
            }

            list.Add(new PositionRow { Class = $"c{label}", Features = pixels });
        }

        return list;
    }

    private static BatchNormCnnOptions PositionOptions() => new()
    {
        ImageHeight = Height,
        ImageWidth = Width,
        ConvStages = [new ConvStage(8, 1, true)],
        HiddenLayers = [16],
        Epochs = 8,
        BatchSize = 30,
        Seed = 3,
    };

    /// <summary>
    /// Accuracy on the training rows, and the mean probability the model gives the true class of new rows of the two
    /// sided classes (bar on the left, bar on the right).
    /// </summary>
    private static (double TrainAccuracy, double SidedProbability) Fit(BatchNormCnnOptions options)
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(PositionCoded(240, seed: 5));
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", "Class").Fit(data);
        IDataView keyed = toKey.Transform(data);
        IDataView test = toKey.Transform(ml.Data.LoadFromEnumerable(PositionCoded(240, seed: 6)));
        using BatchNormCnnTransformer model = ml.MulticlassClassification.Trainers.BatchNormCnn(options).Fit(keyed);
        double train = ml.MulticlassClassification.Evaluate(model.Transform(keyed)).MicroAccuracy;
        IDataView scored = model.Transform(test);
        var truth = scored.GetColumn<uint>("Label").ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        var sided = truth.Zip(scores).Where(r => r.First != 2).Select(r => (double)r.Second[r.First - 1]).ToArray();   // key 2 = "c1", the centre
        return (train, sided.Average());
    }

    [Fact]
    public void ClassesCodedByLeftOrRightPositionTrainWithTheDefaults()
    {
        var defaults = new BatchNormCnnOptions();
        Assert.Equal(0, defaults.RandomCropPadding);
        Assert.False(defaults.HorizontalFlip);
        Assert.Equal(0, defaults.LabelSmoothing);
        Assert.Equal(0, defaults.RandomErasingProbability);
        Assert.False(defaults.Trainer.RecordPercentiles);

        var (train, sided) = Fit(PositionOptions());
        Assert.True(train >= 0.95, $"training accuracy with the default options: {train:F3}");
        Assert.True(sided >= 0.9, $"mean probability of the true class, left and right classes, new rows, default options: {sided:F3}");

        // The natural-image recipe mirrors half the training images, which turns left into right: the network learns
        // that a bar on the left is the left class or the right class with about equal odds.
        var (_, recipeSided) = Fit(PositionOptions().UseNaturalImageRecipe());
        Assert.True(recipeSided < 0.7, $"mean probability of the true class, left and right classes, new rows, natural-image recipe: {recipeSided:F3}");
    }

    [Fact]
    public void TheTrainersCatalogGivesTheTransformsCatalogsEstimator()
    {
        var ml = new MLContext(seed: 1);
        var fromTrainers = ml.MulticlassClassification.Trainers.BatchNormCnn(
            labelColumnName: "L", featureColumnName: "F", epochs: 3, batchSize: 16, learningRate: 0.02, imageChannels: 3, imageHeight: 8, imageWidth: 9,
            seed: 4, scoreColumnName: "S", predictedLabelColumnName: "P").Options;
        var fromTransforms = ml.Transforms.BatchNormCnn(
            featureColumnName: "F", labelColumnName: "L", scoreColumnName: "S", predictedLabelColumnName: "P", epochs: 3, batchSize: 16, learningRate: 0.02,
            imageChannels: 3, imageHeight: 8, imageWidth: 9, seed: 4).Options;
        Assert.Equal(Describe(fromTransforms), Describe(fromTrainers));
        Assert.Equal(Describe(new BatchNormCnnOptions { Epochs = 2 }), Describe(ml.MulticlassClassification.Trainers.BatchNormCnn(new BatchNormCnnOptions { Epochs = 2 }).Options));
        Assert.Equal(16, fromTrainers.BatchSize);
        Assert.Equal("P", fromTrainers.PredictedLabelColumnName);
    }

    private static string Describe(BatchNormCnnOptions o) =>
        string.Join("; ", typeof(BatchNormCnnOptions).GetProperties().Where(p => p.PropertyType.IsValueType || p.PropertyType == typeof(string))
            .Select(p => $"{p.Name}={p.GetValue(o)}")) + o.Network.ToJson() + System.Text.Json.JsonSerializer.Serialize(o.Trainer);

    [Fact]
    public void FitTakesValidationDataOrAHoldOutFraction()
    {
        var (ml, train, validation) = FashionSlices();
        var o = MLNetTestData.SmallOptions();
        o.Epochs = 2;

        using (var viaFit = ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train, validation))
        {
            Assert.All(viaFit.TrainingHistory!.Epochs, e => Assert.NotNull(e.ValidationAccuracy));
            Assert.Equal(400, viaFit.TrainingHistory.TrainingRows);
            Assert.NotNull(viaFit.TrainingHistory.BestEpoch);
        }

        o.ValidationFraction = 0.25;
        using (var heldOut = ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train))
        {
            var h = heldOut.TrainingHistory!;
            Assert.All(h.Epochs, e => Assert.NotNull(e.ValidationAccuracy));
            Assert.InRange(h.TrainingRows, 250, 350);   // about 3/4 of the 400 rows; the rest validates
            Assert.NotNull(h.BestEpoch);
        }
    }

    [Fact]
    public void ValidationGivenTwiceOrMissingForEarlyStoppingIsRefusedNamingTheOptions()
    {
        var (ml, train, validation) = FashionSlices();
        var o = MLNetTestData.SmallOptions();
        o.ValidationData = validation;
        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train, validation));
        Assert.Contains("Fit's validationData and as BatchNormCnnOptions.ValidationData", e.Message);

        o = MLNetTestData.SmallOptions();
        o.ValidationFraction = 0.2;
        e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train, validation));
        Assert.Contains("BatchNormCnnOptions.ValidationFraction (0.2)", e.Message);
        Assert.Contains("Fit's validationData", e.Message);
        Assert.Equal(nameof(BatchNormCnnOptions.ValidationFraction), e.ParamName);

        o = MLNetTestData.SmallOptions();
        o.EarlyStoppingPatience = 2;
        e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.BatchNormCnn(o).Fit(train));
        Assert.Contains("EarlyStoppingPatience needs validation data", e.Message);

        o = MLNetTestData.SmallOptions();
        o.ValidationFraction = 1;
        Assert.Contains("ValidationFraction must be in [0, 1)", Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.BatchNormCnn(o)).Message);
    }

    private static (MLContext Ml, IDataView Train, IDataView Validation) FashionSlices()
    {
        var ml = new MLContext(seed: 1);
        IDataView all = ml.Data.LoadFromEnumerable(MLNetTestData.Rows(Bn.MLNet.Samples.Datasets.FashionMnistSplit.Train, 600));
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(all);
        IDataView keyed = toKey.Transform(all);
        return (ml, ml.Data.TakeRows(keyed, 400), ml.Data.SkipRows(keyed, 400));
    }

    private sealed class PositionRow
    {
        public string Class { get; set; } = string.Empty;

        [VectorType(Height * Width)]
        public float[] Features { get; set; } = [];
    }
}

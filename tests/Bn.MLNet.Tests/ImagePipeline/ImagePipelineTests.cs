using Bn.MLNet.Samples.Commands;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;
using static Bn.MLNet.Samples.Commands.ImagePipelineCommand;

namespace Bn.MLNet.Tests.ImagePipeline;

/// <summary>
/// PNG files through LoadImages → ResizeImages → ExtractPixels → BatchNormCnn: trained, evaluated, saved, loaded;
/// and the embedding as features of an ordinary ML.NET trainer in the same pipeline.
/// </summary>
[Collection(TorchGlobalStateCollection.Name)]
public class ImagePipelineTests(ImageFolderFixture images, ITestOutputHelper output) : IClassFixture<ImageFolderFixture>
{
    [Fact]
    public void RgbPipelineTrainsEvaluatesAndScoresIdenticallyAfterLoading()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(images.Train);
        var test = ml.Data.LoadFromEnumerable(images.Test);
        Assert.Contains(images.Train, f => f.ImagePath.EndsWith("03.png", StringComparison.Ordinal)); // a colour image (every 4th)

        var estimator = Pipeline(ml, images.Root, ImageFolderFixture.SmallOptions(channels: 3), embeddingHead: false);
        var model = estimator.Fit(train);
        MLNet.EstimatorWorkout.Run(ml, estimator, model, train, ml.Data.TakeRows(test, 16), ImagePathColumn, CnnScoreColumn, CnnPredictedLabelColumn, EmbeddingColumn, "PredictedClass");
        var scored = model.Transform(test);
        var features = (VectorDataViewType)scored.Schema[FeaturesColumn].Type;
        Assert.Equal([3, 28, 28], features.Dimensions.ToArray());
        var metrics = ml.MulticlassClassification.Evaluate(scored, "Label", CnnScoreColumn, CnnPredictedLabelColumn);
        output.WriteLine($"RGB pipeline, BN head: accuracy {metrics.MicroAccuracy:F4} (macro {metrics.MacroAccuracy:F4}, log-loss {metrics.LogLoss:F4}) on {ImageFolderFixture.TestCount} held-out images");
        Assert.True(metrics.MicroAccuracy > 0.45, $"accuracy {metrics.MicroAccuracy} (chance 0.1)");
        var cnn = BatchNormCnnSchemaCnn(model);
        Assert.Equal(3, cnn.Architecture.InputChannels);

        // The trained transformer refuses an interleaved layout at scoring time too.
        var interleaved = Preprocessing(ml, images.Root, 3, 28, 28, interleave: true).Fit(test).Transform(test);
        var refused = Assert.ThrowsAny<ArgumentException>(() => cnn.Transform(interleaved));
        Assert.Contains("interleavePixelColors: false", refused.Message);

        var path = Path.Combine(images.Root, "rgb-model.zip");
        ml.Model.Save(model, train.Schema, path);
        var fresh = new MLContext(seed: 42);
        fresh.ComponentCatalog.RegisterBatchNormCnn();
        var loaded = fresh.Model.Load(path, out var inputSchema);
        Assert.NotNull(inputSchema.GetColumnOrNull(ImagePathColumn));
        var freshTest = fresh.Data.LoadFromEnumerable(images.Test);
        Assert.Equal(0, CountDifferentScores(model.Transform(freshTest), loaded.Transform(freshTest), CnnScoreColumn));
        Assert.Equal(model.Transform(test).GetColumn<string>("PredictedClass"), loaded.Transform(freshTest).GetColumn<string>("PredictedClass"));
        var again = fresh.MulticlassClassification.Evaluate(loaded.Transform(freshTest), "Label", CnnScoreColumn, CnnPredictedLabelColumn);
        Assert.Equal(metrics.MicroAccuracy, again.MicroAccuracy);
    }

    [Fact]
    public void EmbeddingFeedsAnOrdinaryTrainerInTheSamePipeline()
    {
        // Grey variant: ConvertToGrayscale, then ExtractPixels of the red plane only (ImageChannels 1).
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(images.Train);
        var test = ml.Data.LoadFromEnumerable(images.Test);
        var options = ImageFolderFixture.SmallOptions(channels: 1);
        var estimator = Pipeline(ml, images.Root, options, embeddingHead: true);
        var model = estimator.Fit(train);
        MLNet.EstimatorWorkout.Run(ml, estimator, model, train, ml.Data.TakeRows(test, 16), ImagePathColumn, CnnScoreColumn, CnnPredictedLabelColumn, EmbeddingColumn);

        var scored = model.Transform(test);
        var embedding = (VectorDataViewType)scored.Schema[EmbeddingColumn].Type;
        Assert.Equal(32, embedding.Size); // the last hidden layer
        Assert.Equal([1, 28, 28], ((VectorDataViewType)scored.Schema[FeaturesColumn].Type).Dimensions.ToArray());
        var (cnn, head) = EvaluateHeads(ml, scored);
        output.WriteLine($"grey pipeline, BN head: accuracy {cnn.MicroAccuracy:F4} (macro {cnn.MacroAccuracy:F4}); " +
                         $"SdcaMaximumEntropy on Embedding: accuracy {head.MicroAccuracy:F4} (macro {head.MacroAccuracy:F4}, log-loss {head.LogLoss:F4})");
        Assert.True(cnn.MicroAccuracy > 0.45, $"BN head accuracy {cnn.MicroAccuracy} (chance 0.1)");
        Assert.True(head.MicroAccuracy > 0.45, $"embedding head accuracy {head.MicroAccuracy} (chance 0.1)");

        // The two heads are different models: their score vectors differ.
        var a = scored.GetColumn<float[]>(CnnScoreColumn).First();
        var b = scored.GetColumn<float[]>("Score").First();
        Assert.False(a.AsSpan().SequenceEqual(b));

        // The whole two-head pipeline saves and loads.
        var path = Path.Combine(images.Root, "embedding-model.zip");
        ml.Model.Save(model, train.Schema, path);
        var fresh = new MLContext();
        fresh.ComponentCatalog.RegisterBatchNormCnn();
        var loaded = fresh.Model.Load(path, out _);
        var freshTest = fresh.Data.LoadFromEnumerable(images.Test);
        Assert.Equal(0, CountDifferentScores(model.Transform(freshTest), loaded.Transform(freshTest), EmbeddingColumn));
        Assert.Equal(0, CountDifferentScores(model.Transform(freshTest), loaded.Transform(freshTest), "Score"));
    }

    private static BatchNormCnnTransformer BatchNormCnnSchemaCnn(ITransformer model) =>
        ModelCommands.Find(model) ?? throw new InvalidOperationException("no BatchNormCnn transformer in the pipeline");
}

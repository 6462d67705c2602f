using Bn.MLNet.Samples.Commands;
using Microsoft.ML;
using Microsoft.ML.Data;
using SkiaSharp;
using TorchSharp;
using static Bn.MLNet.Samples.Commands.ImagePipelineCommand;

namespace Bn.MLNet.Tests.ImagePipeline;

/// <summary>
/// ExtractPixels' planar layout is the network's C×H×W; mismatched sizes, channel counts and interleaved layouts are
/// refused with a message that says which option to change.
/// </summary>
[Collection(TorchGlobalStateCollection.Name)]
public class ImageLayoutTests(ImageFolderFixture images) : IClassFixture<ImageFolderFixture>
{
    private const int H = 4;
    private const int W = 5;

    private static SKColor PixelColour(int x, int y) => new((byte)(10 + x), (byte)(100 + 10 * y), (byte)(200 + x + y));

    /// <summary>A W×H RGB image whose three channels differ everywhere, in class folder <paramref name="cls"/>.</summary>
    private static ImageFile WriteGradient(string root, string cls, int index)
    {
        Directory.CreateDirectory(Path.Combine(root, cls));
        using var bitmap = new SKBitmap(new SKImageInfo(W, H, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < H; y++)
        {
            for (int x = 0; x < W; x++)
                bitmap.SetPixel(x, y, PixelColour(x, y));
        }

        string rel = Path.Combine(cls, $"{index}.png");
        SavePng(Path.Combine(root, rel), bitmap);
        return new ImageFile { ImagePath = rel, Class = cls };
    }

    private static ImageFile WriteSolid(string root, string cls, int index, SKColor colour)
    {
        Directory.CreateDirectory(Path.Combine(root, cls));
        using var bitmap = new SKBitmap(new SKImageInfo(W, H, SKColorType.Rgba8888, SKAlphaType.Opaque));
        bitmap.Erase(colour);
        string rel = Path.Combine(cls, $"{index}.png");
        SavePng(Path.Combine(root, rel), bitmap);
        return new ImageFile { ImagePath = rel, Class = cls };
    }

    [Fact]
    public void WrittenFolderHasGreyAndColourImagesOfAnotherSize()
    {
        var colour = images.Train.First(f => f.ImagePath.EndsWith("00003.png", StringComparison.Ordinal));
        using var bitmap = SKBitmap.Decode(Path.Combine(images.Root, colour.ImagePath));
        Assert.Equal((40, 36), (bitmap.Width, bitmap.Height));
        Assert.Contains(Enumerable.Range(0, bitmap.Width * bitmap.Height).Select(i => bitmap.GetPixel(i % bitmap.Width, i / bitmap.Width)),
            c => c.Red != c.Blue);
        using var grey = SKBitmap.Decode(Path.Combine(images.Root, images.Train[0].ImagePath));
        Assert.Equal((28, 28), (grey.Width, grey.Height));
        Assert.Equal(10, images.Train.Select(f => f.Class).Distinct().Count());
    }

    [Fact]
    public void PlanarExtractPixelsIsChannelMajorAsTheNetworkViewsIt()
    {
        using var dir = new MLNet.MLNetTestData.TempDir();
        var rows = new[] { WriteGradient(dir.Path, "a", 0), WriteGradient(dir.Path, "b", 1) };
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        var view = Preprocessing(ml, dir.Path, 3, H, W).Fit(data).Transform(data);
        var type = (VectorDataViewType)view.Schema[FeaturesColumn].Type;
        Assert.Equal([3, H, W], type.Dimensions.ToArray()); // ExtractPixels declares planar output as C×H×W
        float[] v = view.GetColumn<float[]>(FeaturesColumn).First();

        // The network reshapes each row with view(N, C, H, W) (BatchNormCnnNetwork): plane 0 is red, 1 green, 2 blue.
        using var t = torch.tensor(v).view(1, 3, H, W);
        for (int y = 0; y < H; y++)
        {
            for (int x = 0; x < W; x++)
            {
                var c = PixelColour(x, y);
                Assert.Equal(c.Red, t[0, 0, y, x].item<float>());
                Assert.Equal(c.Green, t[0, 1, y, x].item<float>());
                Assert.Equal(c.Blue, t[0, 2, y, x].item<float>());
            }
        }

        // The samples' own loader (used by `predict`) produces the same planar vector.
        Assert.Equal(v, ImageInput.Load(Path.Combine(dir.Path, rows[0].ImagePath), 3, H, W));

        // Interleaved output is H×W×C: the first three values are pixel (0,0)'s R, G, B.
        var interleaved = Preprocessing(ml, dir.Path, 3, H, W, interleave: true).Fit(data).Transform(data);
        Assert.Equal([H, W, 3], ((VectorDataViewType)interleaved.Schema[FeaturesColumn].Type).Dimensions.ToArray());
        float[] iv = interleaved.GetColumn<float[]>(FeaturesColumn).First();
        Assert.Equal([PixelColour(0, 0).Red, PixelColour(0, 0).Green, PixelColour(0, 0).Blue], iv.Take(3).ToArray());
    }

    [Fact]
    public void TrainedNetworkStandardizesPlaneZeroWithTheRedMean()
    {
        // Solid-colour images: the network's per-channel input mean, computed from the training rows as it views them,
        // must be the mean red, green and blue value; an interleaved layout would mix the colours in every plane.
        using var dir = new MLNet.MLNetTestData.TempDir();
        SKColor warm = new(220, 40, 10), cold = new(30, 60, 250);
        var rows = Enumerable.Range(0, 8).Select(i => i % 2 == 0 ? WriteSolid(dir.Path, "warm", i, warm) : WriteSolid(dir.Path, "cold", i, cold)).ToArray();
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new BatchNormCnnOptions
        {
            ImageChannels = 3, ImageHeight = H, ImageWidth = W, ConvStages = [], HiddenLayers = [4], MaxSteps = 1, BatchSize = 4, Seed = 1,
        };
        var estimator = Preprocessing(ml, dir.Path, 3, H, W).Append(ml.Transforms.BatchNormCnn(options));
        var model = estimator.Fit(data);
        MLNet.EstimatorWorkout.Run(ml, estimator, model, data, data, ImagePathColumn, "Score", "PredictedLabel");
        var mean = ModelCommands.Find(model)!.Network.InputMean;
        Assert.Equal((warm.Red + cold.Red) / 2f, mean[0], 3);
        Assert.Equal((warm.Green + cold.Green) / 2f, mean[1], 3);
        Assert.Equal((warm.Blue + cold.Blue) / 2f, mean[2], 3);
    }

    private ArgumentException Refusal(int channels, int height, int width, bool interleave, int imageChannels)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(images.Test.Take(20));
        var options = ImageFolderFixture.SmallOptions(imageChannels);
        options.EmbeddingColumnName = null;
        var pipeline = Preprocessing(ml, images.Root, channels, height, width, interleave).Append(ml.Transforms.BatchNormCnn(options));
        return Assert.ThrowsAny<ArgumentException>(() => pipeline.Fit(data));
    }

    [Fact]
    public void SizeMismatchNamesColumnLengthShapeAndTheOptionsToChange()
    {
        var ex = Refusal(3, 32, 32, interleave: false, imageChannels: 3);
        Assert.Contains("'Features'", ex.Message);
        Assert.Contains("length 3072", ex.Message);
        Assert.Contains("dimensions 3×32×32", ex.Message);
        Assert.Contains("3×28×28 = 2352", ex.Message);
        Assert.Contains("ImageHeight", ex.Message);
        Assert.Contains("ResizeImages(imageWidth: 28, imageHeight: 28)", ex.Message);
    }

    [Fact]
    public void ChannelMismatchNamesImageChannelsAndExtractPixels()
    {
        var ex = Refusal(3, 28, 28, interleave: false, imageChannels: 1);
        Assert.Contains("'Features'", ex.Message);
        Assert.Contains("length 2352", ex.Message);
        Assert.Contains("dimensions 3×28×28", ex.Message);
        Assert.Contains("1×28×28 = 784", ex.Message);
        Assert.Contains("ImageChannels", ex.Message);
        Assert.Contains("ExtractPixels with 1 colour plane", ex.Message);
    }

    [Fact]
    public void InterleavedLayoutIsRefusedNamingInterleavePixelColors()
    {
        var ex = Refusal(3, 28, 28, interleave: true, imageChannels: 3);
        Assert.Contains("'Features'", ex.Message);
        Assert.Contains("28×28×3", ex.Message);
        Assert.Contains("interleavePixelColors: false", ex.Message);
    }

    /// <summary>Pixels as an application holding its own vectors would have them: no dimensions, only a length.</summary>
    private sealed class PlainPixels
    {
        [VectorType(3 * 28 * 28)]
        public float[] Features { get; set; } = [];
    }

    [Fact]
    public void InterleavedLayoutIsDetectedThroughCopiesButNotInPlainVectors()
    {
        // The only trace of the layout is the vector type's dimensions. ML.NET keeps them through CopyColumns and a
        // one-column Concatenate (so those are still refused), but a vector without dimensions (pixels from the
        // application's own row class, a text file, ...) cannot be told apart and passes as planar: documented limit.
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(images.Test.Take(5));
        var view = Preprocessing(ml, images.Root, 3, 28, 28, interleave: true)
            .Append(ml.Transforms.CopyColumns("Copied", FeaturesColumn))
            .Append(ml.Transforms.Concatenate("Concatenated", FeaturesColumn))
            .Append(ml.Transforms.Concatenate("Twice", FeaturesColumn, FeaturesColumn))
            .Fit(data).Transform(data);
        Assert.Equal([2 * 2352], ((VectorDataViewType)view.Schema["Twice"].Type).Dimensions.ToArray()); // several columns: no dimensions
        var settings = ColumnSettings.From(ImageFolderFixture.SmallOptions(3), Bn.MLNet.Networks.NetworkTask.MulticlassClassification);
        foreach (var name in new[] { "Copied", "Concatenated" })
        {
            Assert.Equal([28, 28, 3], ((VectorDataViewType)view.Schema[name].Type).Dimensions.ToArray());
            var ex = Assert.Throws<ArgumentException>(() => BatchNormCnnSchema.CheckFeatureColumn(view.Schema, settings with { FeatureColumnName = name }));
            Assert.Contains("interleavePixelColors: false", ex.Message);
        }

        var plain = ml.Data.LoadFromEnumerable(ml.Data.CreateEnumerable<PlainPixels>(view, reuseRowObject: false).ToList());
        Assert.Equal([2352], ((VectorDataViewType)plain.Schema[FeaturesColumn].Type).Dimensions.ToArray());
        Assert.Equal(FeaturesColumn, BatchNormCnnSchema.CheckFeatureColumn(plain.Schema, settings).Name);
    }

    [Fact]
    public void InterleavedSingleChannelIsTheSameLayoutAndPasses()
    {
        // H×W×1 and 1×H×W are the same bytes: the schema check accepts it, and the values equal the planar ones.
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(images.Test.Take(5));
        var view = Preprocessing(ml, images.Root, 1, 28, 28, interleave: true).Fit(data).Transform(data);
        Assert.Equal([28, 28, 1], ((VectorDataViewType)view.Schema[FeaturesColumn].Type).Dimensions.ToArray());
        var column = BatchNormCnnSchema.CheckFeatureColumn(view.Schema, ColumnSettings.From(ImageFolderFixture.SmallOptions(1), Bn.MLNet.Networks.NetworkTask.MulticlassClassification));
        Assert.Equal(FeaturesColumn, column.Name);

        // And the values are those of the planar 1×H×W layout, in the same order.
        var planar = Preprocessing(ml, images.Root, 1, 28, 28).Fit(data).Transform(data);
        Assert.Equal(planar.GetColumn<float[]>(FeaturesColumn).ToArray(), view.GetColumn<float[]>(FeaturesColumn).ToArray());
    }
}

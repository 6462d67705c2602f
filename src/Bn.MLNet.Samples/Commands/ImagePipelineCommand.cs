using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;
using SkiaSharp;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// <c>image-pipeline</c>: image files in class-named folders go through ML.NET's own image transforms
/// (<c>LoadImages</c> → <c>ResizeImages</c> → <c>ExtractPixels</c>, planar) into <c>BatchNormCnn</c>, whose
/// <c>Embedding</c> column also feeds an ordinary ML.NET trainer (SdcaMaximumEntropy) in the same pipeline. Both heads
/// are evaluated; the model is saved, loaded in a new MLContext and checked to score identically.
/// </summary>
internal static class ImagePipelineCommand
{
    /// <summary>Input column: image path relative to the image folder.</summary>
    public const string ImagePathColumn = "ImagePath";

    /// <summary>Input column: class name (the image's folder name).</summary>
    public const string ClassColumn = "Class";

    /// <summary>Pixel vector produced by <c>ExtractPixels</c> (C×H×W, planar, 0..255).</summary>
    public const string FeaturesColumn = "Features";

    /// <summary>The network's probabilities (renamed so the second head's <c>Score</c> does not hide them).</summary>
    public const string CnnScoreColumn = "CnnScore";

    /// <summary>The network's predicted key.</summary>
    public const string CnnPredictedLabelColumn = "CnnPredictedLabel";

    /// <summary>The network's last hidden layer.</summary>
    public const string EmbeddingColumn = "Embedding";

    /// <summary>Size of the colour images written besides the 28×28 grey ones (width, height).</summary>
    public static readonly (int Width, int Height) ColourSize = (40, 36);

    private static readonly SKColor[] Tints =
    [
        new(255, 96, 48), new(64, 200, 96), new(72, 120, 255), new(240, 210, 64),
    ];

    /// <summary>One image file and its class.</summary>
    public sealed class ImageFile
    {
        /// <summary>Path relative to the image folder.</summary>
        public string ImagePath { get; set; } = string.Empty;

        /// <summary>Class name (folder name).</summary>
        public string Class { get; set; } = string.Empty;
    }

    /// <summary>Creates the command with its options and help texts.</summary>
    public static Command Create()
    {
        var images = new Option<DirectoryInfo>("--images")
        {
            Description = "Folder of your own PNG/JPEG images in class-named subfolders (DIR/<class>/*.png); 20% are held out for testing. " +
                          "Default: Fashion-MNIST images are written as PNG files (a quarter of them as tinted RGB 40×36) to --out/fashion-mnist-png.",
            HelpName = "DIR",
        };
        images.AcceptExistingOnly();
        var output = new Option<string>("--out")
        {
            Description = "Folder for the written images and the model zip.",
            HelpName = "DIR",
            DefaultValueFactory = _ => Path.Combine("runs", "image-pipeline"),
        };
        var trainCount = CountOption("--train-count", "Fashion-MNIST training images written as files (ignored with --images).", 2000, 10);
        var testCount = CountOption("--test-count", "Fashion-MNIST test images written as files (ignored with --images).", 500, 1);
        var channels = new Option<int>("--channels")
        {
            Description = "3: ExtractPixels takes the R, G and B planes (ImageChannels 3); 1: ConvertToGrayscale, then the red plane only (ImageChannels 1).",
            HelpName = "1|3",
            DefaultValueFactory = _ => 3,
        };
        channels.AcceptOnlyFromAmong("1", "3");
        var size = new Option<int>("--size")
        {
            Description = "ResizeImages to SIZE×SIZE pixels (ImageHeight = ImageWidth = SIZE).",
            HelpName = "SIZE",
            DefaultValueFactory = _ => 28,
        }.AtLeast(8);
        var epochs = CountOption("--epochs", "Training epochs of the network.", 2, 1);
        var data = new Option<string?>("--data")
        {
            Description = "Folder with the Fashion-MNIST IDX files (default: the bundled datasets/fashion-mnist).",
            HelpName = "DIR",
        };

        var command = new Command("image-pipeline",
            "Train on image files through ML.NET's LoadImages → ResizeImages → ExtractPixels (planar) → BatchNormCnn, plus an " +
            "SdcaMaximumEntropy head on the network's Embedding column; evaluate both, save, reload and compare scores.")
        {
            images, output, trainCount, testCount, channels, size, epochs, data,
        };
        command.SetAction((p, ct) => Task.Run(
            () => Run(new Settings(
                p.GetValue(images)?.FullName, p.GetValue(output)!, p.GetValue(trainCount), p.GetValue(testCount),
                p.GetValue(channels), p.GetValue(size), p.GetValue(epochs), p.GetValue(data)), ct),
            CancellationToken.None));
        return command;
    }

    /// <summary>An option taking a count N of at least <paramref name="minimum"/>.</summary>
    private static Option<int> CountOption(string name, string description, int defaultValue, int minimum) => new Option<int>(name)
    {
        Description = description,
        HelpName = "N",
        DefaultValueFactory = _ => defaultValue,
    }.AtLeast(minimum);

    /// <summary>Settings of one run.</summary>
    internal sealed record Settings(string? Images, string Out, int TrainCount, int TestCount, int Channels, int Size, int Epochs, string? Data);

    /// <summary>Runs the command; returns the exit code.</summary>
    internal static int Run(Settings s, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        string output = Path.GetFullPath(s.Out);
        Directory.CreateDirectory(output);
        var ml = new MLContext(seed: 1);
        if (PrepareImages(s, ml, output, out string root, out IDataView train, out IDataView test) is int failed)
        {
            return failed;
        }

        PrintPipeline(s);
        if (TrainPipeline(s, ml, root, train, cancellationToken, out ITransformer model) is int refused)
        {
            return refused;
        }

        PrintHeldOutAccuracy(ml, model.Transform(test));
        int differing = SaveAndReload(ml, model, train, test, output);
        AnsiConsole.MarkupLine($"Done in {clock.Elapsed.TotalMinutes:0.0} min.");
        return differing == 0 ? 0 : 1;
    }

    /// <summary>
    /// Lists the user's images (split 80/20) or writes Fashion-MNIST PNGs into <paramref name="output"/>; returns an exit
    /// code when the images cannot be prepared, null otherwise.
    /// </summary>
    private static int? PrepareImages(Settings s, MLContext ml, string output, out string root, out IDataView train, out IDataView test)
    {
        root = string.Empty;
        train = test = null!;
        try
        {
            if (s.Images is not null)
            {
                root = Path.GetFullPath(s.Images);
                var files = ListImages(root);
                if (files.Select(f => f.Class).Distinct().Count() < 2)
                {
                    AnsiConsole.MarkupLine($"[red]{Markup.Escape(root)} needs at least two class subfolders with PNG or JPEG files.[/]");
                    return 2;
                }

                var split = ml.Data.TrainTestSplit(ml.Data.LoadFromEnumerable(files), testFraction: 0.2, seed: 1);
                (train, test) = (split.TrainSet, split.TestSet);
            }
            else
            {
                // A folder of our own, emptied first so that files of an earlier, larger run are not picked up.
                root = Path.Combine(output, "fashion-mnist-png");
                if (Directory.Exists(root))
                {
                    Directory.Delete(root, recursive: true);
                }

                int written = WriteFashionMnistImages(Path.Combine(root, "train"), FashionMnistSplit.Train, s.TrainCount, s.Data);
                written += WriteFashionMnistImages(Path.Combine(root, "test"), FashionMnistSplit.Test, s.TestCount, s.Data);
                AnsiConsole.MarkupLine($"Wrote {written:N0} PNG files (28×28 grey; every 4th {ColourSize.Width}×{ColourSize.Height} tinted RGB) under {Markup.Escape(root)}");
                train = ml.Data.LoadFromEnumerable(ListImages(root, "train"));
                test = ml.Data.LoadFromEnumerable(ListImages(root, "test"));
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot prepare the images:[/] {Markup.Escape(ex.Message)}");
            return 3;
        }

        return null;
    }

    private static void PrintPipeline(Settings s)
    {
        AnsiConsole.Write(new Rule("[bold]image-pipeline[/]: ML.NET image transforms → BatchNormCnn → SdcaMaximumEntropy on the embedding").LeftJustified());
        string pixels = s.Channels == 3 ? "ExtractPixels(Rgb, planar)" : "ConvertToGrayscale → ExtractPixels(Red, planar)";
        AnsiConsole.MarkupLine(Markup.Escape(
            $"Pipeline: MapValueToKey(Label ← Class) → LoadImages → ResizeImages({s.Size}×{s.Size}) → {pixels} → " +
            $"BatchNormCnn(ImageChannels {s.Channels}, {s.Size}×{s.Size}; Embedding) → SdcaMaximumEntropy(Embedding) → MapKeyToValue"));
    }

    /// <summary>Fits the whole pipeline with a progress display; returns an exit code when cancelled or refused, null otherwise.</summary>
    private static int? TrainPipeline(Settings s, MLContext ml, string root, IDataView train, CancellationToken cancellationToken, out ITransformer model)
    {
        model = null!;
        try
        {
            model = TrainingConsole.Run(quiet: false, progress =>
            {
                var options = new BatchNormCnnOptions
                {
                    ImageChannels = s.Channels,
                    ImageHeight = s.Size,
                    ImageWidth = s.Size,
                    Epochs = s.Epochs,
                    BatchSize = 64,
                    Seed = 1,
                    Progress = progress,
                    CancellationToken = cancellationToken,
                };
                return Pipeline(ml, root, options, embeddingHead: true).Fit(train);
            });
            return null;
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]Training cancelled.[/]");
            return 130;
        }
        catch (ArgumentException ex)
        {
            AnsiConsole.MarkupLine($"[red]The pipeline was refused:[/] {Markup.Escape(ex.Message)}");
            return 2;
        }
    }

    private static void PrintHeldOutAccuracy(MLContext ml, IDataView testScored)
    {
        var (cnn, head) = EvaluateHeads(ml, testScored);
        var table = new Table().Title($"Held-out images ({testScored.GetColumn<string>(ClassColumn).Count():N0})")
            .AddColumn("head").AddColumn("accuracy (micro)").AddColumn("macro accuracy").AddColumn("log-loss");
        table.AddRow("BatchNormCnn (CnnScore)", F(cnn.MicroAccuracy), F(cnn.MacroAccuracy), F(cnn.LogLoss));
        table.AddRow("SdcaMaximumEntropy on Embedding (Score)", F(head.MicroAccuracy), F(head.MacroAccuracy), F(head.LogLoss));
        AnsiConsole.Write(table);
    }

    /// <summary>Saves the model, loads it in a new context and returns how many held-out score vectors differ (both heads); disposes both models.</summary>
    private static int SaveAndReload(MLContext ml, ITransformer model, IDataView train, IDataView test, string output)
    {
        string modelPath = Path.Combine(output, "image-pipeline.zip");
        ml.Model.Save(model, train.Schema, modelPath);
        AnsiConsole.MarkupLine($"Model saved: {Markup.Escape(modelPath)} ({new FileInfo(modelPath).Length / 1024.0:N0} KB)");

        var fresh = new MLContext();
        fresh.ComponentCatalog.RegisterBatchNormCnn();
        ITransformer loaded = fresh.Model.Load(modelPath, out _);
        int differing = CountDifferentScores(model.Transform(test), loaded.Transform(test), CnnScoreColumn)
                        + CountDifferentScores(model.Transform(test), loaded.Transform(test), "Score");
        AnsiConsole.MarkupLine(differing == 0
            ? "Loaded in a new MLContext: [green]identical scores[/] on every held-out image (both heads)."
            : $"[red]Loaded model differs on {differing} score vector(s).[/]");
        (model as IDisposable)?.Dispose();
        (loaded as IDisposable)?.Dispose();
        return differing;
    }

    /// <summary>
    /// The image preprocessing: class → key <c>Label</c> (classes ordered by name), <c>LoadImages</c> from
    /// <paramref name="imageFolder"/>, <c>ResizeImages</c> to <paramref name="width"/>×<paramref name="height"/> and
    /// <c>ExtractPixels</c> into <see cref="FeaturesColumn"/> as raw 0..255 floats (no offset or scale: the network
    /// standardizes per channel itself). <paramref name="channels"/> 3 extracts the R, G, B planes; 1 converts to
    /// greyscale and extracts the red plane (equal to the grey value). Planar unless <paramref name="interleave"/>.
    /// </summary>
    public static IEstimator<ITransformer> Preprocessing(MLContext ml, string imageFolder, int channels, int height, int width, bool interleave = false)
    {
        if (channels != 1 && channels != 3)
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 (grey) or 3 (RGB).");
        }

        IEstimator<ITransformer> chain = ml.Transforms.Conversion.MapValueToKey("Label", ClassColumn, keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.Transforms.LoadImages("Image", imageFolder, ImagePathColumn))
            .Append(ml.Transforms.ResizeImages("Resized", width, height, "Image"));
        string source = "Resized";
        if (channels == 1)
        {
            chain = chain.Append(ml.Transforms.ConvertToGrayscale("Grey", "Resized"));
            source = "Grey";
        }

        var colours = channels == 3 ? ImagePixelExtractingEstimator.ColorBits.Rgb : ImagePixelExtractingEstimator.ColorBits.Red;
        return chain.Append(ml.Transforms.ExtractPixels(FeaturesColumn, source, colorsToExtract: colours, interleavePixelColors: interleave));
    }

    /// <summary>
    /// The whole pipeline: <see cref="Preprocessing"/> with the options' image shape, <c>BatchNormCnn</c> (its outputs
    /// renamed to <see cref="CnnScoreColumn"/>, <see cref="CnnPredictedLabelColumn"/> and <see cref="EmbeddingColumn"/>),
    /// and with <paramref name="embeddingHead"/> an <c>SdcaMaximumEntropy</c> trainer on the embedding (writing the
    /// usual <c>Score</c> and <c>PredictedLabel</c>), then <c>PredictedClass</c> as text.
    /// </summary>
    public static IEstimator<ITransformer> Pipeline(MLContext ml, string imageFolder, BatchNormCnnOptions options, bool embeddingHead)
    {
        options.FeatureColumnName = FeaturesColumn;
        options.LabelColumnName = "Label";
        options.ScoreColumnName = CnnScoreColumn;
        options.PredictedLabelColumnName = CnnPredictedLabelColumn;
        options.EmbeddingColumnName = EmbeddingColumn;
        var pipeline = Preprocessing(ml, imageFolder, options.ImageChannels, options.ImageHeight, options.ImageWidth)
            .Append(ml.Transforms.BatchNormCnn(options));
        if (!embeddingHead)
        {
            return pipeline.Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", CnnPredictedLabelColumn));
        }

        // SDCA passes over its data many times: the cache keeps the embeddings instead of decoding every image and
        // running the network again on each pass.
        return pipeline
            .AppendCacheCheckpoint(ml)
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(labelColumnName: "Label", featureColumnName: EmbeddingColumn, maximumNumberOfIterations: 30))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
    }

    /// <summary>Metrics of the network's head and of the embedding head on a scored view.</summary>
    public static (MulticlassClassificationMetrics Cnn, MulticlassClassificationMetrics EmbeddingHead) EvaluateHeads(MLContext ml, IDataView scored) =>
        (ml.MulticlassClassification.Evaluate(scored, "Label", CnnScoreColumn, CnnPredictedLabelColumn),
         ml.MulticlassClassification.Evaluate(scored, "Label", "Score", "PredictedLabel"));

    /// <summary>
    /// Writes <paramref name="count"/> Fashion-MNIST images of <paramref name="split"/> as PNG files
    /// <c>root/&lt;class&gt;/&lt;index&gt;.png</c>: 28×28 grey, except every <paramref name="colourEvery"/>-th image
    /// (0 = none), which is tinted with one of four colours and resized to <see cref="ColourSize"/>. Returns the count.
    /// </summary>
    public static int WriteFashionMnistImages(string root, FashionMnistSplit split, int count, string? dataDir = null, int colourEvery = 4, int skip = 0)
    {
        var data = FashionMnist.Read(dataDir, split, count + skip);
        int h = data.Images.Rows, w = data.Images.Columns;
        var grey = new float[h * w];
        int written = 0;
        for (int i = skip; i < data.Count; i++)
        {
            string folder = Path.Combine(root, FolderName(FashionMnist.ClassNames[data.Labels[i]]));
            Directory.CreateDirectory(folder);
            string path = Path.Combine(folder, i.ToString("D5", CultureInfo.InvariantCulture) + ".png");
            var image = data.Images.GetImage(i);
            if (colourEvery > 0 && i % colourEvery == colourEvery - 1)
            {
                SaveTintedPng(path, image, h, w, Tints[(i / colourEvery) % Tints.Length], ColourSize.Width, ColourSize.Height);
            }
            else
            {
                for (int j = 0; j < grey.Length; j++)
                {
                    grey[j] = image[j];
                }

                ImageInput.SaveGreyPng(path, grey, h, w);
            }

            written++;
        }

        return written;
    }

    /// <summary>Writes a grey image multiplied by <paramref name="tint"/> and resized to <paramref name="outWidth"/>×<paramref name="outHeight"/> as an RGB PNG.</summary>
    public static void SaveTintedPng(string path, ReadOnlySpan<byte> grey, int height, int width, SKColor tint, int outWidth, int outHeight)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int v = grey[y * width + x];
                bitmap.SetPixel(x, y, new SKColor((byte)(v * tint.Red / 255), (byte)(v * tint.Green / 255), (byte)(v * tint.Blue / 255)));
            }
        }

        using var resized = bitmap.Resize(new SKImageInfo(outWidth, outHeight, SKColorType.Rgba8888, SKAlphaType.Opaque), SKFilterQuality.High)
            ?? throw new InvalidOperationException($"Could not resize to {outWidth}×{outHeight}.");
        SavePng(path, resized);
    }

    /// <summary>Writes <paramref name="bitmap"/> as a PNG file.</summary>
    public static void SavePng(string path, SKBitmap bitmap)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var encoded = image.Encode(SKEncodedImageFormat.Png, 100);
        using var stream = File.Create(path);
        encoded.SaveTo(stream);
    }

    /// <summary>
    /// The PNG/JPEG files in the class-named subfolders of <paramref name="root"/> (or of its <paramref name="subfolder"/>),
    /// sorted, with paths relative to <paramref name="root"/> (the folder given to <c>LoadImages</c>).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static List<ImageFile> ListImages(string root, string? subfolder = null)
    {
        var files = new List<ImageFile>();
        string top = subfolder is null ? root : Path.Combine(root, subfolder);
        foreach (string dir in Directory.GetDirectories(top).Order(StringComparer.Ordinal))
        {
            string cls = Path.GetFileName(dir);
            foreach (string file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
            {
                string ext = Path.GetExtension(file).ToLowerInvariant();
                if (ext is ".png" or ".jpg" or ".jpeg")
                {
                    files.Add(new ImageFile { ImagePath = Path.GetRelativePath(root, file), Class = cls });
                }
            }
        }

        return files;
    }

    /// <summary>Number of rows whose <paramref name="column"/> vectors differ between the two views.</summary>
    public static int CountDifferentScores(IDataView a, IDataView b, string column)
    {
        var x = a.GetColumn<float[]>(column).ToList();
        var y = b.GetColumn<float[]>(column).ToList();
        if (x.Count != y.Count)
        {
            return Math.Max(x.Count, y.Count);
        }

        return x.Zip(y).Count(p => !p.First.AsSpan().SequenceEqual(p.Second));
    }

    /// <summary>A folder name for a class name ("T-shirt/top" → "T-shirt_top").</summary>
    public static string FolderName(string className)
    {
        var invalid = Path.GetInvalidFileNameChars();
        return new string(className.Select(c => invalid.Contains(c) ? '_' : c).ToArray());
    }

    private static string F(double v) => v.ToString("0.0000", CultureInfo.InvariantCulture);
}

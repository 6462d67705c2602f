using System.CommandLine;
using System.Globalization;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// <c>evaluate</c> and <c>predict</c>: use a model zip saved by <c>train --model</c>, the main job or any pipeline around
/// BatchNormCnn, or a network saved with <see cref="BatchNormCnnNetwork.Save(string)"/> (told apart by content).
/// </summary>
internal static class ModelCommands
{
    private static readonly Option<FileInfo> ModelOption = new("--model")
    {
        Description = "Model zip saved with mlContext.Model.Save (train --model writes one; the main job writes runs/main/fashion-mnist-bncnn.zip), or a network saved with BatchNormCnnNetwork.Save.",
        HelpName = "PATH",
        Required = true,
    };

    private static readonly Option<string?> DataOption = SharedOptions.DataDirectory();

    private static readonly Option<int?> LimitOption = new("--limit")
    {
        Description = "Evaluate only the first N test rows (default: all 10,000).",
        HelpName = "N",
    };

    private static readonly Option<bool> FlipAverageOption = new("--flip-average")
    {
        Description = "Score with test-time flip averaging: each image as the mean of the probabilities of the image and of its mirror (about 2x the scoring time). Default: as saved in the model (off unless chosen).",
    };

    private static readonly Option<FileInfo[]> ImageOption = new("--image")
    {
        Description = "PNG or JPEG file(s) of any size; resized and converted to the model's input. Repeat the option or list several files.",
        HelpName = "FILE",
        Required = true,
        AllowMultipleArgumentsPerToken = true,
    };

    public static Command CreateEvaluate()
    {
        ModelOption.AcceptExistingOnly();
        LimitOption.AtLeast(1);
        var command = new Command("evaluate", "Evaluate a saved model on the Fashion-MNIST test set.") { ModelOption, DataOption, LimitOption, FlipAverageOption };
        command.SetAction(p => Evaluate(p.GetValue(ModelOption)!.FullName, p.GetValue(DataOption), p.GetValue(LimitOption), p.GetValue(FlipAverageOption)));
        return command;
    }

    public static Command CreatePredict()
    {
        ImageOption.AcceptExistingOnly();
        var command = new Command("predict", "Classify image files with a saved model.") { ModelOption, ImageOption };
        command.SetAction(p => Predict(p.GetValue(ModelOption)!.FullName, p.GetValue(ImageOption)!.Select(f => f.FullName).ToArray()));
        return command;
    }

    public static int Evaluate(string modelPath, string? dataDir, int? limit, bool flipAverage = false)
    {
        var ml = new MLContext();
        if (!TryLoad(ml, modelPath, out ITransformer model))
        {
            return 2;
        }

        if (flipAverage && !TryEnableFlipAveraging(ref model, modelPath))
        {
            return 2;
        }

        IDataView test;
        try
        {
            test = SampleData.Load(ml, FashionMnistSplit.Test, dataDir, limit);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot load Fashion-MNIST:[/] {Markup.Escape(ex.Message)}");
            return 3;
        }

        MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        MainJob.PrintMetrics(metrics, trainSeconds: null);
        (model as IDisposable)?.Dispose();
        return 0;
    }

    public static int Predict(string modelPath, IReadOnlyList<string> images)
    {
        var ml = new MLContext();
        if (!TryLoad(ml, modelPath, out ITransformer model))
        {
            return 2;
        }

        BatchNormCnnTransformer? cnn = Find(model);
        if (cnn is null)
        {
            AnsiConsole.MarkupLine($"[red]{Markup.Escape(modelPath)} holds no BatchNormCnn transformer.[/]");
            return 2;
        }

        var table = new Table().AddColumn("image").AddColumn("predicted class").AddColumn("probability");
        int exit = 0;
        foreach (var (image, predicted, probability, error) in Classify(ml, model, cnn, images))
        {
            if (error is not null)
            {
                table.AddRow(Markup.Escape(image), $"[red]{Markup.Escape(error)}[/]", "");
                exit = 2;
            }
            else
            {
                table.AddRow(Markup.Escape(image), Markup.Escape(predicted), probability.ToString("0.000", CultureInfo.InvariantCulture));
            }
        }

        AnsiConsole.Write(table);
        (model as IDisposable)?.Dispose();
        return exit;
    }

    /// <summary>
    /// Classifies image files with <paramref name="model"/> (a pipeline around <paramref name="cnn"/>): each file is
    /// decoded, resized and converted to the network's C×H×W input. A file that cannot be read yields its error message.
    /// </summary>
    internal static IEnumerable<(string Image, string PredictedClass, float Probability, string? Error)> Classify(
        MLContext ml, ITransformer model, BatchNormCnnTransformer cnn, IEnumerable<string> images)
    {
        var arch = cnn.Architecture;
        var engine = SampleData.CreateEngine(ml, model, arch.InputLength);
        foreach (string image in images)
        {
            float[] pixels;
            string? error = null;
            try
            {
                pixels = ImageInput.Load(image, arch.InputChannels, arch.InputHeight, arch.InputWidth);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException)
            {
                pixels = Array.Empty<float>();
                error = ex.Message;
            }

            if (error is not null)
            {
                yield return (image, string.Empty, 0, error);
                continue;
            }

            var prediction = engine.Predict(new SampleData.ImageRow { Features = pixels });
            yield return (image, prediction.PredictedClass, prediction.Score.Max(), null);
        }
    }

    /// <summary>What a model file holds, told by its first bytes.</summary>
    internal enum ModelFileKind
    {
        /// <summary>A zip archive: an ML.NET model saved with mlContext.Model.Save (train --model, the main job).</summary>
        MLNetZip,

        /// <summary>A network saved with BatchNormCnnNetwork.Save (architecture and weights, no pipeline).</summary>
        RawNetwork,

        /// <summary>Anything else.</summary>
        Unknown,
    }

    /// <summary>Tells an ML.NET model zip from a BatchNormCnnNetwork.Save file by content (zip signature, or the network file header).</summary>
    internal static ModelFileKind Detect(string path)
    {
        var head = new byte[32];
        int read;
        using (FileStream file = File.OpenRead(path))
        {
            read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }

        if (read >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && (head[2], head[3]) is (3, 4) or (5, 6))
        {
            return ModelFileKind.MLNetZip;
        }

        // BinaryWriter's string: a 7-bit length, then "Bn.MLNet.BnCnn/<version>".
        byte[] magic = System.Text.Encoding.ASCII.GetBytes("Bn.MLNet.BnCnn/");
        return read > magic.Length && head.AsSpan(1, magic.Length).SequenceEqual(magic) ? ModelFileKind.RawNetwork : ModelFileKind.Unknown;
    }

    /// <summary>
    /// Loads a model file of either kind (see <see cref="Detect"/>); a BatchNormCnnNetwork.Save file is wrapped in the same pipeline
    /// the main job saves. Throws <see cref="InvalidDataException"/> naming the file for anything else.
    /// </summary>
    internal static ITransformer Load(MLContext ml, string path)
    {
        ml.ComponentCatalog.RegisterBatchNormCnn();
        switch (Detect(path))
        {
            case ModelFileKind.MLNetZip:
                try
                {
                    using var zip = System.IO.Compression.ZipFile.OpenRead(path);
                }
                catch (InvalidDataException ex)
                {
                    throw new InvalidDataException($"'{path}' starts as a zip archive but is not a readable one (truncated or damaged?): {ex.Message}", ex);
                }

                return ml.Model.Load(path, out _);
            case ModelFileKind.RawNetwork:
                using (BatchNormCnnNetwork network = BatchNormCnnNetwork.Load(path))
                {
                    return SampleData.PipelineFromNetwork(ml, network, history: null);
                }

            default:
                string why = new FileInfo(path).Length == 0 ? "the file is empty" : "its first bytes are neither a zip signature nor the network file header";
                throw new InvalidDataException(
                    $"'{path}' is neither an ML.NET model zip (what `train --model` and the main job write) nor a network saved with BatchNormCnnNetwork.Save ({why}).");
        }
    }

    /// <summary>Loads a model file (see <see cref="Load"/>), or prints why it cannot and returns false.</summary>
    internal static bool TryLoad(MLContext ml, string path, out ITransformer model)
    {
        try
        {
            model = Load(ml, path);
            return true;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or FormatException or InvalidOperationException or ArgumentException or UnauthorizedAccessException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot load model {Markup.Escape(path)}:[/] {Markup.Escape(ex.Message)}");
            model = null!;
            return false;
        }
    }

    /// <summary>
    /// Replaces <paramref name="model"/> by a copy whose BatchNormCnn transformer scores with test-time flip averaging
    /// (the loaded model is disposed); prints the problem and returns false when that is impossible.
    /// </summary>
    private static bool TryEnableFlipAveraging(ref ITransformer model, string modelPath)
    {
        ITransformer loaded = model;
        try
        {
            model = loaded switch
            {
                BatchNormCnnTransformer cnn => cnn.WithTestTimeFlipAveraging(true),
                IEnumerable<ITransformer> chain when chain.OfType<BatchNormCnnTransformer>().FirstOrDefault() is { } cnn => new TransformerChain<ITransformer>(
                    chain.Select(t => ReferenceEquals(t, cnn) ? cnn.WithTestTimeFlipAveraging(true) : t).ToArray()),
                _ => throw new ArgumentException($"{modelPath} holds no BatchNormCnn transformer directly or in its top-level chain."),
            };
        }
        catch (ArgumentException ex)
        {
            AnsiConsole.MarkupLine($"[red]--flip-average:[/] {Markup.Escape(ex.Message)}");
            (loaded as IDisposable)?.Dispose();
            return false;
        }

        // The copy holds its own weights; the other transformers of the chain are shared with the new chain.
        Find(loaded)?.Dispose();

        AnsiConsole.MarkupLine("scoring with test-time flip averaging (image and mirror)");
        return true;
    }

    internal static BatchNormCnnTransformer? Find(ITransformer model) => model switch
    {
        BatchNormCnnTransformer t => t,
        IEnumerable<ITransformer> chain => chain.Select(Find).FirstOrDefault(t => t is not null),
        _ => null,
    };
}

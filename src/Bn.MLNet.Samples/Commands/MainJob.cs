using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Bn.MLNet.Data;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// The main job (no arguments): trains the default BN CNN through an ordinary ML.NET pipeline on the bundled
/// Fashion-MNIST, evaluates it on the test set, saves the model, loads it in a new MLContext and scores a few images.
/// </summary>
internal static class MainJob
{
    internal static readonly Option<int> EpochsOption = new("--epochs")
    {
        Description = "Training epochs of the main job (more is slower and better).",
        DefaultValueFactory = _ => 3,
    };

    internal static readonly Option<int?> TrainLimitOption = SharedOptions.TrainLimit();

    internal static readonly Option<string> OutOption = new("--out")
    {
        Description = "Folder for the model zip and outputs.",
        HelpName = "DIR",
        DefaultValueFactory = _ => Path.Combine("runs", "main"),
    };

    internal static readonly Option<string?> DataOption = SharedOptions.DataDirectory();

    /// <summary>Adds the main job's options and action to the root command.</summary>
    public static void Attach(RootCommand root)
    {
        EpochsOption.AtLeast(1);
        root.Add(EpochsOption);
        root.Add(TrainLimitOption);
        root.Add(OutOption);
        root.Add(DataOption);
        root.SetAction((p, ct) => Task.Run(() => Run(p.GetValue(EpochsOption), p.GetValue(TrainLimitOption), p.GetValue(OutOption)!, p.GetValue(DataOption), ct), CancellationToken.None));
    }

    public static int Run(int epochs, int? trainLimit, string outDir, string? dataDir, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        string output = Path.GetFullPath(outDir);
        Directory.CreateDirectory(output);
        var ml = new MLContext(seed: 1);
        IDataView train, test;
        try
        {
            train = SampleData.Load(ml, FashionMnistSplit.Train, dataDir, trainLimit);
            test = SampleData.Load(ml, FashionMnistSplit.Test, dataDir, null);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot load Fashion-MNIST:[/] {Markup.Escape(ex.Message)}");
            return 3;
        }

        AnsiConsole.Write(new Rule("[bold]Bn.MLNet[/]: a Batch-Normalized CNN in an ML.NET pipeline").LeftJustified());
        AnsiConsole.MarkupLine($"Pipeline: MapValueToKey(Label ← Class) → [bold]BatchNormCnn[/] → MapKeyToValue(PredictedClass ← PredictedLabel)");
        AnsiConsole.MarkupLine($"Training on {train.GetRowCount():N0} Fashion-MNIST images, {epochs} epoch(s), {Environment.ProcessorCount} threads");
        AnsiConsole.MarkupLine("Recipe: natural images (BatchNormCnnOptions.UseNaturalImageRecipe: random crops, horizontal flips, label smoothing 0.1)");

        // 1. Fit: the estimator trains the network with mini-batches streamed from the IDataView.
        if (Fit(ml, train, epochs, cancellationToken) is not { } model)
        {
            AnsiConsole.MarkupLine("[yellow]Training cancelled.[/]");
            return 130;
        }

        double trainSeconds = clock.Elapsed.TotalSeconds;

        // 2. Evaluate on the 10,000 test images.
        IDataView scored = model.Transform(test);
        MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(scored);
        PrintMetrics(metrics, trainSeconds);

        // 3. Save with mlContext.Model, as any ML.NET model.
        string modelPath = Save(ml, model, train.Schema, output);
        (model as IDisposable)?.Dispose();

        // 4. Load in a new MLContext (as a scoring-only app would) and score a few test images.
        ScoreWithLoadedModel(ml, modelPath, test);
        AnsiConsole.MarkupLine($"Done in {clock.Elapsed.TotalMinutes:0.0} min. Outputs are in [bold]{Markup.Escape(output)}[/]");
        return 0;
    }

    /// <summary>Fits the sample pipeline with a progress display; null when cancelled.</summary>
    private static ITransformer? Fit(MLContext ml, IDataView train, int epochs, CancellationToken cancellationToken)
    {
        try
        {
            return TrainingConsole.Run(quiet: false, progress =>
            {
                // Clothing looks the same mirrored and a little shifted: the natural-image recipe, switched on explicitly.
                var options = new BatchNormCnnOptions
                {
                    Epochs = epochs,
                    Seed = 1,
                    Progress = progress,
                    CancellationToken = cancellationToken,
                }.UseNaturalImageRecipe();
                return SampleData.Pipeline(ml, options).Fit(train);
            });
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Saves the model zip (and the network as ONNX beside it) into <paramref name="output"/>; returns the zip's path.</summary>
    private static string Save(MLContext ml, ITransformer model, DataViewSchema inputSchema, string output)
    {
        string modelPath = Path.Combine(output, "fashion-mnist-bncnn.zip");
        ml.Model.Save(model, inputSchema, modelPath);
        AnsiConsole.MarkupLine($"Model saved: {Markup.Escape(modelPath)} ({new FileInfo(modelPath).Length / 1024.0:N0} KB)");
        if (ModelCommands.Find(model) is { } cnn)
        {
            // The same network as ONNX, next to the zip: scores without libtorch (ONNX Runtime or ApplyOnnxModel).
            ExportOnnxCommand.Write(cnn, Path.ChangeExtension(modelPath, ".onnx"));
        }

        return modelPath;
    }

    /// <summary>Loads the saved model in a new MLContext, as a scoring-only app would, and prints its predictions for the first test images.</summary>
    private static void ScoreWithLoadedModel(MLContext ml, string modelPath, IDataView test)
    {
        var scoringContext = new MLContext();
        scoringContext.ComponentCatalog.RegisterBatchNormCnn();
        ITransformer loaded = scoringContext.Model.Load(modelPath, out _);
        var engine = SampleData.CreateEngine(scoringContext, loaded, FashionMnist.FeatureLength);
        var samples = ml.Data.CreateEnumerable<SampleData.ImageRow>(ml.Data.TakeRows(test, 8), reuseRowObject: false,
            schemaDefinition: SampleData.RowSchema(FashionMnist.FeatureLength)).ToList();
        var table = new Table().Title("Loaded model, new MLContext: first test images").AddColumn("#").AddColumn("true class").AddColumn("predicted").AddColumn("probability");
        int i = 0;
        foreach (var row in samples)
        {
            var p = engine.Predict(row);
            bool ok = p.PredictedClass == row.Class;
            table.AddRow((i++).ToString(CultureInfo.InvariantCulture), Markup.Escape(row.Class),
                (ok ? "[green]" : "[red]") + Markup.Escape(p.PredictedClass) + "[/]", p.Score.Max().ToString("0.000", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(table);
        (loaded as IDisposable)?.Dispose();
    }

    /// <summary>Prints accuracy, macro accuracy, log-loss, a per-class table and the confusion matrix.</summary>
    internal static void PrintMetrics(MulticlassClassificationMetrics metrics, double? trainSeconds)
    {
        var summary = new Table().Title("Test set").AddColumn("metric").AddColumn("value");
        summary.AddRow("accuracy (micro)", metrics.MicroAccuracy.ToString("0.0000", CultureInfo.InvariantCulture));
        summary.AddRow("macro accuracy", metrics.MacroAccuracy.ToString("0.0000", CultureInfo.InvariantCulture));
        summary.AddRow("log-loss", metrics.LogLoss.ToString("0.0000", CultureInfo.InvariantCulture));
        if (trainSeconds is double s)
        {
            summary.AddRow("training time", $"{s:0} s");
        }

        AnsiConsole.Write(summary);
        ConfusionMatrix cm = metrics.ConfusionMatrix;
        IReadOnlyList<string> names = FashionMnist.ClassNames;
        var perClass = new Table().Title("Per class").AddColumn("class").AddColumn("precision").AddColumn("recall").AddColumn("log-loss");
        for (int c = 0; c < cm.NumberOfClasses; c++)
        {
            perClass.AddRow(Markup.Escape(c < names.Count ? names[c] : c.ToString(CultureInfo.InvariantCulture)),
                cm.PerClassPrecision[c].ToString("0.000", CultureInfo.InvariantCulture),
                cm.PerClassRecall[c].ToString("0.000", CultureInfo.InvariantCulture),
                metrics.PerClassLogLoss[c].ToString("0.000", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(perClass);
        var matrix = new Table().Title("Confusion matrix (rows: true class, columns: predicted)").AddColumn("true \\ predicted");
        for (int c = 0; c < cm.NumberOfClasses; c++)
        {
            matrix.AddColumn(new TableColumn(c.ToString(CultureInfo.InvariantCulture)).RightAligned());
        }

        for (int r = 0; r < cm.NumberOfClasses; r++)
        {
            var cells = new List<string> { $"{r} {Markup.Escape(r < names.Count ? names[r] : string.Empty)}" };
            for (int c = 0; c < cm.NumberOfClasses; c++)
            {
                double count = cm.Counts[r][c];
                cells.Add(r == c ? $"[bold]{count:0}[/]" : count.ToString("0", CultureInfo.InvariantCulture));
            }

            matrix.AddRow(cells.ToArray());
        }

        AnsiConsole.Write(matrix);
    }
}

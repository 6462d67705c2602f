using System.CommandLine;
using System.Diagnostics;
using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// <c>train</c>: trains a BN CNN on Fashion-MNIST (bundled, or <c>--data DIR</c>) through the estimator an ML.NET user
/// runs (<c>Fit(train, validation)</c> on the rows streamed from an IDataView), then evaluates it on the test set with
/// ML.NET's evaluator. The options map once onto <see cref="BatchNormCnnOptions"/> (<see cref="TrainCommandOptions"/>).
/// </summary>
internal static class TrainCommand
{
    /// <summary>Builds the <c>train</c> command.</summary>
    public static Command Create()
    {
        var command = new Command("train", "Train the BN CNN on Fashion-MNIST and evaluate it on the test set. " +
            "The defaults are the library's (BatchNormCnnOptions) with the natural-image recipe (--no-recipe turns it off), except --seed " +
            "(the library draws one from the MLContext) and --bf16 (on when the CPU has bfloat16 instructions).");
        foreach (Option option in TrainCommandOptions.All)
            command.Add(option);
        command.SetAction((parse, cancellationToken) => Task.Run(() => Run(parse, cancellationToken), CancellationToken.None));
        return command;
    }

    /// <summary>The key-mapped training, validation and test views of one run, the folder they were read from, and the text class → key mapping.</summary>
    internal sealed record TrainingData(string DataDirectory, IDataView Train, IDataView? Validation, IDataView Test, ITransformer ToKey);

    private static int Run(ParseResult p, CancellationToken cancellationToken)
    {
        if (!TryReadOptions(p, out BatchNormCnnOptions options))
            return 2;
        bool quiet = p.GetValue(TrainCommandOptions.Quiet);
        var ml = new MLContext(options.Seed);
        if (!TryLoadData(p, ml, out TrainingData data))
            return 3;
        ITransformer? initial = TryStartFrom(p, ml, options);
        using var disposeInitial = initial as IDisposable;
        if (p.GetValue(TrainCommandOptions.InitModel) is not null && initial is null)
            return 3;
        if (!quiet)
            TrainReport.PrintCheckpoints(options);
        if (!quiet)
            TrainReport.PrintSettings(data, options, TrainCommandOptions.UsesRecipe(p), TrainCommandOptions.ChoosesBFloat16(p));

        BatchNormCnnTransformer model;
        try
        {
            model = TrainingConsole.Run(quiet, progress =>
            {
                options.Progress = progress;
                options.CancellationToken = cancellationToken;
                return ml.Transforms.BatchNormCnn(options).Fit(data.Train, data.Validation);
            }, options.Trainer.TimeBudget?.TotalSeconds);
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]Training cancelled.[/]");
            return 130;
        }
        catch (Exception ex) when (ex is InvalidOperationException or InvalidDataException or ArgumentException && options.CheckpointDirectory is not null)
        {
            AnsiConsole.MarkupLine($"[red]Cannot train:[/] {Markup.Escape(ex.Message)}");
            return 3;
        }

        using (model)
        {
            return Finish(p, ml, data, model, options, cancellationToken);
        }
    }

    /// <summary>
    /// With --init-model: loads the model zip, and the estimator starts from its BatchNormCnn transformer with its network
    /// (bfloat16 as this command line says). Returns the loaded model (the caller disposes it), or null when there is
    /// none or it cannot be read (printed).
    /// </summary>
    private static ITransformer? TryStartFrom(ParseResult p, MLContext ml, BatchNormCnnOptions options)
    {
        if (p.GetValue(TrainCommandOptions.InitModel) is not string path || !ModelCommands.TryLoad(ml, path, out ITransformer model))
            return null;
        if (ModelCommands.Find(model) is not { } cnn)
        {
            AnsiConsole.MarkupLine($"[red]--init-model {Markup.Escape(path)}[/] holds no BatchNormCnn model.");
            (model as IDisposable)?.Dispose();
            return null;
        }

        bool bfloat16 = options.BFloat16Convolutions;
        options.Network = cnn.Architecture;
        options.BFloat16Convolutions = bfloat16;
        options.InitialModel = cnn;
        AnsiConsole.MarkupLine($"starting from {Markup.Escape(Path.GetFullPath(path))} ({cnn.ClassNames.Count} classes, {cnn.TrainingHistory?.Epochs.Count ?? 0} epochs trained)");
        return model;
    }

    /// <summary>Evaluates, prints, and writes the model, history and metrics asked for; returns the exit code.</summary>
    private static int Finish(ParseResult p, MLContext ml, TrainingData data, BatchNormCnnTransformer model, BatchNormCnnOptions options, CancellationToken cancellationToken)
    {
        TrainReport.TestOutcome outcome = EvaluateOnTest(ml, model, data.Test, cancellationToken);
        var history = model.TrainingHistory!;
        TrainReport.PrintResults(outcome, history);
        string? modelPath = p.GetValue(TrainCommandOptions.Model);
        if (modelPath is not null && !SaveModel(ml, data, model, modelPath))
            return 3;
        if (p.GetValue(TrainCommandOptions.HistoryCsv) is string csvPath)
            history.SaveCsv(csvPath);
        if (p.GetValue(TrainCommandOptions.MetricsOut) is string metricsPath)
            TrainReport.WriteMetrics(metricsPath, outcome, model, options, p.GetValue(TrainCommandOptions.Quiet));
        return history.Diverged ? 4 : 0;
    }

    /// <summary>Reads the settings; prints the problem and returns false when one is invalid.</summary>
    private static bool TryReadOptions(ParseResult p, out BatchNormCnnOptions options)
    {
        try
        {
            options = TrainCommandOptions.ToOptions(p);
            options.Validate();
            return true;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            AnsiConsole.MarkupLine($"[red]Invalid option:[/] {Markup.Escape(ex.Message)}");
            options = null!;
            return false;
        }
    }

    /// <summary>Loads Fashion-MNIST with text classes, holds out the validation rows and maps the classes to keys; prints the problem and returns false on failure.</summary>
    private static bool TryLoadData(ParseResult p, MLContext ml, out TrainingData data)
    {
        string? dataDir = p.GetValue(TrainCommandOptions.Data);
        int validationRows = p.GetValue(TrainCommandOptions.Validation);
        try
        {
            dataDir ??= FashionMnist.FindDataDirectory();
            IDataView train = SampleData.Load(ml, FashionMnistSplit.Train, dataDir, p.GetValue(TrainCommandOptions.TrainLimit));
            IDataView test = SampleData.Load(ml, FashionMnistSplit.Test, dataDir, p.GetValue(TrainCommandOptions.TestLimit));
            IDataView? validation = null;
            if (validationRows > 0)
            {
                long total = train.GetRowCount() ?? throw new InvalidOperationException("The training view has no row count.");
                if (validationRows >= total - 1)
                    throw new ArgumentException($"--validation {validationRows} leaves too few of the {total} training rows.");
                validation = ml.Data.SkipRows(train, total - validationRows);
                train = ml.Data.TakeRows(train, total - validationRows);
            }

            ITransformer toKey = SampleData.ToKey(ml).Fit(train);
            data = new TrainingData(dataDir, toKey.Transform(train), validation is null ? null : toKey.Transform(validation), toKey.Transform(test), toKey);
            return true;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or ArgumentException or InvalidOperationException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot load Fashion-MNIST:[/] {Markup.Escape(ex.Message)}");
            data = null!;
            return false;
        }
    }

    /// <summary>Scores the test set through the transformer and ML.NET's evaluator, plain and with test-time flip averaging.</summary>
    private static TrainReport.TestOutcome EvaluateOnTest(MLContext ml, BatchNormCnnTransformer model, IDataView test, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        MulticlassClassificationMetrics plain = ml.MulticlassClassification.Evaluate(model.Transform(test));
        double seconds = clock.Elapsed.TotalSeconds;
        cancellationToken.ThrowIfCancellationRequested();
        MulticlassClassificationMetrics? flipped = null;
        double? flipSeconds = null;
        if (model.Architecture.InputWidth >= 2)
        {
            clock.Restart();
            using BatchNormCnnTransformer flipping = model.WithTestTimeFlipAveraging(true);
            flipped = ml.MulticlassClassification.Evaluate(flipping.Transform(test));
            flipSeconds = clock.Elapsed.TotalSeconds;
        }

        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return new TrainReport.TestOutcome(plain, seconds, test.GetRowCount() ?? 0, process.PeakWorkingSet64, GC.GetTotalMemory(forceFullCollection: false),
            GC.GetGCMemoryInfo(GCKind.Any).HeapSizeBytes) { FlipAveraged = flipped, FlipAveragedEvaluationSeconds = flipSeconds };
    }

    /// <summary>
    /// Saves the model zip the main job writes (text class → key, the BN CNN, predicted key → text), written beside the
    /// target and then moved over it, so a failed save leaves no half-written file.
    /// </summary>
    private static bool SaveModel(MLContext ml, TrainingData data, BatchNormCnnTransformer model, string modelPath)
    {
        string path = Path.GetFullPath(modelPath);
        string temp = path + ".partial";
        try
        {
            ITransformer chain = SampleData.Chain(ml, data.ToKey, model, data.Test);
            ml.Model.Save(chain, SampleData.InputSchema(ml, model.Architecture.InputLength), temp);
            File.Move(temp, path, overwrite: true);
            AnsiConsole.MarkupLine($"model saved to {Markup.Escape(path)} (ML.NET model zip: evaluate --model and predict --model read it)");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot save the model to {Markup.Escape(path)}:[/] {Markup.Escape(ex.Message)}");
            if (File.Exists(temp))
                File.Delete(temp);
            return false;
        }
    }
}
